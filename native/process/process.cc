// Process identity for the ctdbd executable: the fcntl-locked pid file (Node has no fcntl)
// and close-on-exec for the daemonising readiness pipe.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "module.h"

namespace {

int RetryOnEintr(int fd, int cmd, struct flock* lock) {
  int ret;
  do {
    ret = fcntl(fd, cmd, lock);
  } while (ret == -1 && errno == EINTR);
  return ret;
}

// 0 when locked; otherwise an errno, with *holder set for a lock held by another process.
int LockWholeFile(int fd, pid_t* holder) {
  // A holder that dies between F_SETLK and F_GETLK shows as unlocked: try once more.
  for (int attempt = 0; attempt < 2; attempt++) {
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (RetryOnEintr(fd, F_SETLK, &lock) == 0) return 0;
    if (errno != EACCES && errno != EAGAIN) return errno;
    if (RetryOnEintr(fd, F_GETLK, &lock) == -1) return errno;
    if (lock.l_type != F_UNLCK) {
      *holder = lock.l_pid;
      return EAGAIN;
    }
  }
  return EIO;
}

int WriteOwnPid(int fd) {
  const std::string text = std::to_string(getpid()) + "\n";
  ssize_t written;
  do {
    written = write(fd, text.data(), text.size());
  } while (written == -1 && errno == EINTR);
  if (written == -1) return errno;
  if (static_cast<size_t>(written) != text.size()) return EIO;
  if (ftruncate(fd, static_cast<off_t>(text.size())) == -1) return errno;
  return 0;
}

// createPidFile(path) -> fd: created if missing, locked for the life of the process, holding
// "<pid>\n". A file locked by a live process means another daemon owns it.
Napi::Value CreatePidFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "createPidFile(path): path must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd == -1) {
    ctdb::ErrnoError(env, errno, "cannot create pid file " + path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  pid_t holder = 0;
  int err = LockWholeFile(fd, &holder);
  if (err != 0) {
    close(fd);
    std::string what = "cannot lock pid file " + path;
    if (holder != 0) what = "pid file " + path + " is locked by running process " + std::to_string(holder);
    Napi::Error error = ctdb::ErrnoError(env, err, what);
    if (holder != 0) error.Set("holderPid", Napi::Number::New(env, holder));
    error.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  err = WriteOwnPid(fd);
  if (err != 0) {
    unlink(path.c_str());
    close(fd);
    ctdb::ErrnoError(env, err, "cannot write pid file " + path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// releasePidFile(fd, path): unlink first so nobody sees an unlocked file with a stale pid.
Napi::Value ReleasePidFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "releasePidFile(fd, path): expected a number and a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const std::string path = info[1].As<Napi::String>();
  if (unlink(path.c_str()) == -1 && errno != ENOENT) {
    ctdb::ErrnoError(env, errno, "cannot remove pid file " + path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct flock lock = {};
  lock.l_type = F_UNLCK;
  lock.l_whence = SEEK_SET;
  RetryOnEintr(fd, F_SETLK, &lock);
  close(fd);
  return env.Undefined();
}

// setCloseOnExec(fd): keeps an inherited descriptor out of every process we spawn later.
Napi::Value SetCloseOnExec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "setCloseOnExec(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const int flags = fcntl(fd, F_GETFD);
  if (flags == -1 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1) {
    ctdb::ErrnoError(env, errno, "cannot set close-on-exec on fd " + std::to_string(fd)).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("createPidFile", Napi::Function::New(env, CreatePidFile, "createPidFile"));
  exports.Set("releasePidFile", Napi::Function::New(env, ReleasePidFile, "releasePidFile"));
  exports.Set("setCloseOnExec", Napi::Function::New(env, SetCloseOnExec, "setCloseOnExec"));
}

}  // namespace

CTDB_NATIVE_MODULE(process, InitProcess);
