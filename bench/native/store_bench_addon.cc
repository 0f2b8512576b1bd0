// Bench-only N-API addon built by bench/suites/store.ts into a temp dir: Debian's libtdb and our
// store core (native/tdb/*.cc) behind one interface, in the same process as the JS facade, so
// the suite can interleave small chunks of work of all three and timing drift hits them alike.
//   open(impl 'libtdb' | 'native', path, hashSize, mutex, records) -> handle (creates the file if missing)
//   run(handle, op, first, count, step) -> thread CPU ns
//     (keys key-%012zu of index (first + j) * step, j < count; 100-byte values). op: 'store',
//     'delete', 'fetch' (each value into a new allocation: tdb_fetch's malloc) or 'fetchInto'
//     (values copied into one reused buffer: tdb_parse_record + memcpy)
//   traverse(handle) -> thread CPU ns (read traverse of every record)
//   close(handle)
#include <fcntl.h>
#include <napi.h>
#include <tdb.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tdb/store.h"

namespace {

constexpr unsigned kKeySize = 16;
constexpr unsigned kValueSize = 100;
// CTDB's volatile-database flags, less CLEAR_IF_FIRST (it would wipe the prefilled file); the
// same hash in both modes. NOSYNC changes no libtdb work here: these ops never sync.
constexpr int kFcntlFlags = TDB_NOSYNC | TDB_DISALLOW_NESTING | TDB_INCOMPATIBLE_HASH;
constexpr int kMutexFlags = kFcntlFlags | TDB_MUTEX_LOCKING;

enum class Op { kStore, kFetch, kFetchInto, kDelete };

// One implementation's database. Each method returns false on failure.
class Db {
 public:
  virtual ~Db() = default;
  virtual bool Store(const uint8_t* key, const uint8_t* value) = 0;
  virtual bool Fetch(const uint8_t* key, size_t* size) = 0;
  virtual bool FetchInto(const uint8_t* key, size_t* size) = 0;
  virtual bool Delete(const uint8_t* key) = 0;
  virtual long Traverse() = 0;
};

class LibtdbDb : public Db {
 public:
  explicit LibtdbDb(TDB_CONTEXT* tdb) : tdb_(tdb) {}
  ~LibtdbDb() override { tdb_close(tdb_); }
  bool Store(const uint8_t* key, const uint8_t* value) override {
    return tdb_store(tdb_, Data(key, kKeySize), Data(value, kValueSize), TDB_REPLACE) == 0;
  }
  bool Fetch(const uint8_t* key, size_t* size) override {
    TDB_DATA d = tdb_fetch(tdb_, Data(key, kKeySize));
    if (d.dptr == nullptr) return false;
    *size = d.dsize;
    free(d.dptr);
    return true;
  }
  bool FetchInto(const uint8_t* key, size_t* size) override {
    auto copy = [](TDB_DATA, TDB_DATA data, void* to) {
      auto* out = static_cast<std::string*>(to);
      out->assign(reinterpret_cast<const char*>(data.dptr), data.dsize);
      return 0;
    };
    if (tdb_parse_record(tdb_, Data(key, kKeySize), copy, &value_) != 0) return false;
    *size = value_.size();
    return true;
  }
  bool Delete(const uint8_t* key) override { return tdb_delete(tdb_, Data(key, kKeySize)) == 0; }
  long Traverse() override { return tdb_traverse_read(tdb_, nullptr, nullptr); }

 private:
  static TDB_DATA Data(const uint8_t* p, size_t n) { return TDB_DATA{const_cast<uint8_t*>(p), n}; }
  TDB_CONTEXT* tdb_;
  std::string value_;
};

class NativeDb : public Db {
 public:
  explicit NativeDb(std::unique_ptr<ctdb::tdb::Store> store) : store_(std::move(store)) {}
  bool Store(const uint8_t* key, const uint8_t* value) override {
    return store_->Put({key, kKeySize}, {value, kValueSize}, ctdb::tdb::StoreMode::kReplace) == ctdb::tdb::Status::kOk;
  }
  bool Fetch(const uint8_t* key, size_t* size) override {
    std::string value;
    if (store_->Fetch({key, kKeySize}, &value) != ctdb::tdb::Status::kOk) return false;
    *size = value.size();
    return true;
  }
  bool FetchInto(const uint8_t* key, size_t* size) override {
    if (store_->Fetch({key, kKeySize}, &value_) != ctdb::tdb::Status::kOk) return false;
    *size = value_.size();
    return true;
  }
  bool Delete(const uint8_t* key) override { return store_->Delete({key, kKeySize}) == ctdb::tdb::Status::kOk; }
  long Traverse() override {
    uint64_t count = 0;
    if (store_->TraverseChains([](ctdb::tdb::Span, ctdb::tdb::Span) { return true; }, &count) != ctdb::tdb::Status::kOk) return -1;
    return static_cast<long>(count);
  }

