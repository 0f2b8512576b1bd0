// libtdb's locking protocol: 1-byte fcntl locks on fixed offsets, chain and free-list locks
// that become robust mutexes in TDB_MUTEX_LOCKING files, the all-record lock, record locks
// for traversals, and the "is a crashed commit pending?" check before the first data lock.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tdb/mutex.h"
#include "tdb/store.h"
#include "tdb/store_internal.h"

namespace ctdb::tdb {

namespace {

const char* LockName(int type) { return type == F_WRLCK ? "write" : "read"; }

}  // namespace

Status Store::BrLock(int type, uint32_t off, uint32_t len, bool wait) {
  if (flags_ & kNoLock) return Status::kOk;
  if (type == F_WRLCK && (read_only_ || traverse_read_ > 0))
    return Fail(Status::kReadOnly, "write lock inside a read-only open or read traverse");
  const uint32_t data_start = DataStart(hash_size_);
  if (mutexes_ && len == 1 && off >= kFreelistTop - 4 && off < data_start && hash_size_ != 0) {
    const uint32_t index = (off - (kFreelistTop - 4)) / 4;
    const int rc = mutexes_->LockChain(index, type, wait, index != 0 && HoldsChainMutex());
    if (rc == 0) return Status::kOk;
    errno = rc;
    if (rc == EAGAIN) return Fail(Status::kNoLock, "chain mutex " + std::to_string(index) + " is busy");
    return FailErrno(Status::kLock, "lock chain mutex " + std::to_string(index));
  }
  struct flock fl {};
  fl.l_type = static_cast<short>(type);
  fl.l_whence = SEEK_SET;
  fl.l_start = off;
  fl.l_len = len;
  int rc;
  do {
    rc = fcntl(fd_, wait ? F_SETLKW : F_SETLK, &fl);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return Status::kOk;
  const std::string what = std::string(LockName(type)) + " lock at " + std::to_string(off) + "+" + std::to_string(len);
  if (!wait && (errno == EAGAIN || errno == EACCES)) return FailErrno(Status::kNoLock, what);
  return FailErrno(Status::kLock, what);
}

Status Store::BrUnlock(uint32_t off, uint32_t len) {
  if (flags_ & kNoLock) return Status::kOk;
  const uint32_t data_start = DataStart(hash_size_);
  if (mutexes_ && len == 1 && off >= kFreelistTop - 4 && off < data_start) {
    const int rc = mutexes_->UnlockChain((off - (kFreelistTop - 4)) / 4);
    if (rc == 0) return Status::kOk;
    errno = rc;
    return FailErrno(Status::kLock, "unlock chain mutex");
  }
  struct flock fl {};
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = off;
  fl.l_len = len;
  if (fcntl(fd_, F_SETLKW, &fl) != 0) return FailErrno(Status::kLock, "unlock at " + std::to_string(off));
  return Status::kOk;
}

Store::NestedLock* Store::FindLock(uint32_t off) {
  for (auto& l : locks_)
    if (l.offset == off) return &l;
  return nullptr;
}

bool Store::HoldsChainMutex() const {
  for (const auto& l : locks_)
    if (l.offset >= kFreelistTop && l.offset < DataStart(hash_size_)) return true;
  return false;
}

bool Store::HaveDataLocks() const {
  for (const auto& l : locks_)
    if (l.offset >= kFreelistTop - 4) return true;
  return false;
}

bool Store::HaveExtraLocks(bool in_transaction) const {
  if (!in_transaction && allrecord_.count) return true;
  size_t extra = 0;
  for (const auto& l : locks_) {
    if (l.offset == kActiveLock) continue;
    if (in_transaction && l.offset == kTransactionLock) continue;
    extra++;
  }
  return extra != 0;
}

// fcntl locks do not nest within a process, so nesting is counted here.
Status Store::NestLock(uint32_t off, int type, bool wait, bool mark_only) {
  if (flags_ & kNoLock) return Status::kOk;
  if (NestedLock* held = FindLock(off)) {
    if (held->type == F_RDLCK && type == F_WRLCK) {
      if (!mark_only && (!mutexes_ || off < kFreelistTop - 4)) {
        Status s = BrLock(F_WRLCK, off, 1, wait);
        if (s != Status::kOk) return s;
      }
      held->type = F_WRLCK;
    }
    held->count++;
    return Status::kOk;
  }
  if (!mark_only) {
    Status s = BrLock(type, off, 1, wait);
    if (s != Status::kOk) return s;
  }
  locks_.push_back({off, 1, type});
  return Status::kOk;
}

Status Store::NestUnlock(uint32_t off, bool mark_only) {
  if (flags_ & kNoLock) return Status::kOk;
  NestedLock* held = FindLock(off);
  if (held == nullptr) return Fail(Status::kLock, "unlock of a lock not held (offset " + std::to_string(off) + ")");
  if (--held->count > 0) return Status::kOk;
  *held = locks_.back();
  locks_.pop_back();
  return mark_only ? Status::kOk : BrUnlock(off, 1);
}

Status Store::CoveredByAllRecord(int type) {
  if (type == F_WRLCK && allrecord_.type == F_RDLCK)
    return Fail(Status::kLock, "write lock requested under a read all-record lock");
  return Status::kOk;
}

Status Store::LockList(int list, int type, bool wait) {
  if (allrecord_.count) return CoveredByAllRecord(type);
  // Before our first data lock, see whether a crashed committer left a recovery pending.
  const bool check = !HaveDataLocks();
  Status s = NestLock(ListLockOffset(list), type, wait);
  if (s == Status::kOk && check && NeedsRecovery()) {
    NestUnlock(ListLockOffset(list));
    if ((s = LockAndRecover()) != Status::kOk) return s;
    return LockList(list, type, wait);
  }
  return s;
}

Status Store::UnlockList(int list, int type) {
  if (allrecord_.count) return CoveredByAllRecord(type);
  return NestUnlock(ListLockOffset(list));
}

// Locks a range, falling back to halves so that a stream of chain lockers cannot starve us.
Status Store::GradualLock(int type, bool wait, uint32_t off, uint32_t len) {
  if (len <= 4) return BrLock(type, off, len, wait);
  if (BrLock(type, off, len, false) == Status::kOk) return Status::kOk;
  Status s = GradualLock(type, wait, off, len / 2);
  if (s != Status::kOk) return s;
  s = GradualLock(type, wait, off + len / 2, len - len / 2);
  if (s != Status::kOk) BrUnlock(off, len / 2);
  return s;
}

Status Store::AllRecordLock(int type, bool wait, bool upgradable) {
  if (read_only_ || traverse_read_ > 0) return Fail(Status::kLock, "all-record lock on a read-only open");
  if (allrecord_.count && allrecord_.type == type) {
    allrecord_.count++;
    return Status::kOk;
  }
  if (allrecord_.count) return Fail(Status::kLock, "all-record lock of the other type already held");
  if (HaveExtraLocks(upgradable)) return Fail(Status::kLock, "all-record lock while holding chain locks");
  if (upgradable && type != F_RDLCK) return Fail(Status::kLock, "upgradable all-record lock must start as read");
  if (flags_ & kNoLock) {
    allrecord_ = {1, upgradable ? F_WRLCK : type, upgradable};
    return Status::kOk;
  }
  Status s;
  if (mutexes_) {
    const int rc = mutexes_->AllRecordLock(type, wait);
    if (rc != 0) {
      errno = rc;
      return rc == EAGAIN ? Fail(Status::kNoLock, "all-record mutex is busy") : FailErrno(Status::kLock, "all-record mutex");
    }
  } else if ((s = GradualLock(type, wait, kFreelistTop, 4 * hash_size_)) != Status::kOk) {
    return s;
  }
  // The rest of the file covers the record locks held by traversals.
  if ((s = BrLock(type, ListLockOffset(hash_size_), 0, wait)) != Status::kOk) {
    if (mutexes_) mutexes_->AllRecordUnlock();
    else BrUnlock(kFreelistTop, 4 * hash_size_);
    return s;
  }
  allrecord_ = {1, upgradable ? F_WRLCK : type, upgradable};
  if (NeedsRecovery()) {
    AllRecordUnlock(type);
    if ((s = LockAndRecover()) != Status::kOk) return s;
    return AllRecordLock(type, wait, upgradable);
  }
  return Status::kOk;
}

Status Store::AllRecordUnlock(int type) {
  if (allrecord_.count == 0) return Fail(Status::kLock, "all-record unlock without the lock");
  if (allrecord_.type != type && !(allrecord_.upgradable && type == F_RDLCK))
    return Fail(Status::kLock, "all-record unlock of the wrong type");
  if (--allrecord_.count > 0) return Status::kOk;
  allrecord_ = {};
  if (flags_ & kNoLock) return Status::kOk;
  if (mutexes_) {
    const int rc = mutexes_->AllRecordUnlock();
    if (rc != 0) return errno = rc, FailErrno(Status::kLock, "all-record mutex unlock");
    return BrUnlock(ListLockOffset(hash_size_), 0);
  }
  return BrUnlock(kFreelistTop, 0);
}

Status Store::AllRecordUpgrade() {
  if (allrecord_.count != 1 || !allrecord_.upgradable) return Fail(Status::kLock, "all-record upgrade not possible");
  if (!(flags_ & kNoLock)) {
    Status s;
    if (mutexes_) {
      const int rc = mutexes_->AllRecordUpgrade();
      if (rc != 0) return errno = rc, FailErrno(Status::kLock, "all-record mutex upgrade");
      if ((s = BrLock(F_WRLCK, ListLockOffset(hash_size_), 0, true)) != Status::kOk) {
        mutexes_->AllRecordDowngrade();
        return s;
      }
    } else if ((s = BrLock(F_WRLCK, kFreelistTop, 0, true)) != Status::kOk) {
      return s;
    }
  }
  allrecord_.type = F_WRLCK;
  allrecord_.upgradable = false;
  return Status::kOk;
}

Status Store::RecordReadLock(uint32_t off) {
  if (allrecord_.count || off == 0) return Status::kOk;
  return BrLock(F_RDLCK, off, 1, true);
}

void Store::RecordReadUnlock(uint32_t off) {
  if (allrecord_.count || off == 0) return;
  size_t holders = 0;
  for (uint32_t o : traverse_record_locks_) holders += (o == off);
  if (holders == 1) BrUnlock(off, 1);
}

// A dead record may be freed only if no traversal (ours or another process's) sits on it.
// libtdb probes with a write lock and unlocks again; one F_GETLK query answers the same: the
// caller holds the chain write lock, so no traverser can reach the record meanwhile.
bool Store::RecordFreeable(uint32_t off) {
  for (uint32_t o : traverse_record_locks_)
    if (o == off) return false;
  if (allrecord_.count) return allrecord_.type == F_WRLCK;
  if (flags_ & kNoLock) return true;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = off;
  fl.l_len = 1;
  return fcntl(fd_, F_GETLK, &fl) == 0 && fl.l_type == F_UNLCK;
}

bool Store::NeedsRecovery() {
  uint32_t head = 0;
  if (ReadOff(kRecoveryHeadOfs, &head) != Status::kOk) return true;
  if (head == 0) return false;
  Record rec;
  if (Read(head, &rec, sizeof(rec)) != Status::kOk) return true;
  return rec.magic == kRecoveryMagic;
}

Status Store::LockAndRecover() {
  // Same order as a committing transaction: data range, then OPEN_LOCK.
  Status s = BrLock(F_WRLCK, kFreelistTop, 0, true);
  if (s != Status::kOk) return s;
  if ((s = BrLock(F_WRLCK, kOpenLock, 1, true)) != Status::kOk) {
    BrUnlock(kFreelistTop, 0);
    return s;
  }
  s = Recover();
  BrUnlock(kOpenLock, 1);
  BrUnlock(kFreelistTop, 0);
  return s;
}

// Replays a pending recovery record (a commit that died half-way), exactly as libtdb does.
// Everything is validated before the first byte is written.
Status Store::Recover() {
  uint32_t head = 0;
  Status s = ReadOff(kRecoveryHeadOfs, &head);
  if (s != Status::kOk || head == 0) return s;
  Record rec;
  if ((s = Read(head, &rec, sizeof(rec))) != Status::kOk) return s;
  if (rec.magic != kRecoveryMagic) return Status::kOk;
  if (read_only_) return Fail(Status::kCorrupt, "an interrupted transaction needs recovery, but the file is open read-only");
  if (rec.data_len > rec.rec_len || Oob(head, kRecordHeaderSize + rec.data_len, true) != Status::kOk)
    return Fail(Status::kCorrupt, "recovery record at " + std::to_string(head) + " is larger than the file");
  std::vector<uint8_t> blob(rec.data_len);
  if ((s = Read(head + kRecordHeaderSize, blob.data(), rec.data_len)) != Status::kOk) return s;
  struct Entry {
    uint32_t off, len;
    size_t pos;
  };
  std::vector<Entry> entries;
  for (size_t p = 0; p + 8 < blob.size();) {
    Entry e;
    std::memcpy(&e.off, &blob[p], 4);
    std::memcpy(&e.len, &blob[p + 4], 4);
    e.pos = p + 8;
    if (e.len > blob.size() - e.pos || Oob(e.off, e.len, true) != Status::kOk)
      return Fail(Status::kCorrupt, "recovery entry at " + std::to_string(head + kRecordHeaderSize + p) + " is out of range");
    entries.push_back(e);
    p = e.pos + e.len;
  }
  for (const Entry& e : entries)
    if ((s = Write(e.off, &blob[e.pos], e.len)) != Status::kOk) return s;
  if ((s = Sync(0, map_size_)) != Status::kOk) return s;
  // Our commits that moved the area restore the old head, whose area holds no live magic: keep it.
  uint32_t restored = 0;
  if ((s = ReadOff(kRecoveryHeadOfs, &restored)) != Status::kOk) return s;
  if (restored == head && rec.key_len <= head && (s = WriteOff(kRecoveryHeadOfs, 0)) != Status::kOk) return s;
  if ((s = WriteOff(head + offsetof(Record, magic), kRecoveryInvalidMagic)) != Status::kOk) return s;
  if ((s = Sync(0, rec.key_len)) != Status::kOk) return s;
  return FreeTail(rec.key_len);
}

// After a rollback nothing but the recovery area reaches past the old end of file (the area
// does when the commit grew it in place), but a commit that grew the file may have written
// records (and an abandoned area) there. libtdb leaves them, and tdb_check then fails on the
// file; we hand that space to the free list instead. The free record is written before the
// one-word link, so a crash in between leaves only unreachable space.
Status Store::FreeTail(uint32_t old_eof) {
  Oob(map_size_, 1, true);  // the tail ends where the file does, not where our map did
  uint64_t from = old_eof;
  uint32_t head = 0;
  Status s = ReadOff(kRecoveryHeadOfs, &head);
  if (s != Status::kOk) return s;
  Record area{};
  if (head != 0 && uint64_t{head} + kRecordHeaderSize <= map_size_ && Read(head, &area, sizeof(area)) == Status::kOk &&
      (area.magic == kRecoveryMagic || area.magic == kRecoveryInvalidMagic))
    from = std::max<uint64_t>(from, uint64_t{head} + kRecordHeaderSize + area.rec_len);
  if (from < DataStart(hash_size_) || from % 4 != 0 || from >= map_size_) return Status::kOk;
  const uint32_t start = static_cast<uint32_t>(from);
  const uint32_t length = map_size_ - start;
  if (length % 4 != 0 || length < kRecordHeaderSize + 4) return Status::kOk;
  Record rec{};
  rec.rec_len = length - kRecordHeaderSize;
  rec.magic = kFreeMagic;
  s = ReadOff(kFreelistTop, &rec.next);
  if (s == Status::kOk) s = WriteRec(start, rec);
  if (s == Status::kOk) s = WriteTailer(start, rec);
  if (s == Status::kOk) s = Sync(start, length);
  if (s == Status::kOk) s = WriteOff(kFreelistTop, start);
  if (s == Status::kOk) s = Sync(0, DataStart(hash_size_));
  return s;
}

Status Store::ChainLock(Span key, bool write, bool wait) {
  return LockList(static_cast<int>(Bucket(HashOf(key))), write ? F_WRLCK : F_RDLCK, wait);
}

Status Store::ChainUnlock(Span key, bool write) {
  return UnlockList(static_cast<int>(Bucket(HashOf(key))), write ? F_WRLCK : F_RDLCK);
}

// Like libtdb, marking bypasses the all-record and recovery checks: the helper that really
// holds the chain lock did them.
Status Store::ChainLockMark(Span key) {
  return NestLock(ListLockOffset(static_cast<int>(Bucket(HashOf(key)))), F_WRLCK, false, true);
}

Status Store::ChainUnlockMark(Span key) {
  return NestUnlock(ListLockOffset(static_cast<int>(Bucket(HashOf(key)))), true);
}

Status Store::LockAll(bool write, bool wait) { return AllRecordLock(write ? F_WRLCK : F_RDLCK, wait, false); }
Status Store::UnlockAll(bool write) { return AllRecordUnlock(write ? F_WRLCK : F_RDLCK); }

}  // namespace ctdb::tdb
