// Packets waiting for a socket to become writable. A broadcast shares one copy of
// its bytes between every connection that could not take it immediately.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace ctdb::io {

// One packet's bytes as handed over by JS: borrowed until the first connection
// needs to keep them, then copied once and shared.
class OutgoingBytes {
 public:
  OutgoingBytes(const uint8_t* data, size_t length) : data_(data), length_(length) {}
  const uint8_t* data() const { return data_; }
  size_t length() const { return length_; }
  std::shared_ptr<uint8_t[]> Retain();

 private:
  const uint8_t* data_;
  size_t length_;
  std::shared_ptr<uint8_t[]> copy_;
};

class SendQueue {
 public:
  enum class FlushResult { kDrained, kBlocked, kFailed };

  bool empty() const { return head_ == chunks_.size(); }
  size_t packets() const { return chunks_.size() - head_; }
  // Queues bytes [offset, length) of `bytes`.
  void Push(OutgoingBytes& bytes, size_t offset);
  // writev()s as much as the socket takes; *err is set on kFailed.
  FlushResult Flush(int fd, uint64_t* syscalls, uint64_t* bytes_written, int* err);
  void Clear();

 private:
  struct Chunk {
    std::shared_ptr<uint8_t[]> bytes;
    size_t offset;
    size_t end;
  };
  void Consume(size_t written);

  std::vector<Chunk> chunks_;
  size_t head_ = 0;
};

}  // namespace ctdb::io
