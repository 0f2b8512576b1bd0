// Transactions: page-sized copy-on-write blocks, committed through libtdb's recovery area so
// that a commit killed half-way is rolled back by the next opener (libtdb or us).
#include <sys/uio.h>
#include <utime.h>

#include <climits>
#include <cstring>

#include "tdb/store.h"
#include "tdb/store_internal.h"

namespace ctdb::tdb {

Status Store::TransactionStart(bool wait) {
  if (read_only_ || traverse_read_ > 0) return Fail(Status::kReadOnly, "transaction on a read-only open");
  if (txn_) {
    if (flags_ & kDisallowNesting) return Fail(Status::kNesting, "transaction already open");
    txn_->nesting++;
    return Status::kOk;
  }
  if (HaveExtraLocks(false)) return Fail(Status::kLock, "transaction start while holding locks");
  if (!traverse_record_locks_.empty()) return Fail(Status::kLock, "transaction start inside a traverse");
  Status s = NestLock(kTransactionLock, F_WRLCK, wait);
  if (s != Status::kOk) return s;
  // Readers may go on; writers wait. Upgraded to a write lock at commit.
  if ((s = AllRecordLock(F_RDLCK, true, true)) != Status::kOk) {
    NestUnlock(kTransactionLock);
    return s;
  }
  Oob(map_size_, 1, true);
  auto txn = std::make_unique<Transaction>();
  txn->old_map_size = map_size_;
  txn->blocks.resize((map_size_ + page_size_ - 1) / page_size_);
  txn_ = std::move(txn);
  return Status::kOk;
}

uint8_t* Store::TxnBlock(uint32_t index) {
  if (index >= txn_->blocks.size()) txn_->blocks.resize(index + 1);
  auto& block = txn_->blocks[index];
  if (!block) {
    block.reset(new uint8_t[page_size_]());
    const uint64_t start = uint64_t{index} * page_size_;
    const uint64_t real_end = std::min<uint64_t>(txn_->old_map_size, mapped_);
    if (start < real_end) std::memcpy(block.get(), map_ + start, std::min<uint64_t>(page_size_, real_end - start));
  }
  return block.get();
}

Status Store::TxnRead(uint32_t off, void* buf, uint32_t len) {
  if (uint64_t{off} + len > map_size_)
    return Fail(Status::kCorrupt, "offset " + std::to_string(off) + "+" + std::to_string(len) + " beyond end of file (" +
                                      std::to_string(map_size_) + ")");
  auto* out = static_cast<uint8_t*>(buf);
  while (len > 0) {
    const uint32_t index = off / page_size_, in_block = off % page_size_;
    const uint32_t n = std::min(len, page_size_ - in_block);
    if (index < txn_->blocks.size() && txn_->blocks[index]) {
      std::memcpy(out, txn_->blocks[index].get() + in_block, n);
    } else if (uint64_t{off} + n <= mapped_) {
      std::memcpy(out, map_ + off, n);
    } else {
      std::memset(out, 0, n);
    }
    off += n;
    out += n;
    len -= n;
  }
  return Status::kOk;
}

Status Store::TxnWrite(uint32_t off, const void* buf, uint32_t len) {
  if (uint64_t{off} + len > map_size_) {
    txn_->failed = true;
    return Fail(Status::kIo, "transaction write beyond end of file at " + std::to_string(off));
  }
  const auto* in = static_cast<const uint8_t*>(buf);
  while (len > 0) {
    const uint32_t index = off / page_size_, in_block = off % page_size_;
    const uint32_t n = std::min(len, page_size_ - in_block);
    std::memcpy(TxnBlock(index) + in_block, in, n);
    off += n;
    in += n;
    len -= n;
  }
  return Status::kOk;
}

// Growth inside a transaction is virtual: zero-filled blocks past the old end.
Status Store::TxnExpandFile(uint32_t size, uint32_t addition) {
  map_size_ = size + addition;
  for (uint32_t off = size; off < map_size_;) {
    const uint32_t in_block = off % page_size_;
    const uint32_t n = std::min(map_size_ - off, page_size_ - in_block);
    std::memset(TxnBlock(off / page_size_) + in_block, 0, n);
    off += n;
  }
  txn_->expanded = true;
  return Status::kOk;
}

// Commit writes of a page or more go through the file descriptor: into pages the file has just
// grown by, pwrite lands without the zero-fill that a first touch through the mapping costs
// (the mapping shares the page cache, so it sees the bytes all the same).
Status Store::WriteThroughFile(uint32_t off, std::vector<iovec>& pieces) {
  size_t first = 0;
  off_t at = off_t{hdr_ofs_} + off;
  while (first < pieces.size()) {
    const int count = static_cast<int>(std::min<size_t>(pieces.size() - first, IOV_MAX));
    const ssize_t n = pwritev(fd_, &pieces[first], count, at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FailErrno(Status::kIo, "commit write at " + std::to_string(at - off_t{hdr_ofs_}));
    }
    at += n;
    for (size_t done = static_cast<size_t>(n); done > 0 && first < pieces.size();) {
      const size_t step = std::min(done, pieces[first].iov_len);
      pieces[first].iov_base = static_cast<uint8_t*>(pieces[first].iov_base) + step;
      pieces[first].iov_len -= step;
      done -= step;
      if (pieces[first].iov_len == 0) first++;
    }
  }
  return Status::kOk;
}

// Writes to the real file during commit, keeping any transaction block over the same bytes
// in step (so the later block writes do not undo it).
Status Store::RealWrite(uint32_t off, const void* buf, uint32_t len) {
  if (uint64_t{off} + len > mapped_) return Fail(Status::kIo, "commit write beyond the mapped file at " + std::to_string(off));
  if (len < page_size_) {
    std::memcpy(map_ + off, buf, len);
  } else {
    std::vector<iovec> whole{{const_cast<void*>(buf), len}};
    if (Status s = WriteThroughFile(off, whole); s != Status::kOk) return s;
  }
  const auto* in = static_cast<const uint8_t*>(buf);
  for (uint32_t done = 0; done < len;) {
    const uint32_t pos = off + done, index = pos / page_size_, in_block = pos % page_size_;
    const uint32_t n = std::min(len - done, page_size_ - in_block);
    if (index < txn_->blocks.size() && txn_->blocks[index]) std::memcpy(txn_->blocks[index].get() + in_block, in + done, n);
    done += n;
  }
  return Status::kOk;
}

Status Store::SetupRecovery(uint32_t* magic_offset) {
  const uint32_t old_eof = txn_->old_map_size;
  auto recovery_size = [&]() {
    uint64_t size = 4;  // tailer
    for (uint32_t i = 0; i < txn_->blocks.size() && uint64_t{i} * page_size_ < old_eof; i++)
      if (txn_->blocks[i]) size += 8 + std::min<uint64_t>(page_size_, old_eof - uint64_t{i} * page_size_);
    return size;
  };
  uint32_t head = 0;
  Status s = ReadOff(kRecoveryHeadOfs, &head);
  if (s != Status::kOk) return s;
  Record rec{};
  if (head != 0 && uint64_t{head} + kRecordHeaderSize <= mapped_) std::memcpy(&rec, map_ + head, sizeof(rec));
  // A damaged recovery record (crash while writing it) is simply abandoned.
  if (head == 0 || (rec.magic != kRecoveryMagic && rec.magic != kRecoveryInvalidMagic) ||
      uint64_t{head} + kRecordHeaderSize + rec.rec_len > mapped_) {
    head = 0;
    rec = Record{};
  }
  uint64_t size = recovery_size();
  uint32_t capacity;
  const uint32_t current_head = head;
  uint32_t old_area = 0;
  if (head != 0 && size <= rec.rec_len) {
    capacity = rec.rec_len;
  } else {
    if (head == 0 || uint64_t{head} + kRecordHeaderSize + rec.rec_len != map_size_) {
      // The new area goes at the end; the old one returns to the free list (in the transaction).
      if (head != 0) {
        // Until the commit lands, the old area must stay something a checker accepts: the
        // recovery area while the header points at it, zeroed (dead) space once it does not.
        // Its body is zeroed now, its header together with the move below.
        std::vector<uint8_t> zeros(rec.rec_len);
        if ((s = RealWrite(head + kRecordHeaderSize, zeros.data(), rec.rec_len)) != Status::kOk) return s;
        if ((s = Sync(head, kRecordHeaderSize + rec.rec_len)) != Status::kOk) return s;
        old_area = head;
        if ((s = FreeBlock(head, rec)) != Status::kOk) return s;
        size = recovery_size();
      }
      head = map_size_;
    }
    if (size > UINT32_MAX / 2) return Fail(Status::kOom, "transaction too large for a recovery area");
    const uint64_t add = ExpandAdjust(map_size_, static_cast<uint32_t>(size), page_size_);
    const uint64_t new_end = uint64_t{head} + add;
    if (add < size + kRecordHeaderSize || new_end > UINT32_MAX) return Fail(Status::kOom, "database would exceed 4 GiB");
    capacity = static_cast<uint32_t>(add - kRecordHeaderSize);
    if ((s = ExpandFile(mapped_, static_cast<uint32_t>(new_end - mapped_))) != Status::kOk) return s;
    map_size_ = static_cast<uint32_t>(new_end);
    if ((s = Remap()) != Status::kOk) return s;
    txn_->old_map_size = map_size_;
  }
  // [header with magic 0][offset, length, old bytes]...[tailer]
  std::vector<uint8_t> blob(kRecordHeaderSize + size);
  const Record header{0, capacity, old_eof, static_cast<uint32_t>(size), 0, kRecoveryInvalidMagic};
  std::memcpy(blob.data(), &header, sizeof(header));
  size_t p = kRecordHeaderSize;
  for (uint32_t i = 0; i < txn_->blocks.size() && uint64_t{i} * page_size_ < old_eof; i++) {
    if (!txn_->blocks[i]) continue;
    const uint32_t off = i * page_size_;
    const uint32_t len = std::min<uint32_t>(page_size_, old_eof - off);
    std::memcpy(&blob[p], &off, 4);
    std::memcpy(&blob[p + 4], &len, 4);
    std::memcpy(&blob[p + 8], map_ + off, len);
    p += 8 + len;
  }
  const uint32_t tailer = kRecordHeaderSize + capacity;
  std::memcpy(&blob[p], &tailer, 4);
  // The blob holds the header as it was, so a rollback also moves the head back to the old
  // area (libtdb's recovery drops it instead: the new area lies past the old end of file).
  if (head != current_head) {
    if ((s = RealWrite(kRecoveryHeadOfs, &head, 4)) != Status::kOk) return s;
    // On disk only: the transaction's copy of these bytes holds the area's free-list entry.
    if (old_area != 0) std::memset(map_ + old_area, 0, kRecordHeaderSize);
  }
  if ((s = RealWrite(head, blob.data(), static_cast<uint32_t>(blob.size()))) != Status::kOk) return s;
  if ((s = Sync(head, static_cast<uint32_t>(blob.size()))) != Status::kOk) return s;
  // Only once the old data is on disk does the magic make it a live recovery record.
  *magic_offset = head + offsetof(Record, magic);
  const uint32_t magic = kRecoveryMagic;
  if ((s = RealWrite(*magic_offset, &magic, 4)) != Status::kOk) return s;
  return Sync(*magic_offset, 4);
}

Status Store::TransactionPrepareCommit() {
  if (!txn_) return Fail(Status::kInvalid, "no transaction to prepare");
  if (txn_->prepared) {
    CancelImpl();
    return Fail(Status::kInvalid, "transaction already prepared");
  }
  if (txn_->failed) {
    CancelImpl();
    return Fail(Status::kIo, "transaction failed earlier and was cancelled");
  }
  if (txn_->nesting != 0 || !txn_->HasBlocks()) return Status::kOk;
  Status s = Status::kOk;
  if (HaveExtraLocks(true)) s = Fail(Status::kLock, "commit while still holding chain locks");
  if (s == Status::kOk) s = AllRecordUpgrade();
  if (s == Status::kOk) s = NestLock(kOpenLock, F_WRLCK, true);  // keeps new openers out during commit
  if (s == Status::kOk) s = SetupRecovery(&txn_->magic_offset);
  if (s == Status::kOk) {
    txn_->prepared = true;
    if (map_size_ > mapped_) {
      const uint32_t target = map_size_;
      s = ExpandFile(mapped_, target - mapped_);
      if (s == Status::kOk) s = Remap();
    }
  }
  if (s != Status::kOk) {
    const std::string why = LastError();
    CancelImpl();
    return Fail(s, why);
  }
  return Status::kOk;
}

bool Store::RepackWorthwhile() {
  uint32_t ptr = 0, total = 0, largest = 0;
  if (ReadOff(kFreelistTop, &ptr) != Status::kOk) return false;
  Record rec;
  for (uint64_t steps = 0; ptr != 0 && steps < map_size_ / kRecordHeaderSize; steps++) {
    if (ReadFreeRec(ptr, &rec) != Status::kOk) return false;
    total += rec.rec_len;
    largest = std::max(largest, rec.rec_len);
    ptr = rec.next;
  }
  return total > largest * 2;
}

Status Store::TransactionCommit() {
  if (!txn_) return Fail(Status::kInvalid, "no transaction to commit");
  if (txn_->failed) {
    CancelImpl();
    return Fail(Status::kIo, "transaction failed earlier and was cancelled");
  }
  if (txn_->nesting != 0) {
    txn_->nesting--;
    return Status::kOk;
  }
  if (!txn_->HasBlocks()) return CancelImpl();
  Status s = Status::kOk;
  if (!txn_->prepared && (s = TransactionPrepareCommit()) != Status::kOk) return s;
  // Blocks that follow each other in the file go out in one write.
  std::vector<iovec> run;
  uint64_t run_start = 0, run_end = 0;
  for (uint32_t i = 0; i <= txn_->blocks.size(); i++) {
    const bool last = i == txn_->blocks.size();
    const uint64_t off = uint64_t{i} * page_size_;
    const bool present = !last && txn_->blocks[i] && off < map_size_;
    if (!run.empty() && (!present || off != run_end)) {
      s = WriteThroughFile(static_cast<uint32_t>(run_start), run);
      run.clear();
    }
    if (s == Status::kOk && present) {
      const uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(page_size_, map_size_ - off));
      if (off + len > mapped_) s = Fail(Status::kIo, "commit write beyond the mapped file");
      if (run.empty()) run_start = off;
      run.push_back({txn_->blocks[i].get(), len});
      run_end = off + len;
    }
    if (s != Status::kOk) {
      // Leave the recovery record live: the next locker rolls the half-written commit back.
      txn_->magic_offset = 0;
      const std::string why = LastError();
      CancelImpl();
      return Fail(Status::kIo, why);
    }
  }
  const bool repack = txn_->expanded && !repacking_ && RepackWorthwhile();
  txn_->blocks.clear();
  s = Sync(0, map_size_);
  utime(path_.c_str(), nullptr);  // mmap writes do not update mtime; backups rely on it
  const Status cancel = CancelImpl();
  if (s == Status::kOk) s = cancel;
  if (s == Status::kOk && repack) Repack();  // an optimisation: its failure does not undo the commit
  return s;
}

