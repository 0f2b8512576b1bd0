#include "module.h"

#include <cerrno>
#include <cstring>
#include <vector>

namespace ctdb {
namespace {

struct ModuleEntry {
  const char* name;
  ModuleInit init;
};

std::vector<ModuleEntry>& Modules() {
  static std::vector<ModuleEntry> modules;
  return modules;
}

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "EUNKNOWN";
}

}  // namespace

bool RegisterModule(const char* name, ModuleInit init) {
  Modules().push_back({name, init});
  return true;
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& what) {
  Napi::Error error = Napi::Error::New(env, what + ": " + std::strerror(err));
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Set("errno", Napi::Number::New(env, err));
  return error;
}

}  // namespace ctdb

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const auto& module : ctdb::Modules()) {
    Napi::Object ns = Napi::Object::New(env);
    module.init(env, ns);
    exports.Set(module.name, ns);
  }
  return exports;
}

NODE_API_MODULE(ctdb_native, Init)
