// The lock scheduler: grants record locks and whole-database locks (freeze) without ever blocking
// the daemon. A request first tries the daemon's own non-blocking lock; only on contention does a
// helper process wait for it. Per database at most `helpersPerDatabase` helpers run (tunable
// LockProcessesPerDB); per record at most one helper runs and later requests for that record
// queue behind it. A pending freeze stops new record grants in its database and is served as soon
// as the record locks the daemon holds are released.
//
// Every operation is O(1): requests sit in per-record FIFO queues found through a hash map, and
// records waiting for a helper slot or for a thaw sit in per-database FIFO queues, so nothing is
// ever scanned. (ctdbd's lists are scanned, which costs 100% CPU at 60k pending requests.)
//
// Grants are delivered from a microtask, never from inside lockRecord()/release() calls.
import type { Logger } from '../common/logging';
import type { LockStatistics } from '../protocol/types';
import type { LockDatabase } from './lock-database';
import type { LockHelperHandle, LockHelperLauncher } from './lock-helper';
import { LinkedQueue, type QueueNode } from './linked-queue';
import { LockCounters, emptyLockStatistics } from './lock-stats';

export const DEFAULT_LOCK_PROCESSES_PER_DB = 200;
const DEFAULT_WARN_AFTER_SECONDS = 10;
const DEFAULT_HELPER_ATTEMPTS = 3;

export interface LockSchedulerOptions {
  launcher: LockHelperLauncher;
  /** LockProcessesPerDB: helpers that may run at once for one database. */
  helpersPerDatabase?: number;
  /** Where "unable to get lock" warnings go. */
  log?: Pick<Logger, 'warning'>;
  /** A lock waited on this long is logged, and again every as many seconds (ctdbd: 10). */
  warnAfterSeconds?: number;
  /** Helpers that may die before locking for one request before it fails. */
  helperAttempts?: number;
}

export type LockHolder = 'daemon' | 'helper';

export interface LockGrant {
  readonly database: LockDatabase;
  /** undefined for a database (freeze) lock. */
  readonly key: Buffer | undefined;
  /**
   * Who holds the lock: this process, or a helper process on its behalf. Under a helper's lock the
   * daemon must access the record without locking the chain again (libtdb's tdb_chainlock_mark),
   * or it would wait for its own helper.
   */
  readonly holder: LockHolder;
  /** True once the lock is gone without release(): its helper died. */
  readonly lost: boolean;
  /** Called if the lock is lost. */
  onLost: (() => void) | undefined;
  /** Unlocks; idempotent. */
  release(): void;
}

export class LockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockError';
  }
}

/** Called once per request with its grant, or with a LockError. */
export type LockCallback = (result: LockGrant | LockError) => void;

export interface PendingLock {
  /** Withdraws a request not yet granted; a grant delivered later is released at once. */
  cancel(): void;
}

type Phase =
  | 'idle'
  | 'helper' // a helper is waiting for the lock
  | 'held' // granted (by the daemon or a helper)
  | 'draining' // the helper was told to let go; waiting for it to exit
  | 'slot' // (records) needs a helper, the database is at its limit
  | 'blocked'; // (records) a freeze is pending or held

interface Request {
  readonly target: LockTarget;
  readonly callback: LockCallback;
  readonly start: number;
  node: QueueNode<Request> | undefined;
  attempts: number;
  cancelled: boolean;
}

/**
 * One lockable thing, a record (key set) or a whole database (key undefined), and its FIFO.
 * Both kinds have the same fields so the hot paths see one object shape.
 */
interface LockTarget {
  readonly database: DatabaseState;
  readonly key: Buffer | undefined;
  /** The records map key ('' for the database). */
  readonly id: string;
  readonly waiters: LinkedQueue<Request>;
  phase: Phase;
  helper: LockHelperHandle | undefined;
  grant: Grant | undefined;
  warnTimer: NodeJS.Timeout | undefined;
  /** Records only: the node in slotWaiters or blocked. */
  parked: QueueNode<RecordState> | undefined;
}

interface RecordState extends LockTarget {
  readonly key: Buffer;
}

class DatabaseState {
  readonly records = new Map<string, RecordState>();
  readonly freeze: LockTarget;
  readonly slotWaiters = new LinkedQueue<RecordState>();
  readonly blocked = new LinkedQueue<RecordState>();
  /** Helper processes running (record and freeze helpers). */
  helpers = 0;
  /** Record grants not yet released; a freeze waits for 0. */
  heldRecords = 0;