 private:
  std::unique_ptr<ctdb::tdb::Store> store_;
  std::string value_;
};

struct Bench {
  std::unique_ptr<Db> db;
  std::vector<uint8_t> keys;  // records * kKeySize, no terminators
  size_t records = 0;
  std::string name;
};

uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + ts.tv_nsec;
}

Napi::Value Throw(Napi::Env env, const std::string& what) {
  Napi::Error::New(env, what).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string impl = info[0].As<Napi::String>().Utf8Value();
  const std::string path = info[1].As<Napi::String>().Utf8Value();
  const uint32_t hash_size = info[2].As<Napi::Number>().Uint32Value();
  const int flags = info[3].ToBoolean().Value() ? kMutexFlags : kFcntlFlags;
  auto bench = std::make_unique<Bench>();
  bench->records = info[4].As<Napi::Number>().Uint32Value();
  bench->name = impl + " " + path;
  if (impl == "libtdb") {
    TDB_CONTEXT* tdb = tdb_open(path.c_str(), hash_size, flags, O_RDWR | O_CREAT, 0600);
    if (tdb == nullptr) return Throw(env, "tdb_open " + path + " failed");
    bench->db = std::make_unique<LibtdbDb>(tdb);
  } else if (impl == "native") {
    ctdb::tdb::OpenOptions options;
    options.hash_size = hash_size;
    options.tdb_flags = flags;
    options.open_flags = O_RDWR | O_CREAT;
    std::string error;
    int err = 0;
    auto store = ctdb::tdb::Store::Open(path, options, &error, &err);
    if (!store) return Throw(env, error);
    bench->db = std::make_unique<NativeDb>(std::move(store));
  } else {
    return Throw(env, "unknown implementation " + impl);
  }
  bench->keys.resize(bench->records * kKeySize + 1);
  for (size_t i = 0; i < bench->records; i++) {
    std::snprintf(reinterpret_cast<char*>(&bench->keys[i * kKeySize]), kKeySize + 1, "key-%012zu", i);
  }
  return Napi::External<Bench>::New(env, bench.release(), [](Napi::Env, Bench* b) { delete b; });
}

Bench* GetBench(const Napi::CallbackInfo& info) { return info[0].As<Napi::External<Bench>>().Data(); }

Napi::Value Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bench* b = GetBench(info);
  if (!b->db) return Throw(env, "closed");
  const std::string op_name = info[1].As<Napi::String>().Utf8Value();
  const Op op = op_name == "store"   ? Op::kStore
                : op_name == "fetch" ? Op::kFetch
                : op_name == "fetchInto" ? Op::kFetchInto
                                     : Op::kDelete;
  const size_t first = info[2].As<Napi::Number>().Uint32Value();
  const size_t count = info[3].As<Napi::Number>().Uint32Value();
  const size_t step = info[4].As<Napi::Number>().Uint32Value();
  if ((first + count - 1) * step >= b->records) return Throw(env, "key index out of range");
  const std::string value(kValueSize, 'v');
  const auto* v = reinterpret_cast<const uint8_t*>(value.data());
  size_t bytes = 0;
  bool ok = true;
  const uint64_t start = ThreadCpuNs();
  for (size_t j = 0; j < count && ok; j++) {
    const uint8_t* key = &b->keys[(first + j) * step * kKeySize];
    size_t size = 0;
    switch (op) {
      case Op::kStore: ok = b->db->Store(key, v); break;
      case Op::kFetch: ok = b->db->Fetch(key, &size), bytes += size; break;
      case Op::kFetchInto: ok = b->db->FetchInto(key, &size), bytes += size; break;
      case Op::kDelete: ok = b->db->Delete(key); break;
    }
  }
  const uint64_t spent = ThreadCpuNs() - start;
  if (!ok) return Throw(env, b->name + ": " + op_name + " failed");
  if ((op == Op::kFetch || op == Op::kFetchInto) && bytes != count * kValueSize) return Throw(env, b->name + ": fetch read back the wrong sizes");
  return Napi::Number::New(env, static_cast<double>(spent));
}

Napi::Value Traverse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bench* b = GetBench(info);
  if (!b->db) return Throw(env, "closed");
  const uint64_t start = ThreadCpuNs();
  const long visited = b->db->Traverse();
  const uint64_t spent = ThreadCpuNs() - start;
  Napi::Object result = Napi::Object::New(env);
  result.Set("cpuNs", static_cast<double>(spent));
  result.Set("records", static_cast<double>(visited));
  return result;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  GetBench(info)->db.reset();
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("traverse", Napi::Function::New(env, Traverse));
  exports.Set("close", Napi::Function::New(env, Close));
  return exports;
}

}  // namespace

NODE_API_MODULE(store_bench, Init)
