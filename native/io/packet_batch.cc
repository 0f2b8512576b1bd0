#include "io/packet_batch.h"

#include <cstdlib>
#include <cstring>

namespace ctdb::io {
namespace {

uint8_t* AllocateOrDie(size_t size) {
  auto* bytes = static_cast<uint8_t*>(std::malloc(size == 0 ? 1 : size));
  if (bytes == nullptr) std::abort();  // out of memory: nothing sensible is left to do
  return bytes;
}


}  // namespace

SlabPool::~SlabPool() {
  for (uint8_t* data : cached_) std::free(data);
}

Slab* SlabPool::Acquire() {
  auto* slab = new Slab;
  slab->pool = shared_from_this();
  slab->refs = 1;
  if (cached_.empty()) {
    slab->data = AllocateOrDie(kSlabSize);
  } else {
    slab->data = cached_.back();
    cached_.pop_back();
  }
  return slab;
}

void SlabPool::Release(Slab* slab) {
  if (--slab->refs > 0) return;
  SlabPool& pool = *slab->pool;
  if (pool.cached_.size() < kMaxCached) {
    pool.cached_.push_back(slab->data);
  } else {
    std::free(slab->data);
  }
  delete slab;  // may drop the last reference to the pool
}

void LargePacket::Free::operator()(uint8_t* bytes) const { std::free(bytes); }

LargePacket LargePacket::Allocate(uint32_t length) {
  LargePacket packet;
  packet.bytes.reset(static_cast<uint8_t*>(std::malloc(length)));
  if (packet.bytes) packet.length = length;
  return packet;
}

PacketBatch::~PacketBatch() {
  for (Block& block : blocks_) {
    if (block.slab != nullptr && block.slab != current_) SlabPool::Release(block.slab);
  }
  if (current_ != nullptr) SlabPool::Release(current_);
}

uint8_t* PacketBatch::PrepareRead(size_t carried, size_t* room) {
  if (current_ == nullptr || SlabPool::kSlabSize - current_->used < carried + kMinReadRoom) {
    if (current_ != nullptr) SlabPool::Release(current_);
    current_ = pool_->Acquire();
    current_in_batch_ = false;
  }
  read_start_ = current_->used;
  *room = SlabPool::kSlabSize - current_->used - carried;
  return current_->data + current_->used;
}

void PacketBatch::AddPacket(uint32_t conn, size_t offset, uint32_t length) {
  if (!current_in_batch_) {
    // The batch holds its own reference until JS's ArrayBuffer takes it over.
    ++current_->refs;
    current_block_ = static_cast<uint32_t>(blocks_.size());
    blocks_.push_back(Block{current_, {}});
    current_in_batch_ = true;
  }
  conns_.push_back(conn);
  table_.push_back(current_block_);
  table_.push_back(static_cast<uint32_t>(read_start_ + offset));
  table_.push_back(length);
  pending_bytes_ += length;
}

void PacketBatch::CommitRead(size_t kept) { current_->used = read_start_ + kept; }

void PacketBatch::AddLarge(uint32_t conn, LargePacket packet) {
  conns_.push_back(conn);
  table_.push_back(static_cast<uint32_t>(blocks_.size()));
  table_.push_back(0);
  table_.push_back(packet.length);
  pending_bytes_ += packet.length;
  blocks_.push_back(Block{nullptr, std::move(packet)});
}

bool PacketBatch::AdoptBlock(napi_env env, Block& block, napi_value* buffer) {
  if (block.slab != nullptr) {
    const auto release = [](napi_env, void*, void* slab) { SlabPool::Release(static_cast<Slab*>(slab)); };
    if (napi_create_external_arraybuffer(env, block.slab->data, block.slab->used, release, block.slab, buffer) == napi_ok) {
      return true;  // the ArrayBuffer owns the batch's reference now
    }
    SlabPool::Release(block.slab);
    return false;
  }
  const auto free_bytes = [](napi_env, void* bytes, void*) { std::free(bytes); };
  if (napi_create_external_arraybuffer(env, block.large.bytes.get(), block.large.length, free_bytes, nullptr, buffer) != napi_ok) {
    return false;  // block.large still owns the bytes
  }
  block.large.bytes.release();
  return true;
}

bool PacketBatch::Take(napi_env env, napi_value* blocks, napi_value* table) {
  bool ok = napi_create_array_with_length(env, blocks_.size(), blocks) == napi_ok;
  for (uint32_t i = 0; i < blocks_.size(); ++i) {
    napi_value buffer = nullptr;
    if (!ok) {
      if (blocks_[i].slab != nullptr) SlabPool::Release(blocks_[i].slab);
      continue;
    }
    ok = AdoptBlock(env, blocks_[i], &buffer) && napi_set_element(env, *blocks, i, buffer) == napi_ok;
  }
  const size_t count = conns_.size();
  void* data = nullptr;
  napi_value memory = nullptr;
  ok = ok && napi_create_arraybuffer(env, count * 4 * sizeof(uint32_t), &data, &memory) == napi_ok &&
       napi_create_typedarray(env, napi_uint32_array, count * 4, memory, 0, table) == napi_ok;
  if (ok) {
    std::memcpy(data, conns_.data(), count * sizeof(uint32_t));
    std::memcpy(static_cast<uint32_t*>(data) + count, table_.data(), table_.size() * sizeof(uint32_t));
  }
  blocks_.clear();
  conns_.clear();
  table_.clear();
  current_in_batch_ = false;
  pending_bytes_ = 0;
  return ok;
}

}  // namespace ctdb::io
