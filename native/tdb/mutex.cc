#include "tdb/mutex.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>

#include "tdb/format.h"

namespace ctdb::tdb {

struct MutexArea::Layout {
  uint8_t header_copy[kHeaderSize];
  pthread_mutex_t allrecord_mutex;
  short allrecord_lock;  // F_RDLCK, F_WRLCK or F_UNLCK
  pthread_mutex_t chains[1];  // [0] = free list, [b+1] = chain b; really hash_size+1 long
};

uint32_t MutexAreaBytes(uint32_t hash_size, uint32_t page_size) {
  const uint64_t raw = sizeof(MutexArea::Layout) + uint64_t{hash_size} * sizeof(pthread_mutex_t);
  return static_cast<uint32_t>((raw + page_size - 1) / page_size * page_size);
}

std::unique_ptr<MutexArea> MutexArea::Map(int fd, uint32_t hash_size, uint32_t size, int* err) {
  void* ptr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (ptr == MAP_FAILED) {
    *err = errno;
    return nullptr;
  }
  return std::unique_ptr<MutexArea>(new MutexArea(static_cast<Layout*>(ptr), size, hash_size));
}

MutexArea::~MutexArea() { munmap(layout_, size_); }

int MutexArea::Init() {
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc != 0) return rc;
  // Exactly libtdb's attributes: the kind word in the file must match what it expects.
  if ((rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK)) == 0 &&
      (rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) == 0 &&
      (rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) == 0) {
    for (uint32_t i = 0; i <= hash_size_ && rc == 0; i++) rc = pthread_mutex_init(&layout_->chains[i], &attr);
    if (rc == 0) {
      layout_->allrecord_lock = F_UNLCK;
      rc = pthread_mutex_init(&layout_->allrecord_mutex, &attr);
    }
  }
  pthread_mutexattr_destroy(&attr);
  return rc;
}

namespace {

// A holder died: the chain itself is not repaired (libtdb does the same); mark it usable.
int LockRobust(pthread_mutex_t* m, bool wait, bool* owner_died) {
  int rc = wait ? pthread_mutex_lock(m) : pthread_mutex_trylock(m);
  if (rc == EBUSY) return EAGAIN;
  if (rc != EOWNERDEAD) return rc;
  if (owner_died != nullptr) *owner_died = true;
  return pthread_mutex_consistent(m);
}

}  // namespace

int MutexArea::LockChain(uint32_t index, int type, bool wait, bool nested) {
  pthread_mutex_t* chain = &layout_->chains[index];
  for (;;) {
    int rc = LockRobust(chain, wait, nullptr);
    if (rc != 0) return rc;
    if (index == 0 || nested) return 0;
    const short state = __atomic_load_n(&layout_->allrecord_lock, __ATOMIC_ACQUIRE);
    if (state == F_UNLCK || (state == F_RDLCK && type == F_RDLCK)) return 0;
    // An allrecord holder is active: wait for it on its mutex, then retry the chain.
    pthread_mutex_unlock(chain);
    bool died = false;
    rc = LockRobust(&layout_->allrecord_mutex, wait, &died);
    if (rc != 0) return rc;
    if (died) layout_->allrecord_lock = F_UNLCK;
    pthread_mutex_unlock(&layout_->allrecord_mutex);
  }
}

int MutexArea::UnlockChain(uint32_t index) { return pthread_mutex_unlock(&layout_->chains[index]); }

int MutexArea::AllRecordLock(int type, bool wait) {
  bool died = false;
  int rc = LockRobust(&layout_->allrecord_mutex, wait, &died);
  if (rc != 0) return rc;
  if (died) layout_->allrecord_lock = F_UNLCK;
  if (layout_->allrecord_lock != F_UNLCK) {
    pthread_mutex_unlock(&layout_->allrecord_mutex);
    return EDEADLK;
  }
  __atomic_store_n(&layout_->allrecord_lock, static_cast<short>(type), __ATOMIC_RELEASE);
  // Wait out everyone who currently holds a chain (the free list is not covered).
  for (uint32_t i = 1; i <= hash_size_; i++) {
    rc = LockRobust(&layout_->chains[i], wait, nullptr);
    if (rc != 0) {
      layout_->allrecord_lock = F_UNLCK;
      pthread_mutex_unlock(&layout_->allrecord_mutex);
      return rc;
    }
    pthread_mutex_unlock(&layout_->chains[i]);
  }
  return 0;
}

int MutexArea::AllRecordUpgrade() {
  if (layout_->allrecord_lock != F_RDLCK) return EINVAL;
  __atomic_store_n(&layout_->allrecord_lock, static_cast<short>(F_WRLCK), __ATOMIC_RELEASE);
  for (uint32_t i = 1; i <= hash_size_; i++) {
    int rc = LockRobust(&layout_->chains[i], true, nullptr);
    if (rc != 0) {
      layout_->allrecord_lock = F_RDLCK;
      return rc;
    }
    pthread_mutex_unlock(&layout_->chains[i]);
  }
  return 0;
}

void MutexArea::AllRecordDowngrade() { layout_->allrecord_lock = F_RDLCK; }

int MutexArea::AllRecordUnlock() {
  const short old = layout_->allrecord_lock;
  if (old != F_RDLCK && old != F_WRLCK) return EINVAL;
  __atomic_store_n(&layout_->allrecord_lock, static_cast<short>(F_UNLCK), __ATOMIC_RELEASE);
  int rc = pthread_mutex_unlock(&layout_->allrecord_mutex);
  if (rc != 0) layout_->allrecord_lock = old;
  return rc;
}

}  // namespace ctdb::tdb
