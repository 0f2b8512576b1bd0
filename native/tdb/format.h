// On-disk constants of libtdb 1.4 files (see ../shared/research/tdb-format.md).
// Plain C++ (no N-API) so that helper executables can link the store core.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ctdb::tdb {

constexpr uint32_t kVersion = 0x26011967 + 6;
constexpr uint32_t kUsedMagic = 0x26011999;
constexpr uint32_t kFreeMagic = ~kUsedMagic;
constexpr uint32_t kDeadMagic = 0xFEE1DEAD;
constexpr uint32_t kRecoveryMagic = 0xF53BC0E7;
constexpr uint32_t kRecoveryInvalidMagic = 0;
constexpr uint32_t kHashRwlockMagic = 0x0BAD1A51;   // rwlocks field: file uses the jenkins hash
constexpr uint32_t kFeatureFlagMagic = 0x0BAD1A52;  // rwlocks field: feature_flags is valid
constexpr uint32_t kFeatureMutex = 1;
constexpr uint32_t kPadU32 = 0x42424242;  // what file growth fills new space with
constexpr uint8_t kPadByte = 0x42;
constexpr char kMagicFood[] = "TDB file\n";

constexpr uint32_t kHeaderSize = 168;
constexpr uint32_t kRecoveryHeadOfs = 44;
constexpr uint32_t kSeqnumOfs = 48;
constexpr uint32_t kFreelistTop = 168;
constexpr uint32_t kRecordHeaderSize = 24;
constexpr uint32_t kDefaultHashSize = 131;

// Fixed fcntl lock bytes.
constexpr uint32_t kOpenLock = 0;
constexpr uint32_t kActiveLock = 4;
constexpr uint32_t kTransactionLock = 8;

// tdb_open flags (the public TDB_* values, so callers can pass smbd's numbers through).
enum TdbFlag : uint32_t {
  kClearIfFirst = 1,
  kInternal = 2,
  kNoLock = 4,
  kNoMmap = 8,
  kConvert = 16,
  kBigEndian = 32,
  kNoSync = 64,
  kSeqnum = 128,
  kVolatile = 256,
  kAllowNesting = 512,
  kDisallowNesting = 1024,
  kIncompatibleHash = 2048,
  kMutexLocking = 4096,
};

// Header field offsets inside the 168-byte header.
namespace hdr {
constexpr uint32_t kVersion = 32;
constexpr uint32_t kHashSize = 36;
constexpr uint32_t kRwlocks = 40;
constexpr uint32_t kRecoveryStart = 44;
constexpr uint32_t kSequenceNumber = 48;
constexpr uint32_t kMagic1Hash = 52;
constexpr uint32_t kMagic2Hash = 56;
constexpr uint32_t kFeatureFlags = 60;
constexpr uint32_t kMutexSize = 64;
}  // namespace hdr

struct Record {
  uint32_t next;
  uint32_t rec_len;  // bytes after this header, tailer included
  uint32_t key_len;
  uint32_t data_len;
  uint32_t full_hash;
  uint32_t magic;
};
static_assert(sizeof(Record) == kRecordHeaderSize);

enum class HashKind { kOld, kJenkins };

uint32_t OldHash(const uint8_t* data, size_t len);
uint32_t JenkinsHash(const uint8_t* data, size_t len);
inline uint32_t HashKey(HashKind kind, const uint8_t* data, size_t len) {
  return kind == HashKind::kJenkins ? JenkinsHash(data, len) : OldHash(data, len);
}
// The magic1/magic2 values a file created with `kind` carries in its header.
void HeaderHashes(HashKind kind, uint32_t* magic1, uint32_t* magic2);

constexpr uint32_t DataStart(uint32_t hash_size) { return kFreelistTop + 4 * (hash_size + 1); }
constexpr uint32_t HashTop(uint32_t bucket) { return kFreelistTop + 4 + 4 * bucket; }
// Lock byte of a list: -1 is the free list, b >= 0 is chain b (4 bytes below its head pointer).
constexpr uint32_t ListLockOffset(int list) { return static_cast<uint32_t>(kFreelistTop + 4 * list); }

}  // namespace ctdb::tdb
