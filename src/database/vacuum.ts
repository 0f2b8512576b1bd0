// Vacuuming: how volatile databases get rid of emptied records, with ctdbd 4.17's protocol
// (ctdb_vacuum.c, the TRY_DELETE_RECORDS side in ctdb_recover.c):
// - every VacuumInterval each volatile database gets a run; every VacuumFastPathCount-th run is
//   full: the file is scanned for empty records this node is dmaster of, which join the queue;
// - a run first migrates here the records other nodes asked this node, their lmaster, to take
//   back (VACUUM_FETCH → a VACUUM_MIGRATION call); those still empty here are queued;
// - each queued record still empty, with this node dmaster and the rsn it was queued with:
//   not lmaster → its lmaster is sent VACUUM_FETCH; lmaster and never migrated with data → no
//   other node has a copy, it is deleted; lmaster and migrated with data → other nodes may hold
//   stale copies: every other active node gets TRY_DELETE_RECORDS (it deletes its copy unless
//   that is newer or its own) and the record is deleted here only if all of them did;
// - a long free list afterwards → repack (RepackLimit).
// Every deletion is checked under the record's chain lock against the rsn and dmaster the record
// was queued with, so a record written meanwhile, on any node, survives with its new value.
//
// Where it runs. ctdbd forks a child per run. We can neither fork nor open the file a second time
// in this process (closing that descriptor would drop the daemon's fcntl locks on it), so a run is
// asynchronous work on the event loop with the daemon's own handle, cut into slices of a few
// milliseconds. No lock is ever waited for: chains are taken non-blocking (a busy record waits
// for the next run), and the full scan and the free-list count run under the all-record lock
// taken without waiting (smbd may wait for the walk, the daemon never waits for smbd, who may be
// waiting for the daemon). Only the repack (libtdb-style, in a transaction) takes waiting locks:
// it starts right after that lock was had, so it finds the file free. A run is abandoned as soon as a recovery starts, the database freezes
// or goes away, or VacuumMaxRunTime passes; as in ctdbd, only one run is active at a time.
import type { Logger } from '../common/logging';
import { CallFlag, CallId, LTDB_DMASTER_OFFSET, LTDB_HEADER_SIZE, LtdbFlag } from '../protocol';
import type { RecBuffer, RecData, VnnMap } from '../protocol';
import { buildLtdbRecord, parseLtdbRecord } from '../store';
import type { LtdbHeader } from '../store';
import type { ClusterDatabase } from './database';
import { DeleteQueues, keyId } from './delete-queue';
import type { QueuedDeletion } from './delete-queue';
import { lmasterOf } from './lmaster';
import type { Call, CallOutcome } from './migration';
import type { DatabaseRegistry } from './registry';
import type { DeletionQueue } from './record-store';

export interface VacuumTunables {
  readonly VacuumInterval: number;
  readonly VacuumMaxRunTime: number;
  readonly VacuumFastPathCount: number;
  readonly RepackLimit: number;
}

export interface VacuumHost {
  readonly pnn: number;
  readonly logger: Logger;
  readonly databases: Pick<DatabaseRegistry, 'get' | 'newestFirst'>;
  vnnMap(): VnnMap;
  /** Recovery mode is active: nothing is vacuumed. */
  recovering(): boolean;
  shuttingDown(): boolean;
  /** The active nodes other than this one. */
  otherActiveNodes(): number[];
  tunables(): VacuumTunables;
  /** TRY_DELETE_RECORDS to a node: the records it could not delete. Throws when the control fails. */
  tryDeleteRecords(pnn: number, records: RecBuffer): Promise<RecBuffer>;
  /** VACUUM_FETCH to a node (the lmaster of the records). Throws when the control fails. */
  vacuumFetch(pnn: number, records: RecBuffer): Promise<void>;
  /** A call on a record from this node (MigrationEngine.callRecord). */
  callRecord(db: ClusterDatabase, call: Call, done: (outcome: CallOutcome) => void): void;
}

