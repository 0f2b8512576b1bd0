// Pieces shared by the store's translation units (not part of the public interface).
#pragma once
#include <fcntl.h>

#include <memory>
#include <string>
#include <vector>

#include "tdb/store.h"

namespace ctdb::tdb {

// Copy-on-write view of the file while a transaction is open: page-sized blocks.
struct Transaction {
  std::vector<std::unique_ptr<uint8_t[]>> blocks;
  uint32_t old_map_size = 0;  // logical size when the transaction started (and the recovery EOF)
  uint32_t magic_offset = 0;  // recovery magic to clear when the transaction ends
  int nesting = 0;
  bool prepared = false;
  bool expanded = false;
  bool failed = false;
  // The block the last growth added, while nothing has been freed since: every older free-list
  // entry was shorter than `fresh_over` then (the walk before the growth saw them all and none
  // fitted), so for a longer record this block, still the list head, is the walk's answer.
  uint32_t fresh_block = 0;
  uint32_t fresh_over = 0;
  bool HasBlocks() const {
    for (const auto& b : blocks)
      if (b) return true;
    return false;
  }
};

// Growth rule shared by the free-list expansion and the recovery area (libtdb's policy).
uint32_t ExpandAdjust(uint32_t map_size, uint32_t size, uint32_t page_size);

std::string Hex(uint32_t v);

}  // namespace ctdb::tdb
