#include "io/send_queue.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

namespace ctdb::io {
namespace {

constexpr size_t kMaxIovecs = 256;
// One connection must not monopolise the loop while others wait.
constexpr size_t kFlushBudgetBytes = 8u << 20;

}  // namespace

std::shared_ptr<uint8_t[]> OutgoingBytes::Retain() {
  if (!copy_) {
    copy_ = std::make_shared_for_overwrite<uint8_t[]>(length_);
    std::memcpy(copy_.get(), data_, length_);
  }
  return copy_;
}

void SendQueue::Push(OutgoingBytes& bytes, size_t offset) {
  chunks_.push_back(Chunk{bytes.Retain(), offset, bytes.length()});
}

SendQueue::FlushResult SendQueue::Flush(int fd, uint64_t* syscalls, uint64_t* bytes_written, int* err) {
  size_t budget = kFlushBudgetBytes;
  while (!empty()) {
    iovec iov[kMaxIovecs];
    size_t count = 0;
    size_t wanted = 0;
    for (size_t i = head_; i < chunks_.size() && count < kMaxIovecs; ++i, ++count) {
      iov[count].iov_base = chunks_[i].bytes.get() + chunks_[i].offset;
      iov[count].iov_len = chunks_[i].end - chunks_[i].offset;
      wanted += iov[count].iov_len;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    ++*syscalls;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return FlushResult::kBlocked;
      *err = errno;
      return FlushResult::kFailed;
    }
    *bytes_written += static_cast<uint64_t>(n);
    Consume(static_cast<size_t>(n));
    if (static_cast<size_t>(n) < wanted) return FlushResult::kBlocked;
    if (static_cast<size_t>(n) >= budget) return empty() ? FlushResult::kDrained : FlushResult::kBlocked;
    budget -= static_cast<size_t>(n);
  }
  return FlushResult::kDrained;
}

void SendQueue::Consume(size_t written) {
  while (written > 0) {
    Chunk& chunk = chunks_[head_];
    const size_t left = chunk.end - chunk.offset;
    if (written < left) {
      chunk.offset += written;
      return;
    }
    written -= left;
    chunk.bytes.reset();
    ++head_;
  }
  if (empty()) {
    Clear();
  } else if (head_ > 1024 && head_ * 2 > chunks_.size()) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
}

void SendQueue::Clear() {
  // Release the memory, not just the elements: an idle connection should cost nothing.
  std::vector<Chunk>().swap(chunks_);
  head_ = 0;
}

}  // namespace ctdb::io
