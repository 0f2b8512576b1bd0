#include "spawn/vfork_exec.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

extern char** environ;

namespace ctdb::spawn {
namespace {

// Everything the child needs, prepared before vfork: the child may only make system calls.
struct ChildPlan {
  const char* file;
  char* const* argv;
  int channel_fd;
  int channel_target;
  int error_pipe;
};

// The child cannot do anything useful about a failed report: the parent then sees EOF.
void ReportErrno(int fd, int err) {
  if (write(fd, &err, sizeof err) < 0) return;
}

// Runs in the vfork child, which shares the parent's memory: no allocation, no libc state.
[[noreturn]] void ExecChild(const ChildPlan& plan) {
  // Dispositions are per process even under vfork (no CLONE_SIGHAND), so this does not touch
  // the parent; blocked signals (set by the parent before vfork) stay blocked until exec.
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  struct sched_param normal = {};
  sched_setscheduler(0, SCHED_OTHER, &normal);
  setpriority(PRIO_PROCESS, 0, 0);  // needs privilege when the daemon is niced down; best effort

  // stdio survives exec even if the daemon marked it close-on-exec; a missing one becomes
  // /dev/null so the helper's next open() cannot land on 0-2 and receive its diagnostics.
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) < 0) {
      open("/dev/null", O_RDWR);
    } else {
      fcntl(fd, F_SETFD, 0);
    }
  }
  if (plan.channel_fd >= 0) {
    if (plan.channel_fd == plan.channel_target) {
      fcntl(plan.channel_target, F_SETFD, 0);
    } else if (dup2(plan.channel_fd, plan.channel_target) < 0) {
      ReportErrno(plan.error_pipe, errno);
      _exit(127);
    }
  }
  // Every other inherited descriptor closes at exec (the error pipe must live until then).
  const unsigned first_after = plan.channel_fd >= 0 ? static_cast<unsigned>(plan.channel_target) + 1 : 3;
  if (plan.channel_fd >= 0 && plan.channel_target > 3) {
    syscall(SYS_close_range, 3u, static_cast<unsigned>(plan.channel_target) - 1, CLOSE_RANGE_CLOEXEC);
  }
  syscall(SYS_close_range, first_after, ~0u, CLOSE_RANGE_CLOEXEC);

  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(plan.file, plan.argv, environ);
  ReportErrno(plan.error_pipe, errno);
  _exit(127);
}

}  // namespace

SpawnResult VforkExec(const ExecPlan& plan) {
  SpawnResult result;
  if (plan.channel_fd >= 0 && plan.channel_target < 3) {
    result.err = EINVAL;
    result.step = "channel descriptor must be 3 or above";
    return result;
  }
  std::vector<char*> argv;
  argv.reserve(plan.argv.size() + 1);
  for (const std::string& arg : plan.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) < 0) {
    result.err = errno;
    result.step = "pipe";
    return result;
  }
  const ChildPlan child{plan.file.c_str(), argv.data(), plan.channel_fd, plan.channel_target, error_pipe[1]};

  // Blocked in the parent thread so no handler of the daemon can run on the shared stack
  // between vfork and the child's reset of dispositions.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  const pid_t pid = vfork();
  if (pid == 0) ExecChild(child);
  const int vfork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  close(error_pipe[1]);

  if (pid < 0) {
    close(error_pipe[0]);
    result.err = vfork_errno;
    result.step = "vfork";
    return result;
  }
  // The child has exec'd or exited by now (vfork suspends us until then): EOF means exec worked.
  int child_errno = 0;
  ssize_t got;
  do {
    got = read(error_pipe[0], &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  close(error_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof child_errno)) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    result.err = child_errno;
    result.step = "execve";
    return result;
  }
  result.pid = pid;
  return result;
}

}  // namespace ctdb::spawn
