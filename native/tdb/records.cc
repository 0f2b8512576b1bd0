// Hash chains, the free list and the record operations on top of them.
#include <algorithm>
#include <cstring>

#include "tdb/store.h"
#include "tdb/store_internal.h"

namespace ctdb::tdb {

namespace {

// Bounds a walk along `next` pointers: a chain can hold at most one record per 24 bytes,
// so a longer walk means the pointers loop.
class WalkGuard {
 public:
  explicit WalkGuard(uint32_t map_size) : limit_(map_size / kRecordHeaderSize + 1) {}
  bool Step() { return ++steps_ <= limit_; }

 private:
  uint64_t steps_ = 0;
  uint64_t limit_;
};

}  // namespace

Status Store::FindInChain(Span key, uint32_t hash, Record* rec, uint32_t* rec_off, ChainPosition* position) {
  uint32_t link = HashTop(Bucket(hash));
  bool dead_before = false;
  uint32_t off = 0;
  Status s = ReadOff(link, &off);
  if (s != Status::kOk) return s;
  WalkGuard guard(map_size_);
  std::string scratch;
  while (off != 0) {
    if (!guard.Step()) return Fail(Status::kCorrupt, "loop in hash chain " + std::to_string(Bucket(hash)));
    if ((s = ReadRec(off, rec)) != Status::kOk) return s;
    if (rec->magic == kUsedMagic && rec->full_hash == hash && rec->key_len == key.size) {
      const uint32_t key_off = off + kRecordHeaderSize;
      bool equal;
      if (!txn_) {
        equal = key.size == 0 || std::memcmp(map_ + key_off, key.data, key.size) == 0;
      } else {
        scratch.resize(key.size);
        if ((s = Read(key_off, scratch.data(), rec->key_len)) != Status::kOk) return s;
        equal = key.size == 0 || std::memcmp(scratch.data(), key.data, key.size) == 0;
      }
      if (equal) {
        *rec_off = off;
        if (position != nullptr) *position = {link, dead_before};
        return Status::kOk;
      }
    }
    dead_before |= rec->magic == kDeadMagic;
    link = off;  // `next` is a record's first word
    off = rec->next;
  }
  return Status::kNoExist;
}

Status Store::Parse(Span key, ValueFn fn, void* context) {
  const uint32_t hash = HashOf(key);
  const int list = static_cast<int>(Bucket(hash));
  Status s = LockList(list, F_RDLCK, true);
  if (s != Status::kOk) return s;
  Record rec;
  uint32_t off = 0;
  s = FindInChain(key, hash, &rec, &off);
  if (s == Status::kOk && fn != nullptr) {
    const uint32_t data_off = off + kRecordHeaderSize + rec.key_len;
    if (const uint8_t* p = Direct(data_off, rec.data_len)) {
      fn(context, Span{p, rec.data_len});
    } else {
      std::string copy(rec.data_len, '\0');  // inside a transaction: the value may span dirty blocks
      if ((s = Read(data_off, copy.data(), rec.data_len)) == Status::kOk)
        fn(context, Span{reinterpret_cast<const uint8_t*>(copy.data()), copy.size()});
    }
  }
  UnlockList(list, F_RDLCK);
  return s;
}

Status Store::Put(Span key, Span data, StoreMode mode) {
  if (read_only_ || traverse_read_ > 0) return Fail(Status::kReadOnly, "store in a read-only open or read traverse");
  if (uint64_t{key.size} + data.size > UINT32_MAX - 2 * kRecordHeaderSize) return Fail(Status::kOom, "record too large");
  const uint32_t hash = HashOf(key);
  const int list = static_cast<int>(Bucket(hash));
  Status s = LockList(list, F_WRLCK, true);
  if (s != Status::kOk) return s;
  s = PutLocked(key, data, mode, hash);
  UnlockList(list, F_WRLCK);
  return s;
}

Status Store::PutLocked(Span key, Span data, StoreMode mode, uint32_t hash) {
  Record rec;
  uint32_t off = 0;
  Status s = FindInChain(key, hash, &rec, &off);
  if (s != Status::kOk && s != Status::kNoExist) return s;
  const bool exists = s == Status::kOk;
  if (mode == StoreMode::kInsert && exists) return Status::kExists;
  if (mode == StoreMode::kModify && !exists) return Status::kNoExist;
  if (exists) {
    const uint32_t data_off = off + kRecordHeaderSize + rec.key_len;
    // Storing what is there writes nothing, as in libtdb: inside a transaction that also keeps
    // the page out of the commit and out of the recovery area.
    if (rec.data_len == data.size && Holds(data_off, data)) {
      BumpSeqnum();
      return Status::kOk;
    }
    // Rewrite in place when key, data and tailer still fit.
    if (uint64_t{rec.rec_len} >= uint64_t{key.size} + data.size + 4) {
      if ((s = Write(data_off, data.data, static_cast<uint32_t>(data.size))) != Status::kOk) return s;
      if (rec.data_len != data.size) {
        rec.data_len = static_cast<uint32_t>(data.size);
        if ((s = WriteRec(off, rec)) != Status::kOk) return s;
      }
      BumpSeqnum();
      return Status::kOk;
    }
    // Freeing first reduces fragmentation and lets the new record reuse the space.
    if ((s = DeleteLocked(key, hash)) != Status::kOk) return s;
  }
  const uint32_t length = static_cast<uint32_t>(key.size + data.size);
  uint32_t new_off = 0;
  if ((s = Allocate(length, &rec, &new_off)) != Status::kOk) return s;
  if ((s = ReadOff(HashTop(Bucket(hash)), &rec.next)) != Status::kOk) return s;
  rec.key_len = static_cast<uint32_t>(key.size);
  rec.data_len = static_cast<uint32_t>(data.size);
  rec.full_hash = hash;
  rec.magic = kUsedMagic;
  // Fully written before it is linked at the chain head: readers never see a partial record.
  if ((s = WriteRec(new_off, rec)) != Status::kOk) return s;
  if ((s = Write(new_off + kRecordHeaderSize, key.data, rec.key_len)) != Status::kOk) return s;
  if ((s = Write(new_off + kRecordHeaderSize + rec.key_len, data.data, rec.data_len)) != Status::kOk) return s;
  if ((s = WriteOff(HashTop(Bucket(hash)), new_off)) != Status::kOk) return s;
  BumpSeqnum();
  return Status::kOk;
}

bool Store::Holds(uint32_t off, Span data) {
  if (data.size == 0) return true;
  if (const uint8_t* p = Direct(off, static_cast<uint32_t>(data.size))) return std::memcmp(p, data.data, data.size) == 0;
  uint8_t chunk[512];
  for (size_t done = 0; done < data.size;) {
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(sizeof(chunk), data.size - done));
    if (Read(static_cast<uint32_t>(off + done), chunk, n) != Status::kOk || std::memcmp(chunk, data.data + done, n) != 0) return false;
    done += n;
  }
  return true;
}

