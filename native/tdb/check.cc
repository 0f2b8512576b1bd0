// Walks the data area linearly (it must be tiled exactly by records), then every hash chain
// and the free list, and cross-checks that each record is reachable exactly once from the
// right place.
#include "tdb/check.h"

#include <cstring>
#include <unordered_map>

#include "tdb/store_internal.h"

namespace ctdb::tdb {

namespace {

enum class Seen : uint8_t { kUsed, kDead, kFree, kRecovery, kReached };

class Checker {
 public:
  Checker(Store& store, CheckReport* report) : store_(store), report_(report) {}

  bool Run() {
    uint32_t recovery = 0;
    if (store_.ReadBytes(kRecoveryHeadOfs, &recovery, 4) != Status::kOk) return Problem("cannot read header");
    const uint32_t start = DataStart(store_.hash_size()), end = store_.map_size();
    if (end < start) return Problem("file ends inside the hash table");
    if (!Linear(start, end, recovery)) return false;
    for (uint32_t b = 0; b < store_.hash_size(); b++)
      if (!Chain(b)) return false;
    if (!FreeList()) return false;
    for (const auto& [off, kind] : blocks_)
      if (kind == Seen::kUsed || kind == Seen::kDead || kind == Seen::kFree)
        return Problem("record at " + std::to_string(off) + " is not reachable from any chain or the free list");
    report_->ok = true;
    return true;
  }

 private:
  bool Problem(const std::string& what) {
    report_->problem = what;
    return false;
  }

  bool Linear(uint32_t start, uint32_t end, uint32_t recovery) {
    for (uint32_t off = start; off < end;) {
      if (end - off < kRecordHeaderSize) return Filler(off, end) ? true : Problem("partial record at " + std::to_string(off));
      Record rec;
      if (store_.ReadBytes(off, &rec, sizeof(rec)) != Status::kOk) return Problem("cannot read record at " + std::to_string(off));
      const bool is_recovery = off == recovery && (rec.magic == kRecoveryMagic || rec.magic == kRecoveryInvalidMagic);
      if (!is_recovery && rec.magic != kUsedMagic && rec.magic != kDeadMagic && rec.magic != kFreeMagic) {
        // Crash during growth leaves pad bytes; anything else is garbage.
        if (Filler(off, off + 4)) {
          off += 4;
          continue;
        }
        return Problem("bad magic " + Hex(rec.magic) + " at " + std::to_string(off));
      }
      const uint64_t total = uint64_t{kRecordHeaderSize} + rec.rec_len;
      // A recovery area may be empty: a commit points the header at zeroed space first.
      if ((rec.rec_len < 4 && !(is_recovery && rec.rec_len == 0)) || rec.rec_len % 4 != 0 || off + total > end)
        return Problem("record at " + std::to_string(off) + " has bad length " + std::to_string(rec.rec_len));
      if (is_recovery) {
        blocks_[off] = Seen::kRecovery;
        off += static_cast<uint32_t>(total);
        continue;
      }
      uint32_t tailer = 0;
      store_.ReadBytes(static_cast<uint32_t>(off + total - 4), &tailer, 4);
      if (tailer != total) return Problem("bad tailer " + std::to_string(tailer) + " on record at " + std::to_string(off));
      if (rec.magic == kFreeMagic) {
        blocks_[off] = Seen::kFree;
        report_->free_blocks++;
        report_->free_bytes += rec.rec_len;
      } else {
        if (uint64_t{rec.key_len} + rec.data_len + 4 > rec.rec_len)
          return Problem("record at " + std::to_string(off) + " is shorter than its key and data");
        if (rec.magic == kUsedMagic) {
          std::string key(rec.key_len, '\0');
          store_.ReadBytes(off + kRecordHeaderSize, key.data(), rec.key_len);
          if (store_.HashOf(Span{reinterpret_cast<const uint8_t*>(key.data()), key.size()}) != rec.full_hash)
            return Problem("record at " + std::to_string(off) + " has the wrong hash for its key");
          report_->records++;
        } else {
          report_->dead_records++;
        }
        blocks_[off] = rec.magic == kUsedMagic ? Seen::kUsed : Seen::kDead;
        bucket_of_[off] = rec.full_hash % store_.hash_size();
      }
      off += static_cast<uint32_t>(total);
    }
    return true;
  }

  bool Filler(uint32_t from, uint32_t to) {
    for (uint32_t o = from; o < to; o++) {
      uint8_t b;
      if (store_.ReadBytes(o, &b, 1) != Status::kOk || (b != 0 && b != kPadByte)) return false;
    }
    return true;
  }

  bool Chain(uint32_t bucket) {
    uint32_t off = 0;
    store_.ReadBytes(HashTop(bucket), &off, 4);
    while (off != 0) {
      auto it = blocks_.find(off);
      if (it == blocks_.end()) return Problem("chain " + std::to_string(bucket) + " points to " + std::to_string(off) + ", which is not a record");
      if (it->second == Seen::kReached) return Problem("record at " + std::to_string(off) + " is linked twice (loop in chain " + std::to_string(bucket) + ")");
      if (it->second != Seen::kUsed && it->second != Seen::kDead)
        return Problem("chain " + std::to_string(bucket) + " links the non-record block at " + std::to_string(off));
      if (bucket_of_[off] != bucket) return Problem("record at " + std::to_string(off) + " is in the wrong chain " + std::to_string(bucket));
      it->second = Seen::kReached;
      Record rec;
      store_.ReadBytes(off, &rec, sizeof(rec));
      off = rec.next;
    }
    return true;
  }

  bool FreeList() {
    uint32_t off = 0;
    store_.ReadBytes(kFreelistTop, &off, 4);
    while (off != 0) {
      auto it = blocks_.find(off);
      if (it == blocks_.end() || (it->second != Seen::kFree && it->second != Seen::kReached))
        return Problem("free list points to " + std::to_string(off) + ", which is not a free block");
      if (it->second == Seen::kReached) return Problem("free block at " + std::to_string(off) + " is listed twice (loop in free list)");
      it->second = Seen::kReached;
      Record rec;
      store_.ReadBytes(off, &rec, sizeof(rec));
      off = rec.next;
    }
    return true;
  }

  Store& store_;
  CheckReport* report_;
  std::unordered_map<uint32_t, Seen> blocks_;
  std::unordered_map<uint32_t, uint32_t> bucket_of_;
};

}  // namespace

void CheckStore(Store& store, CheckReport* report) {
  const bool locked = !(store.tdb_flags() & kNoLock) && store.LockAll(false, true) == Status::kOk;
  Checker(store, report).Run();
  if (locked) store.UnlockAll(false);
}

}  // namespace ctdb::tdb