Status Store::TransactionCancel() {
  if (!txn_) return Fail(Status::kInvalid, "no transaction to cancel");
  return CancelImpl();
}

Status Store::CancelImpl() {
  if (txn_->nesting != 0) {
    txn_->failed = true;
    txn_->nesting--;
    return Status::kOk;
  }
  Status s = Status::kOk;
  txn_->blocks.clear();
  if (txn_->magic_offset != 0) {
    const uint32_t invalid = kRecoveryInvalidMagic;
    s = RealWrite(txn_->magic_offset, &invalid, 4);
    if (s == Status::kOk) s = Sync(txn_->magic_offset, 4);
  }
  map_size_ = mapped_;
  txn_.reset();
  if (allrecord_.count) {
    allrecord_.count = 1;
    AllRecordUnlock(allrecord_.upgradable ? F_RDLCK : allrecord_.type);
  }
  if (FindLock(kOpenLock)) NestUnlock(kOpenLock);
  if (FindLock(kTransactionLock)) NestUnlock(kTransactionLock);
  return s;
}

Status Store::Wipe() {
  if (read_only_) return Fail(Status::kReadOnly, "wipe a read-only database");
  const bool own = !txn_;
  Status s;
  if (own && (s = TransactionStart(true)) != Status::kOk) return s;
  std::vector<uint8_t> zeros(4 * (hash_size_ + 1), 0);
  s = Write(kFreelistTop, zeros.data(), static_cast<uint32_t>(zeros.size()));
  // Keep a valid recovery area where it is; everything else becomes free space.
  uint32_t head = 0;
  Record rec{};
  if (s == Status::kOk) s = ReadOff(kRecoveryHeadOfs, &head);
  if (s == Status::kOk && head != 0 &&
      (Read(head, &rec, sizeof(rec)) != Status::kOk || (rec.magic != kRecoveryMagic && rec.magic != kRecoveryInvalidMagic) ||
       uint64_t{head} + kRecordHeaderSize + rec.rec_len > map_size_)) {
    head = 0;
    s = WriteOff(kRecoveryHeadOfs, 0);
  }
  const uint32_t data_start = DataStart(hash_size_);
  const std::pair<uint32_t, uint32_t> ranges[2] = {
      {data_start, head != 0 ? head : map_size_},
      {head != 0 ? head + kRecordHeaderSize + rec.rec_len : map_size_, map_size_}};
  for (const auto& [from, to] : ranges)
    if (s == Status::kOk && to > from && to - from >= kRecordHeaderSize + 4)
      s = FreeBlock(from, Record{0, to - from - kRecordHeaderSize, 0, 0, 0, 0});
  if (s == Status::kOk) BumpSeqnum();
  if (!own) return s;
  if (s != Status::kOk) {
    CancelImpl();
    return s;
  }
  return TransactionCommit();
}

Status Store::Repack() {
  if (txn_) return Fail(Status::kInvalid, "repack inside a transaction");
  Status s = TransactionStart(true);
  if (s != Status::kOk) return s;
  std::vector<std::pair<std::string, std::string>> records;
  uint64_t count = 0;
  s = Traverse(false, [&](Span key, Span data) {
        records.emplace_back(std::string(reinterpret_cast<const char*>(key.data), key.size),
                             std::string(reinterpret_cast<const char*>(data.data), data.size));
        return true;
      }, &count);
  if (s == Status::kOk) s = Wipe();
  for (const auto& [key, data] : records) {
    if (s != Status::kOk) break;
    s = Put(Span{reinterpret_cast<const uint8_t*>(key.data()), key.size()},
            Span{reinterpret_cast<const uint8_t*>(data.data()), data.size()}, StoreMode::kInsert);
  }
  if (s != Status::kOk) {
    const std::string why = LastError();
    CancelImpl();
    return Fail(s, "repack: " + why);
  }
  repacking_ = true;
  s = TransactionCommit();
  repacking_ = false;
  return s;
}

}  // namespace ctdb::tdb
