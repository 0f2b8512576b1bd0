// Starting helper processes without copying the daemon: vfork+exec, so the cost does not grow
// with the daemon's memory (fork copies page tables: ~30 µs per touched MiB on this machine).
// Plain C++ without N-API so the benchmark's timing code shares the exact spawn path.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace ctdb::spawn {

struct ExecPlan {
  std::string file;               // absolute path of the executable (no PATH search)
  std::vector<std::string> argv;  // argv[0] included
  // The child's end of the status channel is installed at this descriptor number (>= 3),
  // or -1 for none. Besides stdin/stdout/stderr it is the only descriptor the child keeps.
  int channel_fd = -1;
  int channel_target = 3;
};

struct SpawnResult {
  pid_t pid = -1;
  int err = 0;  // errno of the failing step (in the child: of execve) when pid is -1
  const char* step = "";
};

// vfork+execve with a clean child: every signal at its default disposition, an empty signal
// mask, SCHED_OTHER at nice 0 (a real-time daemon must not hand its priority to helpers) and
// only stdio (kept open, or /dev/null) plus the channel. An exec failure is reported here, not as an exit status.
SpawnResult VforkExec(const ExecPlan& plan);

}  // namespace ctdb::spawn
