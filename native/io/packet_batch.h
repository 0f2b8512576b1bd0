// Packets read during one loop iteration, from every connection, in one block of
// memory that is handed to JS as a single external ArrayBuffer: sockets are read
// straight into it, so a packet is never copied between the kernel and JS.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace ctdb::io {

// malloc'd memory that JS can adopt as an ArrayBuffer (freed by its finalizer).
struct ExternalBytesDeleter {
  void operator()(uint8_t* bytes) const;
};
using ExternalBytes = std::unique_ptr<uint8_t[], ExternalBytesDeleter>;
ExternalBytes AllocateExternal(size_t size);
Napi::ArrayBuffer AdoptExternal(Napi::Env env, ExternalBytes bytes, size_t size);

// A packet too big for the shared block gets memory of its own, filled in place.
struct LargePacket {
  ExternalBytes bytes;
  uint32_t length = 0;
  uint32_t filled = 0;
};

// What JS receives: packets[i] came from conns[i]; spans[2i], spans[2i+1] are its
// offset and length in `memory`, or kLargeMarker and an index into `large`.
struct BatchHandoff {
  ExternalBytes memory;
  size_t size = 0;
  size_t tables_offset = 0;
  uint32_t count = 0;
  std::vector<LargePacket> large;
};

class PacketBatch {
 public:
  static constexpr uint32_t kLargeMarker = 0xffffffffu;
  // Reads go straight into the batch while a packet fits into this much room.
  static constexpr size_t kMinReadRoom = 64u << 10;

  // Room for `carried` bytes of an unfinished packet followed by at least
  // kMinReadRoom bytes of new data; *room receives the space after the carried bytes.
  uint8_t* PrepareRead(size_t carried, size_t* room);
  // `offset` is relative to the pointer PrepareRead returned.
  void AddPacket(uint32_t conn, size_t offset, uint32_t length);
  // Keeps the first `kept` bytes after the last PrepareRead (the complete packets).
  void CommitRead(size_t kept);
  void AddLarge(uint32_t conn, LargePacket packet);

  bool empty() const { return conns_.empty(); }
  // Bytes waiting for JS, to bound how much one iteration reads.
  size_t pending_bytes() const { return used_ + large_bytes_; }
  BatchHandoff Take();

 private:
  ExternalBytes memory_;
  size_t capacity_ = 0;
  size_t used_ = 0;
  size_t read_start_ = 0;
  size_t large_bytes_ = 0;
  std::vector<uint32_t> conns_;
  std::vector<uint32_t> spans_;
  std::vector<LargePacket> large_;
};

}  // namespace ctdb::io