  constructor(
    readonly database: LockDatabase,
    readonly counters: LockCounters,
  ) {
    this.freeze = newTarget(this, undefined, '');
  }
}

class Grant implements LockGrant {
  lost = false;
  released = false;
  onLost: (() => void) | undefined;

  constructor(
    readonly database: LockDatabase,
    readonly key: Buffer | undefined,
    readonly holder: LockHolder,
    readonly releaseFn: () => void,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    if (!this.lost) this.releaseFn();
  }

  markLost(): void {
    this.lost = true;
    if (!this.released) this.onLost?.();
  }
}

function nowMs(): number {
  return performance.now();
}

function hexKey(key: Buffer): string {
  return key.toString('hex').toUpperCase();
}

function checkedLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`LockProcessesPerDB must be a positive integer, got ${limit}`);
  return limit;
}

function describe(target: LockTarget): string {
  const name = target.database.database.name;
  return target.key === undefined ? `DB lock on database ${name}` : `RECORD lock on database ${name} (key ${hexKey(target.key)})`;
}

function newTarget(database: DatabaseState, key: Buffer | undefined, id: string): LockTarget {
  return {
    database,
    key,
    id,
    waiters: new LinkedQueue<Request>(),
    phase: 'idle',
    helper: undefined,
    grant: undefined,
    warnTimer: undefined,
    parked: undefined,
  };
}

export class LockScheduler {
  readonly #launcher: LockHelperLauncher;
  #limit: number;
  readonly #log: Pick<Logger, 'warning'> | undefined;
  readonly #warnAfterMs: number;
  readonly #helperAttempts: number;
  readonly #databases = new Map<LockDatabase, DatabaseState>();
  readonly #statistics = emptyLockStatistics();
  #submitting: Request | undefined;
  #closed = false;

  constructor(options: LockSchedulerOptions) {
    this.#launcher = options.launcher;
    this.#limit = checkedLimit(options.helpersPerDatabase ?? DEFAULT_LOCK_PROCESSES_PER_DB);
    this.#log = options.log;
    this.#warnAfterMs = (options.warnAfterSeconds ?? DEFAULT_WARN_AFTER_SECONDS) * 1000;
    this.#helperAttempts = options.helperAttempts ?? DEFAULT_HELPER_ATTEMPTS;
  }

  /** LockProcessesPerDB changed at run time (`ctdb setvar`): a higher limit starts waiting helpers now. */
  setHelpersPerDatabase(limit: number): void {
    this.#limit = checkedLimit(limit);
    for (const state of this.#databases.values()) this.#helperSlotFreed(state);
  }

  /** Daemon-wide lock statistics (the `locks` part of `ctdb statistics`). */
  get statistics(): LockStatistics {
    return this.#statistics;
  }

  /** One database's lock statistics (the `locks` part of `ctdb dbstatistics`). */
  databaseStatistics(database: LockDatabase): LockStatistics {
    return this.#state(database).counters.database;
  }

  /** Helper processes running for a database. */
  helpersRunning(database: LockDatabase): number {
    return this.#databases.get(database)?.helpers ?? 0;
  }

  /** Requests a write lock on one record. */
  lockRecord(database: LockDatabase, key: Buffer, callback: LockCallback): PendingLock {
    const state = this.#state(database);
    const id = key.toString('latin1');
    let record = state.records.get(id);
    if (record === undefined) {
      record = newTarget(state, Buffer.from(key), id) as RecordState;
      state.records.set(id, record);
    }
    return this.#submit(record, callback, () => this.#pumpRecord(record));
  }

  /** Requests the whole-database lock (freeze); served before any waiting record request. */
  lockDatabase(database: LockDatabase, callback: LockCallback): PendingLock {
    const state = this.#state(database);
    return this.#submit(state.freeze, callback, () => this.#pumpFreeze(state));
  }

  /** Fails every waiting request and stops every helper; grants already delivered stay valid until released. */
  close(): void {
    this.#closed = true;
    for (const state of this.#databases.values()) {
      for (const target of [...state.records.values(), state.freeze]) {
        for (let request = target.waiters.peek(); request !== undefined; request = target.waiters.peek()) {
          this.#fail(request, new LockError(`lock scheduler closed before ${describe(target)} was granted`));
        }
        if (target.phase === 'helper') target.helper?.kill();
      }
    }
  }

  #state(database: LockDatabase): DatabaseState {
    let state = this.#databases.get(database);
    if (state === undefined) {
      state = new DatabaseState(database, new LockCounters(this.#statistics, emptyLockStatistics()));
      this.#databases.set(database, state);
    }
    return state;
  }

  // Queues a request and runs its first scheduling step; a grant within that step did not wait and
  // is not counted as a lock wait (ctdbd counts only the locks it needed a helper for).
  #submit(target: LockTarget, callback: LockCallback, pump: () => void): PendingLock {
    if (this.#closed) throw new LockError('lock scheduler is closed');
    const request: Request = { target, callback, start: nowMs(), node: undefined, attempts: 0, cancelled: false };
    request.node = target.waiters.push(request);
    target.database.counters.pendingDelta(1);
    this.#submitting = request;
    try {
      pump();
    } finally {
      this.#submitting = undefined;
    }
    return { cancel: () => this.#cancel(request) };
  }

  #freezeActive(state: DatabaseState): boolean {
    return state.freeze.waiters.size > 0 || state.freeze.phase !== 'idle';
  }

  #pump(target: LockTarget): void {
    if (target.key === undefined) this.#pumpFreeze(target.database);
    else this.#pumpRecord(target as RecordState);
  }

  // ---- records

  #pumpRecord(record: RecordState): void {
    const state = record.database;
    while (record.phase === 'idle') {
      const head = record.waiters.peek();
      if (head === undefined) {
        state.records.delete(record.id);
        return;
      }
      if (this.#freezeActive(state)) {
        this.#park(record, 'blocked', state.blocked);
        return;
      }
      const locked = this.#tryLock(head, () => state.database.tryLockRecord(record.key));
      if (locked === undefined) continue;
      if (locked) {
        this.#grant(record, head, 'daemon');
        return;
      }
      if (state.helpers >= this.#limit) {
        this.#park(record, 'slot', state.slotWaiters);
        return;
      }
      this.#startHelper(record, head);
    }
  }

