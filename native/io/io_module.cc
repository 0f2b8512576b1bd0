// JS bindings of the io module. The TypeScript facade (src/transport/native-io.ts)
// validates arguments first; the checks here keep a bad direct call from crashing.
#include <cmath>
#include <string>
#include <type_traits>

#include "io/io_context.h"
#include "module.h"

namespace ctdb::io {
namespace {

IoContext* Context(const Napi::CallbackInfo& info) { return static_cast<IoContext*>(info.Data()); }

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, "io." + message).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool IsUint(const Napi::Value& value, double max) {
  if (!value.IsNumber()) return false;
  const double number = value.As<Napi::Number>().DoubleValue();
  return number >= 0 && number <= max && std::floor(number) == number;
}

uint32_t ToUint32(const Napi::Value& value) { return value.As<Napi::Number>().Uint32Value(); }

// A Buffer or Uint8Array's bytes, without copying.
bool BytesOf(const Napi::Value& value, const uint8_t** data, size_t* length) {
  if (!value.IsTypedArray()) return false;
  napi_typedarray_type type;
  void* bytes = nullptr;
  if (napi_get_typedarray_info(value.Env(), value, &type, length, &bytes, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    return false;
  }
  *data = static_cast<const uint8_t*>(bytes);
  return true;
}

#define REQUIRE_STARTED(info)                                                 \
  if (!Context(info)->started()) return ThrowType(info.Env(), "init() must be called first")

#define REQUIRE_UINT(info, index, max, what)                                  \
  if (!IsUint(info[index], max)) return ThrowType(info.Env(), what)

// Runs `open(&id)`; the new listener or connection id, or the socket error thrown.
template <typename Open>
Napi::Value OpenSocket(Napi::Env env, Open open) {
  uint32_t id = 0;
  const SocketResult result = open(&id);
  if (result.fd < 0) {
    ErrnoError(env, result.err, result.what).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, id);
}

std::optional<IpEndpoint> EndpointArg(const Napi::CallbackInfo& info, size_t index, uint16_t port) {
  if (!info[index].IsString()) return std::nullopt;
  return ParseIpEndpoint(info[index].As<Napi::String>().Utf8Value(), port);
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (Context(info)->started()) {
    Napi::Error::New(env, "io.init(): already initialised in this process").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!info[0].IsObject()) return ThrowType(env, "init(): callbacks must be an object");
  Napi::Object callbacks = info[0].As<Napi::Object>();
  for (const char* name : {"packets", "accepted", "connected", "closed"}) {
    if (!callbacks.Get(name).IsFunction()) return ThrowType(env, std::string("init(): callbacks.") + name + " must be a function");
  }
  IoOptions options;
  if (info[1].IsObject()) {
    Napi::Object given = info[1].As<Napi::Object>();
    const Napi::Value max_packet = given.Get("maxPacketSize");
    const Napi::Value max_queue = given.Get("maxQueuePackets");
    if (!max_packet.IsUndefined()) {
      if (!IsUint(max_packet, UINT32_MAX) || ToUint32(max_packet) < kHeaderSize) {
        return ThrowType(env, "init(): maxPacketSize must be an integer from 32 to 4294967295");
      }
      options.max_packet = ToUint32(max_packet);
    }
    if (!max_queue.IsUndefined()) {
      if (!IsUint(max_queue, UINT32_MAX) || ToUint32(max_queue) == 0) {
        return ThrowType(env, "init(): maxQueuePackets must be a positive integer");
      }
      options.max_queue_packets = ToUint32(max_queue);
    }
  }
  Context(info)->Start(callbacks, options);
  return env.Undefined();
}

Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  REQUIRE_STARTED(info);
  if (!info[0].IsString()) return ThrowType(env, "listenUnix(): path must be a string");
  REQUIRE_UINT(info, 1, 07777, "listenUnix(): mode must be a file mode such as 0o700");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  return OpenSocket(env, [&](uint32_t* id) { return Context(info)->ListenUnix(path, ToUint32(info[1]), id); });
}

Napi::Value ListenTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  REQUIRE_STARTED(info);
  REQUIRE_UINT(info, 1, 65535, "listenTcp(): port must be an integer from 0 to 65535");
  const std::optional<IpEndpoint> local = EndpointArg(info, 0, static_cast<uint16_t>(ToUint32(info[1])));
  if (!local) return ThrowType(env, "listenTcp(): address must be a numeric IPv4 or IPv6 address");
  return OpenSocket(env, [&](uint32_t* id) { return Context(info)->ListenTcp(*local, id); });
}

