// N-API binding of the tdb store (native module `tdb`). Hot paths return an int status
// (negative TDB error) and write into caller-supplied buffers; src/store/ turns statuses
// into Errors, once, using lastError().
#include <fcntl.h>

#include <memory>
#include <optional>
#include <string>

#include "module.h"
#include "tdb/check.h"
#include "tdb/store.h"

namespace ctdb::tdb {
namespace {

struct Handle {
  std::unique_ptr<Store> store;
  std::string scratch;  // value of the last fetch that did not fit the caller's buffer
};

constexpr napi_type_tag kHandleTag = {0x7d1c2a3b4e5f6071ULL, 0x8293a4b5c6d7e8f9ULL};

Handle* GetHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(env, "expected a tdb handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  bool tagged = false;
  napi_check_object_type_tag(env, info[0], &kHandleTag, &tagged);
  if (!tagged) {
    Napi::TypeError::New(env, "expected a tdb handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  auto* h = info[0].As<Napi::External<Handle>>().Data();
  if (!h->store) {
    Napi::Error::New(env, "tdb handle is closed").ThrowAsJavaScriptException();
    return nullptr;
  }
  return h;
}

bool GetSpan(const Napi::CallbackInfo& info, size_t i, Span* out) {
  if (info.Length() <= i || !info[i].IsBuffer()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Buffer").ThrowAsJavaScriptException();
    return false;
  }
  auto buf = info[i].As<Napi::Buffer<uint8_t>>();
  *out = Span{buf.Data(), buf.Length()};
  return true;
}

Napi::Value StatusValue(Napi::Env env, Status s) { return Napi::Number::New(env, -static_cast<int>(s)); }

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[4].IsNumber()) {
    Napi::TypeError::New(env, "open(path, hashSize, tdbFlags, openFlags, mode)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  OpenOptions options;
  options.hash_size = info[1].As<Napi::Number>().Uint32Value();
  options.tdb_flags = info[2].As<Napi::Number>().Uint32Value();
  options.open_flags = info[3].As<Napi::Number>().Int32Value();
  options.mode = info[4].As<Napi::Number>().Uint32Value();
  std::string error;
  int err = 0;
  Status status = Status::kOk;
  auto store = Store::Open(info[0].As<Napi::String>().Utf8Value(), options, &error, &err, &status);
  if (!store) {
    Napi::Error e = ErrnoError(env, err, error);
    e.Set("tdbStatus", Napi::Number::New(env, static_cast<int>(status)));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* handle = new Handle{std::move(store), {}};
  auto ext = Napi::External<Handle>::New(env, handle, [](Napi::Env, Handle* h) { delete h; });
  napi_type_tag_object(env, ext, &kHandleTag);
  return ext;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  if (Handle* h = GetHandle(info)) h->store.reset();
  return info.Env().Undefined();
}

// fetchInto(h, key, out, offset): >= 0 is the value length (copied to out[offset..] if it
// fits, else kept for copyScratch); < 0 is -status.
Napi::Value FetchInto(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  Span key, out;
  if (h == nullptr || !GetSpan(info, 1, &key) || !GetSpan(info, 2, &out)) return info.Env().Undefined();
  const double offset = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : 0;
  if (!(offset >= 0 && offset <= static_cast<double>(out.size))) {
    Napi::RangeError::New(info.Env(), "fetch offset outside the buffer").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Status s = h->store->Fetch(key, &h->scratch);
  if (s != Status::kOk) return StatusValue(info.Env(), s);
  const size_t at = static_cast<size_t>(offset);
  if (h->scratch.size() <= out.size - at) std::memcpy(const_cast<uint8_t*>(out.data) + at, h->scratch.data(), h->scratch.size());
  return Napi::Number::New(info.Env(), static_cast<double>(h->scratch.size()));
}

Napi::Value CopyScratch(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  if (h == nullptr) return info.Env().Undefined();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(h->scratch.data()), h->scratch.size());
}

template <Status (Store::*Op)(Span)>
Napi::Value KeyOp(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  Span key;
  if (h == nullptr || !GetSpan(info, 1, &key)) return info.Env().Undefined();
  return StatusValue(info.Env(), (h->store.get()->*Op)(key));
}

Napi::Value Put(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  Span key, data;
  if (h == nullptr || !GetSpan(info, 1, &key) || !GetSpan(info, 2, &data)) return info.Env().Undefined();
  const uint32_t mode = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
  if (mode > 2) {
    Napi::RangeError::New(info.Env(), "store mode must be 0 (replace), 1 (insert) or 2 (modify)").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return StatusValue(info.Env(), h->store->Put(key, data, static_cast<StoreMode>(mode)));
}

bool Flag(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && info[i].ToBoolean().Value(); }

Napi::Value ChainLock(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  Span key;
  if (h == nullptr || !GetSpan(info, 1, &key)) return info.Env().Undefined();
  return StatusValue(info.Env(), h->store->ChainLock(key, Flag(info, 2), Flag(info, 3)));
}

Napi::Value ChainUnlock(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  Span key;
  if (h == nullptr || !GetSpan(info, 1, &key)) return info.Env().Undefined();
  return StatusValue(info.Env(), h->store->ChainUnlock(key, Flag(info, 2)));
}

Napi::Value LockAll(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  if (h == nullptr) return info.Env().Undefined();
  return StatusValue(info.Env(), h->store->LockAll(Flag(info, 1), Flag(info, 2)));
}

Napi::Value UnlockAll(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  if (h == nullptr) return info.Env().Undefined();
  return StatusValue(info.Env(), h->store->UnlockAll(Flag(info, 1)));
}

Napi::Value TransactionStart(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  if (h == nullptr) return info.Env().Undefined();
  return StatusValue(info.Env(), h->store->TransactionStart(Flag(info, 1)));
}

template <Status (Store::*Op)()>
Napi::Value PlainOp(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  if (h == nullptr) return info.Env().Undefined();
  return StatusValue(info.Env(), (h->store.get()->*Op)());
}

// Whether a traverse callback's result asks to go on (anything but `false`).
bool GoOn(Napi::Env env, const Napi::Value& result) {
  return !env.IsExceptionPending() && !(result.IsBoolean() && !result.As<Napi::Boolean>().Value());
}

// The traverse callback at argument i, or nothing (with a TypeError thrown).
std::optional<Napi::Function> GetCallback(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsFunction()) {
    Napi::TypeError::New(info.Env(), "traverse callback must be a function").ThrowAsJavaScriptException();
    return std::nullopt;
  }
  return info[i].As<Napi::Function>();
}

// Ends a traverse binding: a pending JS exception wins, then a failed status, then the count.
Napi::Value TraverseResult(Napi::Env env, Status s, uint64_t count) {
  if (env.IsExceptionPending()) return env.Undefined();
  if (s != Status::kOk) return StatusValue(env, s);
  return Napi::Number::New(env, static_cast<double>(count));
}

// traverse(h, write, fn(key, data) => boolean | void): count >= 0, or -status.
Napi::Value Traverse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = GetHandle(info);
  if (h == nullptr) return env.Undefined();
  std::optional<Napi::Function> callback = GetCallback(info, 2);
  if (!callback) return env.Undefined();
  Napi::Function fn = *callback;
  uint64_t count = 0;
  Status s = h->store->Traverse(Flag(info, 1), [&](Span key, Span data) {
    Napi::HandleScope scope(env);
    return GoOn(env, fn.Call({Napi::Buffer<uint8_t>::Copy(env, key.data, key.size),
                              Napi::Buffer<uint8_t>::Copy(env, data.data, data.size)}));
  }, &count);
  return TraverseResult(env, s, count);
}

// traverseReadBatched(h, fn(batch) => boolean | void): a read traverse (Store::TraverseChains)
// that hands records to JS in batches of [u32 key length][u32 data length][key][data]..., one
// call per ~256 KiB instead of one per record. Returns the records copied, or -status.
Napi::Value TraverseReadBatched(const Napi::CallbackInfo& info) {
  constexpr size_t kBatchBytes = 256 * 1024;
  Napi::Env env = info.Env();
  Handle* h = GetHandle(info);
  if (h == nullptr) return env.Undefined();
  std::optional<Napi::Function> callback = GetCallback(info, 1);
  if (!callback) return env.Undefined();
  Napi::Function fn = *callback;
  std::string batch;
  auto deliver = [&]() {
    Napi::HandleScope scope(env);
    const bool more = GoOn(env, fn.Call({Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(batch.data()), batch.size())}));
    batch.clear();
    return more;
  };
  uint64_t count = 0;
  bool stopped = false;
  Status s = h->store->TraverseChains([&](Span key, Span data) {
    const uint32_t lens[2] = {static_cast<uint32_t>(key.size), static_cast<uint32_t>(data.size)};
    batch.append(reinterpret_cast<const char*>(lens), sizeof(lens));
    batch.append(reinterpret_cast<const char*>(key.data), key.size);
    batch.append(reinterpret_cast<const char*>(data.data), data.size);
    if (batch.size() < kBatchBytes) return true;
    stopped = !deliver();
    return !stopped;
  }, &count);
  if (s == Status::kOk && !stopped && !batch.empty()) deliver();
  return TraverseResult(env, s, count);
}

Napi::Value Seqnum(const Napi::CallbackInfo& info) {
  Handle* h = GetHandle(info);
  if (h == nullptr) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), h->store->Seqnum());
}

Napi::Value EnableSeqnum(const Napi::CallbackInfo& info) {
  if (Handle* h = GetHandle(info)) h->store->EnableSeqnum();
  return info.Env().Undefined();
}

Napi::Value IncrementSeqnum(const Napi::CallbackInfo& info) {
  if (Handle* h = GetHandle(info)) h->store->IncrementSeqnum();
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = GetHandle(info);
  if (h == nullptr) return env.Undefined();
  Store* s = h->store.get();
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", s->path());
  o.Set("hashSize", s->hash_size());
  o.Set("tdbFlags", s->tdb_flags());
  o.Set("jenkinsHash", s->hash_kind() == HashKind::kJenkins);
  o.Set("mutexes", s->uses_mutexes());
  o.Set("mapSize", s->map_size());
  o.Set("inTransaction", s->InTransaction());
  return o;
}

Napi::Value LastError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = GetHandle(info);
  if (h == nullptr) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("message", h->store->LastError());
  o.Set("errno", h->store->LastErrno());
  return o;
}

