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
  /** Who holds the lock: this process, or a helper process on its behalf. */
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

type RecordPhase =
  | 'idle'
  | 'helper' // a helper is waiting for the lock
  | 'held' // granted (by the daemon or a helper)
  | 'draining' // the helper was told to let go; waiting for it to exit
  | 'slot' // needs a helper, the database is at its limit
  | 'blocked'; // a freeze is pending or held

type FreezePhase = 'none' | 'helper' | 'held' | 'draining';

interface Request {
  readonly database: DatabaseState;
  readonly record: RecordState | undefined;
  readonly callback: LockCallback;
  readonly start: number;
  node: QueueNode<Request> | undefined;
  attempts: number;
  cancelled: boolean;
}

interface RecordState {
  readonly id: string;
  readonly key: Buffer;
  readonly database: DatabaseState;
  readonly waiters: LinkedQueue<Request>;
  phase: RecordPhase;
  helper: LockHelperHandle | undefined;
  grant: Grant | undefined;
  parked: QueueNode<RecordState> | undefined; // in slotWaiters or blocked
  warnTimer: NodeJS.Timeout | undefined;
}

interface DatabaseState {
  readonly database: LockDatabase;
  readonly records: Map<string, RecordState>;
  readonly freezeQueue: LinkedQueue<Request>;
  readonly slotWaiters: LinkedQueue<RecordState>;
  readonly blocked: LinkedQueue<RecordState>;
  readonly counters: LockCounters;
  helpers: number;
  heldRecords: number;
  freeze: FreezePhase;
  freezeHelper: LockHelperHandle | undefined;
  freezeGrant: Grant | undefined;
  freezeWarnTimer: NodeJS.Timeout | undefined;
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

export class LockScheduler {
  readonly #launcher: LockHelperLauncher;
  readonly #limit: number;
  readonly #log: Pick<Logger, 'warning'> | undefined;
  readonly #warnAfterMs: number;
  readonly #helperAttempts: number;
  readonly #databases = new Map<LockDatabase, DatabaseState>();
  readonly #statistics = emptyLockStatistics();
  #submitting: Request | undefined;
  #closed = false;

  constructor(options: LockSchedulerOptions) {
    const limit = options.helpersPerDatabase ?? DEFAULT_LOCK_PROCESSES_PER_DB;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`LockProcessesPerDB must be a positive integer, got ${limit}`);
    this.#launcher = options.launcher;
    this.#limit = limit;
    this.#log = options.log;
    this.#warnAfterMs = (options.warnAfterSeconds ?? DEFAULT_WARN_AFTER_SECONDS) * 1000;
    this.#helperAttempts = options.helperAttempts ?? DEFAULT_HELPER_ATTEMPTS;
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
      record = {
        id,
        key: Buffer.from(key),
        database: state,
        waiters: new LinkedQueue<Request>(),
        phase: 'idle',
        helper: undefined,
        grant: undefined,
        parked: undefined,
        warnTimer: undefined,
      };
      state.records.set(id, record);
    }
    const request = this.#newRequest(state, record, callback);
    request.node = record.waiters.push(request);
    this.#submit(request, () => this.#pumpRecord(record));
    return { cancel: () => this.#cancel(request) };
  }

