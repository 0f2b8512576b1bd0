// The cluster lock, taken the way CTDB 4.17 takes it (server/ctdb_cluster_mutex.c): a helper
// process holds the lock and answers with one status character on its stdout. After '0' the
// helper keeps running; its exit (or EOF on the pipe) means the lock is gone. Extra output after
// the first character is ignored (the etcd helper repeats '0' on every refresh).
//
// `[cluster] cluster lock` is either a file, locked by the fcntl helper (ours, or the one named
// by CTDB_CLUSTER_MUTEX_HELPER), or `!command args` run as the helper itself.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../common/logging';
import { setCloseOnExec } from '../daemon/process-native';

export type ClusterLockStatus = 'locked' | 'contended' | 'timeout' | 'error';

export interface ClusterLockResult {
  status: ClusterLockStatus;
  /** Seconds from starting the helper to its answer (what RECD_RECLOCK_LATENCY reports). */
  latency: number;
}

/** How long recoverd waits to become the lock holder (cluster_lock_take in 4.17). */
export const LEADER_LOCK_TIMEOUT_SECONDS = 120;
/** How long ctdbd's SET_RECMODE NORMAL check waits for the expected contention. */
export const RECMODE_CHECK_TIMEOUT_SECONDS = 5;

export const FCNTL_HELPER_NAME = 'ctdb_mutex_fcntl_helper';

/** The helper protocol's status characters; anything else counts as an error. */
const STATUS_BY_CHAR: Readonly<Record<string, ClusterLockStatus>> = { '0': 'locked', '1': 'contended', '2': 'timeout', '3': 'error' };

export type ClusterMutexLogger = Pick<Logger, 'error' | 'notice' | 'debug'>;

export interface ClusterMutexOptions {
  /** The `[cluster] cluster lock` value; null = no cluster lock, which always counts as held. */
  lock: string | null;
  /** Directory holding our own ctdb_mutex_fcntl_helper (the package's build/Release). */
  helperDir: string;
  logger: ClusterMutexLogger;
  /** Give up (status 'timeout') after this many seconds without an answer; 0 = wait forever. */
  timeoutSeconds: number;
  /** Called once if the lock is lost while held (not after release()). */
  onLost?: (reason: string) => void;
  /** Environment for CTDB_CLUSTER_MUTEX_HELPER and the helper itself (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The helper's argv for a `cluster lock` value. `!command args` is split on runs of spaces and
 * tabs with no quoting (strv_split in 4.17), so `!` alone gives an empty argv.
 */
export function clusterMutexArgv(lock: string, helperDir: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (lock.startsWith('!')) return lock.slice(1).split(/[ \t]+/).filter((word) => word.length > 0);
  return [env.CTDB_CLUSTER_MUTEX_HELPER ?? path.join(helperDir, FCNTL_HELPER_NAME), lock];
}

const SCHED_POLICY_FIELD = 41;
const REALTIME_POLICIES = new Set([1 /* FIFO */, 2 /* RR */, 6 /* DEADLINE */]);
const CHRT = '/usr/bin/chrt';

/** Whether this thread (the one that forks) runs under a real-time scheduling policy. */
function forkingThreadIsRealtime(): boolean {
  const stat = fs.readFileSync('/proc/thread-self/stat', 'latin1');
  // Fields after the parenthesised command name start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return REALTIME_POLICIES.has(Number(fields[SCHED_POLICY_FIELD - 3]));
}

/**
 * Marks every descriptor above stderr close-on-exec. libuv's own already are; this catches ones
 * the daemon inherited from whoever started it, or that native code opened without the flag.
 */
function keepDescriptorsFromHelpers(): void {
  for (const name of fs.readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (fd <= 2) continue;
    try {
      setCloseOnExec(fd);
    } catch (err) {
      // The directory listing's own descriptor is closed by now.
      if ((err as NodeJS.ErrnoException).code !== 'EBADF') throw err;
    }
  }
}

/**
 * The one place a helper process starts (a native vfork+exec spawner replaces it later).
 * Like 4.17's execv, a command without a slash is relative to the working directory, not
 * searched in PATH. stdin is /dev/null, stdout the status pipe, stderr goes to the log, nothing
 * else is inherited; libuv resets signal dispositions and the signal mask in the child. A
 * real-time parent's policy is not inherited: chrt execs the helper under SCHED_OTHER.
 */
function spawnHelper(argv: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
  const [command, ...args] = argv as [string, ...string[]];
  const file = path.resolve(command);
  keepDescriptorsFromHelpers();
  const options = { env, stdio: ['ignore', 'pipe', 'pipe'] } satisfies SpawnOptions;
  if (forkingThreadIsRealtime()) return spawn(CHRT, ['--other', '0', file, ...args], options);
  return spawn(file, args, { ...options, argv0: command });
}

type Phase = 'new' | 'taking' | 'held' | 'done';

/**
 * One attempt at the cluster lock (one helper run), like a 4.17 ctdb_cluster_mutex handle:
 * take() once, then release() when done; onLost reports a lock that went away while held.
 */
export class ClusterMutex {
  readonly #options: ClusterMutexOptions;
  #phase: Phase = 'new';
  #helper: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #startedAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #answer: (result: ClusterLockResult) => void = () => {};

