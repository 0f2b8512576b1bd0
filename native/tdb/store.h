// A libtdb 1.4 compatible database file: same format, same fcntl/mutex locking protocol,
// same transaction recovery area, so libtdb processes (smbd) can share files with us.
// Plain C++ without N-API: the addon binding and the lock helper executables both link it.
#pragma once
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tdb/format.h"

namespace ctdb::tdb {

// Results of store operations: 0 is success, the rest mirror libtdb's TDB_ERROR values.
enum class Status : int {
  kOk = 0,
  kCorrupt = 1,
  kIo = 2,
  kLock = 3,
  kOom = 4,
  kExists = 5,
  kNoLock = 6,  // a non-blocking lock would have to wait
  kNoExist = 8,
  kInvalid = 9,
  kReadOnly = 10,
  kNesting = 11,
};
const char* StatusName(Status s);

struct OpenOptions {
  uint32_t hash_size = kDefaultHashSize;  // used only when the file is created or wiped
  uint32_t tdb_flags = 0;                 // TdbFlag bits
  int open_flags = 0;                     // O_RDONLY / O_RDWR | O_CREAT ...
  mode_t mode = 0600;
};

enum class StoreMode { kReplace = 0, kInsert = 1, kModify = 2 };

struct Span {
  const uint8_t* data;
  size_t size;
};

// Called once per live record. Return false to stop the traverse.
using TraverseFn = std::function<bool(Span key, Span data)>;

class MutexArea;
struct Transaction;

class Store {
 public:
  // On failure returns nullptr and fills *error with "<path>: <what went wrong>", *err_no and *status.
  static std::unique_ptr<Store> Open(const std::string& path, const OpenOptions& options, std::string* error,
                                     int* err_no, Status* status = nullptr);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Parse hands the value of `key` to fn(context, value) while the chain is still read-locked,
  // without copying it first (libtdb's tdb_parse_record); fn must not call back into the store.
  // A null fn only checks existence. kNoExist when absent.
  using ValueFn = void (*)(void* context, Span value);
  Status Parse(Span key, ValueFn fn, void* context);
  // Fetch copies the value into *out (its capacity is reused).
  Status Fetch(Span key, std::string* out) {
    return Parse(key, [](void* to, Span v) { static_cast<std::string*>(to)->assign(reinterpret_cast<const char*>(v.data), v.size); }, out);
  }
  Status Exists(Span key) { return Parse(key, nullptr, nullptr); }
  Status Put(Span key, Span data, StoreMode mode);
  Status Delete(Span key);
  // Visits every live record; a read traverse forbids writes from the callback.
  // *count receives the number of records visited.
  Status Traverse(bool write, const TraverseFn& fn, uint64_t* count);
  // The fast whole-database read: each non-empty chain is read-locked only while its live
  // records are copied out, and fn runs with no lock held (so it may even write). No record
  // locks, unlike Traverse: two lock calls per chain instead of about six per record.
  Status TraverseChains(const TraverseFn& fn, uint64_t* count) { return TraverseChains(fn, count, 0, SIZE_MAX, nullptr); }
  // A slice of that walk: chains from `first` on, stopping at the end of the chain that brings
  // the copied bytes to `slice_bytes`. *next receives the chain to resume at (hash_size() once
  // every chain was walked), so a caller can spread a big walk over several calls.
  Status TraverseChains(const TraverseFn& fn, uint64_t* count, uint32_t first, size_t slice_bytes, uint32_t* next);

  Status ChainLock(Span key, bool write, bool wait);
  Status ChainUnlock(Span key, bool write);
  // Records a chain write lock that another process (a lock helper) holds for us, without
  // locking: fetch/store/delete on the chain then go ahead. Unmark forgets it without unlocking.
  Status ChainLockMark(Span key);
  Status ChainUnlockMark(Span key);
  Status LockAll(bool write, bool wait);
  Status UnlockAll(bool write);

  Status TransactionStart(bool wait);
  Status TransactionPrepareCommit();
  Status TransactionCommit();
  Status TransactionCancel();
  bool InTransaction() const { return txn_ != nullptr; }