Napi::Value HashKeyFn(const Napi::CallbackInfo& info) {
  Span key;
  if (!GetSpan(info, 0, &key)) return info.Env().Undefined();
  const HashKind kind = Flag(info, 1) ? HashKind::kJenkins : HashKind::kOld;
  return Napi::Number::New(info.Env(), HashKey(kind, key.data, key.size));
}

Napi::Value Check(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = GetHandle(info);
  if (h == nullptr) return env.Undefined();
  CheckReport report;
  CheckStore(*h->store, &report);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", report.ok);
  o.Set("problem", report.problem);
  o.Set("records", static_cast<double>(report.records));
  o.Set("deadRecords", static_cast<double>(report.dead_records));
  o.Set("freeBlocks", static_cast<double>(report.free_blocks));
  o.Set("freeBytes", static_cast<double>(report.free_bytes));
  return o;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("fetchInto", Napi::Function::New(env, FetchInto));
  exports.Set("copyScratch", Napi::Function::New(env, CopyScratch));
  exports.Set("exists", Napi::Function::New(env, KeyOp<&Store::Exists>));
  exports.Set("chainLockMark", Napi::Function::New(env, KeyOp<&Store::ChainLockMark>));
  exports.Set("chainUnlockMark", Napi::Function::New(env, KeyOp<&Store::ChainUnlockMark>));
  exports.Set("delete", Napi::Function::New(env, KeyOp<&Store::Delete>));
  exports.Set("store", Napi::Function::New(env, Put));
  exports.Set("chainLock", Napi::Function::New(env, ChainLock));
  exports.Set("chainUnlock", Napi::Function::New(env, ChainUnlock));
  exports.Set("lockAll", Napi::Function::New(env, LockAll));
  exports.Set("unlockAll", Napi::Function::New(env, UnlockAll));
  exports.Set("transactionStart", Napi::Function::New(env, TransactionStart));
  exports.Set("transactionPrepareCommit", Napi::Function::New(env, PlainOp<&Store::TransactionPrepareCommit>));
  exports.Set("transactionCommit", Napi::Function::New(env, PlainOp<&Store::TransactionCommit>));
  exports.Set("transactionCancel", Napi::Function::New(env, PlainOp<&Store::TransactionCancel>));
  exports.Set("repack", Napi::Function::New(env, PlainOp<&Store::Repack>));
  exports.Set("wipe", Napi::Function::New(env, PlainOp<&Store::Wipe>));
  exports.Set("traverse", Napi::Function::New(env, Traverse));
  exports.Set("traverseReadBatched", Napi::Function::New(env, TraverseReadBatched));
  exports.Set("seqnum", Napi::Function::New(env, Seqnum));
  exports.Set("enableSeqnum", Napi::Function::New(env, EnableSeqnum));
  exports.Set("incrementSeqnum", Napi::Function::New(env, IncrementSeqnum));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("lastError", Napi::Function::New(env, LastError));
  exports.Set("hashKey", Napi::Function::New(env, HashKeyFn));
  exports.Set("check", Napi::Function::New(env, Check));
}

}  // namespace
}  // namespace ctdb::tdb

CTDB_NATIVE_MODULE(tdb, ctdb::tdb::Init);
