// What the lock scheduler needs from a database: its identity for helpers and logs, and the
// daemon's own non-blocking locks, which are always tried before a helper is started.
import type { TdbFile } from '../store';

export interface LockDatabase {
  /** Database name, for log lines. */
  readonly name: string;
  /** The tdb file a helper opens. */
  readonly path: string;
  /** tdb open flags a helper uses (they decide fcntl or mutex locking). */
  readonly tdbFlags: number;
  /** Non-blocking chain write lock in this process; false when someone else holds the chain. */
  tryLockRecord(key: Buffer): boolean;
  unlockRecord(key: Buffer): void;
  /** Non-blocking all-record write lock in this process (freeze). */
  tryLockAll(): boolean;
  unlockAll(): void;
}

/** A LockDatabase over an open TdbFile. */
export function tdbLockDatabase(name: string, file: TdbFile): LockDatabase {
  return {
    name,
    path: file.path,
    tdbFlags: file.info.tdbFlags,
    tryLockRecord: (key) => file.chainLockNonblock(key),
    unlockRecord: (key) => file.chainUnlock(key),
    tryLockAll: () => file.lockAllNonblock(),
    unlockAll: () => file.unlockAll(),
  };
}