  /** Requests the whole-database lock (freeze); served before any waiting record request. */
  lockDatabase(database: LockDatabase, callback: LockCallback): PendingLock {
    const state = this.#state(database);
    const request = this.#newRequest(state, undefined, callback);
    request.node = state.freezeQueue.push(request);
    this.#submit(request, () => this.#pumpFreeze(state));
    return { cancel: () => this.#cancel(request) };
  }

  /** Fails every waiting request and stops every helper; grants already delivered stay valid until released. */
  close(): void {
    this.#closed = true;
    for (const state of this.#databases.values()) {
      for (const record of state.records.values()) {
        for (let request = record.waiters.shift(); request !== undefined; request = record.waiters.shift()) {
          this.#fail(request, new LockError(`lock scheduler closed before ${this.#describe(request)} was granted`));
        }
        if (record.phase === 'helper') record.helper?.kill();
      }
      for (let request = state.freezeQueue.shift(); request !== undefined; request = state.freezeQueue.shift()) {
        this.#fail(request, new LockError(`lock scheduler closed before ${this.#describe(request)} was granted`));
      }
      if (state.freeze === 'helper') state.freezeHelper?.kill();
    }
  }

  #state(database: LockDatabase): DatabaseState {
    let state = this.#databases.get(database);
    if (state === undefined) {
      state = {
        database,
        records: new Map(),
        freezeQueue: new LinkedQueue<Request>(),
        slotWaiters: new LinkedQueue<RecordState>(),
        blocked: new LinkedQueue<RecordState>(),
        counters: new LockCounters(this.#statistics, emptyLockStatistics()),
        helpers: 0,
        heldRecords: 0,
        freeze: 'none',
        freezeHelper: undefined,
        freezeGrant: undefined,
        freezeWarnTimer: undefined,
      };
      this.#databases.set(database, state);
    }
    return state;
  }

  #newRequest(database: DatabaseState, record: RecordState | undefined, callback: LockCallback): Request {
    if (this.#closed) throw new LockError('lock scheduler is closed');
    return { database, record, callback, start: nowMs(), node: undefined, attempts: 0, cancelled: false };
  }

  // Runs the first scheduling step for a new request; a grant within it did not wait, and is not
  // counted as a lock wait (ctdbd counts only the locks it needed a helper for).
  #submit(request: Request, pump: () => void): void {
    request.database.counters.pendingDelta(1);
    this.#submitting = request;
    try {
      pump();
    } finally {
      this.#submitting = undefined;
    }
  }

