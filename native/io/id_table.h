// Small integer ids for connections and listeners. Freed ids wait in a FIFO before
// reuse so that a late reference from JS never reaches a newer connection.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace ctdb::io {

template <typename T>
class IdTable {
 public:
  static constexpr size_t kReuseDelay = 4096;

  uint32_t Insert(T value) {
    if (free_.size() > kReuseDelay) {
      const uint32_t id = free_.front();
      free_.pop_front();
      slots_[id - 1] = std::move(value);
      return id;
    }
    slots_.emplace_back(std::move(value));
    return static_cast<uint32_t>(slots_.size());
  }

  T* Find(uint32_t id) {
    if (id == 0 || id > slots_.size() || !slots_[id - 1]) return nullptr;
    return &*slots_[id - 1];
  }

  void Erase(uint32_t id) {
    if (Find(id) == nullptr) return;
    slots_[id - 1].reset();
    free_.push_back(id);
  }

  template <typename Fn>
  void ForEach(Fn fn) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i]) fn(static_cast<uint32_t>(i + 1), *slots_[i]);
    }
  }

 private:
  std::vector<std::optional<T>> slots_;
  std::deque<uint32_t> free_;
};

}  // namespace ctdb::io
