// Record chain locks for the daemon's own record work (calls and migrations). The lock is tried
// without waiting; only when smbd or another process holds the chain does the lock scheduler get
// it (through a helper process), and the work is then run again from the start under that lock,
// as ctdbd requeues a packet. The event loop never waits for a lock.
import type { Logger } from '../common/logging';
import { LockError, tdbLockDatabase } from '../locks';
import type { LockDatabase, LockGrant, LockScheduler } from '../locks';
import type { ClusterDatabase } from './database';

export interface DeferredRecordWork {
  retry(): void;
  stillWanted?(): boolean;
  failed?(err: Error): void;
}

export class RecordLocks {
  readonly #lockDatabases = new WeakMap<ClusterDatabase, LockDatabase>();

  constructor(
    readonly scheduler: LockScheduler,
    private readonly logger: Logger,
  ) {}

  /**
   * Takes the chain lock of `key` now and returns true (the caller unlocks with `unlock`), or
   * returns false and calls `later.retry` once the lock is granted: inside it the same attempt
   * succeeds at once. `later.stillWanted` is asked first (a recovery may have made the work
   * obsolete meanwhile); `later.failed` hears of a lock that could not be had.
   */
  tryLock(db: ClusterDatabase, key: Buffer, later: DeferredRecordWork): boolean {
    if (db.file.chainLockNonblock(key)) return true;
    this.scheduler.lockRecord(this.#lockDatabase(db), key, (grant) => {
      if (grant instanceof LockError) this.#failed(db, later, grant);
      else this.#runGranted(db, key, grant, later);
    });
    return false;
  }

  unlock(db: ClusterDatabase, key: Buffer): void {
    db.file.chainUnlock(key);
  }

  #runGranted(db: ClusterDatabase, key: Buffer, grant: LockGrant, later: DeferredRecordWork): void {
    // A helper holds the chain for us: record it as ours without locking it a second time.
    const marked = grant.holder === 'helper';
    try {
      if (later.stillWanted !== undefined && !later.stillWanted()) return;
      if (marked) db.file.chainLockMark(key);
      try {
        later.retry();
      } finally {
        if (marked) db.file.chainUnlockMark(key);
      }
    } catch (err) {
      this.#failed(db, later, err as Error);
    } finally {
      grant.release();
    }
  }

  #failed(db: ClusterDatabase, later: DeferredRecordWork, err: Error): void {
    const error = new Error(`${db.name}: record lock: ${err.message}`);
    this.logger.error(error.message);
    later.failed?.(error);
  }

  #lockDatabase(db: ClusterDatabase): LockDatabase {
    let lockDb = this.#lockDatabases.get(db);
    if (lockDb === undefined) {
      const scheduled = tdbLockDatabase(db.name, db.file);
      db.statistics.readLocksFrom(() => this.scheduler.databaseStatistics(scheduled));
      this.#lockDatabases.set(db, scheduled);
      lockDb = scheduled;
    }
    return lockDb;
  }
}
