// One attached CTDB database: its identity, its open tdb file and the recovery state the
// freeze/transaction controls move it through (frozen → transaction → committed → thawed).
import { DbFlag } from '../protocol';
import { TdbFile, TdbFlag } from '../store';
import { DatabaseStatistics } from './db-statistics';
import { ReadOnlyTracking } from './readonly-tracking';

export interface DatabaseSpec {
  readonly id: number;
  readonly name: string;
  /** DbFlag bits fixed at attach (PERSISTENT / REPLICATED). */
  readonly kindFlags: number;
  readonly path: string;
  readonly hashSize: number;
  readonly mutexes: boolean;
}

/** The tdb open flags 4.17 uses for each kind of database (ctdb_db_tdb_flags). */
export function tdbOpenFlags(kindFlags: number, mutexes: boolean): number {
  if ((kindFlags & DbFlag.PERSISTENT) !== 0) return TdbFlag.DISALLOW_NESTING;
  const volatile = TdbFlag.NOSYNC | TdbFlag.CLEAR_IF_FIRST | TdbFlag.INCOMPATIBLE_HASH | TdbFlag.DISALLOW_NESTING;
  const replicated = (kindFlags & DbFlag.REPLICATED) !== 0;
  return mutexes && !replicated ? volatile | TdbFlag.MUTEX_LOCKING : volatile;
}

/** How often a freeze retries the all-record lock while another process holds part of it. */
const FREEZE_RETRY_MS = 2;
const FREEZE_RETRY_MAX_MS = 50;

export class ClusterDatabase {
  readonly id: number;
  readonly name: string;
  readonly path: string;
  readonly file: TdbFile;
  readonly statistics: DatabaseStatistics;
  /** DbFlag bits, including READONLY / STICKY once set. */
  flags: number;
  /** Why a persistent database is unhealthy; null when healthy. */
  unhealthyReason: string | null = null;
  /** Set by DB_TRANSACTION_COMMIT to the recovery's generation. */
  generation = 0;
  seqnumEnabled = false;
  #frozen = false;
  #freezing: { promise: Promise<void>; cancel: (why: string) => void } | null = null;
  /** The tid of the open recovery transaction, or null. */
  #transactionId: number | null = null;
  #readonlyTracking: ReadOnlyTracking | null = null;

  private constructor(spec: DatabaseSpec, file: TdbFile) {
    this.id = spec.id;
    this.name = spec.name;
    this.path = spec.path;
    this.flags = spec.kindFlags;
    this.file = file;
    this.statistics = new DatabaseStatistics(spec.name);
  }

  /** Opens (volatile: recreates empty) the database file. */
  static open(spec: DatabaseSpec, removeStale: (path: string) => void): ClusterDatabase {
    const flags = tdbOpenFlags(spec.kindFlags, spec.mutexes);
    // CLEAR_IF_FIRST only wipes when nobody else has the file open: a stale smbd may, so
    // like ctdbd we start from a new file.
    if ((flags & TdbFlag.CLEAR_IF_FIRST) !== 0) removeStale(spec.path);
    const file = TdbFile.open(spec.path, { flags, hashSize: spec.hashSize, access: 'create', mode: 0o600 });
    return new ClusterDatabase(spec, file);
  }

  get persistent(): boolean {
    return (this.flags & DbFlag.PERSISTENT) !== 0;
  }

  get replicated(): boolean {
    return (this.flags & DbFlag.REPLICATED) !== 0;
  }

  get volatile(): boolean {
    return !this.persistent && !this.replicated;
  }

  /** The flags the file is open with, as DB_OPEN_FLAGS reports them to smbd. */
  get tdbFlags(): number {
    return this.file.info.tdbFlags | (this.seqnumEnabled ? TdbFlag.SEQNUM : 0);
  }

  get frozen(): boolean {
    return this.#frozen;
  }

  get transactionId(): number | null {
    return this.#transactionId;
  }

  /** Who holds read-only copies of its records; null until READONLY is set. */
  get readonlyTracking(): ReadOnlyTracking | null {
    return this.#readonlyTracking;
  }

