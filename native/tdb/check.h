// Structural check of a tdb file, like libtdb's tdb_check / `tdbtool check`.
#pragma once
#include <cstdint>
#include <string>

#include "tdb/store.h"

namespace ctdb::tdb {

struct CheckReport {
  bool ok = false;
  std::string problem;  // first problem found, naming the offset
  uint64_t records = 0;
  uint64_t dead_records = 0;
  uint64_t free_blocks = 0;
  uint64_t free_bytes = 0;
};

// Takes a read all-record lock (unless the store was opened read-only) while checking.
void CheckStore(Store& store, CheckReport* report);

}  // namespace ctdb::tdb
