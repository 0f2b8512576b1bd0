// Opening, creating and closing files; logical-offset I/O over the mmap; errors.
#include "tdb/store.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "tdb/mutex.h"
#include "tdb/store_internal.h"

namespace ctdb::tdb {

namespace {

// fcntl locks belong to the process and any close() drops them all, so one file may be
// open only once per process (libtdb refuses the same way).
std::mutex open_files_mutex;
std::set<std::pair<dev_t, ino_t>>& OpenFiles() {
  static std::set<std::pair<dev_t, ino_t>> files;
  return files;
}

uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", v);
  return buf;
}

const char* StatusName(Status s) {
  switch (s) {
    case Status::kOk: return "success";
    case Status::kCorrupt: return "corrupt database";
    case Status::kIo: return "I/O error";
    case Status::kLock: return "locking error";
    case Status::kOom: return "out of memory";
    case Status::kExists: return "record exists";
    case Status::kNoLock: return "lock not available";
    case Status::kNoExist: return "record does not exist";
    case Status::kInvalid: return "invalid parameter";
    case Status::kReadOnly: return "write not permitted";
    case Status::kNesting: return "nested transactions not permitted";
  }
  return "unknown error";
}

uint32_t ExpandAdjust(uint32_t map_size, uint32_t size, uint32_t page_size) {
  const uint64_t max_add = UINT32_MAX - uint64_t{map_size};
  if (size > max_add) return size;
  const uint64_t increment = size > 100 * 1024 ? uint64_t{size} * 2 : uint64_t{size} * 100;
  const uint64_t top = uint64_t{map_size} + increment;
  const uint64_t grown = map_size > 100u * 1024 * 1024 ? uint64_t(map_size * 1.10) : uint64_t(map_size * 1.25);
  uint64_t target = std::max(top, grown);
  target = (target + page_size - 1) / page_size * page_size;
  if (target > UINT32_MAX) return static_cast<uint32_t>(max_add);  // one jump to exactly 4 GiB
  return static_cast<uint32_t>(target - map_size);
}

Status Store::Fail(Status s, const std::string& what) {
  last_error_ = what;
  last_errno_ = 0;
  return s;
}

Status Store::FailErrno(Status s, const std::string& what) {
  last_errno_ = errno;
  last_error_ = what;
  return s;
}

std::string Store::LastError() const {
  return last_errno_ != 0 ? last_error_ + ": " + std::strerror(last_errno_) : last_error_;
}

std::unique_ptr<Store> Store::Open(const std::string& path, const OpenOptions& options, std::string* error,
                                   int* err_no, Status* status) {
  std::unique_ptr<Store> store(new Store());
  store->path_ = path;
  Status s = store->OpenImpl(options);
  if (s == Status::kOk) return store;
  if (status != nullptr) *status = s;
  *error = path + ": " + store->last_error_;
  *err_no = store->last_errno_ != 0 ? store->last_errno_ : s == Status::kCorrupt ? EIO : s == Status::kLock ? EAGAIN : EINVAL;
  return nullptr;
}

Status Store::OpenImpl(const OpenOptions& options) {
  page_size_ = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  flags_ = options.tdb_flags;
  if ((options.open_flags & O_ACCMODE) == O_WRONLY) return Fail(Status::kInvalid, "cannot open a tdb write-only");
  if (flags_ & kMutexLocking) flags_ |= kIncompatibleHash;
  if ((options.open_flags & O_ACCMODE) == O_RDONLY) {
    read_only_ = true;
    flags_ |= kNoLock;  // like libtdb: read-only opens take no locks
    flags_ &= ~(kClearIfFirst | kMutexLocking);
  }
  if ((flags_ & kAllowNesting) && (flags_ & kDisallowNesting))
    return Fail(Status::kInvalid, "ALLOW_NESTING and DISALLOW_NESTING together");
  if (flags_ & kInternal) return Fail(Status::kInvalid, "TDB_INTERNAL (memory-only) databases are not supported");
  if (options.hash_size == 0) return Fail(Status::kInvalid, "hash size 0");
  hash_kind_ = (flags_ & kIncompatibleHash) ? HashKind::kJenkins : HashKind::kOld;

  fd_ = open(path_.c_str(), options.open_flags | O_CLOEXEC, options.mode);
  if (fd_ < 0) return FailErrno(Status::kIo, "open");

  Status s = NestLock(kOpenLock, F_WRLCK, true);
  if (s != Status::kOk) return s;
  bool first_opener = false;
  if ((flags_ & kClearIfFirst) && !read_only_) {
    first_opener = BrLock(F_WRLCK, kActiveLock, 1, false) == Status::kOk;
    if (first_opener) {
      locks_.push_back({kActiveLock, 1, F_WRLCK});
      if ((s = BrLock(F_WRLCK, kFreelistTop, 0, true)) != Status::kOk) return s;
      s = CreateDatabase(options.hash_size);
      BrUnlock(kFreelistTop, 0);
      if (s != Status::kOk) return s;
    }
  }
  if ((s = ReadHeaderAndSetup(options, &first_opener)) != Status::kOk) return s;

  // Hold ACTIVE as a read lock for our whole lifetime: it keeps CLEAR_IF_FIRST openers from
  // wiping the file and mutex openers from re-initialising the mutexes under us.
  if (!read_only_) {
    if (NestedLock* active = FindLock(kActiveLock)) {
      // fcntl converts WR to RD atomically, so nobody can slip in and wipe the file.
      if ((s = BrLock(F_RDLCK, kActiveLock, 1, true)) != Status::kOk) return s;
      active->type = F_RDLCK;
    } else if ((s = NestLock(kActiveLock, F_RDLCK, true)) != Status::kOk) {
      return s;
    }
  }
  if (NeedsRecovery() && (s = Recover()) != Status::kOk) return s;
  NestUnlock(kOpenLock);
  return Status::kOk;
}

Status Store::CreateDatabase(uint32_t hash_size) {
  if (hash_size > (UINT32_MAX - DataStart(0)) / 4 - 1) return Fail(Status::kInvalid, "hash size too large");
  hash_size_ = hash_size;
  std::vector<uint8_t> image(DataStart(hash_size), 0);
  auto put = [&](uint32_t off, uint32_t v) { std::memcpy(&image[off], &v, 4); };
  std::memcpy(image.data(), kMagicFood, sizeof(kMagicFood));
  put(hdr::kVersion, kVersion);
  put(hdr::kHashSize, hash_size);
  uint32_t magic1, magic2;
  HeaderHashes(hash_kind_, &magic1, &magic2);
  put(hdr::kMagic1Hash, magic1);
  put(hdr::kMagic2Hash, magic2);
  if (hash_kind_ == HashKind::kJenkins) put(hdr::kRwlocks, kHashRwlockMagic);  // keeps tdb < 1.2.6 out
  const bool mutex = (flags_ & kMutexLocking) != 0;
  const uint32_t mutex_size = mutex ? MutexAreaBytes(hash_size, page_size_) : 0;
  if (mutex) {
    put(hdr::kRwlocks, kFeatureFlagMagic);
    put(hdr::kFeatureFlags, kFeatureMutex);
    put(hdr::kMutexSize, mutex_size);
  }
  mutexes_.reset();
  if (ftruncate(fd_, 0) != 0) return FailErrno(Status::kIo, "truncate for a new database");
  if (pwrite(fd_, image.data(), image.size(), 0) != static_cast<ssize_t>(image.size()))
    return FailErrno(Status::kIo, "write new header");
  if (mutex) {
    if (ftruncate(fd_, mutex_size + kHeaderSize) != 0) return FailErrno(Status::kIo, "size mutex area");
    int err = 0;
    mutexes_ = MutexArea::Map(fd_, hash_size, mutex_size, &err);
    if (!mutexes_) return errno = err, FailErrno(Status::kIo, "mmap mutex area");
    if ((err = mutexes_->Init()) != 0) return errno = err, FailErrno(Status::kIo, "initialise mutexes");
    // The live header and hash table follow the mutexes; the copy at 0 only announces them.
    if (pwrite(fd_, image.data(), image.size(), mutex_size) != static_cast<ssize_t>(image.size()))
      return FailErrno(Status::kIo, "write header after mutex area");
  }
  return Status::kOk;
}

Status Store::ReadHeaderAndSetup(const OpenOptions& options, bool* first_opener) {
  uint8_t header[kHeaderSize];
  struct stat st;
  if (fstat(fd_, &st) != 0) return FailErrno(Status::kIo, "fstat");
  ssize_t got = pread(fd_, header, sizeof(header), 0);
  if (got < 0) return FailErrno(Status::kIo, "read header");
  if (st.st_size == 0 && (options.open_flags & O_CREAT) && !read_only_) {
    Status s = CreateDatabase(options.hash_size);
    if (s != Status::kOk) return s;
    *first_opener = true;
    got = pread(fd_, header, sizeof(header), 0);
    if (fstat(fd_, &st) != 0) return FailErrno(Status::kIo, "fstat");
  }
  if (got != static_cast<ssize_t>(kHeaderSize))
    return Fail(Status::kCorrupt, "truncated header (" + std::to_string(got < 0 ? 0 : got) + " of 168 bytes)");
  if (std::memcmp(header, kMagicFood, sizeof(kMagicFood)) != 0) return Fail(Status::kCorrupt, "not a tdb file (bad magic)");
  const uint32_t version = LoadU32(header + hdr::kVersion);
  if (version == __builtin_bswap32(kVersion))
    return Fail(Status::kInvalid, "byte-swapped (big-endian) tdb files are not supported");
  if (version != kVersion) return Fail(Status::kCorrupt, "wrong tdb version " + Hex(version));
  device_ = st.st_dev;
  inode_ = st.st_ino;
  const uint32_t rwlocks = LoadU32(header + hdr::kRwlocks);
  if (rwlocks != 0 && rwlocks != kFeatureFlagMagic && rwlocks != kHashRwlockMagic)
    return errno = ENOSYS, FailErrno(Status::kInvalid, "unsupported rwlocks field " + Hex(rwlocks));
  hash_size_ = LoadU32(header + hdr::kHashSize);
  if (hash_size_ == 0) return Fail(Status::kCorrupt, "hash size 0 in header");
  if (hash_size_ > (UINT32_MAX - DataStart(0)) / 4 - 1) return Fail(Status::kCorrupt, "hash size too large");
  feature_flags_ = rwlocks == kFeatureFlagMagic ? LoadU32(header + hdr::kFeatureFlags) : 0;
  if (feature_flags_ & ~kFeatureMutex)
    return errno = ENOSYS, FailErrno(Status::kInvalid, "unsupported feature flags " + Hex(feature_flags_));
  if (feature_flags_ & kFeatureMutex) {
    if (!(flags_ & kMutexLocking) && !(flags_ & kNoLock))
      return errno = EINVAL, FailErrno(Status::kInvalid, "file uses mutexes: open it with MUTEX_LOCKING");
    const uint32_t mutex_size = LoadU32(header + hdr::kMutexSize);
    if (mutex_size != MutexAreaBytes(hash_size_, page_size_))
      return Fail(Status::kCorrupt, "mutex area size " + std::to_string(mutex_size) + " does not match hash size " +
                                        std::to_string(hash_size_));
    hdr_ofs_ = mutex_size;
    if (!(flags_ & kClearIfFirst) && !read_only_ && !*first_opener) {
      *first_opener = BrLock(F_WRLCK, kActiveLock, 1, false) == Status::kOk;
      if (*first_opener) locks_.push_back({kActiveLock, 1, F_WRLCK});
    }
  } else if (flags_ & kMutexLocking) {
    flags_ &= ~kMutexLocking;  // an existing fcntl file stays fcntl (libtdb does the same)
  }
  const uint32_t magic1 = LoadU32(header + hdr::kMagic1Hash), magic2 = LoadU32(header + hdr::kMagic2Hash);
  if (magic1 == 0 && magic2 == 0) {
    hash_kind_ = HashKind::kOld;
  } else {
    const HashKind preferred = hash_kind_;
    const HashKind other = preferred == HashKind::kOld ? HashKind::kJenkins : HashKind::kOld;
    bool found = false;
    for (HashKind kind : {preferred, other}) {
      uint32_t m1, m2;
      HeaderHashes(kind, &m1, &m2);
      if (m1 == magic1 && m2 == magic2) {
        hash_kind_ = kind;
        found = true;
        break;
      }
    }
    if (!found) return Fail(Status::kInvalid, "created with an unknown hash function (magic hashes " + Hex(magic1) + "/" + Hex(magic2) + ")");
  }
  {
    std::lock_guard<std::mutex> guard(open_files_mutex);
    if (!OpenFiles().insert({device_, inode_}).second)
      return errno = EBUSY, FailErrno(Status::kInvalid, "already open in this process");
    registered_ = true;
  }
  if (st.st_size < static_cast<off_t>(hdr_ofs_) + static_cast<off_t>(kHeaderSize))
    return Fail(Status::kCorrupt, "file too short for its mutex area and header");
  map_size_ = 0;
  Status s = Oob(0, 1, false);
  if (s != Status::kOk) return s;
  if ((feature_flags_ & kFeatureMutex) && !(flags_ & kNoLock) && !mutexes_) {
    int err = 0;
    mutexes_ = MutexArea::Map(fd_, hash_size_, hdr_ofs_, &err);
    if (!mutexes_) return errno = err, FailErrno(Status::kIo, "mmap mutex area");
    if (*first_opener && !(flags_ & kClearIfFirst) && (err = mutexes_->Init()) != 0)
      return errno = err, FailErrno(Status::kIo, "initialise mutexes");
  }
  if (Oob(kFreelistTop, 4 * (hash_size_ + 1), true) != Status::kOk)
    return Fail(Status::kCorrupt, "hash table of " + std::to_string(hash_size_) + " chains extends beyond end of file");
  return Status::kOk;
}

Store::~Store() { Close(); }

void Store::Close() {
  if (txn_) CancelImpl();
  if (map_ != nullptr) munmap(map_, mapped_);
  map_ = nullptr;
  mapped_ = 0;
  mutexes_.reset();
  if (fd_ >= 0) close(fd_);  // drops every fcntl lock we hold
  fd_ = -1;
  if (registered_) {
    std::lock_guard<std::mutex> guard(open_files_mutex);
    OpenFiles().erase({device_, inode_});
    registered_ = false;
  }
}

Status Store::Remap() {
  if (map_ != nullptr) munmap(map_, mapped_);
  map_ = nullptr;
  mapped_ = 0;
  if (map_size_ == 0) return Status::kOk;
  const int prot = read_only_ ? PROT_READ : PROT_READ | PROT_WRITE;
  void* p = mmap(nullptr, map_size_, prot, MAP_SHARED, fd_, hdr_ofs_);
  if (p == MAP_FAILED) return FailErrno(Status::kIo, "mmap " + std::to_string(map_size_) + " bytes");
  map_ = static_cast<uint8_t*>(p);
  mapped_ = map_size_;
  // Huge pages spare big files most of the TLB misses of chain walks (about +40% fetches at
  // 1M records). Only where writing back whole 2 MiB folios costs no fsync latency: NOSYNC files
  // (CTDB's volatile databases) and read-only opens. A hint: without THP nothing changes.
  if ((flags_ & kNoSync) || read_only_) madvise(p, map_size_, MADV_HUGEPAGE);
  return Status::kOk;
}

// Makes sure [off, off+len) is inside the file, remapping if another process grew it.
Status Store::Oob(uint32_t off, uint32_t len, bool probe) {
  const uint64_t end = uint64_t{off} + len;
  if (end <= map_size_) return Status::kOk;
  if (end > UINT32_MAX)
    return probe ? Status::kIo : Fail(Status::kCorrupt, "offset " + std::to_string(off) + " beyond 4 GiB");
  if (txn_) return probe ? Status::kIo : Fail(Status::kIo, "offset " + std::to_string(off) + " beyond transaction end");
  struct stat st;
  if (fstat(fd_, &st) != 0) return FailErrno(Status::kIo, "fstat");
  const uint64_t size = st.st_size < static_cast<off_t>(hdr_ofs_) ? 0 : uint64_t(st.st_size) - hdr_ofs_;
  if (size > UINT32_MAX) return Fail(Status::kCorrupt, "file is larger than 4 GiB");
  if (size != map_size_) {
    map_size_ = static_cast<uint32_t>(size);
    Status s = Remap();
    if (s != Status::kOk) return s;
  }
  if (end <= map_size_) return Status::kOk;
  if (probe) return Status::kIo;
  return Fail(Status::kCorrupt, "offset " + std::to_string(off) + "+" + std::to_string(len) +
                                    " beyond end of file (" + std::to_string(map_size_) + ")");
}

Status Store::Read(uint32_t off, void* buf, uint32_t len) {
  if (txn_) return TxnRead(off, buf, len);
  Status s = Oob(off, len, false);
  if (s != Status::kOk) return s;
  std::memcpy(buf, map_ + off, len);
  return Status::kOk;
}

Status Store::Write(uint32_t off, const void* buf, uint32_t len) {
  if (read_only_) return Fail(Status::kReadOnly, "write to a read-only database");
  if (len == 0) return Status::kOk;
  if (txn_) return TxnWrite(off, buf, len);
  Status s = Oob(off, len, false);
  if (s != Status::kOk) return s;
  std::memcpy(map_ + off, buf, len);
  return Status::kOk;
}

Status Store::ReadRec(uint32_t off, Record* rec) {
  if (const uint8_t* p = Direct(off, sizeof(*rec))) {
    std::memcpy(rec, p, sizeof(*rec));
  } else if (Status s = Read(off, rec, sizeof(*rec)); s != Status::kOk) {
    return s;
  }
  if (rec->magic != kUsedMagic && rec->magic != kDeadMagic)
    return Fail(Status::kCorrupt, "bad magic " + Hex(rec->magic) + " in record at " + std::to_string(off));
  const uint64_t end = uint64_t{off} + kRecordHeaderSize + rec->rec_len;
  if (uint64_t{rec->key_len} + rec->data_len > rec->rec_len || (end > map_size_ && Oob(off, kRecordHeaderSize + rec->rec_len, true) != Status::kOk))
    return Fail(Status::kCorrupt, "record at " + std::to_string(off) + " has bad lengths");
  if (rec->next != 0 && (rec->next < DataStart(hash_size_) ||
                         (uint64_t{rec->next} + kRecordHeaderSize > map_size_ && Oob(rec->next, kRecordHeaderSize, true) != Status::kOk)))
    return Fail(Status::kCorrupt, "record at " + std::to_string(off) + " points outside the file (" + std::to_string(rec->next) + ")");
  return Status::kOk;
}

Status Store::ReadFreeRec(uint32_t off, Record* rec) {
  Status s = Read(off, rec, sizeof(*rec));
  if (s != Status::kOk) return s;
  if (rec->magic != kFreeMagic)
    return Fail(Status::kCorrupt, "bad magic " + Hex(rec->magic) + " in free-list entry at " + std::to_string(off));
  if (Oob(off, kRecordHeaderSize + rec->rec_len, true) != Status::kOk ||
      (rec->next != 0 && (rec->next < DataStart(hash_size_) || Oob(rec->next, kRecordHeaderSize, true) != Status::kOk)))
    return Fail(Status::kCorrupt, "free-list entry at " + std::to_string(off) + " points outside the file");
  return Status::kOk;
}

Status Store::WriteRec(uint32_t off, const Record& rec) { return Write(off, &rec, sizeof(rec)); }

Status Store::WriteTailer(uint32_t off, const Record& rec) {
  const uint32_t total = kRecordHeaderSize + rec.rec_len;
  return WriteOff(off + total - 4, total);
}

Status Store::ExpandFile(uint32_t size, uint32_t addition) {
  if (read_only_) return Fail(Status::kReadOnly, "grow a read-only database");
  const off_t start = off_t{hdr_ofs_} + size;
  int rc = posix_fallocate(fd_, start, addition);
  if (rc == 0) return Status::kOk;
  if (rc == ENOSPC) return errno = rc, FailErrno(Status::kOom, "grow file");
  // Filesystems without fallocate: extend and fill so the file is not sparse.
  if (ftruncate(fd_, start + addition) != 0) return FailErrno(Status::kOom, "grow file");
  std::vector<uint8_t> pad(std::min<uint32_t>(addition, 65536), kPadByte);
  for (uint32_t done = 0; done < addition;) {
    const ssize_t n = pwrite(fd_, pad.data(), std::min<size_t>(pad.size(), addition - done), start + done);
    if (n <= 0) {
      if (ftruncate(fd_, start) != 0) { /* keep the original error */ }
      return FailErrno(Status::kOom, "fill grown file");
    }
    done += static_cast<uint32_t>(n);
  }
  return Status::kOk;
}

Status Store::Sync(uint32_t off, uint32_t len) {
  if (flags_ & kNoSync) return Status::kOk;
  if (fdatasync(fd_) != 0) return FailErrno(Status::kIo, "fdatasync");
  if (map_ != nullptr && off < mapped_) {
    const uint32_t start = off & ~(page_size_ - 1);
    const uint32_t end = std::min<uint64_t>(uint64_t{off} + len, mapped_);
    if (end > start && msync(map_ + start, end - start, MS_SYNC) != 0) return FailErrno(Status::kIo, "msync");
  }
  return Status::kOk;
}

uint32_t Store::Seqnum() {
  uint32_t v = 0;
  if (txn_) {
    Read(kSeqnumOfs, &v, 4);
  } else if (map_ != nullptr) {
    v = __atomic_load_n(reinterpret_cast<uint32_t*>(map_ + kSeqnumOfs), __ATOMIC_SEQ_CST);
  }
  return v;
}

void Store::BumpSeqnum() {
  if (!(flags_ & kSeqnum)) return;
  if (txn_) {
    uint32_t v = 0;
    if (ReadOff(kSeqnumOfs, &v) == Status::kOk) WriteOff(kSeqnumOfs, v + 1);
    return;
  }
  // The same atomic increment libtdb does on x86, so concurrent writers never lose a bump.
  __atomic_add_fetch(reinterpret_cast<uint32_t*>(map_ + kSeqnumOfs), 1, __ATOMIC_SEQ_CST);
}

}  // namespace ctdb::tdb
