// Native module `childTiming`, for bench/suites/spawn.ts only: what creating a child costs when
// the parent holds a given amount of touched memory, by fork, vfork and posix_spawn. The memory
// is mapped here with transparent huge pages off, so the page-table cost fork pays is the 4 KiB
// one a fragmented daemon heap would have.
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "module.h"
#include "spawn/vfork_exec.h"

extern char** environ;

namespace ctdb::spawn {
namespace {

void* g_region = nullptr;
size_t g_region_size = 0;

void ReleaseRegion() {
  if (g_region != nullptr) munmap(g_region, g_region_size);
  g_region = nullptr;
  g_region_size = 0;
}

// holdMemory(mib): replaces the held region by `mib` MiB of touched, private anonymous memory.
Napi::Value HoldMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0) {
    Napi::TypeError::New(env, "holdMemory(mib >= 0)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ReleaseRegion();
  const size_t bytes = static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()) << 20;
  if (bytes == 0) return env.Undefined();
  void* region = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) {
    ErrnoError(env, errno, "holdMemory: mmap " + std::to_string(bytes) + " bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  madvise(region, bytes, MADV_NOHUGEPAGE);
  const long page = sysconf(_SC_PAGESIZE);
  for (size_t off = 0; off < bytes; off += static_cast<size_t>(page)) static_cast<volatile char*>(region)[off] = 1;
  g_region = region;
  g_region_size = bytes;
  return env.Undefined();
}

enum class Method { kFork, kVfork, kForkExec, kVforkExec, kPosixSpawn };

struct MethodName {
  const char* name;
  Method method;
};
constexpr MethodName kMethods[] = {
    {"fork", Method::kFork},           {"vfork", Method::kVfork},           {"fork+exec", Method::kForkExec},
    {"vfork+exec", Method::kVforkExec}, {"posix_spawn", Method::kPosixSpawn},
};

// One child, created and reaped. Returns its pid, or -1 with errno set.
pid_t CreateChild(Method method, const ExecPlan& plan, char* const* argv) {
  pid_t pid = -1;
  switch (method) {
    case Method::kFork:
      pid = fork();
      if (pid == 0) _exit(0);
      break;
    case Method::kVfork:
      pid = vfork();
      if (pid == 0) _exit(0);
      break;
    case Method::kForkExec:
      pid = fork();
      if (pid == 0) {
        execve(argv[0], argv, environ);
        _exit(127);
      }
      break;
    case Method::kVforkExec: {
      const SpawnResult result = VforkExec(plan);
      if (result.pid < 0) errno = result.err;
      pid = result.pid;
      break;
    }
    case Method::kPosixSpawn: {
      const int err = posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ);
      if (err != 0) {
        errno = err;
        pid = -1;
      }
      break;
    }
  }
  return pid;
}

// measure(method, file, iterations) -> Float64Array of microseconds from creation to reaping.
Napi::Value Measure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "measure(method, file, iterations)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const MethodName* found = nullptr;
  for (const MethodName& m : kMethods) {
    if (name == m.name) found = &m;
  }
  if (found == nullptr) {
    Napi::RangeError::New(env, "measure: unknown method " + name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ExecPlan plan;
  plan.file = info[1].As<Napi::String>().Utf8Value();
  plan.argv = {plan.file};
  char* argv[] = {plan.file.data(), nullptr};
  const uint32_t iterations = info[2].As<Napi::Number>().Uint32Value();
  Napi::Float64Array out = Napi::Float64Array::New(env, iterations);
  for (uint32_t i = 0; i < iterations; i++) {
    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = CreateChild(found->method, plan, argv);
    if (pid < 0) {
      ErrnoError(env, errno, "measure " + name + " " + plan.file).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    out[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  }
  return out;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("holdMemory", Napi::Function::New(env, HoldMemory));
  exports.Set("measure", Napi::Function::New(env, Measure));
}

}  // namespace
}  // namespace ctdb::spawn

CTDB_NATIVE_MODULE(childTiming, ctdb::spawn::Init);
