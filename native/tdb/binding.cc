// N-API binding of the tdb store (native module `tdb`). open() returns a plain object whose
// methods are bound to that one open file through their N-API function data, so a call has no
// handle argument to look up and type-check. The hot methods (fetchInto, exists, store, delete)
// use the C N-API directly: node-addon-api's checked wrappers cost about twice as much per call,
// which is as much as a whole fetch. Status-returning methods give a count/length >= 0, or minus
// a TDB error; src/store/ turns those into Errors, once, using lastError().
#include <fcntl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "module.h"
#include "tdb/check.h"
#include "tdb/store.h"

namespace ctdb::tdb {
namespace {

// Shared by the methods of one open file; freed when the last of them is garbage collected.
struct Handle {
  std::unique_ptr<Store> store;
  std::string scratch;  // value of the last fetch that did not fit the caller's buffer
  int bound_methods = 0;
};

napi_value Throw(napi_env env, bool type_error, const std::string& message) {
  if (type_error) napi_throw_type_error(env, nullptr, message.c_str());
  else napi_throw_error(env, nullptr, message.c_str());
  return nullptr;
}

// --- hot methods (C N-API)

// The open file a hot method is bound to, and its first N arguments (missing ones undefined).
// nullptr, with a JS exception pending, if the file is closed.
template <size_t N>
Store* HotArgs(napi_env env, napi_callback_info cbinfo, napi_value (&argv)[N], Handle** handle = nullptr) {
  size_t argc = N;
  void* data = nullptr;
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  auto* h = static_cast<Handle*>(data);
  if (!h->store) return Throw(env, false, "tdb handle is closed"), nullptr;
  if (handle != nullptr) *handle = h;
  return h->store.get();
}

bool HotSpan(napi_env env, napi_value value, const char* what, Span* out) {
  void* data = nullptr;
  size_t length = 0;
  if (napi_get_buffer_info(env, value, &data, &length) != napi_ok) {
    Throw(env, true, std::string(what) + " must be a Buffer");
    return false;
  }
  *out = Span{static_cast<const uint8_t*>(data), length};
  return true;
}

napi_value HotNumber(napi_env env, double value) {
  napi_value result = nullptr;
  napi_create_double(env, value, &result);
  return result;
}

napi_value HotStatus(napi_env env, Status s) { return HotNumber(env, -static_cast<int>(s)); }

// fetchInto(key, out, offset): >= 0 is the value length (copied to out[offset..] if it fits,
// else kept for copyScratch); < 0 is -status. One copy, straight from the mapping.
napi_value FetchInto(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[3];
  Handle* h = nullptr;
  Store* store = HotArgs(env, cbinfo, argv, &h);
  Span key, out;
  double offset = 0;
  if (store == nullptr || !HotSpan(env, argv[0], "key", &key) || !HotSpan(env, argv[1], "fetch buffer", &out)) return nullptr;
  if (napi_get_value_double(env, argv[2], &offset) != napi_ok || !(offset >= 0 && offset <= static_cast<double>(out.size)))
    return Throw(env, false, "fetch offset outside the buffer");
  struct Destination {
    uint8_t* at;
    size_t room;
    std::string* scratch;
    size_t size;
  } to{const_cast<uint8_t*>(out.data) + static_cast<size_t>(offset), out.size - static_cast<size_t>(offset), &h->scratch, 0};
  Status s = store->Parse(key, [](void* context, Span value) {
    auto* d = static_cast<Destination*>(context);
    d->size = value.size;
    if (value.size <= d->room) std::memcpy(d->at, value.data, value.size);
    else d->scratch->assign(reinterpret_cast<const char*>(value.data), value.size);
  }, &to);
  if (s != Status::kOk) return HotStatus(env, s);
  return HotNumber(env, static_cast<double>(to.size));
}

template <Status (Store::*Op)(Span)>
napi_value KeyOp(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[1];
  Store* store = HotArgs(env, cbinfo, argv);
  Span key;
  if (store == nullptr || !HotSpan(env, argv[0], "key", &key)) return nullptr;
  return HotStatus(env, (store->*Op)(key));
}

// store(key, data, mode)
napi_value Put(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[3];
  Store* store = HotArgs(env, cbinfo, argv);
  Span key, data;
  uint32_t mode = 0;
  if (store == nullptr || !HotSpan(env, argv[0], "key", &key) || !HotSpan(env, argv[1], "data", &data)) return nullptr;
  if (napi_get_value_uint32(env, argv[2], &mode) != napi_ok || mode > 2)
    return Throw(env, false, "store mode must be 0 (replace), 1 (insert) or 2 (modify)");
  return HotStatus(env, store->Put(key, data, static_cast<StoreMode>(mode)));
}

// The records of a storeMany/updateMany call: `buffer`, and `spans` as [key offset, key length,
// value offset, value length] per record, all inside the buffer. nullptr (a JS exception
// pending) when the arguments are not that.
const uint32_t* RecordSpans(napi_env env, napi_value* argv, const char* what, Span* buffer, size_t* count) {
  if (!HotSpan(env, argv[0], "records buffer", buffer)) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  bool is_typed = false;
  if (napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_uint32_array ||
      length % 4 != 0)
    return Throw(env, true, "spans must be a Uint32Array of [key offset, key length, value offset, value length] quadruples"), nullptr;
  const auto* spans = static_cast<const uint32_t*>(data);
  for (size_t i = 0; i < length; i += 4)
    if (uint64_t{spans[i]} + spans[i + 1] > buffer->size || uint64_t{spans[i + 2]} + spans[i + 3] > buffer->size)
      return Throw(env, false, "record " + std::to_string(i / 4) + " of " + what + " lies outside the buffer"), nullptr;
  *count = length / 4;
  return spans;
}

// storeMany(buffer, spans): replace-stores the records (see RecordSpans). The count on success;
// -status of the first store that failed (those before it stay stored). One call for a whole
// rec_buffer of a recovery push.
napi_value PutMany(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[2];
  Store* store = HotArgs(env, cbinfo, argv);
  Span buffer;
  size_t count = 0;
  const uint32_t* spans = store == nullptr ? nullptr : RecordSpans(env, argv, "storeMany", &buffer, &count);
  if (spans == nullptr) return nullptr;
  for (size_t i = 0; i < count; i++, spans += 4) {
    const Status s = store->Put(Span{buffer.data + spans[0], spans[1]}, Span{buffer.data + spans[2], spans[3]}, StoreMode::kReplace);
    if (s != Status::kOk) return HotStatus(env, s);
  }
  return HotNumber(env, static_cast<double>(count));
}

// Whether `incoming` may replace `current` (empty when there is none) in a replicated update:
// both start with a header whose first 8 bytes are the rsn (u64); a copy without a whole header
// counts as rsn 0. A lower rsn may be replaced; otherwise only by the same value.
bool MayReplace(Span current, Span incoming, uint32_t header) {
  uint64_t old_rsn = 0, new_rsn = 0;
  if (current.size >= header) std::memcpy(&old_rsn, current.data, 8);
  std::memcpy(&new_rsn, incoming.data, 8);
  if (old_rsn < new_rsn) return true;
  const size_t old_value = current.size > header ? current.size - header : 0;
  return old_value == incoming.size - header && (old_value == 0 || std::memcmp(current.data + header, incoming.data + header, old_value) == 0);
}

// updateMany(buffer, spans, headerBytes): storeMany for replicated updates (UPDATE_RECORD on a
// persistent database): each record only where MayReplace allows it. Stops at the first record
// it does not allow, or whose value is shorter than the header: returns the number stored
// before it (all of them when there is none), or -status.
napi_value UpdateMany(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[3];
  Store* store = HotArgs(env, cbinfo, argv);
  Span buffer;
  size_t count = 0;
  uint32_t header = 0;
  const uint32_t* spans = store == nullptr ? nullptr : RecordSpans(env, argv, "updateMany", &buffer, &count);
  if (spans == nullptr) return nullptr;
  if (napi_get_value_uint32(env, argv[2], &header) != napi_ok || header < 8) return Throw(env, true, "headerBytes must be a number of at least 8");
  struct Check {
    Span incoming;
    uint32_t header;
    bool allowed;
  };
  for (size_t i = 0; i < count; i++, spans += 4) {
    const Span key{buffer.data + spans[0], spans[1]}, data{buffer.data + spans[2], spans[3]};
    if (data.size < header) return HotNumber(env, static_cast<double>(i));
    Check check{data, header, false};
    const Status found = store->Parse(key, [](void* context, Span current) {
      auto* c = static_cast<Check*>(context);
      c->allowed = MayReplace(current, c->incoming, c->header);
    }, &check);
    if (found == Status::kNoExist) check.allowed = MayReplace(Span{data.data, 0}, data, header);
    else if (found != Status::kOk) return HotStatus(env, found);
    if (!check.allowed) return HotNumber(env, static_cast<double>(i));
    const Status s = store->Put(key, data, StoreMode::kReplace);
    if (s != Status::kOk) return HotStatus(env, s);
  }
  return HotNumber(env, static_cast<double>(count));
}

// --- the other methods (node-addon-api)

using Method = Napi::Value (*)(const Napi::CallbackInfo& info, Handle& h);

template <Method M>
napi_value Bound(napi_env env, napi_callback_info cbinfo) {
  Napi::CallbackInfo info(env, cbinfo);
  auto* h = static_cast<Handle*>(info.Data());
  if (!h->store) return Throw(env, false, "tdb handle is closed");
  return M(info, *h);
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

bool Flag(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && info[i].ToBoolean().Value(); }

napi_value Close(napi_env env, napi_callback_info cbinfo) {
  void* data = nullptr;
  size_t argc = 0;
  napi_get_cb_info(env, cbinfo, &argc, nullptr, nullptr, &data);
  static_cast<Handle*>(data)->store.reset();
  return nullptr;
}

Napi::Value CopyScratch(const Napi::CallbackInfo& info, Handle& h) {
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(h.scratch.data()), h.scratch.size());
}

template <Status (Store::*Op)(Span)>
Napi::Value KeyMethod(const Napi::CallbackInfo& info, Handle& h) {
  Span key;
  if (!GetSpan(info, 0, &key)) return info.Env().Undefined();
  return StatusValue(info.Env(), (h.store.get()->*Op)(key));
}

Napi::Value ChainLock(const Napi::CallbackInfo& info, Handle& h) {
  Span key;
  if (!GetSpan(info, 0, &key)) return info.Env().Undefined();
  return StatusValue(info.Env(), h.store->ChainLock(key, Flag(info, 1), Flag(info, 2)));
}

Napi::Value ChainUnlock(const Napi::CallbackInfo& info, Handle& h) {
  Span key;
  if (!GetSpan(info, 0, &key)) return info.Env().Undefined();
  return StatusValue(info.Env(), h.store->ChainUnlock(key, Flag(info, 1)));
}

Napi::Value LockAll(const Napi::CallbackInfo& info, Handle& h) {
  return StatusValue(info.Env(), h.store->LockAll(Flag(info, 0), Flag(info, 1)));
}

Napi::Value UnlockAll(const Napi::CallbackInfo& info, Handle& h) {
  return StatusValue(info.Env(), h.store->UnlockAll(Flag(info, 0)));
}

Napi::Value TransactionStart(const Napi::CallbackInfo& info, Handle& h) {
  return StatusValue(info.Env(), h.store->TransactionStart(Flag(info, 0)));
}

template <Status (Store::*Op)()>
Napi::Value PlainOp(const Napi::CallbackInfo& info, Handle& h) {
  return StatusValue(info.Env(), (h.store.get()->*Op)());
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

// traverse(write, fn(key, data) => boolean | void): count >= 0, or -status.
Napi::Value Traverse(const Napi::CallbackInfo& info, Handle& h) {
  Napi::Env env = info.Env();
  std::optional<Napi::Function> callback = GetCallback(info, 1);
  if (!callback) return env.Undefined();
  Napi::Function fn = *callback;
  uint64_t count = 0;
  Status s = h.store->Traverse(Flag(info, 0), [&](Span key, Span data) {
    Napi::HandleScope scope(env);
    return GoOn(env, fn.Call({Napi::Buffer<uint8_t>::Copy(env, key.data, key.size),
                              Napi::Buffer<uint8_t>::Copy(env, data.data, data.size)}));
  }, &count);
  return TraverseResult(env, s, count);
}

// Records of a chain walk copied into one growing buffer, each behind a few u32 fields, that JS
// gets in pieces: a copy of the bytes so far (after `reserved` leading bytes left to the
// caller) and how many records they hold.
class RecordBatch {
 public:
  RecordBatch(Napi::Env env, Napi::Function fn, size_t reserved) : env_(env), fn_(fn), reserved_(reserved), bytes_(reserved, '\0') {}

  template <size_t N>
  void Append(const uint32_t (&fields)[N], Span key, Span data) {
    bytes_.append(reinterpret_cast<const char*>(fields), sizeof(fields));
    bytes_.append(reinterpret_cast<const char*>(key.data), key.size);
    bytes_.append(reinterpret_cast<const char*>(data.data), data.size);
    records_++;
  }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return records_ == 0; }

  // Calls fn(buffer, records) and starts again empty; false when fn asks to stop (or threw).
  bool Deliver() {
    Napi::HandleScope scope(env_);
    Napi::Value buffer = Napi::Buffer<uint8_t>::Copy(env_, reinterpret_cast<const uint8_t*>(bytes_.data()), bytes_.size());
    const bool more = GoOn(env_, fn_.Call({buffer, Napi::Number::New(env_, records_)}));
    bytes_.resize(reserved_);
    records_ = 0;
    return more;
  }

 private:
  Napi::Env env_;
  Napi::Function fn_;
  size_t reserved_;
  std::string bytes_;
  uint32_t records_ = 0;
};

// traverseReadBatched(fn(batch) => boolean | void[, fromChain]): a read traverse
// (Store::TraverseChains) that hands records to JS in batches of
// [u32 key length][u32 data length][key][data]..., one call per ~256 KiB instead of one per
// record. Returns the records copied, or -status. With fromChain it walks one slice, from that
// chain until about one batch was copied, and returns the chain to resume at (the hash size
// once the walk is complete): a daemon spreads a big walk over event-loop turns that way.
Napi::Value TraverseReadBatched(const Napi::CallbackInfo& info, Handle& h) {
  constexpr size_t kBatchBytes = 256 * 1024;
  Napi::Env env = info.Env();
  std::optional<Napi::Function> callback = GetCallback(info, 0);
  if (!callback) return env.Undefined();
  const bool slice = info.Length() > 1 && info[1].IsNumber();
  const int64_t from = slice ? info[1].As<Napi::Number>().Int64Value() : 0;
  if (from < 0 || from > h.store->hash_size()) {
    Napi::RangeError::New(env, "traverse: chain " + std::to_string(from) + " outside the hash table of " + h.store->path()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  RecordBatch batch(env, *callback, 0);
  uint64_t count = 0;
  uint32_t next = 0;
  bool stopped = false;
  Status s = h.store->TraverseChains([&](Span key, Span data) {
    batch.Append({static_cast<uint32_t>(key.size), static_cast<uint32_t>(data.size)}, key, data);
    if (slice || batch.size() < kBatchBytes) return true;
    stopped = !batch.Deliver();
    return !stopped;
  }, &count, static_cast<uint32_t>(from), slice ? kBatchBytes : SIZE_MAX, &next);
  if (s == Status::kOk && !stopped && !batch.empty() && !batch.Deliver()) next = h.store->hash_size();
  return TraverseResult(env, s, slice ? next : count);
}

// The fixed part of a record's ctdb_rec_data: length, reqid (0), key length, data length.
struct RecDataHead {
  uint32_t fields[4];
  RecDataHead(Span key, Span data)
      : fields{static_cast<uint32_t>(16 + key.size + data.size), 0, static_cast<uint32_t>(key.size), static_cast<uint32_t>(data.size)} {}
};

// traverseRecBuffers(fn(buffer, records) => boolean | void, limit): the whole database (as
// TraverseChains reads it) in CTDB's rec_buffer wire layout, as a recovery pull sends it: each
// buffer has 8 bytes left at the start for the caller's header (db_id, record count), then
// ctdb_rec_data records (u32 length, u32 reqid = 0, u32 key length, u32 data length, key,
// data). A buffer is handed over once it holds `limit` bytes or more. Returns the records
// copied, or -status.
Napi::Value TraverseRecBuffers(const Napi::CallbackInfo& info, Handle& h) {
  constexpr size_t kBufferHeader = 8;
  Napi::Env env = info.Env();
  std::optional<Napi::Function> callback = GetCallback(info, 0);
  if (!callback) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsNumber() || info[1].As<Napi::Number>().DoubleValue() < 1) {
    Napi::TypeError::New(env, "traverse: rec_buffer limit must be a positive number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double limit = info[1].As<Napi::Number>().DoubleValue();
  RecordBatch buffer(env, *callback, kBufferHeader);
  uint64_t count = 0;
  bool stopped = false;
  Status s = h.store->TraverseChains([&](Span key, Span data) {
    buffer.Append(RecDataHead(key, data).fields, key, data);
    if (static_cast<double>(buffer.size()) < limit) return true;
    stopped = !buffer.Deliver();
    return !stopped;
  }, &count);
  if (s == Status::kOk && !stopped && !buffer.empty()) buffer.Deliver();
  return TraverseResult(env, s, count);
}

// A SHA-256 of rec_data records built over several digestRecData calls (slices of chains).
struct RecDataDigest {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
  uint64_t count = 0, unusual = 0;
  bool hashed = true;
};

RecDataDigest* DigestState(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "digest: state from newRecDataDigest() expected").ThrowAsJavaScriptException();
    return nullptr;
  }
  return info[0].As<Napi::External<RecDataDigest>>().Data();
}

// newRecDataDigest(): the state digestRecData and finishRecDataDigest work on.
Napi::Value NewRecDataDigest(const Napi::CallbackInfo& info, Handle& h) {
  Napi::Env env = info.Env();
  auto digest = std::make_unique<RecDataDigest>();
  if (!digest->ctx || EVP_DigestInit_ex(digest->ctx.get(), EVP_sha256(), nullptr) != 1) {
    Napi::Error::New(env, "digest of " + h.store->path() + ": cannot start SHA-256").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::External<RecDataDigest>::New(env, digest.release(), [](Napi::Env, RecDataDigest* d) { delete d; });
}

// digestRecData(state, minData, flagsMask, fromChain, sliceBytes): adds to the SHA-256 the
// rec_data records traverseRecBuffers would lay out, in its order, without building any buffer,
// for the chains from fromChain on until about sliceBytes of records were read. Counts the
// records, and as unusual those whose data is at most minData bytes or whose u32 at data offset
// 16 (the ltdb header's flags) has a bit of flagsMask. Returns the chain to go on from (the hash
// size when done), or -status.
Napi::Value DigestRecData(const Napi::CallbackInfo& info, Handle& h) {
  Napi::Env env = info.Env();
  constexpr size_t kFlagsOffset = 16;
  RecDataDigest* digest = DigestState(info);
  if (digest == nullptr) return env.Undefined();
  if (info.Length() < 5 || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber()) {
    Napi::TypeError::New(env, "digestRecData(state, minData, flagsMask, fromChain, sliceBytes)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint32_t min_data = info[1].As<Napi::Number>().Uint32Value();
  const uint32_t flags_mask = info[2].As<Napi::Number>().Uint32Value();
  const uint32_t from = info[3].As<Napi::Number>().Uint32Value();
  const double slice = info[4].As<Napi::Number>().DoubleValue();
  const size_t slice_bytes = slice >= static_cast<double>(SIZE_MAX) ? SIZE_MAX : static_cast<size_t>(std::max(slice, 1.0));
  // Records are gathered into a chunk and hashed a chunk at a time: one update per record
  // field would cost more than the hashing.
  constexpr size_t kChunk = 256 * 1024;
  std::string chunk;
  chunk.reserve(kChunk);
  auto flush = [&] {
    digest->hashed = digest->hashed && EVP_DigestUpdate(digest->ctx.get(), chunk.data(), chunk.size()) == 1;
    chunk.clear();
  };
  uint64_t count = 0;
  uint32_t next = 0;
  Status s = h.store->TraverseChains([&](Span key, Span data) {
    const RecDataHead head(key, data);
    chunk.append(reinterpret_cast<const char*>(head.fields), sizeof(head.fields));
    chunk.append(reinterpret_cast<const char*>(key.data), key.size);
    chunk.append(reinterpret_cast<const char*>(data.data), data.size);
    uint32_t flags = 0;
    if (data.size >= kFlagsOffset + 4) std::memcpy(&flags, data.data + kFlagsOffset, 4);
    if (data.size <= min_data || (flags & flags_mask) != 0) digest->unusual++;
    if (chunk.size() >= kChunk) flush();
    return true;
  }, &count, from, slice_bytes, &next);
  if (s != Status::kOk) return StatusValue(env, s);
  flush();
  digest->count += count;
  return Napi::Number::New(env, next);
}

// finishRecDataDigest(state, out): writes the SHA-256 into the 32-byte `out`; returns [records, unusual].
Napi::Value FinishRecDataDigest(const Napi::CallbackInfo& info, Handle& h) {
  Napi::Env env = info.Env();
  constexpr size_t kDigestBytes = 32;
  RecDataDigest* digest = DigestState(info);
  if (digest == nullptr) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsBuffer() || info[1].As<Napi::Buffer<uint8_t>>().Length() != kDigestBytes) {
    Napi::TypeError::New(env, "finishRecDataDigest(state, out: 32-byte Buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  unsigned int length = 0;
  if (!digest->hashed || EVP_DigestFinal_ex(digest->ctx.get(), info[1].As<Napi::Buffer<uint8_t>>().Data(), &length) != 1 || length != kDigestBytes) {
    Napi::Error::New(env, "digest of " + h.store->path() + ": SHA-256 failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, static_cast<double>(digest->count)));
  result.Set(1u, Napi::Number::New(env, static_cast<double>(digest->unusual)));
  return result;
}

Napi::Value Seqnum(const Napi::CallbackInfo& info, Handle& h) { return Napi::Number::New(info.Env(), h.store->Seqnum()); }

Napi::Value EnableSeqnum(const Napi::CallbackInfo& info, Handle& h) {
  h.store->EnableSeqnum();
  return info.Env().Undefined();
}

Napi::Value IncrementSeqnum(const Napi::CallbackInfo& info, Handle& h) {
  h.store->IncrementSeqnum();
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info, Handle& h) {
  Store* s = h.store.get();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("path", s->path());
  o.Set("hashSize", s->hash_size());
  o.Set("tdbFlags", s->tdb_flags());
  o.Set("jenkinsHash", s->hash_kind() == HashKind::kJenkins);
  o.Set("mutexes", s->uses_mutexes());
  o.Set("mapSize", s->map_size());
  o.Set("inTransaction", s->InTransaction());
  return o;
}

Napi::Value LastError(const Napi::CallbackInfo& info, Handle& h) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("message", h.store->LastError());
  o.Set("errno", h.store->LastErrno());
  return o;
}

Napi::Value Check(const Napi::CallbackInfo& info, Handle& h) {
  CheckReport report;
  CheckStore(*h.store, &report);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("ok", report.ok);
  o.Set("problem", report.problem);
  o.Set("records", static_cast<double>(report.records));
  o.Set("deadRecords", static_cast<double>(report.dead_records));
  o.Set("freeBlocks", static_cast<double>(report.free_blocks));
  o.Set("freeBytes", static_cast<double>(report.free_bytes));
  return o;
}

struct MethodEntry {
  const char* name;
  napi_callback callback;
};

constexpr MethodEntry kMethods[] = {
    {"close", Close},
    {"fetchInto", FetchInto},
    {"copyScratch", Bound<CopyScratch>},
    {"exists", KeyOp<&Store::Exists>},
    {"delete", KeyOp<&Store::Delete>},
    {"store", Put},
    {"storeMany", PutMany},
    {"updateMany", UpdateMany},
    {"chainLock", Bound<ChainLock>},
    {"chainUnlock", Bound<ChainUnlock>},
    {"chainLockMark", Bound<KeyMethod<&Store::ChainLockMark>>},
    {"chainUnlockMark", Bound<KeyMethod<&Store::ChainUnlockMark>>},
    {"lockAll", Bound<LockAll>},
    {"unlockAll", Bound<UnlockAll>},
    {"transactionStart", Bound<TransactionStart>},
    {"transactionPrepareCommit", Bound<PlainOp<&Store::TransactionPrepareCommit>>},
    {"transactionCommit", Bound<PlainOp<&Store::TransactionCommit>>},
    {"transactionCancel", Bound<PlainOp<&Store::TransactionCancel>>},
    {"repack", Bound<PlainOp<&Store::Repack>>},
    {"wipe", Bound<PlainOp<&Store::Wipe>>},
    {"traverse", Bound<Traverse>},
    {"traverseReadBatched", Bound<TraverseReadBatched>},
    {"traverseRecBuffers", Bound<TraverseRecBuffers>},
    {"newRecDataDigest", Bound<NewRecDataDigest>},
    {"digestRecData", Bound<DigestRecData>},
    {"finishRecDataDigest", Bound<FinishRecDataDigest>},
    {"seqnum", Bound<Seqnum>},
    {"enableSeqnum", Bound<EnableSeqnum>},
    {"incrementSeqnum", Bound<IncrementSeqnum>},
    {"info", Bound<Info>},
    {"lastError", Bound<LastError>},
    {"check", Bound<Check>},
};

void ReleaseMethod(napi_env, void* data, void*) {
  auto* h = static_cast<Handle*>(data);
  if (--h->bound_methods == 0) delete h;
}

// open(path, hashSize, tdbFlags, openFlags, mode): the bound methods of the open file.
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
  auto* handle = new Handle{std::move(store), {}, 0};
  Napi::Object methods = Napi::Object::New(env);
  for (const MethodEntry& m : kMethods) {
    napi_value fn = nullptr;
    if (napi_create_function(env, m.name, NAPI_AUTO_LENGTH, m.callback, handle, &fn) != napi_ok ||
        napi_add_finalizer(env, fn, handle, ReleaseMethod, nullptr, nullptr) != napi_ok) {
      handle->store.reset();
      if (handle->bound_methods == 0) delete handle;
      Napi::Error::New(env, "cannot create the tdb methods").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    handle->bound_methods++;
    methods.Set(m.name, Napi::Value(env, fn));
  }
  return methods;
}

Napi::Value HashKeyFn(const Napi::CallbackInfo& info) {
  Span key;
  if (!GetSpan(info, 0, &key)) return info.Env().Undefined();
  const HashKind kind = Flag(info, 1) ? HashKind::kJenkins : HashKind::kOld;
  return Napi::Number::New(info.Env(), HashKey(kind, key.data, key.size));
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("hashKey", Napi::Function::New(env, HashKeyFn));
}

}  // namespace
}  // namespace ctdb::tdb

CTDB_NATIVE_MODULE(tdb, ctdb::tdb::Init);
