#include "io/packet_batch.h"

#include <cstdlib>
#include <cstring>

namespace ctdb::io {
namespace {

constexpr size_t kInitialCapacity = 256u << 10;

uint8_t* Resize(uint8_t* bytes, size_t size) {
  auto* resized = static_cast<uint8_t*>(std::realloc(bytes, size == 0 ? 1 : size));
  if (resized == nullptr) std::abort();  // out of memory: nothing sensible is left to do
  return resized;
}

// V8 already counts external backing stores towards GC pressure; only the memory is ours.
void FinalizeExternal(Napi::Env, void* bytes) { std::free(bytes); }

}  // namespace

void ExternalBytesDeleter::operator()(uint8_t* bytes) const { std::free(bytes); }

ExternalBytes AllocateExternal(size_t size) { return ExternalBytes(Resize(nullptr, size)); }

Napi::ArrayBuffer AdoptExternal(Napi::Env env, ExternalBytes bytes, size_t size) {
  return Napi::ArrayBuffer::New(env, bytes.release(), size, FinalizeExternal);
}

uint8_t* PacketBatch::PrepareRead(size_t carried, size_t* room) {
  const size_t needed = used_ + carried + kMinReadRoom;
  if (needed > capacity_) {
    size_t capacity = capacity_ == 0 ? kInitialCapacity : capacity_ * 2;
    while (capacity < needed) capacity *= 2;
    memory_.reset(Resize(memory_.release(), capacity));
    capacity_ = capacity;
  }
  read_start_ = used_;
  *room = capacity_ - used_ - carried;
  return memory_.get() + used_;
}

void PacketBatch::AddPacket(uint32_t conn, size_t offset, uint32_t length) {
  conns_.push_back(conn);
  spans_.push_back(static_cast<uint32_t>(read_start_ + offset));
  spans_.push_back(length);
}

void PacketBatch::CommitRead(size_t kept) { used_ = read_start_ + kept; }

void PacketBatch::AddLarge(uint32_t conn, LargePacket packet) {
  conns_.push_back(conn);
  spans_.push_back(kLargeMarker);
  spans_.push_back(static_cast<uint32_t>(large_.size()));
  large_bytes_ += packet.length;
  large_.push_back(std::move(packet));
}

BatchHandoff PacketBatch::Take() {
  BatchHandoff handoff;
  handoff.count = static_cast<uint32_t>(conns_.size());
  handoff.tables_offset = (used_ + 3) & ~size_t{3};
  handoff.size = handoff.tables_offset + conns_.size() * sizeof(uint32_t) + spans_.size() * sizeof(uint32_t);
  // Shrinking in place returns the unused tail; the next batch starts afresh.
  handoff.memory.reset(Resize(memory_.release(), handoff.size));
  uint8_t* tables = handoff.memory.get() + handoff.tables_offset;
  std::memcpy(tables, conns_.data(), conns_.size() * sizeof(uint32_t));
  std::memcpy(tables + conns_.size() * sizeof(uint32_t), spans_.data(), spans_.size() * sizeof(uint32_t));
  handoff.large = std::move(large_);
  capacity_ = used_ = read_start_ = large_bytes_ = 0;
  conns_.clear();
  spans_.clear();
  large_.clear();
  return handoff;
}

}  // namespace ctdb::io