  #describe(request: Request): string {
    const name = request.database.database.name;
    return request.record === undefined ? `DB lock on database ${name}` : `RECORD lock on database ${name} (key ${hexKey(request.record.key)})`;
  }

  #freezeActive(state: DatabaseState): boolean {
    return state.freezeQueue.size > 0 || state.freeze !== 'none';
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
      let locked: boolean;
      try {
        locked = state.database.tryLockRecord(record.key);
      } catch (err) {
        this.#fail(head, new LockError(`${this.#describe(head)}: ${(err as Error).message}`));
        continue;
      }
      if (locked) {
        this.#grantRecord(record, head, 'daemon');
        return;
      }
      this.#startRecordHelper(record, head);
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

  #startRecordHelper(record: RecordState, head: Request): void {
    const state = record.database;
    if (state.helpers >= this.#limit) {
      this.#park(record, 'slot', state.slotWaiters);
      return;
    }
    head.attempts++;
    try {
      record.helper = this.#launcher.launch(state.database, record.key, {
        locked: () => this.#recordHelperLocked(record),
        exited: (reason) => this.#recordHelperExited(record, reason),
      });
    } catch (err) {
      this.#fail(head, new LockError(`${this.#describe(head)}: cannot start lock helper: ${(err as Error).message}`));
      return; // phase stays idle: the caller's loop moves on to the next waiter
    }
    record.phase = 'helper';
    this.#helperStarted(state);
    record.warnTimer = this.#warnLater(head, () => record.waiters.peek());
  }

  #recordHelperLocked(record: RecordState): void {
    this.#stopWarning(record);
    if (record.phase !== 'helper') return;
    const head = record.waiters.peek();
    if (head === undefined || this.#freezeActive(record.database)) {
      // Nobody to give it to, or a freeze must not find this chain locked: let go, try again later.
      record.helper?.release();
      record.phase = 'draining';
      return;
    }
    this.#grantRecord(record, head, 'helper');
  }

  #recordHelperExited(record: RecordState, reason: string): void {
    const state = record.database;
    this.#stopWarning(record);
    this.#helperStopped(state);
    record.helper = undefined;
    const phase = record.phase;
    record.phase = 'idle';
    if (phase === 'helper') {
      const head = record.waiters.peek();
      if (head !== undefined && head.attempts >= this.#helperAttempts) {
        this.#fail(head, new LockError(`${this.#describe(head)} failed: ${reason}`));
      }
    } else if (phase === 'held' && record.grant !== undefined) {
      const grant = record.grant;
      record.grant = undefined;
      state.heldRecords--;
      this.#log?.warning(`Lost RECORD lock on database ${state.database.name} (key ${hexKey(record.key)}): ${reason}`);
      grant.markLost();
    }
    this.#pumpRecord(record);
    this.#helperSlotFreed(state);
    this.#pumpFreeze(state);
  }

  #grantRecord(record: RecordState, request: Request, holder: LockHolder): void {
    record.waiters.remove(request.node!);
    record.phase = 'held';
    record.database.heldRecords++;
    const grant = new Grant(record.database.database, record.key, holder, () => this.#releaseRecord(record));
    record.grant = grant;
    this.#deliver(request, grant);
  }

  #releaseRecord(record: RecordState): void {
    const state = record.database;
    record.grant = undefined;
    state.heldRecords--;
    if (record.phase === 'held' && record.helper !== undefined) {
      record.helper.release();
      record.phase = 'draining'; // the next try must wait until the helper has unlocked
    } else {
      try {
        state.database.unlockRecord(record.key);
      } catch (err) {
        this.#log?.warning(`Unable to unlock RECORD on database ${state.database.name}: ${(err as Error).message}`);
      }
      record.phase = 'idle';
      this.#pumpRecord(record);
    }
    this.#pumpFreeze(state);
  }

  // ---- helper slots

  #helperStarted(state: DatabaseState): void {
    state.helpers++;
    state.counters.currentDelta(1);
  }

  #helperStopped(state: DatabaseState): void {
    state.helpers--;
    state.counters.currentDelta(-1);
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

  // ---- freeze

  #pumpFreeze(state: DatabaseState): void {
    while (state.freeze === 'none') {
      const head = state.freezeQueue.peek();
      if (head === undefined) {
        this.#thaw(state);
        return;
      }
      if (state.heldRecords > 0) return; // served when the last record grant is released
      let locked: boolean;
      try {
        locked = state.database.tryLockAll();
      } catch (err) {
        this.#fail(head, new LockError(`${this.#describe(head)}: ${(err as Error).message}`));
        continue;
      }
      if (locked) {
        this.#grantFreeze(state, head, 'daemon');
        return;
      }
      if (state.helpers >= this.#limit) return; // the next helper to exit hands us its slot
      head.attempts++;
      try {
        state.freezeHelper = this.#launcher.launch(state.database, undefined, {
          locked: () => this.#freezeHelperLocked(state),
          exited: (reason) => this.#freezeHelperExited(state, reason),
        });
      } catch (err) {
        this.#fail(head, new LockError(`${this.#describe(head)}: cannot start lock helper: ${(err as Error).message}`));
        continue;
      }
      state.freeze = 'helper';
      this.#helperStarted(state);
      state.freezeWarnTimer = this.#warnLater(head, () => state.freezeQueue.peek());
    }
  }

  #freezeHelperLocked(state: DatabaseState): void {
    clearTimeout(state.freezeWarnTimer);
    if (state.freeze !== 'helper') return;
    const head = state.freezeQueue.peek();
    if (head === undefined) {
      state.freezeHelper?.release();
      state.freeze = 'draining';
      return;
    }
    this.#grantFreeze(state, head, 'helper');
  }

  #freezeHelperExited(state: DatabaseState, reason: string): void {
    clearTimeout(state.freezeWarnTimer);
    this.#helperStopped(state);
    state.freezeHelper = undefined;
    const phase = state.freeze;
    state.freeze = 'none';
    if (phase === 'helper') {
      const head = state.freezeQueue.peek();
      if (head !== undefined && head.attempts >= this.#helperAttempts) {
        this.#fail(head, new LockError(`${this.#describe(head)} failed: ${reason}`));
      }
    } else if (phase === 'held' && state.freezeGrant !== undefined) {
      const grant = state.freezeGrant;
      state.freezeGrant = undefined;
      this.#log?.warning(`Lost DB lock on database ${state.database.name}: ${reason}`);
      grant.markLost();
    }
    this.#pumpFreeze(state);
    this.#helperSlotFreed(state);
  }

  #grantFreeze(state: DatabaseState, request: Request, holder: LockHolder): void {
    state.freezeQueue.remove(request.node!);
    state.freeze = 'held';
    const grant = new Grant(state.database, undefined, holder, () => this.#releaseFreeze(state));
    state.freezeGrant = grant;
    this.#deliver(request, grant);
  }

  #releaseFreeze(state: DatabaseState): void {
    state.freezeGrant = undefined;
    if (state.freezeHelper !== undefined) {
      state.freezeHelper.release();
      state.freeze = 'draining';
      return;
    }
    try {
      state.database.unlockAll();
    } catch (err) {
      this.#log?.warning(`Unable to unlock DB ${state.database.name}: ${(err as Error).message}`);
    }
    state.freeze = 'none';
    this.#pumpFreeze(state);
  }

  // Records that waited out the freeze run again, then records waiting for helper slots.
  #thaw(state: DatabaseState): void {
    for (let record = state.blocked.peek(); record !== undefined; record = state.blocked.peek()) {
      this.#unpark(record, state.blocked);
      this.#pumpRecord(record);
    }
    this.#helperSlotFreed(state);
  }

  // ---- completion

  #deliver(request: Request, grant: Grant): void {
    request.node = undefined;
    const counters = request.database.counters;
    counters.pendingDelta(-1);
    if (request !== this.#submitting) counters.locked((nowMs() - request.start) / 1000);
    queueMicrotask(() => {
      if (request.cancelled) grant.release();
      else request.callback(grant);
    });
  }

  #fail(request: Request, error: LockError): void {
    if (request.node !== undefined) {
      (request.record?.waiters ?? request.database.freezeQueue).remove(request.node);
      request.node = undefined;
    }
    request.database.counters.pendingDelta(-1);
    request.database.counters.failed();
    queueMicrotask(() => {
      if (!request.cancelled) request.callback(error);
    });
  }

  #cancel(request: Request): void {
    if (request.cancelled) return;
    request.cancelled = true;
    if (request.node === undefined) return; // granted or failed: delivery handles it
    const state = request.database;
    const record = request.record;
    (record?.waiters ?? state.freezeQueue).remove(request.node);
    request.node = undefined;
    state.counters.pendingDelta(-1);
    if (record === undefined) {
      if (state.freezeQueue.size === 0 && state.freeze === 'helper') state.freezeHelper?.kill();
      this.#pumpFreeze(state);
      return;
    }
    if (record.waiters.size > 0) return;
    if (record.phase === 'helper') record.helper?.kill();
    else if (record.phase === 'slot') this.#unpark(record, state.slotWaiters);
    else if (record.phase === 'blocked') this.#unpark(record, state.blocked);
    if (record.phase === 'idle') state.records.delete(record.id);
  }

  // ---- "waited too long" log, as ctdbd: after warnAfterSeconds, then every warnAfterSeconds

  #warnLater(request: Request, currentHead: () => Request | undefined): NodeJS.Timeout | undefined {
    if (this.#log === undefined || this.#warnAfterMs <= 0) return undefined;
    const timer = setInterval(() => {
      const head = currentHead() ?? request;
      const seconds = Math.round((nowMs() - head.start) / 1000);
      const name = head.database.database.name;
      // ctdbd's wording, which admins grep for
      this.#log?.warning(
        head.record === undefined
          ? `Unable to get DB lock on database ${name} for ${seconds} seconds`
          : `Unable to get RECORD lock on database ${name} for ${seconds} seconds (key ${hexKey(head.record.key)})`,
      );
    }, this.#warnAfterMs);
    timer.unref();
    return timer;
  }

  #stopWarning(record: RecordState): void {
    clearInterval(record.warnTimer);
    record.warnTimer = undefined;
  }
}
