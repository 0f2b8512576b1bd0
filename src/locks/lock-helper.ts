// Lock helpers: a process per contended lock that blocks in the lock call so the daemon never
// does. The wire contract is CTDB 4.17's ctdb_lock_helper (see native/helpers/lock_helper.cc):
// argv "<daemon-pid> <fd> RECORD <path> <flags> <hex-key|NULL>" or "... DB <path> <flags>", one
// status byte (0 locked, 1 failed), lock held until the channel closes.
import { HelperProcess, helperExecutable, type HelperExit } from '../spawn';
import type { LockDatabase } from './lock-database';

export interface LockHelperEvents {
  /** The helper holds the lock. */
  locked(): void;
  /** The helper is gone (before locking, after release, or while holding: then the lock is lost). */
  exited(reason: string): void;
}

export interface LockHelperHandle {
  readonly pid: number;
  /** Asks the helper to unlock and exit. */
  release(): void;
  /** Stops a helper still waiting for its lock. */
  kill(): void;
}

/** Starts helpers; the scheduler calls it only after the daemon's own non-blocking try failed. */
export interface LockHelperLauncher {
  /** `key` undefined means the whole database (freeze). Throws if no helper could be started. */
  launch(database: LockDatabase, key: Buffer | undefined, events: LockHelperEvents): LockHelperHandle;
}

const STATUS_LOCKED = 0;
const CHANNEL_FD = 3;

/** ctdbd's helper arguments, after argv[0]. */
export function lockHelperArgs(daemonPid: number, database: LockDatabase, key: Buffer | undefined): string[] {
  const common = [String(daemonPid), String(CHANNEL_FD)];
  const flags = `0x${database.tdbFlags.toString(16)}`;
  if (key === undefined) return [...common, 'DB', database.path, flags];
  return [...common, 'RECORD', database.path, flags, key.length === 0 ? 'NULL' : key.toString('hex').toUpperCase()];
}

function describeExit(exit: HelperExit): string {
  return exit.signal !== null ? `killed by ${exit.signal}` : `exited with status ${exit.code}`;
}

/** Launches `ctdb_lock_helper` (ours by default, or any 4.17-compatible one) by vfork+exec. */
export function processLockHelperLauncher(executable = helperExecutable('ctdb_lock_helper')): LockHelperLauncher {
  return {
    launch(database, key, events) {
      let status: number | undefined;
      const helper = HelperProcess.spawn(executable, lockHelperArgs(process.pid, database, key), {
        onData(bytes) {
          if (status !== undefined) return;
          status = bytes[0];
          if (status === STATUS_LOCKED) events.locked();
        },
        onExit(exit) {
          const failed = status !== undefined && status !== STATUS_LOCKED ? 'reported failure, ' : '';
          events.exited(`lock helper ${helper.pid} ${failed}${describeExit(exit)}`);
        },
      }, { channelFd: CHANNEL_FD });
      return {
        pid: helper.pid,
        release: () => helper.release(),
        kill: () => void helper.kill('SIGTERM'),
      };
    },
  };
}