Status Store::Delete(Span key) {
  if (read_only_ || traverse_read_ > 0) return Fail(Status::kReadOnly, "delete in a read-only open or read traverse");
  const uint32_t hash = HashOf(key);
  const int list = static_cast<int>(Bucket(hash));
  Status s = LockList(list, F_WRLCK, true);
  if (s != Status::kOk) return s;
  s = DeleteLocked(key, hash);
  UnlockList(list, F_WRLCK);
  return s;
}

Status Store::DeleteLocked(Span key, uint32_t hash) {
  Record rec;
  uint32_t off = 0;
  ChainPosition position;
  Status s = FindInChain(key, hash, &rec, &off, &position);
  if (s != Status::kOk) return s;
  rec.magic = kDeadMagic;
  if ((s = WriteRec(off, rec)) != Status::kOk) return s;
  BumpSeqnum();
  // With only live records before it, trimming from the head would just walk past them again.
  return TrimDead(hash, position.dead_before ? HashTop(Bucket(hash)) : position.link);
}

// Unlinks and frees the dead records of a chain from the record `from_link` points at on,
// except those a traversal sits on.
Status Store::TrimDead(uint32_t hash, uint32_t from_link) {
  uint32_t last = from_link;
  uint32_t off = 0;
  Status s = ReadOff(last, &off);
  if (s != Status::kOk) return s;
  bool freelist_locked = false;
  WalkGuard guard(map_size_);
  while (off != 0 && s == Status::kOk) {
    if (!guard.Step()) {
      s = Fail(Status::kCorrupt, "loop in hash chain " + std::to_string(Bucket(hash)));
      break;
    }
    Record rec;
    if ((s = ReadRec(off, &rec)) != Status::kOk) break;
    const uint32_t next = rec.next;
    if (rec.magic == kDeadMagic && RecordFreeable(off)) {
      if (!freelist_locked) {
        if ((s = LockList(-1, F_WRLCK, true)) != Status::kOk) break;
        freelist_locked = true;
      }
      if ((s = WriteOff(last, next)) != Status::kOk) break;
      s = FreeBlock(off, rec);
    } else {
      last = off;
    }
    off = next;
  }
  if (freelist_locked) UnlockList(-1, F_WRLCK);
  return s;
}

