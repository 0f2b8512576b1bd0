// Native module `spawn`: helper processes started by vfork+exec (see vfork_exec.h), each with a
// socketpair as its status channel, reaped through a pidfd watched on the libuv loop. No SIGCHLD
// handler and no waitpid(-1): Node's own child_process reaping is left undisturbed.
//
// Children are addressed by small ids, never by raw pointers, so a stale id from JS is harmless.
// Events reach JS through the callback given to spawn(): ("data", Buffer) for bytes the child
// wrote on its channel, then exactly one ("exit", code, signal) after the channel is drained.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>

#include "module.h"
#include "spawn/vfork_exec.h"

namespace ctdb::spawn {
namespace {

constexpr size_t kReadChunk = 256;

struct SpawnContext;

struct Child {
  SpawnContext* context = nullptr;
  uint32_t id = 0;
  pid_t pid = -1;
  int pidfd = -1;
  int channel = -1;  // our end of the socketpair; -1 once released or drained
  uv_poll_t channel_poll = {};
  uv_poll_t exit_poll = {};
  int open_handles = 0;
  Napi::FunctionReference on_event;
};

struct SpawnContext {
  Napi::Env env;
  uv_loop_t* loop = nullptr;
  uint32_t next_id = 1;
  std::unordered_map<uint32_t, Child*> children;
  explicit SpawnContext(Napi::Env e) : env(e) {}
};

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSignal(int pidfd, int sig) { return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0)); }

void OnHandleClosed(uv_handle_t* handle) {
  auto* child = static_cast<Child*>(handle->data);
  if (--child->open_handles == 0) delete child;
}

void CloseChannel(Child* child) {
  if (child->channel < 0) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&child->channel_poll), OnHandleClosed);
  close(child->channel);
  child->channel = -1;
}

// Calls the child's JS callback from a libuv callback; a throwing callback becomes an uncaught exception.
void Emit(Child* child, std::initializer_list<napi_value> args) {
  Napi::Env env = child->context->env;
  child->on_event.MakeCallback(env.Global(), args);
  if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
}

// Delivers whatever the child wrote. Returns false at end of stream or on error.
bool DrainChannel(Child* child) {
  uint8_t buf[kReadChunk];
  for (;;) {
    const ssize_t got = read(child->channel, buf, sizeof buf);
    if (got > 0) {
      Napi::HandleScope scope(child->context->env);
      Emit(child, {Napi::String::New(child->context->env, "data"), Napi::Buffer<uint8_t>::Copy(child->context->env, buf, got)});
      if (child->channel < 0) return false;  // released from the callback
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

void OnChannelReadable(uv_poll_t* handle, int status, int events) {
  auto* child = static_cast<Child*>(handle->data);
  if (child->channel < 0) return;
  if (status < 0 || !DrainChannel(child)) CloseChannel(child);
}

void OnExit(uv_poll_t* handle, int, int) {
  auto* child = static_cast<Child*>(handle->data);
  siginfo_t info = {};
  if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child->pidfd), &info, WEXITED | WNOHANG) < 0 ||
      info.si_pid == 0) {
    return;  // spurious wakeup
  }
  // The status byte and the exit can arrive in one loop turn: report the bytes first.
  if (child->channel >= 0) {
    DrainChannel(child);
    CloseChannel(child);
  }
  Napi::Env env = child->context->env;
  Napi::HandleScope scope(env);
  child->context->children.erase(child->id);
  uv_close(reinterpret_cast<uv_handle_t*>(&child->exit_poll), OnHandleClosed);
  close(child->pidfd);
  child->pidfd = -1;
  const bool signalled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  Napi::Value code = signalled ? env.Null() : Napi::Number::New(env, info.si_status);
  Napi::Value signal = signalled ? Napi::Number::New(env, info.si_status) : env.Null();
  Emit(child, {Napi::String::New(env, "exit"), code, signal});
  child->on_event.Reset();
}

SpawnContext* Context(const Napi::CallbackInfo& info) { return static_cast<SpawnContext*>(info.Data()); }

Child* FindChild(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) return nullptr;
  auto& children = Context(info)->children;
  auto it = children.find(info[0].As<Napi::Number>().Uint32Value());
  return it == children.end() ? nullptr : it->second;
}

bool StringArray(const Napi::Value& value, std::vector<std::string>* out) {
  if (!value.IsArray()) return false;
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value item = array.Get(i);
    if (!item.IsString()) return false;
    out->push_back(item.As<Napi::String>().Utf8Value());
  }
  return !out->empty();
}