  uint32_t Seqnum();
  void EnableSeqnum() { flags_ |= kSeqnum; }
  // libtdb's tdb_increment_seqnum_nonblock: a no-op unless seqnums are enabled.
  void IncrementSeqnum() {
    if (!read_only_ && (txn_ || map_ != nullptr)) BumpSeqnum();
  }
  // Rewrites the file compactly through a transaction.
  Status Repack();
  // Deletes every record and empties the free list (inside a transaction if one is open).
  Status Wipe();

  // Diagnostics: what the last failing call saw, e.g. "chain 17: record at 4096 beyond end of file".
  std::string LastError() const;
  int LastErrno() const { return last_errno_; }
  const std::string& path() const { return path_; }
  uint32_t hash_size() const { return hash_size_; }
  uint32_t tdb_flags() const { return flags_; }
  HashKind hash_kind() const { return hash_kind_; }
  bool uses_mutexes() const { return mutexes_ != nullptr || (feature_flags_ & kFeatureMutex) != 0; }
  uint32_t map_size() const { return map_size_; }
  uint32_t HashOf(Span key) const { return HashKey(hash_kind_, key.data, key.size); }

  // Read-only view of the raw logical file for the checker and dumper.
  Status ReadBytes(uint32_t off, void* buf, uint32_t len) { return Read(off, buf, len); }
  Status ReadRecord(uint32_t off, Record* rec) { return ReadRec(off, rec); }

 private:
  friend struct Transaction;
  struct NestedLock {
    uint32_t offset;
    uint32_t count;
    int type;
  };
  struct AllRecordState {
    uint32_t count = 0;
    int type = 0;
    bool upgradable = false;
  };

  Store() = default;
  Status OpenImpl(const OpenOptions& options);
  Status CreateDatabase(uint32_t hash_size);
  Status ReadHeaderAndSetup(const OpenOptions& options, bool* first_opener);
  void Close();

  // --- errors
  Status Fail(Status s, const std::string& what);
  Status FailErrno(Status s, const std::string& what);

  // --- I/O on logical offsets (transaction aware)
  Status Oob(uint32_t off, uint32_t len, bool probe);
  Status Remap();
  Status Read(uint32_t off, void* buf, uint32_t len);
  Status Write(uint32_t off, const void* buf, uint32_t len);
  // Pointer into the mapping when [off, off+len) is mapped and no transaction is open.
  const uint8_t* Direct(uint32_t off, uint32_t len) const {
    return !txn_ && uint64_t{off} + len <= map_size_ ? map_ + off : nullptr;
  }
  Status ReadOff(uint32_t off, uint32_t* value) {
    if (const uint8_t* p = Direct(off, 4)) {
      std::memcpy(value, p, 4);
      return Status::kOk;
    }
    return Read(off, value, 4);
  }
  Status WriteOff(uint32_t off, uint32_t value) { return Write(off, &value, 4); }
  // Whether the bytes at `off` are `data` (a failed read counts as no).
  bool Holds(uint32_t off, Span data);
  Status ReadRec(uint32_t off, Record* rec);
  Status ReadFreeRec(uint32_t off, Record* rec);
  Status WriteRec(uint32_t off, const Record& rec);
  Status WriteTailer(uint32_t off, const Record& rec);
  Status ExpandFile(uint32_t size, uint32_t addition);
  Status Sync(uint32_t off, uint32_t len);