// If the block just left of `off` is free, grow it over this one.
Status Store::MergeWithLeft(uint32_t off, const Record& rec, uint32_t* left_off, Record* left_rec, bool* merged) {
  *merged = false;
  const uint32_t data_start = DataStart(hash_size_);
  if (off < data_start + kRecordHeaderSize + 4) return Status::kOk;
  uint32_t left_size = 0;
  Status s = ReadOff(off - 4, &left_size);
  if (s != Status::kOk) return s;
  if (left_size == 0 || left_size == kPadU32 || left_size > off - data_start || left_size < kRecordHeaderSize + 4)
    return Status::kOk;
  const uint32_t left = off - left_size;
  Record l;
  if ((s = Read(left, &l, sizeof(l))) != Status::kOk) return s;
  // Trust the tailer only if the free block really ends where this one starts.
  if (l.magic != kFreeMagic || uint64_t{left} + kRecordHeaderSize + l.rec_len != off) return Status::kOk;
  l.rec_len += kRecordHeaderSize + rec.rec_len;
  if ((s = WriteRec(left, l)) != Status::kOk || (s = WriteTailer(left, l)) != Status::kOk) return s;
  *left_off = left;
  *left_rec = l;
  *merged = true;
  return Status::kOk;
}

Status Store::FreeBlock(uint32_t off, Record rec) {
  if (txn_) txn_->fresh_block = 0;
  Status s = WriteTailer(off, rec);
  if (s != Status::kOk) return s;
  uint32_t left_off;
  Record left_rec;
  bool merged = false;
  if ((s = MergeWithLeft(off, rec, &left_off, &left_rec, &merged)) != Status::kOk || merged) return s;
  rec.magic = kFreeMagic;
  if ((s = ReadOff(kFreelistTop, &rec.next)) != Status::kOk) return s;
  if ((s = WriteRec(off, rec)) != Status::kOk) return s;
  return WriteOff(kFreelistTop, off);
}

Status Store::Allocate(uint32_t length, Record* rec, uint32_t* off) {
  Status s = LockList(-1, F_WRLCK, true);
  if (s != Status::kOk) return s;
  s = AllocateFromFreelist(length, rec, off);
  UnlockList(-1, F_WRLCK);
  return s;
}