/** Work per event-loop turn before the daemon's other work gets a turn. */
const SLICE_MS = 4;
/** How often the attached databases are looked at (new ones start being vacuumed). */
const DISCOVERY_MS = 1000;
/** A run due while another one is active waits this long (ctdbd staggers by 500 ms). */
const STAGGER_MS = 500;
/** While migrations for a run are in flight, the run checks this often whether to give up. */
const MIGRATION_POLL_MS = 20;
/** How long the full scan tries to get the all-record lock before leaving it to the next run. */
const SCAN_LOCK_ATTEMPTS = [1, 2, 5, 10, 20, 50, 100, 200];
/**
 * Counting the free list means walking the whole file (TdbFile has no tdb_freelist_size; about
 * 1 ms per 1000 records), so it is done after full runs and after runs that freed this many.
 */
const REPACK_CHECK_DELETIONS = 1000;
/**
 * Records per VACUUM_FETCH / TRY_DELETE_RECORDS control. ctdbd sends each list whole; in parts,
 * neither side holds its event loop long on one control.
 */
const CONTROL_RECORDS = 5000;

const EMPTY = Buffer.alloc(0);

class VacuumAborted extends Error {}

class VacuumBusy extends Error {}

/** Per database: when it is vacuumed next and how many fast runs it has had since a full one. */
interface VacuumHandle {
  readonly db: ClusterDatabase;
  fastPathCount: number;
  /** VacuumInterval as of the last scheduling, in seconds. */
  interval: number;
  timer: NodeJS.Timeout | undefined;
  /** The last full scan could not get the lock: the next run scans again. */
  scanPending: boolean;
}

interface RunCounts {
  scanned: number;
  migrations: number;
  deleted: number;
  sentToLmaster: number;
  deletedEverywhere: number;
  skipped: number;
  busy: number;
}

/** What keeps a run honest: it stops when the cluster or the database moves under it. */
class RunGuard {
  readonly #started = performance.now();
  readonly #generation: number;
  #cancelled: string | null = null;

  constructor(
    private readonly host: VacuumHost,
    readonly db: ClusterDatabase,
    private readonly maxRunMs: number,
  ) {
    this.#generation = host.vnnMap().generation;
  }

