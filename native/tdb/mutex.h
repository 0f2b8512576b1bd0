// The robust process-shared pthread mutexes that TDB_MUTEX_LOCKING files keep in front of
// the header. The bytes are glibc ABI shared with libtdb, so only pthread calls touch them.
#pragma once
#include <pthread.h>

#include <cstdint>
#include <memory>

namespace ctdb::tdb {

class MutexArea {
 public:
  // Maps `size` bytes at file offset 0. Returns nullptr with *err set on failure.
  static std::unique_ptr<MutexArea> Map(int fd, uint32_t hash_size, uint32_t size, int* err);
  ~MutexArea();

  // (Re)initialises every mutex; only safe while nobody else has the file open. Returns errno.
  int Init();
  // index 0 is the free list, index b+1 chain b. `nested` = we already hold another chain
  // mutex, in which case waiting for an allrecord holder would deadlock. Returns errno.
  int LockChain(uint32_t index, int type, bool wait, bool nested);
  int UnlockChain(uint32_t index);
  int AllRecordLock(int type, bool wait);
  int AllRecordUpgrade();
  void AllRecordDowngrade();
  int AllRecordUnlock();

  struct Layout;

 private:
  MutexArea(Layout* layout, uint32_t size, uint32_t hash_size) : layout_(layout), size_(size), hash_size_(hash_size) {}
  Layout* layout_;
  uint32_t size_;
  uint32_t hash_size_;
};

// Bytes the mutex area needs for `hash_size` chains, rounded up to whole pages.
uint32_t MutexAreaBytes(uint32_t hash_size, uint32_t page_size);

}  // namespace ctdb::tdb