  /** SET_DB_READONLY: opens the tracking file first, so a database never has the flag without it. */
  setReadonly(hashSize: number): ReadOnlyTracking {
    this.#readonlyTracking ??= ReadOnlyTracking.open(this.path, hashSize);
    this.flags |= DbFlag.READONLY;
    return this.#readonlyTracking;
  }

  enableSeqnum(): void {
    if (this.seqnumEnabled) return;
    this.file.enableSeqnum();
    this.seqnumEnabled = true;
  }

  /**
   * Takes the all-record lock without ever waiting inside a lock call: while another process
   * holds a chain the attempt is repeated from a timer. Concurrent freezes share one attempt.
   */
  freeze(): Promise<void> {
    if (this.#frozen) return Promise.resolve();
    if (this.#freezing !== null) return this.#freezing.promise;
    let timer: NodeJS.Timeout | undefined;
    let fail!: (err: Error) => void;
    const promise = new Promise<void>((resolve, reject) => {
      fail = reject;
      let delay = FREEZE_RETRY_MS;
      const attempt = (): void => {
        try {
          if (!this.file.lockAllNonblock()) {
            timer = setTimeout(attempt, delay);
            delay = Math.min(delay * 2, FREEZE_RETRY_MAX_MS);
            return;
          }
        } catch (err) {
          this.#freezing = null;
          reject(err as Error);
          return;
        }
        this.#freezing = null;
        this.#frozen = true;
        resolve();
      };
      attempt();
    });
    this.#freezing = {
      promise,
      cancel: (why) => {
        clearTimeout(timer);
        this.#freezing = null;
        fail(new Error(`freeze of ${this.name} ${why}`));
      },
    };
    return promise;
  }

  /** Ends a freeze (and any recovery transaction, cancelled); a pending freeze fails. */
  thaw(): void {
    this.#freezing?.cancel('cancelled by thaw');
    if (this.#transactionId !== null) this.cancelTransaction();
    if (this.#frozen) this.file.unlockAll();
    this.#frozen = false;
  }

  /**
   * libtdb refuses a transaction while this process holds the all-record lock, so the freeze
   * lock is handed over to the transaction (which itself excludes other writers) in one step.
   */
  startTransaction(tid: number): void {
    this.#requireFrozen('start a transaction');
    if (this.#transactionId !== null) this.file.transactionCancel();
    else this.file.unlockAll();
    this.#transactionId = null;
    let started: boolean;
    try {
      started = this.file.transactionStartNonblock();
    } catch (err) {
      this.#relock();
      throw err;
    }
    if (!started) {
      this.#relock();
      throw new Error(`${this.name}: another process holds the transaction lock`);
    }
    this.#transactionId = tid;
  }

  commitTransaction(tid: number): void {
    this.#requireTransaction(tid, 'commit');
    this.#transactionId = null;
    try {
      this.file.transactionCommit();
    } finally {
      this.#relock();
    }
    this.generation = tid;
    if (this.persistent) this.unhealthyReason = null;
  }

  cancelTransaction(): void {
    if (this.#transactionId === null) return;
    this.#transactionId = null;
    try {
      this.file.transactionCancel();
    } finally {
      this.#relock();
    }
  }

  /** WIPE_DATABASE: only inside the recovery transaction with that tid. */
  wipe(tid: number): void {
    this.#requireTransaction(tid, 'wipe');
    this.file.wipe();
  }

  close(): void {
    this.thaw();
    this.#readonlyTracking?.close();
    this.file.close();
  }

  requireFrozen(what: string): void {
    this.#requireFrozen(what);
  }

  #requireFrozen(what: string): void {
    if (!this.#frozen) throw new Error(`database ${this.name} is not frozen, cannot ${what}`);
  }

  #requireTransaction(tid: number, what: string): void {
    this.#requireFrozen(what);
    if (this.#transactionId === null) throw new Error(`database ${this.name}: no transaction started, cannot ${what}`);
    if (this.#transactionId !== tid) {
      throw new Error(`database ${this.name}: transaction id 0x${tid.toString(16)} does not match 0x${this.#transactionId.toString(16)}`);
    }
  }

  // A database stays frozen from the end of its transaction until DB_THAW. If another process
  // took a chain in between, it is no longer frozen and the next recovery step says so.
  #relock(): void {
    this.#frozen = this.file.lockAllNonblock();
  }
}