  get elapsedSeconds(): number {
    return (performance.now() - this.#started) / 1000;
  }

  check(): void {
    const why = this.#reason();
    if (why !== null) throw new VacuumAborted(why);
  }

  /** The run stops at its next check. */
  cancel(why: string): void {
    this.#cancelled = why;
  }

  #reason(): string | null {
    if (this.#cancelled !== null) return this.#cancelled;
    if (this.host.shuttingDown()) return 'shutting down';
    if (this.host.databases.get(this.db.id) !== this.db) return 'database detached';
    if (this.host.recovering()) return 'in recovery';
    if (this.db.frozen) return 'frozen';
    if (this.host.vnnMap().generation !== this.#generation) return 'generation changed';
    if (performance.now() - this.#started > this.maxRunMs) return 'timed out';
    return null;
  }
}

/** Runs `step` for each item, giving the event loop a turn every SLICE_MS (and then checking `guard`). */
async function inSlices<T>(items: Iterable<T>, guard: RunGuard | null, step: (item: T) => void): Promise<void> {
  guard?.check();
  let sliceStart = performance.now();
  for (const item of items) {
    step(item);
    if (performance.now() - sliceStart >= SLICE_MS) {
      await new Promise(setImmediate);
      guard?.check();
      sliceStart = performance.now();
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Where the dmaster is in a stored ltdb header (after the 8-byte rsn). */

/** Keys and values packed one after another into one growing buffer: no object per record. */
class PackedRecords implements Iterable<{ key: Buffer; value: Buffer }> {
  #buf = Buffer.allocUnsafe(64 * 1024);
  #used = 0;

  add(key: Buffer, value: Buffer): void {
    const size = 8 + key.length + value.length;
    if (this.#used + size > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#used + size));
      this.#buf.copy(grown, 0, 0, this.#used);
      this.#buf = grown;
    }
    this.#buf.writeUInt32LE(key.length, this.#used);
    this.#buf.writeUInt32LE(value.length, this.#used + 4);
    key.copy(this.#buf, this.#used + 8);
    value.copy(this.#buf, this.#used + 8 + key.length);
    this.#used += size;
  }

  /** Views into the packed buffer, which is never written again once iterated. */
  *[Symbol.iterator](): Generator<{ key: Buffer; value: Buffer }> {
    const buf = this.#buf;
    for (let off = 0; off < this.#used; ) {
      const keyEnd = off + 8 + buf.readUInt32LE(off);
      const valueEnd = keyEnd + buf.readUInt32LE(off + 4);
      yield { key: buf.subarray(off + 8, keyEnd), value: buf.subarray(keyEnd, valueEnd) };
      off = valueEnd;
    }
  }
}

/** The record's header when it is a bare header (an emptied record), else undefined. */
function emptyRecordHeader(value: Buffer | undefined): LtdbHeader | undefined {
  if (value === undefined || value.length !== LTDB_HEADER_SIZE) return undefined;
  return parseLtdbRecord(value).header;
}

export class Vacuuming implements DeletionQueue {
  readonly #host: VacuumHost;
  readonly #queues = new DeleteQueues();
  readonly #handles = new Map<ClusterDatabase, VacuumHandle>();
  readonly #discovery: NodeJS.Timeout;
  #active: RunGuard | null = null;
  #stopped = false;

  constructor(host: VacuumHost) {
    this.#host = host;
    this.#discovery = setInterval(() => this.#discover(), DISCOVERY_MS);
    this.#discovery.unref();
  }

  // ---- the delete queue (DeletionQueue, SCHEDULE_FOR_DELETION, VACUUM_FETCH) ---------------

  schedule(db: ClusterDatabase, key: Buffer, header: LtdbHeader): void {
    this.#queues.schedule(db, key, header);
  }

  remove(db: ClusterDatabase, key: Buffer): void {
    this.#queues.remove(db, key);
  }

  queued(db: ClusterDatabase): boolean {
    return this.#queues.queued(db);
  }

  /** VACUUM_FETCH from another node: these records are to be migrated here and deleted. */
  fetch(db: ClusterDatabase, records: readonly RecData[]): void {
    for (const record of records) this.#queues.fetch(db, record.key);
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** A detached database: its timer, queues and any run on it stop. */
  forget(db: ClusterDatabase): void {
    if (this.#active?.db === db) this.#active.cancel('database forgotten');
    const handle = this.#handles.get(db);
    if (handle !== undefined) clearTimeout(handle.timer);
    this.#handles.delete(db);
    this.#queues.forget(db);
  }

  /** Shutdown: no more runs (an active one stops at its next slice). */
  stop(): void {
    this.#stopped = true;
    this.#active?.cancel('vacuuming stopped');
    clearInterval(this.#discovery);
    for (const db of [...this.#handles.keys()]) this.forget(db);
  }

  /** Every volatile database attached since the last look gets its first run one interval on. */
  #discover(): void {
    if (this.#host.shuttingDown()) {
      this.stop();
      return;
    }
    const attached = new Set(this.#host.databases.newestFirst());
    for (const db of this.#handles.keys()) if (!attached.has(db)) this.forget(db);
    for (const db of attached) if (db.volatile && !this.#handles.has(db)) this.#handle(db);
  }

  #handle(db: ClusterDatabase): VacuumHandle {
    let handle = this.#handles.get(db);
    if (handle === undefined) {
      const interval = this.#host.tunables().VacuumInterval;
      handle = { db, fastPathCount: 0, interval, timer: undefined, scanPending: false };
      this.#handles.set(db, handle);
      this.#schedule(handle, interval * 1000);
    }
    return handle;
  }

  #schedule(handle: VacuumHandle, ms: number): void {
    clearTimeout(handle.timer);
    handle.timer = setTimeout(() => this.#due(handle), ms);
    handle.timer.unref();
  }

  /** A database's timer (ctdb_vacuum_event). */
  #due(handle: VacuumHandle): void {
    handle.timer = undefined;
    if (this.#stopped || this.#handles.get(handle.db) !== handle) return;
    const { VacuumInterval: interval, VacuumFastPathCount: fastPathMax } = this.#host.tunables();
    // A longer interval set meanwhile counts from the last scheduling.
    if (interval > handle.interval) {
      const extra = interval - handle.interval;
      handle.interval = interval;
      this.#schedule(handle, extra * 1000);
      return;
    }
    handle.interval = interval;
    let full = handle.scanPending;
    if (handle.fastPathCount >= fastPathMax) {
      full ||= fastPathMax > 0;
      handle.fastPathCount = 0;
    }
    let run: Promise<boolean>;
    try {
      run = this.#start(handle, full);
    } catch (err) {
      handle.scanPending = full;
      this.#schedule(handle, err instanceof VacuumBusy ? STAGGER_MS : handle.interval * 1000);
      return;
    }
    void run.then(() => {
      if (this.#handles.get(handle.db) === handle && !this.#stopped) this.#schedule(handle, this.#host.tunables().VacuumInterval * 1000);
    });
  }

  /**
   * DB_VACUUM: a run now, outside the schedule. Resolves true when it completed; throws at once
   * when vacuuming is not possible now (recovery, frozen, another run active).
   */
  vacuumNow(db: ClusterDatabase, full: boolean): Promise<boolean> {
    if (!db.volatile) throw new Error(`database ${db.name} is not volatile: it is not vacuumed`);
    return this.#start(this.#handle(db), full);
  }

  /** Starts a run (vacuum_db_child): throws when it cannot start now; resolves with its success. */
  #start(handle: VacuumHandle, full: boolean): Promise<boolean> {
    const { db } = handle;
    if (this.#stopped) throw new Error('vacuuming has stopped');
    if (this.#host.recovering() || db.frozen) {
      const why = this.#host.recovering() ? 'in recovery' : 'frozen';
      this.#host.logger.info(`Not vacuuming ${db.name} (${why})`);
      throw new Error(`not vacuuming ${db.name}: ${why}`);
    }
    if (this.#active !== null) throw new VacuumBusy(`vacuuming of ${this.#active.db.name} is in progress`);
    const guard = new RunGuard(this.#host, db, this.#host.tunables().VacuumMaxRunTime * 1000);
    this.#active = guard;
    return this.#vacuum(handle, guard, full).finally(() => {
      this.#active = null;
      // Every run counts, also one that stopped early (as ctdbd counts a killed child).
      db.statistics.recordVacuum(guard.elapsedSeconds);
    });
  }

  async #vacuum(handle: VacuumHandle, guard: RunGuard, full: boolean): Promise<boolean> {
    const { db } = handle;
    const counts: RunCounts = { scanned: 0, migrations: 0, deleted: 0, sentToLmaster: 0, deletedEverywhere: 0, skipped: 0, busy: 0 };
    const { deletions, fetches } = this.#queues.take(db);
    const everywhere = new Map<string, QueuedDeletion>();
    this.#host.logger.info(`Entering ${full ? 'full' : 'fast'} vacuum run for db ${db.name} db_id[0x${db.id.toString(16).padStart(8, '0')}]`);
    try {
      if (full) handle.scanPending = !(await this.#scan(db, deletions, guard, counts));
      await this.#migrateFetched(db, fetches, guard, counts);
      const byLmaster = await this.#sortQueue(db, deletions, everywhere, guard, counts);
      await this.#sendToLmasters(db, byLmaster);
      await this.#deleteEverywhere(db, everywhere, guard, counts);
      guard.check();
      if (full || counts.deleted + counts.deletedEverywhere >= REPACK_CHECK_DELETIONS) this.#repackIfLong(db);
    } catch (err) {
      const aborted = err instanceof VacuumAborted;
      const level = aborted && err.message !== 'timed out' ? 'info' : 'error';
      this.#host.logger[level](`Vacuuming of ${db.name} ${aborted ? 'stopped' : 'failed'}: ${(err as Error).message}`);
      // Records taken from the queue and not dealt with yet are still to be deleted.
      if (this.#handles.get(db) === handle && this.#host.databases.get(db.id) === db) {
        for (const { key, header } of [...deletions.values(), ...everywhere.values()]) this.#queues.schedule(db, key, header);
      }
      return false;
    }
    handle.fastPathCount++;
    this.#host.logger.info(
      `Vacuuming took ${guard.elapsedSeconds.toFixed(3)} seconds for database ${db.name}: scanned ${counts.scanned}, migrated ${counts.migrations}, ` +
        `deleted ${counts.deleted} here and ${counts.deletedEverywhere} everywhere, sent ${counts.sentToLmaster} to their lmaster, skipped ${counts.skipped}, busy ${counts.busy}`,
    );
    return true;
  }

  /**
   * Full run: every empty record this node is dmaster of joins the queue (with its current header).
   * Under the lock only the bytes of the candidates are copied out; the queue entries are made
   * afterwards, in slices. Returns false when the file stayed busy and the scan is left to the
   * next run.
   */
  async #scan(db: ClusterDatabase, into: Map<string, QueuedDeletion>, guard: RunGuard, counts: RunCounts): Promise<boolean> {
    const candidates = new PackedRecords();
    const pnn = this.#host.pnn;
    let scanned = false;
    for (const delay of SCAN_LOCK_ATTEMPTS) {
      // A frozen database is locked by this process: the lock would be granted (nested).
      guard.check();
      if (db.file.lockAllNonblock()) {
        try {
          counts.scanned += db.file.traverseRead((key, value) => {
            if (value.length === LTDB_HEADER_SIZE && value.readUInt32LE(LTDB_DMASTER_OFFSET) === pnn) candidates.add(key, value);
          });
        } finally {
          db.file.unlockAll();
        }
        scanned = true;
        break;
      }
      await sleep(delay);
    }
    if (!scanned) {
      this.#host.logger.info(`Vacuuming ${db.name}: the database stayed locked, full scan left to the next run`);
      return false;
    }
    await inSlices(candidates, guard, ({ key, value }) => into.set(keyId(key), { key, header: parseLtdbRecord(value).header }));
    return true;
  }

  /** VACUUM_FETCH requests: each record not here yet is migrated here; once here and empty it is queued. */
  async #migrateFetched(db: ClusterDatabase, fetches: Map<string, Buffer>, guard: RunGuard, counts: RunCounts): Promise<void> {
    let inFlight = 0;
    await inSlices(fetches.values(), guard, (key) => {
      if (!db.file.chainLockNonblock(key)) return;
      let header: LtdbHeader | undefined;
      try {
        const value = db.file.fetch(key);
        header = value === undefined || value.length < LTDB_HEADER_SIZE ? undefined : parseLtdbRecord(value).header;
      } finally {
        db.file.chainUnlock(key);
      }
      if (header === undefined || header.dmaster === this.#host.pnn) return;
      inFlight++;
      counts.migrations++;
      const call: Call = { flags: CallFlag.IMMEDIATE_MIGRATION | CallFlag.VACUUM_MIGRATION, callId: CallId.NULL_FUNC, key, callData: EMPTY };
      this.#host.callRecord(db, call, (outcome) => {
        inFlight--;
        if ('error' in outcome) this.#host.logger.error(`Failed to migrate record for vacuuming in ${db.name}: ${outcome.error}`);
        else this.#queueIfEmptyHere(db, key);
      });
    });
    while (inFlight > 0) {
      await sleep(MIGRATION_POLL_MS);
      guard.check();
    }
  }

  #queueIfEmptyHere(db: ClusterDatabase, key: Buffer): void {
    if (this.#host.databases.get(db.id) !== db || !db.file.chainLockNonblock(key)) return;
    try {
      const header = emptyRecordHeader(db.file.fetch(key));
      if (header !== undefined) this.#queues.schedule(db, key, header);
    } finally {
      db.file.chainUnlock(key);
    }
  }

  /**
   * The queue, record by record under its chain lock: records no longer empty, no longer ours or
   * stored again since (rsn) are dropped; the rest are deleted at once, or go to their lmaster
   * (returned by lmaster), or need the other nodes' copies deleted first (into `everywhere`).
   */
  async #sortQueue(
    db: ClusterDatabase,
    deletions: Map<string, QueuedDeletion>,
    everywhere: Map<string, QueuedDeletion>,
    guard: RunGuard,
    counts: RunCounts,
  ): Promise<Map<number, Buffer[]>> {
    const byLmaster = new Map<number, Buffer[]>();
    const pnn = this.#host.pnn;
    const vnnMap = this.#host.vnnMap();
    await inSlices([...deletions], guard, ([id, entry]) => {
      deletions.delete(id);
      const { key } = entry;
      if (!db.file.chainLockNonblock(key)) {
        counts.busy++;
        this.#queues.schedule(db, key, entry.header);
        return;
      }
      try {
        const header = emptyRecordHeader(db.file.fetch(key));
        if (header === undefined || header.dmaster !== pnn || header.rsn !== entry.header.rsn) {
          counts.skipped++;
          return;
        }
        const lmaster = lmasterOf(vnnMap, key);
        if (lmaster === undefined) counts.skipped++;
        else if (lmaster !== pnn) {
          let keys = byLmaster.get(lmaster);
          if (keys === undefined) byLmaster.set(lmaster, (keys = []));
          keys.push(key);
          counts.sentToLmaster++;
        } else if ((entry.header.flags & LtdbFlag.MIGRATED_WITH_DATA) !== 0) everywhere.set(id, entry);
        else {
          db.file.delete(key);
          counts.deleted++;
        }
      } finally {
        db.file.chainUnlock(key);
      }
    });
    return byLmaster;
  }

  async #sendToLmasters(db: ClusterDatabase, byLmaster: Map<number, Buffer[]>): Promise<void> {
    await Promise.all(
      [...byLmaster].map(async ([lmaster, keys]) => {
        this.#host.logger.info(`Found ${keys.length} records for lmaster ${lmaster} in '${db.name}'`);
        const records = keys.map((key) => ({ reqid: this.#host.pnn, key, data: EMPTY }));
        try {
          for (let start = 0; start < records.length; start += CONTROL_RECORDS) {
            await this.#host.vacuumFetch(lmaster, { dbId: db.id, records: records.slice(start, start + CONTROL_RECORDS) });
          }
        } catch (err) {
          this.#host.logger.error(`Failed to send vacuum fetch control to node ${lmaster}: ${(err as Error).message}`);
        }
      }),
    );
  }

  /** Records other nodes may hold copies of: deleted there first, then here if every node agreed. */
  async #deleteEverywhere(db: ClusterDatabase, list: Map<string, QueuedDeletion>, guard: RunGuard, counts: RunCounts): Promise<void> {
    if (list.size === 0) return;
    const records = [...list.values()].map(({ key, header }) => ({ reqid: db.id, key, data: buildLtdbRecord(header) }));
    for (const pnn of this.#host.otherActiveNodes()) {
      for (let start = 0; start < records.length; start += CONTROL_RECORDS) {
        let kept: RecBuffer;
        try {
          kept = await this.#host.tryDeleteRecords(pnn, { dbId: db.id, records: records.slice(start, start + CONTROL_RECORDS) });
        } catch (err) {
          // Nothing is deleted here this time; the next run tries again.
          this.#host.logger.error(`Failed to delete records on node ${pnn}: ${(err as Error).message}`);
          for (const { key, header } of list.values()) this.#queues.schedule(db, key, header);
          return;
        }
        guard.check();
        for (const record of kept.records) {
          // A copy that node could not delete: this node keeps its record too (and the queue forgets it).
          if (!list.delete(keyId(record.key))) this.#host.logger.error(`Record coming back from TRY_DELETE_RECORDS of node ${pnn} is not in the delete list of ${db.name}`);
          else counts.skipped++;
        }
      }
    }
    const pnn = this.#host.pnn;
    const vnnMap = this.#host.vnnMap();
    await inSlices([...list], guard, ([id, { key, header: queued }]) => {
      list.delete(id);
      if (!db.file.chainLockNonblock(key)) {
        counts.busy++;
        this.#queues.schedule(db, key, queued);
        return;
      }
      try {
        const header = emptyRecordHeader(db.file.fetch(key));
        const deletable =
          header !== undefined &&
          (header.flags & LtdbFlag.RO_FLAGS) === 0 &&
          header.dmaster === pnn &&
          header.rsn === queued.rsn &&
          lmasterOf(vnnMap, key) === pnn;
        if (!deletable) counts.skipped++;
        else {
          db.file.delete(key);
          counts.deletedEverywhere++;
        }
      } finally {
        db.file.chainUnlock(key);
      }
    });
  }

  /** RepackLimit: a free list at least this long is worth a repack (0 = never). */
  #repackIfLong(db: ClusterDatabase): void {
    const limit = this.#host.tunables().RepackLimit;
    if (limit === 0 || !db.file.lockAllNonblock()) return;
    let freeBlocks: number;
    try {
      freeBlocks = db.file.check().freeBlocks;
    } finally {
      db.file.unlockAll();
    }
    if (freeBlocks < limit) return;
    this.#host.logger.notice(`Repacking ${db.name} with ${freeBlocks} freelist entries`);
    // Right after nobody held a lock: the repack's own (waiting) locks find the file free.
    try {
      db.file.repack();
    } catch (err) {
      this.#host.logger.error(`Failed to repack '${db.name}': ${(err as Error).message}`);
    }
  }

  // ---- the other side: TRY_DELETE_RECORDS from a record's lmaster ---------------------------

  /**
   * Deletes this node's copies of records the lmaster is about to delete, and returns the records
   * whose copy stays: this node is their lmaster or dmaster, its copy is newer, carries read-only
   * delegation flags, or its chain is busy.
   */
  async tryDelete(db: ClusterDatabase, records: readonly RecData[]): Promise<RecData[]> {
    for (const record of records) {
      if (record.data.length < LTDB_HEADER_SIZE) throw new Error(`bad ltdb record in TRY_DELETE_RECORDS for ${db.name}`);
    }
    const kept: RecData[] = [];
    await inSlices(records, null, (record) => {
      if (!this.#deleteCopy(db, record)) kept.push(record);
    });
    return kept;
  }

  #deleteCopy(db: ClusterDatabase, record: RecData): boolean {
    const { key } = record;
    // Frozen by this process: its chain locks would be granted here, but recovery owns the file.
    if (db.frozen || lmasterOf(this.#host.vnnMap(), key) === this.#host.pnn) return false;
    if (record.data.length !== LTDB_HEADER_SIZE) return false;
    const theirs = parseLtdbRecord(record.data).header;
    if (!db.file.chainLockNonblock(key)) return false;
    try {
      const value = db.file.fetch(key);
      if (value === undefined) return true;
      if (value.length >= LTDB_HEADER_SIZE) {
        const ours = parseLtdbRecord(value).header;
        if (ours.rsn > theirs.rsn) return false;
        if (((theirs.flags | ours.flags) & LtdbFlag.RO_FLAGS) !== 0) return false;
        if (ours.dmaster === this.#host.pnn) return false;
      }
      db.file.delete(key);
      return true;
    } finally {
      db.file.chainUnlock(key);
    }
  }
}
