// ctdb_mutex_fcntl_helper: the cluster lock as a process. It holds a POSIX write lock on byte 0 of
// a file for as long as its parent wants it, speaking CTDB 4.17's cluster-mutex helper protocol:
//
//   ctdb_mutex_fcntl_helper <file> [recheck_interval [ping_timeout]]
//
// One status character goes to stdout: '0' locked, '1' contended, '3' error. After '0' the helper
// stays until SIGTERM, until its parent is gone, or until the lock can no longer be trusted; its
// exit (EOF on the pipe) is how the parent learns the lock is lost.
//
// Trust is re-established every recheck_interval seconds (default 5, 0 = never) by a forked
// checker: it re-opens the path, requires the same file (so deleting or replacing the lock file is
// noticed) and takes a blocking lock on byte 1, which stalls when a cluster filesystem misbehaves.
// The check runs in a child because closing any descriptor of the file in the holder would drop
// the holder's byte-0 lock, and because a stalled check must not stall the holder. With
// ping_timeout > 0 the checker pings once a second and the holder gives up after ping_timeout
// seconds of silence. Pings use the 4-byte frames of CTDB's tmon (u16 type, u16 value, big endian).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <libgen.h>

namespace {

constexpr char kStatusLocked = '0';
constexpr char kStatusContended = '1';
constexpr char kStatusError = '3';

constexpr unsigned long kDefaultRecheckSeconds = 5;
constexpr int64_t kParentCheckMs = 5000;
constexpr int64_t kPingIntervalMs = 1000;
constexpr int64_t kNever = INT64_MAX;

constexpr uint16_t kTmonPing = 3;
constexpr size_t kTmonFrameSize = 4;

const char* g_program = "ctdb_mutex_fcntl_helper";

struct Options {
  const char* file;
  unsigned long recheck_seconds;
  unsigned long ping_timeout_seconds;
};

struct FileIdentity {
  dev_t device;
  ino_t inode;
};

int64_t NowMs() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

// A deadline `seconds` from now; absurdly long intervals (from the command line) mean never.
int64_t DeadlineAfter(unsigned long seconds) {
  constexpr unsigned long kLongestSeconds = 1UL << 40;
  return seconds >= kLongestSeconds ? kNever : NowMs() + static_cast<int64_t>(seconds) * 1000;
}

int PollTimeout(int64_t deadline_ms) {
  if (deadline_ms == kNever) return -1;
  const int64_t left = deadline_ms - NowMs();
  return left <= 0 ? 0 : static_cast<int>(left < INT32_MAX ? left : INT32_MAX);
}

// Decimal seconds as Samba's smb_strtoul(SMB_STR_STANDARD) reads them: leading blanks and trailing
// text are tolerated, while no digits, a minus sign or overflow are errors.
bool ParseSeconds(const char* text, unsigned long* seconds) {
  char* end = nullptr;
  errno = 0;
  const unsigned long value = strtoul(text, &end, 10);
  if (errno != 0 || end == text) return false;
  const char* minus = strchr(text, '-');
  if (minus != nullptr && minus < end) return false;
  *seconds = value;
  return true;
}

bool ParseOptions(int argc, char** argv, Options* options) {
  if (argc < 2 || argc > 4) return false;
  options->file = argv[1];
  options->recheck_seconds = kDefaultRecheckSeconds;
  options->ping_timeout_seconds = 0;
  if (argc >= 3 && !ParseSeconds(argv[2], &options->recheck_seconds)) return false;
  if (argc >= 4 && !ParseSeconds(argv[3], &options->ping_timeout_seconds)) return false;
  return true;
}

// Write lock on one byte; 0 or an errno.
int LockByte(int fd, off_t byte, bool wait) {
  struct flock lock = {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = byte;
  lock.l_len = 1;
  int ret;
  do {
    ret = fcntl(fd, wait ? F_SETLKW : F_SETLK, &lock);
  } while (ret == -1 && errno == EINTR);
  return ret == 0 ? 0 : errno;
}

char TakeLock(const char* file, int* lock_fd) {
  const int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd == -1) {
    fprintf(stderr, "%s: cannot open lock file \"%s\": %s\n", g_program, file, strerror(errno));
    return kStatusError;
  }
  const int err = LockByte(fd, 0, false);
  if (err == 0) {
    *lock_fd = fd;
    return kStatusLocked;
  }
  close(fd);
  // Contention is the normal answer for every node but the leader: say nothing.
  if (err == EACCES || err == EAGAIN) return kStatusContended;
  fprintf(stderr, "%s: cannot lock \"%s\": %s\n", g_program, file, strerror(err));
  return kStatusError;
}

bool WriteStatus(char status) {
  ssize_t written;
  do {
    written = write(STDOUT_FILENO, &status, 1);
  } while (written == -1 && errno == EINTR);
  return written == 1;
}

// One checker round: false (after saying why) when the lock file is no longer trustworthy.
bool LockFileStillOurs(const char* file, const FileIdentity& held) {
  const int fd = open(file, O_RDWR | O_CLOEXEC);
  if (fd == -1) {
    fprintf(stderr, "%s: lock lost: cannot reopen \"%s\": %s\n", g_program, file, strerror(errno));
    return false;
  }
  struct stat now;
  bool ours = false;
  if (fstat(fd, &now) == -1) {
    fprintf(stderr, "%s: lock lost: cannot stat \"%s\": %s\n", g_program, file, strerror(errno));
  } else if (now.st_dev != held.device || now.st_ino != held.inode) {
    fprintf(stderr, "%s: lock lost: \"%s\" is no longer the locked file\n", g_program, file);
  } else if (const int err = LockByte(fd, 1, true); err != 0) {
    fprintf(stderr, "%s: lock lost: test lock on \"%s\" failed: %s\n", g_program, file, strerror(err));
  } else {
    ours = true;
  }
  close(fd);  // also drops the byte-1 test lock
  return ours;
}

bool SendPing(int sock) {
  const uint8_t frame[kTmonFrameSize] = {0, kTmonPing, 0, 0};
  ssize_t sent;
  do {
    sent = send(sock, frame, sizeof frame, MSG_NOSIGNAL);
  } while (sent == -1 && errno == EINTR);
  return sent == static_cast<ssize_t>(sizeof frame);
}

[[noreturn]] void RunChecker(const Options& options, const FileIdentity& held, int sock, pid_t holder) {
  // Never outlive the holder, even when it is SIGKILLed while this child is inside a check.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != holder) _exit(0);

  const bool pinging = options.ping_timeout_seconds != 0;
  int64_t next_ping = pinging ? NowMs() : kNever;
  int64_t next_check = DeadlineAfter(options.recheck_seconds);
  for (;;) {
    struct pollfd from_holder = {sock, POLLIN, 0};
    const int ready = poll(&from_holder, 1, PollTimeout(next_ping < next_check ? next_ping : next_check));
    if (ready == -1 && errno != EINTR) _exit(1);
    // The holder never writes: readability means it has gone.
    if (ready > 0) _exit(0);
    const int64_t now = NowMs();
    if (now >= next_ping) {
      if (!SendPing(sock)) _exit(0);
      next_ping = now + kPingIntervalMs;
    }
    if (now >= next_check) {
      if (!LockFileStillOurs(options.file, held)) _exit(1);
      next_check = DeadlineAfter(options.recheck_seconds);
    }
  }
}

struct Checker {
  pid_t pid = -1;
  int sock = -1;
};

Checker StartChecker(const Options& options, int lock_fd) {
  struct stat locked;
  if (fstat(lock_fd, &locked) == -1) {
    fprintf(stderr, "%s: lock lost: cannot stat \"%s\": %s\n", g_program, options.file, strerror(errno));
    return {};
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == -1) {
    fprintf(stderr, "%s: socketpair: %s\n", g_program, strerror(errno));
    return {};
  }
  const pid_t holder = getpid();
  const pid_t pid = fork();
  if (pid == -1) {
    fprintf(stderr, "%s: fork: %s\n", g_program, strerror(errno));
    close(pair[0]);
    close(pair[1]);
    return {};
  }
  if (pid == 0) {
    close(pair[0]);
    // The child owns no fcntl locks, so closing its copy leaves the holder's lock alone.
    close(lock_fd);
    RunChecker(options, FileIdentity{locked.st_dev, locked.st_ino}, pair[1], holder);
  }
  close(pair[1]);
  return Checker{pid, pair[0]};
}

// What ends the holding: returns after printing why (a failed checker prints its own reason).
void HoldUntilLost(const Options& options, pid_t parent, const Checker& checker) {
  enum { kParentPipe, kCheckerSocket };
  // events = 0 on stdout: poll still reports POLLERR/POLLHUP once the parent's read end is closed.
  // A checker.sock of -1 (no rechecks) is skipped by poll.
  struct pollfd watched[2] = {{STDOUT_FILENO, 0, 0}, {checker.sock, POLLIN, 0}};
  const bool expecting_pings = checker.sock != -1 && options.ping_timeout_seconds != 0;
  int64_t ping_deadline = expecting_pings ? DeadlineAfter(options.ping_timeout_seconds) : kNever;
  int64_t next_parent_check = NowMs() + kParentCheckMs;
  for (;;) {
    const int ready = poll(watched, 2, PollTimeout(ping_deadline < next_parent_check ? ping_deadline : next_parent_check));
    if (ready == -1) {
      if (errno == EINTR) continue;
      fprintf(stderr, "%s: poll: %s\n", g_program, strerror(errno));
      return;
    }
    if (watched[kParentPipe].revents & (POLLERR | POLLHUP)) {
      fprintf(stderr, "%s: parent closed the status pipe\n", g_program);
      return;
    }
    // A closed stdout (POLLNVAL) cannot tell us anything: stop watching it.
    if (watched[kParentPipe].revents & POLLNVAL) watched[kParentPipe].fd = -1;
    if (watched[kCheckerSocket].revents & (POLLIN | POLLERR | POLLHUP)) {
      uint8_t frame[kTmonFrameSize];
      const ssize_t got = recv(checker.sock, frame, sizeof frame, MSG_WAITALL);
      if (got <= 0) return;  // the checker exited and said why
      if (got != static_cast<ssize_t>(sizeof frame) || frame[0] != 0 || frame[1] != kTmonPing) {
        fprintf(stderr, "%s: unexpected data from the lock checker\n", g_program);
        return;
      }
      if (expecting_pings) ping_deadline = DeadlineAfter(options.ping_timeout_seconds);
    }
    const int64_t now = NowMs();
    if (now >= ping_deadline) {
      fprintf(stderr, "%s: lock checker silent for %lu seconds\n", g_program, options.ping_timeout_seconds);
      return;
    }
    if (now >= next_parent_check) {
      if (kill(parent, 0) == -1 && errno == ESRCH) {
        fprintf(stderr, "%s: parent %d has gone\n", g_program, static_cast<int>(parent));
        return;
      }
      next_parent_check = now + kParentCheckMs;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 0) g_program = basename(argv[0]);
  Options options;
  if (!ParseOptions(argc, argv, &options)) {
    fprintf(stderr, "Usage: %s <file> [recheck_interval [ping_timeout]]\n", g_program);
    return 1;
  }
  const pid_t parent = getppid();

  int lock_fd = -1;
  const char status = TakeLock(options.file, &lock_fd);
  if (!WriteStatus(status) || status != kStatusLocked) return 0;

  // Orphaned at birth: nobody is left to release the lock, so do not hold it.
  if (parent == 1) {
    fprintf(stderr, "%s: parent is init, not holding the lock\n", g_program);
    return 0;
  }
  const Checker checker = options.recheck_seconds > 0 ? StartChecker(options, lock_fd) : Checker{};
  if (options.recheck_seconds == 0 || checker.pid != -1) HoldUntilLost(options, parent, checker);

  close(lock_fd);
  if (checker.pid != -1) {
    close(checker.sock);
    kill(checker.pid, SIGKILL);
    while (waitpid(checker.pid, nullptr, 0) == -1 && errno == EINTR) {
    }
  }
  return 0;
}
