// Packets read during one loop iteration, from every connection. Sockets are read
// straight into 256 KiB slabs that JS then sees as external ArrayBuffers, so a packet
// is never copied between the kernel and JS. Slabs come back to a small pool when
// JS lets go of them: reused memory is already paged in, fresh memory faults on
// every page the kernel copies into.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace ctdb::io {

class SlabPool;

// Shared by the batch that is filling it and by every ArrayBuffer JS holds over it.
struct Slab {
  std::shared_ptr<SlabPool> pool;  // keeps the pool alive for finalizers after shutdown
  uint8_t* data = nullptr;
  size_t used = 0;
  int refs = 0;
};

class SlabPool : public std::enable_shared_from_this<SlabPool> {
 public:
  static constexpr size_t kSlabSize = 256u << 10;
  ~SlabPool();
  Slab* Acquire();  // returned with one reference
  static void Release(Slab* slab);

 private:
  static constexpr size_t kMaxCached = 32;
  std::vector<uint8_t*> cached_;
};

// A packet too big for a slab gets memory of its own, filled in place.
struct LargePacket {
  struct Free {
    void operator()(uint8_t* bytes) const;
  };
  std::unique_ptr<uint8_t[], Free> bytes;
  uint32_t length = 0;
  uint32_t filled = 0;
  // Empty (bytes null) when the memory cannot be had: that drops one connection, not the daemon.
  static LargePacket Allocate(uint32_t length);
};

class PacketBatch {
 public:
  // A read never gets less room than this, so packets up to this size always fit.
  static constexpr size_t kMinReadRoom = 32u << 10;

  PacketBatch() : pool_(std::make_shared<SlabPool>()) {}
  ~PacketBatch();
  PacketBatch(const PacketBatch&) = delete;
  PacketBatch& operator=(const PacketBatch&) = delete;

  // Room for `carried` bytes of an unfinished packet followed by at least
  // kMinReadRoom bytes of new data; *room receives the space after the carried bytes.
  uint8_t* PrepareRead(size_t carried, size_t* room);
  // `offset` is relative to the pointer PrepareRead returned.
  void AddPacket(uint32_t conn, size_t offset, uint32_t length);
  // Keeps the first `kept` bytes after the last PrepareRead (the complete packets).
  void CommitRead(size_t kept);
  void AddLarge(uint32_t conn, LargePacket packet);

  bool empty() const { return table_.empty(); }
  // Bytes waiting for JS, to bound how much one iteration reads.
  size_t pending_bytes() const { return pending_bytes_; }

  // Hands everything to JS: `blocks` (ArrayBuffers) and `table`, a Uint32Array of
  // count connection ids followed by count (block, offset, length) triples. False
  // when JS can no longer take them (a worker being terminated); the batch is
  // emptied either way.
  bool Take(napi_env env, napi_value* blocks, napi_value* table);

 private:
  struct Block {
    Slab* slab = nullptr;  // or a large packet
    LargePacket large;
  };
  // Raw napi, not node-addon-api: its failures are fatal when JS is going away.
  static bool AdoptBlock(napi_env env, Block& block, napi_value* buffer);
  std::shared_ptr<SlabPool> pool_;
  Slab* current_ = nullptr;
  uint32_t current_block_ = 0;  // index of current_ in blocks_, when it is there
  bool current_in_batch_ = false;
  size_t read_start_ = 0;
  size_t pending_bytes_ = 0;
  std::vector<Block> blocks_;
  std::vector<uint32_t> conns_;
  std::vector<uint32_t> table_;  // (block, offset, length) per packet
};

}  // namespace ctdb::io
