// ctdb_lock_helper: waits for a record's chain lock, or a whole database lock (freeze), on behalf
// of the daemon, which must never block. Arguments as CTDB 4.17's helper takes them:
//
//   ctdb_lock_helper <daemon-pid> <status-fd> RECORD <db-path> <tdb-flags> <hex-key|NULL>
//   ctdb_lock_helper <daemon-pid> <status-fd> DB <db-path> <tdb-flags>
//
// One byte goes to status-fd: 0 = locked, 1 = failed (then exit 1, reason on stderr). The lock is
// taken with the project's own tdb code, so it honours the file's locking mode (fcntl or robust
// mutexes) exactly as libtdb users such as smbd do. After 0 the lock is held until status-fd
// reports end of stream (the daemon released it, or died), SIGTERM, or the daemon's pid is gone.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "tdb/store.h"

namespace {

using ctdb::tdb::Span;
using ctdb::tdb::Status;
using ctdb::tdb::Store;

constexpr char kLocked = 0;
constexpr char kFailed = 1;
constexpr int kParentCheckMs = 5000;

volatile sig_atomic_t g_terminate = 0;

struct Request {
  pid_t daemon_pid = 0;
  int status_fd = -1;
  bool whole_database = false;
  const char* path = nullptr;
  uint32_t tdb_flags = 0;
  std::string key;
};

[[noreturn]] void Fail(int status_fd, const std::string& why) {
  std::fprintf(stderr, "ctdb_lock_helper: %s\n", why.c_str());
  if (status_fd >= 0 && write(status_fd, &kFailed, 1) < 0) {
    // The daemon is gone or closed the channel; nothing else to tell.
  }
  std::exit(1);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ParseNumber(const char* text, long min, long max, long* out) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 0);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) return false;
  *out = value;
  return true;
}

Request ParseArguments(int argc, char** argv) {
  const char* usage =
      "usage: ctdb_lock_helper <daemon-pid> <status-fd> RECORD <db-path> <tdb-flags> <hex-key|NULL>\n"
      "       ctdb_lock_helper <daemon-pid> <status-fd> DB <db-path> <tdb-flags>";
  Request request;
  long number = 0;
  if (argc < 3 || !ParseNumber(argv[2], 0, 1 << 20, &number)) Fail(-1, usage);
  request.status_fd = static_cast<int>(number);
  if (!ParseNumber(argv[1], 1, 1L << 30, &number)) Fail(request.status_fd, std::string("bad daemon pid '") + argv[1] + "'");
  request.daemon_pid = static_cast<pid_t>(number);
  const bool record = argc == 7 && std::strcmp(argv[3], "RECORD") == 0;
  request.whole_database = argc == 6 && std::strcmp(argv[3], "DB") == 0;
  if (!record && !request.whole_database) Fail(request.status_fd, usage);
  request.path = argv[4];
  if (!ParseNumber(argv[5], 0, 0xffffffffL, &number)) {
    Fail(request.status_fd, std::string("bad tdb flags '") + argv[5] + "'");
  }
  request.tdb_flags = static_cast<uint32_t>(number);
  if (record && std::strcmp(argv[6], "NULL") != 0) {
    const std::string hex = argv[6];
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      const int high = HexDigit(hex[i]), low = HexDigit(hex[i + 1]);
      if (high < 0 || low < 0) break;
      request.key.push_back(static_cast<char>(high << 4 | low));
    }
    if (hex.size() % 2 != 0 || request.key.size() * 2 != hex.size()) {
      Fail(request.status_fd, "key '" + hex + "' is not hexadecimal");
    }
  }
  return request;
}

void OnTerminate(int) { g_terminate = 1; }

// Returns when the daemon no longer wants the lock: it closed its end of status-fd, it is gone,
// or it sent SIGTERM.
void HoldUntilReleased(const Request& request) {
  struct pollfd watch = {request.status_fd, POLLIN | POLLRDHUP, 0};
  while (!g_terminate) {
    const int ready = poll(&watch, 1, kParentCheckMs);
    if (ready < 0 && errno != EINTR) return;
    if (ready == 0) {
      if (kill(request.daemon_pid, 0) < 0 && errno == ESRCH) return;
      continue;
    }
    if (ready > 0) {
      if (watch.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return;
      char ignored[64];
      const ssize_t got = read(request.status_fd, ignored, sizeof ignored);
      if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Request request = ParseArguments(argc, argv);
  // If the daemon dies while we wait for the lock, stop waiting (default action: exit).
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != request.daemon_pid && kill(request.daemon_pid, 0) < 0) Fail(request.status_fd, "daemon is gone");

  ctdb::tdb::OpenOptions options;
  // Never the one to wipe a database: CLEAR_IF_FIRST is for the daemon's own open.
  options.tdb_flags = request.tdb_flags & ~static_cast<uint32_t>(ctdb::tdb::kClearIfFirst);
  options.open_flags = O_RDWR;
  std::string error;
  int err = 0;
  Status open_status = Status::kOk;
  std::unique_ptr<Store> store = Store::Open(request.path, options, &error, &err, &open_status);
  if (!store) Fail(request.status_fd, "cannot open " + error);

  const Span key{reinterpret_cast<const uint8_t*>(request.key.data()), request.key.size()};
  const Status locked = request.whole_database ? store->LockAll(true, true) : store->ChainLock(key, true, true);
  if (locked != Status::kOk) {
    Fail(request.status_fd, std::string(request.whole_database ? "database" : "record") + " lock on " +
                                request.path + " failed: " + store->LastError());
  }

  // From here SIGTERM must unlock first, so it only interrupts the wait below.
  struct sigaction term = {};
  term.sa_handler = OnTerminate;
  sigaction(SIGTERM, &term, nullptr);
  if (write(request.status_fd, &kLocked, 1) != 1) g_terminate = 1;
  HoldUntilReleased(request);

  if (request.whole_database) {
    store->UnlockAll(true);
  } else {
    store->ChainUnlock(key, true);
  }
  return 0;
}