// Best fit from the free list (merging neighbours on the way), growing the file if needed.
Status Store::AllocateFromFreelist(uint32_t length, Record* rec, uint32_t* off) {
  uint64_t want = uint64_t(length * 1.25) + 4;  // over-allocate against fragmentation, plus tailer
  want = (want + 3) & ~uint64_t{3};
  if (want > UINT32_MAX - kRecordHeaderSize) return Fail(Status::kOom, "record too large");
  const uint32_t need = static_cast<uint32_t>(want);
  Status s;
  if (FromFreshBlock(need, rec, off, &s)) return s;
  for (int attempt = 0; attempt < 4; attempt++) {
    bool merged_candidate;
    uint32_t longest = 0;
    do {
      merged_candidate = false;
      longest = 0;
      uint32_t last = kFreelistTop, ptr = 0;
      if ((s = ReadOff(kFreelistTop, &ptr)) != Status::kOk) return s;
      uint32_t best = 0, best_last = 0, best_len = 0;
      double multiplier = 1.0;
      WalkGuard guard(map_size_);
      while (ptr != 0) {
        if (!guard.Step()) return Fail(Status::kCorrupt, "loop in the free list");
        if ((s = ReadFreeRec(ptr, rec)) != Status::kOk) return s;
        uint32_t left_off;
        Record left_rec;
        bool merged = false;
        if ((s = MergeWithLeft(ptr, *rec, &left_off, &left_rec, &merged)) != Status::kOk) return s;
        if (merged) {
          // This block now belongs to its left neighbour: unlink it and move on.
          if (txn_) txn_->fresh_block = 0;
          if ((s = WriteOff(last, rec->next)) != Status::kOk) return s;
          ptr = rec->next;
          if (best == left_off) best_len = left_rec.rec_len;
          if (left_rec.rec_len > need) merged_candidate = true;
          longest = std::max(longest, left_rec.rec_len);
          continue;
        }
        longest = std::max(longest, rec->rec_len);
        if (rec->rec_len >= need && (best == 0 || rec->rec_len < best_len)) {
          best = ptr;
          best_last = last;
          best_len = rec->rec_len;
        }
        last = ptr;
        ptr = rec->next;
        if (best_len > 0 && best_len < need * multiplier) break;
        multiplier *= 1.05;
      }
      if (best != 0) {
        if ((s = ReadFreeRec(best, rec)) != Status::kOk) return s;
        return CarveFree(best, best_last, need, rec, off);
      }
    } while (merged_candidate);
    const uint32_t grown_at = map_size_;
    if ((s = Expand(need + kRecordHeaderSize)) != Status::kOk) return s;
    if (txn_) {
      // The walk just made saw every entry, none as long as `need`: see Transaction::fresh_block.
      uint32_t head = 0;
      if ((s = ReadOff(kFreelistTop, &head)) != Status::kOk) return s;
      txn_->fresh_block = head == grown_at ? grown_at : 0;
      txn_->fresh_over = longest;
    }
  }
  return Fail(Status::kOom, "no free space after growing the file");
}

// Inside a transaction no other process changes the free list, and until something is freed
// the walk would pass over entries all shorter than `need` to come back to the growth's block:
// storing many new records into a file that grows is then one read of the list head each.
bool Store::FromFreshBlock(uint32_t need, Record* rec, uint32_t* off, Status* s) {
  if (!txn_ || txn_->fresh_block == 0 || need <= txn_->fresh_over) return false;
  uint32_t head = 0;
  if ((*s = ReadOff(kFreelistTop, &head)) != Status::kOk) return true;
  if (head != txn_->fresh_block) return false;
  if ((*s = ReadFreeRec(head, rec)) != Status::kOk) return true;
  if (rec->rec_len < need) return false;
  *s = CarveFree(head, kFreelistTop, need, rec, off);
  return true;
}

// Takes `need` bytes of the free block at `block` (linked from `link`; *rec holds its header).
Status Store::CarveFree(uint32_t block, uint32_t link, uint32_t need, Record* rec, uint32_t* off) {
  Status s;
  if (rec->rec_len < need + kRecordHeaderSize + 4 + 8) {
    // Too small to split: take it whole.
    if ((s = WriteOff(link, rec->next)) != Status::kOk) return s;
    rec->magic = kUsedMagic;
    if ((s = WriteRec(block, *rec)) != Status::kOk) return s;
    *off = block;
    return Status::kOk;
  }
  // Cut the new record from the end, so a later left-merge can undo the split.
  rec->rec_len -= need + kRecordHeaderSize;
  if ((s = WriteRec(block, *rec)) != Status::kOk || (s = WriteTailer(block, *rec)) != Status::kOk) return s;
  const uint32_t new_off = block + kRecordHeaderSize + rec->rec_len;
  *rec = Record{0, need, 0, 0, 0, kUsedMagic};
  if ((s = WriteRec(new_off, *rec)) != Status::kOk || (s = WriteTailer(new_off, *rec)) != Status::kOk) return s;
  *off = new_off;
  return Status::kOk;
}