  constructor(options: ClusterMutexOptions) {
    this.#options = options;
  }

  get held(): boolean {
    return this.#phase === 'held';
  }

  /** The helper's pid while it runs (for logs and tests). */
  get pid(): number | undefined {
    return this.#helper?.exitCode === null && this.#helper.signalCode === null ? this.#helper.pid : undefined;
  }

  take(): Promise<ClusterLockResult> {
    if (this.#phase !== 'new') return Promise.reject(new Error('ClusterMutex.take() was already called; use a new ClusterMutex'));
    const { lock, helperDir, logger, env = process.env } = this.#options;
    if (lock === null) {
      this.#phase = 'held';
      return Promise.resolve({ status: 'locked', latency: 0 });
    }
    const argv = clusterMutexArgv(lock, helperDir, env);
    if (argv.length === 0) {
      this.#phase = 'done';
      logger.error(`Cluster lock helper command is empty: "${lock}"`);
      return Promise.resolve({ status: 'error', latency: 0 });
    }
    this.#phase = 'taking';
    this.#startedAt = performance.now();
    const answered = new Promise<ClusterLockResult>((resolve) => (this.#answer = resolve));
    try {
      this.#watch(spawnHelper(argv, env), argv[0] ?? '');
    } catch (err) {
      logger.error(`Unable to run cluster lock helper "${argv[0]}": ${(err as Error).message}`);
      this.#finish('error');
    }
    if (this.#phase === 'taking' && this.#options.timeoutSeconds > 0) {
      this.#timer = setTimeout(() => this.#finish('timeout'), this.#options.timeoutSeconds * 1000);
    }
    return answered;
  }

  /** Stops the helper (SIGTERM), cancelling a take in progress; resolves once it has exited and its output is read. */
  release(): Promise<void> {
    if (this.#phase === 'taking') {
      this.#options.logger.notice('Cancelling cluster lock');
      this.#finish('error');
    } else {
      this.#phase = 'done';
      this.#helper?.kill('SIGTERM');
    }
    return this.#exited;
  }

  #watch(helper: ChildProcess, command: string): void {
    this.#helper = helper;
    this.#exited = new Promise((resolve) => {
      // 'close' rather than 'exit': by then its last stderr lines have been logged too.
      helper.once('close', () => resolve());
      helper.once('error', (err) => {
        // A helper that never started has no exit to wait for.
        if (helper.pid === undefined) resolve();
        if (this.#phase === 'taking') {
          this.#options.logger.error(`Unable to run cluster lock helper "${command}": ${err.message}`);
          this.#finish('error');
        }
      });
    });
    helper.stdout?.on('data', (chunk: Buffer) => {
      if (this.#phase === 'taking') this.#finish(STATUS_BY_CHAR[chunk.toString('latin1', 0, 1)] ?? 'error');
    });
    // EOF before any status is an error (4.17 reports '3'); EOF or exit while held is a loss.
    helper.stdout?.on('end', () => {
      if (this.#phase === 'taking') this.#finish('error');
      else this.#lost('cluster lock helper closed its status pipe');
    });
    helper.on('exit', (code, signal) => this.#lost(`cluster lock helper exited (${signal ?? `status ${code}`})`));
    this.#forwardStderr(helper);
  }

  /** Helpers report problems on stderr; 4.17 puts those lines in ctdbd's log. */
  #forwardStderr(helper: ChildProcess): void {
    let partial = '';
    helper.stderr?.setEncoding('utf8');
    helper.stderr?.on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.length > 0) this.#options.logger.error(line);
    });
    helper.stderr?.on('end', () => {
      if (partial.length > 0) this.#options.logger.error(partial);
    });
  }

  #finish(status: ClusterLockStatus): void {
    if (this.#phase !== 'taking') return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const latency = (performance.now() - this.#startedAt) / 1000;
    this.#phase = status === 'locked' ? 'held' : 'done';
    // Both 4.17 callers free the handle on any other answer, which kills a helper still running.
    if (status !== 'locked') this.#helper?.kill('SIGTERM');
    this.#options.logger.debug(`Cluster lock helper answered ${status} after ${latency.toFixed(3)}s`);
    this.#answer({ status, latency });
  }

  #lost(reason: string): void {
    if (this.#phase !== 'held') return;
    this.#phase = 'done';
    this.#helper?.kill('SIGTERM');
    this.#options.onLost?.(reason);
  }
}