  // --- locking
  Status BrLock(int type, uint32_t off, uint32_t len, bool wait);
  Status BrUnlock(uint32_t off, uint32_t len);
  // mark_only: bookkeeping only, the lock itself is held elsewhere.
  Status NestLock(uint32_t off, int type, bool wait, bool mark_only = false);
  Status NestUnlock(uint32_t off, bool mark_only = false);
  NestedLock* FindLock(uint32_t off);
  bool HaveDataLocks() const;
  bool HaveExtraLocks(bool in_transaction) const;
  bool HoldsChainMutex() const;
  Status LockList(int list, int type, bool wait);
  Status UnlockList(int list, int type);
  Status CoveredByAllRecord(int type);
  Status AllRecordLock(int type, bool wait, bool upgradable);
  Status AllRecordUnlock(int type);
  Status AllRecordUpgrade();
  Status GradualLock(int type, bool wait, uint32_t off, uint32_t len);
  Status RecordReadLock(uint32_t off);
  void RecordReadUnlock(uint32_t off);
  bool RecordFreeable(uint32_t off);
  Status LockAndRecover();
  bool NeedsRecovery();
  Status Recover();
  Status FreeTail(uint32_t old_eof);

  // --- records, chains and the free list
  uint32_t Bucket(uint32_t hash) const { return hash % hash_size_; }
  // Where a chain walk found its record: the word pointing at it (the hash top or the previous
  // record's `next`) and whether a dead record came before it.
  struct ChainPosition {
    uint32_t link = 0;
    bool dead_before = false;
  };
  Status FindInChain(Span key, uint32_t hash, Record* rec, uint32_t* rec_off, ChainPosition* position = nullptr);
  Status PutLocked(Span key, Span data, StoreMode mode, uint32_t hash);
  Status DeleteLocked(Span key, uint32_t hash);
  Status TrimDead(uint32_t hash, uint32_t from_link);
  Status FreeBlock(uint32_t off, Record rec);  // caller holds the free-list lock
  Status Allocate(uint32_t length, Record* rec, uint32_t* off);
  Status AllocateFromFreelist(uint32_t length, Record* rec, uint32_t* off);
  Status CarveFree(uint32_t block, uint32_t link, uint32_t need, Record* rec, uint32_t* off);
  bool FromFreshBlock(uint32_t need, Record* rec, uint32_t* off, Status* s);
  Status Expand(uint32_t size);
  Status MergeWithLeft(uint32_t off, const Record& rec, uint32_t* left_off, Record* left_rec, bool* merged);
  void BumpSeqnum();
  Status TraverseNext(int list_type, uint32_t* list, uint32_t* off, Record* rec, std::vector<uint32_t>* seen);
  struct CopiedRecord {
    size_t pos;  // key then data, in the copy buffer
    uint32_t key_len, data_len;
  };
  Status CopyChain(uint32_t list, std::vector<CopiedRecord>* records, std::string* bytes);

  // --- transactions
  Status TxnRead(uint32_t off, void* buf, uint32_t len);
  Status TxnWrite(uint32_t off, const void* buf, uint32_t len);
  Status TxnExpandFile(uint32_t size, uint32_t addition);
  uint8_t* TxnBlock(uint32_t index);
  Status RealWrite(uint32_t off, const void* buf, uint32_t len);
  Status WriteThroughFile(uint32_t off, std::vector<iovec>& pieces);
  Status SetupRecovery(uint32_t* magic_offset);
  Status CancelImpl();
  bool RepackWorthwhile();

  std::string path_;
  int fd_ = -1;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  uint32_t flags_ = 0;
  bool read_only_ = false;
  uint32_t hash_size_ = 0;
  HashKind hash_kind_ = HashKind::kOld;
  uint32_t feature_flags_ = 0;
  uint32_t hdr_ofs_ = 0;  // mutex area size: logical offset 0 sits here in the file
  uint32_t page_size_ = 4096;

  uint8_t* map_ = nullptr;   // data area mapping (logical offset 0)
  uint32_t mapped_ = 0;      // bytes currently mapped
  uint32_t map_size_ = 0;    // logical size (virtual inside a transaction)
  std::unique_ptr<MutexArea> mutexes_;

  std::vector<NestedLock> locks_;
  AllRecordState allrecord_;
  std::vector<uint32_t> traverse_record_locks_;  // record offsets our traverses sit on
  int traverse_read_ = 0;
  std::unique_ptr<Transaction> txn_;
  bool registered_ = false;
  bool repacking_ = false;

  std::string last_error_;
  int last_errno_ = 0;
};

}  // namespace ctdb::tdb