Napi::Value ConnectTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  REQUIRE_STARTED(info);
  REQUIRE_UINT(info, 2, 65535, "connectTcp(): port must be an integer from 0 to 65535");
  std::optional<IpEndpoint> local;
  if (!info[0].IsNull() && !(local = EndpointArg(info, 0, 0))) {
    return ThrowType(env, "connectTcp(): local address must be null or a numeric IP address");
  }
  const std::optional<IpEndpoint> remote = EndpointArg(info, 1, static_cast<uint16_t>(ToUint32(info[2])));
  if (!remote) return ThrowType(env, "connectTcp(): address must be a numeric IPv4 or IPv6 address");
  if (local && local->addr.ss_family != remote->addr.ss_family) {
    return ThrowType(env, "connectTcp(): local and remote addresses must both be IPv4 or both IPv6");
  }
  return OpenSocket(env, [&](uint32_t* id) { return Context(info)->ConnectTcp(local ? &*local : nullptr, *remote, id); });
}

Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  REQUIRE_STARTED(info);
  REQUIRE_UINT(info, 0, UINT32_MAX, "send(): conn must be a connection id");
  const uint8_t* data = nullptr;
  size_t length = 0;
  if (!BytesOf(info[1], &data, &length)) return ThrowType(env, "send(): packet must be a Buffer or Uint8Array");
  OutgoingBytes bytes(data, length);
  return Napi::Boolean::New(env, Context(info)->Send(ToUint32(info[0]), bytes));
}

Napi::Value SendMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  REQUIRE_STARTED(info);
  const uint8_t* data = nullptr;
  size_t length = 0;
  if (!BytesOf(info[1], &data, &length)) return ThrowType(env, "sendMany(): packet must be a Buffer or Uint8Array");
  OutgoingBytes bytes(data, length);
  IoContext* ctx = Context(info);
  uint32_t sent = 0;
  if (info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array) {
    Napi::Uint32Array conns = info[0].As<Napi::Uint32Array>();
    for (size_t i = 0; i < conns.ElementLength(); ++i) sent += ctx->Send(conns[i], bytes) ? 1 : 0;
  } else if (info[0].IsArray()) {
    Napi::Array conns = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < conns.Length(); ++i) {
      const Napi::Value conn = conns.Get(i);
      if (IsUint(conn, UINT32_MAX)) sent += ctx->Send(ToUint32(conn), bytes) ? 1 : 0;
    }
  } else {
    return ThrowType(env, "sendMany(): conns must be a Uint32Array or an array of connection ids");
  }
  return Napi::Number::New(env, sent);
}

// Shared shape of close(), closeAfterFlush(), closeListener() and listenerPort().
template <typename Result, Result (IoContext::*Method)(uint32_t)>
Napi::Value ById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  REQUIRE_STARTED(info);
  REQUIRE_UINT(info, 0, UINT32_MAX, "id must be a non-negative integer");
  if constexpr (std::is_void_v<Result>) {
    (Context(info)->*Method)(ToUint32(info[0]));
    return env.Undefined();
  } else {
    return Napi::Value::From(env, (Context(info)->*Method)(ToUint32(info[0])));
  }
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const IoStats& stats = Context(info)->stats();
  Napi::Object out = Napi::Object::New(env);
  const std::pair<const char*, uint64_t> counters[] = {
      {"reads", stats.reads},           {"bytesRead", stats.bytes_read},      {"packets", stats.packets},
      {"largePackets", stats.large_packets}, {"batches", stats.batches},      {"writes", stats.writes},
      {"bytesWritten", stats.bytes_written}, {"eagainWaits", stats.eagain_waits}, {"accepts", stats.accepts},
      {"connects", stats.connects},     {"closes", stats.closes},
  };
  for (const auto& [name, value] : counters) out.Set(name, Napi::Number::New(env, static_cast<double>(value)));
  return out;
}

void InitModule(Napi::Env env, Napi::Object exports) {
  auto* ctx = new IoContext(env);
  // Async: libuv handles close asynchronously, and a worker's loop must not end with them open.
  napi_add_async_cleanup_hook(env, IoContext::Shutdown, ctx, nullptr);
  const std::pair<const char*, Napi::Function::Callback> functions[] = {
      {"init", Init},
      {"listenUnix", ListenUnix},
      {"listenTcp", ListenTcp},
      {"connectTcp", ConnectTcp},
      {"send", Send},
      {"sendMany", SendMany},
      {"close", ById<void, &IoContext::Close>},
      {"closeAfterFlush", ById<void, &IoContext::CloseAfterFlush>},
      {"closeListener", ById<bool, &IoContext::CloseListener>},
      {"listenerPort", ById<int, &IoContext::ListenerPort>},
      {"stats", Stats},
  };
  for (const auto& [name, fn] : functions) exports.Set(name, Napi::Function::New(env, fn, name, ctx));
}

}  // namespace
}  // namespace ctdb::io

CTDB_NATIVE_MODULE(io, ctdb::io::InitModule);
