// Native modules register themselves at static-initialisation time so that adding a
// module (framing, store, spawn, netlink) never touches a shared init file.
#pragma once
#include <napi.h>

namespace ctdb {

using ModuleInit = void (*)(Napi::Env env, Napi::Object exports);

// Returns true so it can initialise a namespace-scope constant.
bool RegisterModule(const char* name, ModuleInit init);

// Throws a JS Error "<what>: <strerror(err)>" with .code = errno name and .errno = err.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& what);

}  // namespace ctdb

#define CTDB_NATIVE_MODULE(name, init) \
  static const bool ctdb_module_registered_##name = ::ctdb::RegisterModule(#name, init)