Status Store::Expand(uint32_t size) {
  Status s = LockList(-1, F_WRLCK, true);
  if (s != Status::kOk) return s;
  if (!txn_) Oob(map_size_, 1, true);  // learn about growth by other processes first
  const uint32_t add = ExpandAdjust(map_size_, size, page_size_);
  const uint64_t new_size = uint64_t{map_size_} + add;
  if (new_size > UINT32_MAX || add < kRecordHeaderSize + 4) {
    UnlockList(-1, F_WRLCK);
    return Fail(Status::kOom, "database would exceed 4 GiB");
  }
  const uint32_t off = map_size_;
  if (txn_) {
    s = TxnExpandFile(map_size_, add);
  } else if ((s = ExpandFile(map_size_, add)) == Status::kOk) {
    map_size_ = static_cast<uint32_t>(new_size);
    s = Remap();
  }
  if (s == Status::kOk) s = FreeBlock(off, Record{0, add - kRecordHeaderSize, 0, 0, 0, 0});
  UnlockList(-1, F_WRLCK);
  return s;
}

// Finds the next live record after *off (or the first of chain *list when *off is 0) and
// returns with that chain locked and a read lock on the record. Unlike libtdb it never
// waits for a chain while holding a record lock (that deadlocks against an all-record
// locker): it drops the record lock, waits, and re-walks the chain skipping `seen`.
Status Store::TraverseNext(int type, uint32_t* list, uint32_t* off, Record* rec, std::vector<uint32_t>* seen) {
  for (; *list < hash_size_; (*list)++, seen->clear()) {
    if (*off == 0 && *list != 0) {
      // Unlocked peek past empty chains; chain 0 is always locked once (memory barrier).
      uint32_t head = 0;
      while (*list < hash_size_ && ReadOff(HashTop(*list), &head) == Status::kOk && head == 0) (*list)++;
      if (*list == hash_size_) break;
    }
    Status s;
    bool rewalk = false;
    if (*off != 0) {
      s = LockList(static_cast<int>(*list), type, false);
      if (s == Status::kNoLock) {
        RecordReadUnlock(*off);
        traverse_record_locks_.pop_back();
        rewalk = true;
        s = LockList(static_cast<int>(*list), type, true);
      }
    } else {
      s = LockList(static_cast<int>(*list), type, true);
    }
    if (s != Status::kOk) {
      if (*off != 0 && !rewalk) {
        RecordReadUnlock(*off);
        traverse_record_locks_.pop_back();
      }
      *off = 0;
      return s;
    }
    uint32_t ptr = 0;
    if (*off != 0 && !rewalk) {
      RecordReadUnlock(*off);
      traverse_record_locks_.pop_back();
      if ((s = ReadRec(*off, rec)) == Status::kOk) ptr = rec->next;
    } else {
      s = ReadOff(HashTop(*list), &ptr);
    }
    *off = 0;
    WalkGuard guard(map_size_);
    while (s == Status::kOk && ptr != 0) {
      if (!guard.Step()) {
        s = Fail(Status::kCorrupt, "loop in hash chain " + std::to_string(*list));
        break;
      }
      if ((s = ReadRec(ptr, rec)) != Status::kOk) break;
      if (rec->next == ptr) {
        s = Fail(Status::kCorrupt, "record at " + std::to_string(ptr) + " points to itself");
        break;
      }
      if (rec->magic == kUsedMagic && std::find(seen->begin(), seen->end(), ptr) == seen->end()) {
        if ((s = RecordReadLock(ptr)) != Status::kOk) break;
        traverse_record_locks_.push_back(ptr);
        seen->push_back(ptr);
        *off = ptr;
        return Status::kOk;
      }
      ptr = rec->next;
    }
    UnlockList(static_cast<int>(*list), type);
    if (s != Status::kOk) return s;
  }
  *off = 0;
  return Status::kOk;
}

