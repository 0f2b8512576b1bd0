// Side-by-side store benchmark, built twice by bench/suites/store.ts: against Debian's libtdb
// (-DBENCH_LIBTDB, -ltdb) and against our store core (native/tdb/*.cc). Same workload, same
// keys: store (replace into a new file), fetch, read traverse, delete.
//   store_bench FILE RECORDS HASH_SIZE MUTEX(0|1)   prints one JSON line of ops/s
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef BENCH_LIBTDB
#include <tdb.h>

class Db {
 public:
  Db(const char* path, unsigned hash_size, int flags) {
    tdb_ = tdb_open(path, hash_size, flags, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (tdb_ == nullptr) Die("tdb_open");
  }
  ~Db() { tdb_close(tdb_); }
  void Store(const std::string& k, const std::string& v) {
    if (tdb_store(tdb_, Data(k), Data(v), TDB_REPLACE) != 0) Die("tdb_store");
  }
  size_t Fetch(const std::string& k) {
    TDB_DATA d = tdb_fetch(tdb_, Data(k));
    if (d.dptr == nullptr) Die("tdb_fetch");
    free(d.dptr);
    return d.dsize;
  }
  long Traverse() { return tdb_traverse_read(tdb_, nullptr, nullptr); }
  void Delete(const std::string& k) {
    if (tdb_delete(tdb_, Data(k)) != 0) Die("tdb_delete");
  }

 private:
  static TDB_DATA Data(const std::string& s) { return TDB_DATA{(unsigned char*)s.data(), s.size()}; }
  static void Die(const char* what) {
    std::fprintf(stderr, "%s failed\n", what);
    std::exit(1);
  }
  TDB_CONTEXT* tdb_;
};
#else
#include "tdb/store.h"

class Db {
 public:
  Db(const char* path, unsigned hash_size, int flags) {
    unlink(path);
    ctdb::tdb::OpenOptions options;
    options.hash_size = hash_size;
    options.tdb_flags = flags;
    options.open_flags = O_RDWR | O_CREAT;
    std::string error;
    int err = 0;
    store_ = ctdb::tdb::Store::Open(path, options, &error, &err);
    if (!store_) Die(error.c_str());
  }
  void Store(const std::string& k, const std::string& v) {
    if (store_->Put(Span(k), Span(v), ctdb::tdb::StoreMode::kReplace) != ctdb::tdb::Status::kOk) Die("store");
  }
  size_t Fetch(const std::string& k) {
    if (store_->Fetch(Span(k), &value_) != ctdb::tdb::Status::kOk) Die("fetch");
    return value_.size();
  }
  long Traverse() {
    uint64_t count = 0;
    store_->Traverse(false, [](ctdb::tdb::Span, ctdb::tdb::Span) { return true; }, &count);
    return static_cast<long>(count);
  }
  void Delete(const std::string& k) {
    if (store_->Delete(Span(k)) != ctdb::tdb::Status::kOk) Die("delete");
  }

 private:
  static ctdb::tdb::Span Span(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
  static void Die(const char* what) {
    std::fprintf(stderr, "%s failed\n", what);
    std::exit(1);
  }
  std::unique_ptr<ctdb::tdb::Store> store_;
  std::string value_;
};
#endif

namespace {

constexpr int kMutexFlags = 4096 | 2048;  // TDB_MUTEX_LOCKING | TDB_INCOMPATIBLE_HASH
constexpr int kFcntlFlags = 2048;         // TDB_INCOMPATIBLE_HASH: same hash in both modes

template <typename F>
double OpsPerSecond(size_t n, F&& body) {
  const auto start = std::chrono::steady_clock::now();
  body();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return n / secs;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: store_bench FILE RECORDS HASH_SIZE MUTEX\n");
    return 2;
  }
  const size_t n = std::strtoul(argv[2], nullptr, 10);
  const unsigned hash_size = std::strtoul(argv[3], nullptr, 10);
  const int flags = std::atoi(argv[4]) ? kMutexFlags : kFcntlFlags;
  std::vector<std::string> keys(n);
  char buf[32];
  for (size_t i = 0; i < n; i++) {
    std::snprintf(buf, sizeof(buf), "key-%012zu", i);  // 16 bytes
    keys[i] = buf;
  }
  const std::string value(100, 'v');
  Db db(argv[1], hash_size, flags);
  const double store = OpsPerSecond(n, [&] {
    for (const auto& k : keys) db.Store(k, value);
  });
  size_t bytes = 0;
  const double fetch = OpsPerSecond(n, [&] {
    for (const auto& k : keys) bytes += db.Fetch(k);
  });
  long visited = 0;
  const double traverse = OpsPerSecond(n, [&] { visited = db.Traverse(); });
  const double del = OpsPerSecond(n, [&] {
    for (const auto& k : keys) db.Delete(k);
  });
  if (bytes != n * value.size() || visited != static_cast<long>(n)) {
    std::fprintf(stderr, "wrong results: %zu bytes, %ld records\n", bytes, visited);
    return 1;
  }
  std::printf("{\"store\":%.0f,\"fetch\":%.0f,\"traverse\":%.0f,\"delete\":%.0f}\n", store, fetch, traverse, del);
  return 0;
}