  #park(record: RecordState, phase: 'slot' | 'blocked', queue: LinkedQueue<RecordState>): void {
    record.phase = phase;
    record.parked = queue.push(record);
  }

  #unpark(record: RecordState, queue: LinkedQueue<RecordState>): void {
    if (record.parked !== undefined) queue.remove(record.parked);
    record.parked = undefined;
    record.phase = 'idle';
  }

  // ---- freeze

  #pumpFreeze(state: DatabaseState): void {
    const freeze = state.freeze;
    while (freeze.phase === 'idle') {
      const head = freeze.waiters.peek();
      if (head === undefined) {
        this.#thaw(state);
        return;
      }
      if (state.heldRecords > 0) return; // served when the last record grant is released
      const locked = this.#tryLock(head, () => state.database.tryLockAll());
      if (locked === undefined) continue;
      if (locked) {
        this.#grant(freeze, head, 'daemon');
        return;
      }
      if (state.helpers >= this.#limit) return; // the next helper to exit hands us its slot
      this.#startHelper(freeze, head);
    }
  }

  // Records that waited out the freeze run again, then records waiting for helper slots.
  #thaw(state: DatabaseState): void {
    for (let record = state.blocked.peek(); record !== undefined; record = state.blocked.peek()) {
      this.#unpark(record, state.blocked);
      this.#pumpRecord(record);
    }
    this.#helperSlotFreed(state);
  }

  // ---- shared by records and freezes

  /** The daemon's own non-blocking try; undefined when it threw (the request has then failed). */
  #tryLock(head: Request, tryLock: () => boolean): boolean | undefined {
    try {
      return tryLock();
    } catch (err) {
      this.#fail(head, new LockError(`${describe(head.target)}: ${(err as Error).message}`));
      return undefined;
    }
  }

  // Leaves the phase idle if no helper could be started (the request has then failed).
  #startHelper(target: LockTarget, head: Request): void {
    const state = target.database;
    head.attempts++;
    try {
      target.helper = this.#launcher.launch(state.database, target.key, {
        locked: () => this.#helperLocked(target),
        exited: (reason) => this.#helperExited(target, reason),
      });
    } catch (err) {
      this.#fail(head, new LockError(`${describe(target)}: cannot start lock helper: ${(err as Error).message}`));
      return;
    }
    target.phase = 'helper';
    state.helpers++;
    state.counters.currentDelta(1);
    target.warnTimer = this.#warnLater(target);
  }

  #helperLocked(target: LockTarget): void {
    this.#stopWarning(target);
    if (target.phase !== 'helper') return;
    const head = target.waiters.peek();
    // Nobody to give it to, or a freeze must not find this chain locked: let go, try again later.
    if (head === undefined || (target.key !== undefined && this.#freezeActive(target.database))) {
      target.helper?.release();
      target.phase = 'draining';
      return;
    }
    this.#grant(target, head, 'helper');
  }

  #helperExited(target: LockTarget, reason: string): void {
    const state = target.database;
    this.#stopWarning(target);
    state.helpers--;
    state.counters.currentDelta(-1);
    target.helper = undefined;
    const phase = target.phase;
    target.phase = 'idle';
    if (phase === 'helper') {
      const head = target.waiters.peek();
      if (head !== undefined && head.attempts >= this.#helperAttempts) this.#fail(head, new LockError(`${describe(target)} failed: ${reason}`));
    } else if (phase === 'held' && target.grant !== undefined) {
      const grant = target.grant;
      target.grant = undefined;
      if (target.key !== undefined) state.heldRecords--;
      this.#log?.warning(`Lost ${describe(target)}: ${reason}`);
      grant.markLost();
    }
    this.#pump(target);
    this.#helperSlotFreed(state);
    this.#pumpFreeze(state);
  }

  #helperSlotFreed(state: DatabaseState): void {
    if (this.#freezeActive(state)) return; // the freeze gets the slot; records resume at thaw
    while (state.helpers < this.#limit) {
      const record = state.slotWaiters.peek();
      if (record === undefined) return;
      this.#unpark(record, state.slotWaiters);
      this.#pumpRecord(record);
    }
  }

  #grant(target: LockTarget, request: Request, holder: LockHolder): void {
    target.waiters.remove(request.node!);
    request.node = undefined;
    target.phase = 'held';
    if (target.key !== undefined) target.database.heldRecords++;
    const grant = new Grant(target.database.database, target.key, holder, () => this.#release(target));
    target.grant = grant;
    const counters = target.database.counters;
    counters.pendingDelta(-1);
    if (request !== this.#submitting) counters.locked((nowMs() - request.start) / 1000);
    queueMicrotask(() => {
      if (request.cancelled) grant.release();
      else request.callback(grant);
    });
  }

  #release(target: LockTarget): void {
    const state = target.database;
    target.grant = undefined;
    if (target.key !== undefined) state.heldRecords--;
    if (target.helper !== undefined) {
      target.helper.release();
      target.phase = 'draining'; // the next try must wait until the helper has unlocked
    } else {
      try {
        if (target.key === undefined) state.database.unlockAll();
        else state.database.unlockRecord(target.key);
      } catch (err) {
        this.#log?.warning(`Unable to unlock ${describe(target)}: ${(err as Error).message}`);
      }
      target.phase = 'idle';
      this.#pump(target);
    }
    this.#pumpFreeze(state);
  }

  #fail(request: Request, error: LockError): void {
    const counters = request.target.database.counters;
    if (request.node !== undefined) request.target.waiters.remove(request.node);
    request.node = undefined;
    counters.pendingDelta(-1);
    counters.failed();
    queueMicrotask(() => {
      if (!request.cancelled) request.callback(error);
    });
  }

  #cancel(request: Request): void {
    if (request.cancelled) return;
    request.cancelled = true;
    if (request.node === undefined) return; // granted or failed: delivery handles it
    const target = request.target;
    const state = target.database;
    target.waiters.remove(request.node);
    request.node = undefined;
    state.counters.pendingDelta(-1);
    if (target.waiters.size > 0) return;
    if (target.phase === 'helper') target.helper?.kill();
    if (target.key === undefined) {
      this.#pumpFreeze(state);
      return;
    }
    const record = target as RecordState;
    if (record.phase === 'slot') this.#unpark(record, state.slotWaiters);
    else if (record.phase === 'blocked') this.#unpark(record, state.blocked);
    if (record.phase === 'idle') state.records.delete(record.id);
  }

  // ---- "waited too long" log, as ctdbd: after warnAfterSeconds, then every warnAfterSeconds

  #warnLater(target: LockTarget): NodeJS.Timeout | undefined {
    if (this.#log === undefined || this.#warnAfterMs <= 0) return undefined;
    const timer = setInterval(() => {
      const head = target.waiters.peek();
      if (head === undefined) return;
      const seconds = Math.round((nowMs() - head.start) / 1000);
      const name = target.database.database.name;
      // ctdbd's wording, which admins grep for
      this.#log?.warning(
        target.key === undefined
          ? `Unable to get DB lock on database ${name} for ${seconds} seconds`
          : `Unable to get RECORD lock on database ${name} for ${seconds} seconds (key ${hexKey(target.key)})`,
      );
    }, this.#warnAfterMs);
    timer.unref();
    return timer;
  }

  #stopWarning(target: LockTarget): void {
    clearInterval(target.warnTimer);
    target.warnTimer = undefined;
  }
}