Status Store::Traverse(bool write, const TraverseFn& fn, uint64_t* count) {
  *count = 0;
  if (write && (read_only_ || traverse_read_ > 0)) write = false;
  const int type = write ? F_WRLCK : F_RDLCK;
  Status s;
  if (write) {
    // A write traverse excludes transactions, like libtdb; non-blocking under lockall.
    if ((s = NestLock(kTransactionLock, F_WRLCK, allrecord_.count == 0)) != Status::kOk) return s;
  } else {
    traverse_read_++;
  }
  const size_t depth = traverse_record_locks_.size();
  uint32_t list = 0, off = 0;
  Record rec;
  std::vector<uint32_t> seen;
  std::string buf;
  for (;;) {
    if ((s = TraverseNext(type, &list, &off, &rec, &seen)) != Status::kOk || off == 0) break;
    buf.resize(uint64_t{rec.key_len} + rec.data_len);
    s = Read(off + kRecordHeaderSize, buf.data(), static_cast<uint32_t>(buf.size()));
    UnlockList(static_cast<int>(list), type);
    if (s != Status::kOk) break;
    (*count)++;
    const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
    if (!fn(Span{p, rec.key_len}, Span{p + rec.key_len, rec.data_len})) break;
  }
  // Drop the record lock we may still sit on (stop requested, or an error).
  while (traverse_record_locks_.size() > depth) {
    RecordReadUnlock(traverse_record_locks_.back());
    traverse_record_locks_.pop_back();
  }
  if (write) NestUnlock(kTransactionLock);
  else traverse_read_--;
  return s;
}

// Appends the live records of chain `list` (locked by the caller) to *records / *bytes.
Status Store::CopyChain(uint32_t list, std::vector<CopiedRecord>* records, std::string* bytes) {
  uint32_t ptr = 0;
  Status s = ReadOff(HashTop(list), &ptr);
  WalkGuard guard(map_size_);
  Record rec;
  while (s == Status::kOk && ptr != 0) {
    if (!guard.Step()) return Fail(Status::kCorrupt, "loop in hash chain " + std::to_string(list));
    if ((s = ReadRec(ptr, &rec)) != Status::kOk) return s;
    if (rec.magic == kUsedMagic) {
      const size_t pos = bytes->size();
      const uint32_t len = rec.key_len + rec.data_len;  // ReadRec checked: <= rec_len
      bytes->resize(pos + len);
      if ((s = Read(ptr + kRecordHeaderSize, bytes->data() + pos, len)) != Status::kOk) return s;
      records->push_back({pos, rec.key_len, rec.data_len});
    }
    ptr = rec.next;
  }
  return s;
}

Status Store::TraverseChains(const TraverseFn& fn, uint64_t* count, uint32_t first, size_t slice_bytes, uint32_t* next) {
  *count = 0;
  std::vector<CopiedRecord> records;
  std::string bytes;
  size_t copied = 0;
  uint32_t list = first;
  while (list < hash_size_ && copied < slice_bytes) {
    const uint32_t chain = list++;
    // Unlocked peek past empty chains, as libtdb does; chain 0 is always locked (memory barrier).
    uint32_t head = 0;
    if (chain != 0) {
      Status s = ReadOff(HashTop(chain), &head);
      if (s != Status::kOk) return s;
      if (head == 0) continue;
    }
    Status s = LockList(static_cast<int>(chain), F_RDLCK, true);
    if (s != Status::kOk) return s;
    records.clear();
    bytes.clear();
    s = CopyChain(chain, &records, &bytes);
    UnlockList(static_cast<int>(chain), F_RDLCK);
    if (s != Status::kOk) return s;
    copied += bytes.size();
    const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
    for (const CopiedRecord& r : records) {
      (*count)++;
      if (fn(Span{base + r.pos, r.key_len}, Span{base + r.pos + r.key_len, r.data_len})) continue;
      if (next != nullptr) *next = hash_size_;  // stopped: nothing to resume
      return Status::kOk;
    }
  }
  if (next != nullptr) *next = list;
  return Status::kOk;
}

}  // namespace ctdb::tdb