// spawn(file, argv, channelTarget, onEvent) -> { id, pid }. channelTarget -1 = no channel.
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SpawnContext* context = Context(info);
  ExecPlan plan;
  if (info.Length() < 4 || !info[0].IsString() || !StringArray(info[1], &plan.argv) || !info[2].IsNumber() ||
      !info[3].IsFunction()) {
    Napi::TypeError::New(env, "spawn(file, argv: non-empty string[], channelTarget, onEvent)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  plan.file = info[0].As<Napi::String>().Utf8Value();
  const int target = info[2].As<Napi::Number>().Int32Value();
  if (target != -1 && (target < 3 || target > 1023)) {
    Napi::RangeError::New(env, "spawn: channelTarget must be -1 or 3..1023").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int pair[2] = {-1, -1};
  if (target >= 0) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
      ErrnoError(env, errno, "spawn " + plan.file + ": socketpair").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK);
    plan.channel_fd = pair[1];
    plan.channel_target = target;
  }
  const SpawnResult spawned = VforkExec(plan);
  if (pair[1] >= 0) close(pair[1]);
  if (spawned.pid < 0) {
    if (pair[0] >= 0) close(pair[0]);
    ErrnoError(env, spawned.err, "spawn " + plan.file + ": " + spawned.step).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int pidfd = PidfdOpen(spawned.pid);
  if (pidfd < 0) {
    const int err = errno;
    kill(spawned.pid, SIGKILL);
    while (waitpid(spawned.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (pair[0] >= 0) close(pair[0]);
    ErrnoError(env, err, "spawn " + plan.file + ": pidfd_open").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  auto* child = new Child;
  child->context = context;
  child->id = context->next_id++;
  child->pid = spawned.pid;
  child->pidfd = pidfd;
  child->channel = pair[0];
  child->on_event = Napi::Persistent(info[3].As<Napi::Function>());
  child->exit_poll.data = child;
  uv_poll_init(context->loop, &child->exit_poll, pidfd);
  uv_poll_start(&child->exit_poll, UV_READABLE, OnExit);
  child->open_handles = 1;
  if (child->channel >= 0) {
    child->channel_poll.data = child;
    uv_poll_init(context->loop, &child->channel_poll, child->channel);
    uv_poll_start(&child->channel_poll, UV_READABLE | UV_DISCONNECT, OnChannelReadable);
    child->open_handles++;
  }
  context->children.emplace(child->id, child);

  Napi::Object result = Napi::Object::New(env);
  result.Set("id", child->id);
  result.Set("pid", child->pid);
  return result;
}

// release(id): closes our end of the channel; a lock helper takes EOF as "unlock and exit".
Napi::Value Release(const Napi::CallbackInfo& info) {
  if (Child* child = FindChild(info)) CloseChannel(child);
  return info.Env().Undefined();
}

// kill(id, signal) -> false if the child has already been reaped.
Napi::Value Kill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "kill(id, signal)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Child* child = FindChild(info);
  if (child == nullptr) return Napi::Boolean::New(env, false);
  // pidfd: a reaped and reused pid can never be hit.
  if (PidfdSignal(child->pidfd, info[1].As<Napi::Number>().Int32Value()) < 0 && errno != ESRCH) {
    ErrnoError(env, errno, "kill helper " + std::to_string(child->pid)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value Running(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Context(info)->children.size()));
}

// Environment teardown (worker exit, process exit): no helper outlives the thread that owns it.
void Cleanup(void* arg) {
  auto* context = static_cast<SpawnContext*>(arg);
  for (auto& [id, child] : context->children) {
    PidfdSignal(child->pidfd, SIGKILL);
    // By pid, not pidfd: libuv made the pidfd non-blocking. Unreaped, the pid cannot be reused.
    while (waitpid(child->pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (child->channel >= 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&child->channel_poll), nullptr);
      close(child->channel);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&child->exit_poll), nullptr);
    close(child->pidfd);
    child->on_event.Reset();
    // The handles' memory must outlive their close; the loop is going away, so it is leaked.
  }
  context->children.clear();
  delete context;
}

void Init(Napi::Env env, Napi::Object exports) {
  auto* context = new SpawnContext(env);
  napi_get_uv_event_loop(env, &context->loop);
  napi_add_env_cleanup_hook(env, Cleanup, context);
  exports.Set("spawn", Napi::Function::New(env, Spawn, "spawn", context));
  exports.Set("release", Napi::Function::New(env, Release, "release", context));
  exports.Set("kill", Napi::Function::New(env, Kill, "kill", context));
  exports.Set("running", Napi::Function::New(env, Running, "running", context));
}

}  // namespace
}  // namespace ctdb::spawn

CTDB_NATIVE_MODULE(spawn, ctdb::spawn::Init);
