// Replicated writes to persistent (and replicated) databases, as ctdbd 4.17 does them:
// - UPDATE_RECORD applies a marshall buffer of records to the local file in one tdb
//   transaction; a record may only replace one with a lower rsn unless the data is identical.
//   Persistent and replicated records are stored exactly as sent (an empty value, a deleted
//   record, stays as a bare header on every node). On a volatile database (read-only revokes)
//   only records that already exist are replaced, by the server-side store rules.
// - TRANS3_COMMIT (a client's transaction commit) sends that buffer as UPDATE_RECORD to every
//   active node of the vnnmap, this one included, and answers 0 once all have applied it. A
//   failed update forces a recovery and leaves the answer to END_RECOVERY (status 2); replies
//   that arrive during a recovery are ignored; ControlTimeout without recovery answers 1.
//
// Where 4.17 forks a child per UPDATE_RECORD, the transaction here runs on the event loop:
// it is never started while another process holds a lock it would wait for (the attempt is
// repeated from a timer instead), and once started it only works on the in-memory
// transaction and, at commit, writes and syncs the file. That holds the loop for the CPU time
// of the records (about 5 µs each) plus one file sync, against a fork per commit (hundreds of
// µs to ms for a daemon of this size) and the IPC to it; the committing node starts its own
// update once the copies to the other nodes have left (controls/persistent.ts).
import type { Logger } from '../common/logging';
import type { RecData } from '../protocol';
import { LTDB_HEADER_SIZE, TdbError, TdbStatus, parseLtdbRecord } from '../store';
import type { ClusterDatabase } from './database';
import { storeRecord } from './record-store';
import type { RecordContext } from './record-store';

const EMPTY = Buffer.alloc(0);
/** Backoff while another process holds the file's transaction or record locks. */
const LOCK_RETRY_FIRST_MS = 1;
const LOCK_RETRY_MAX_MS = 50;

/** UPDATE_RECORD status codes: 0 applied, 1 the write failed (as 4.17's child reports). */
export const UpdateStatus = { APPLIED: 0, WRITE_FAILED: 1 } as const;

/** TRANS3_COMMIT status codes besides -1 (refused): 4.17's values. */
export const CommitStatus = { DONE: 0, TIMEOUT: 1, ENDED_BY_RECOVERY: 2 } as const;

export class RecordUpdateError extends Error {}

/**
 * Writes `records` (rec_data whose data is ltdb header + value) to the database; the caller
 * holds an open transaction. Throws RecordUpdateError for a record that may not be written.
 * A missing (or headerless) record counts as rsn 0 without data. ctdbd first stores such a
 * record's initial header inside the same transaction; the store replaces it, so skipping that
 * intermediate write leaves the same file.
 */
export function applyRecords(ctx: RecordContext, db: ClusterDatabase, records: readonly RecData[]): void {
  if (!db.volatile) {
    // Stored as sent, all in one native pass that stops at the first record it may not store.
    const { buffer, spans } = recordSpans(records);
    const stored = db.file.updateMany(buffer, spans, LTDB_HEADER_SIZE);
    if (stored === records.length) return;
    const refused = records[stored];
    throw new RecordUpdateError(shortRecord(records, stored) ?? staleRecord(db, db.file.fetch(refused.key), refused.data) ?? `record ${stored} of ${records.length} refused`);
  }
  for (const [i, record] of records.entries()) {
    const short = shortRecord(records, i);
    if (short !== null) throw new RecordUpdateError(short);
    // Volatile databases (read-only revokes): only records that exist are replaced.
    const current = db.file.fetch(record.key);
    if (current === undefined || current.length === 0) continue;
    const stale = staleRecord(db, current, record.data);
    if (stale !== null) throw new RecordUpdateError(stale);
    const { header, data } = parseLtdbRecord(record.data);
    storeRecord(ctx, db, record.key, header, data);
  }
}

function shortRecord(records: readonly RecData[], i: number): string | null {
  const length = records[i].data.length;
  return length < LTDB_HEADER_SIZE ? `record ${i} of ${records.length}: ${length} bytes cannot hold an ltdb header` : null;
}

/** Why `stored` may not replace `current`: only a lower rsn may be replaced, or the same value. */
function staleRecord(db: ClusterDatabase, current: Buffer | undefined, stored: Buffer): string | null {
  const known = current !== undefined && current.length >= LTDB_HEADER_SIZE;
  const oldRsn = known ? current.readBigUInt64LE(0) : 0n;
  const rsn = stored.readBigUInt64LE(0);
  if (oldRsn < rsn || sameValue(known ? current : undefined, stored)) return null;
  return `existing record in ${db.name} has RSN ${oldRsn}, not lower than the new RSN ${rsn}`;
}

/** Whether two stored records (ltdb header + value; undefined = none) carry the same value. */
function sameValue(a: Buffer | undefined, b: Buffer): boolean {
  const aValue = a === undefined ? EMPTY : a.subarray(LTDB_HEADER_SIZE);
  return aValue.equals(b.subarray(LTDB_HEADER_SIZE));
}

/**
 * The records as one buffer with TdbFile.storeMany spans. Records decoded from one control
 * payload are views of its memory, which is then used as it is.
 */
function recordSpans(records: readonly RecData[]): { buffer: Buffer; spans: Uint32Array } {
  const spans = new Uint32Array(records.length * 4);
  const memory = records[0]?.key.buffer;
  if (memory !== undefined && records.every((r) => r.key.buffer === memory && r.data.buffer === memory)) {
    records.forEach((r, i) => {
      spans[i * 4] = r.key.byteOffset;
      spans[i * 4 + 1] = r.key.length;
      spans[i * 4 + 2] = r.data.byteOffset;
      spans[i * 4 + 3] = r.data.length;
    });
    return { buffer: Buffer.from(memory), spans };
  }
  const buffer = Buffer.concat(records.flatMap((r) => [r.key, r.data]));
  let at = 0;
  records.forEach((r, i) => {
    spans[i * 4] = at;
    spans[i * 4 + 1] = r.key.length;
    spans[i * 4 + 2] = at + r.key.length;
    spans[i * 4 + 3] = r.data.length;
    at += r.key.length + r.data.length;
  });
  return { buffer, spans };
}

/**
 * Starts a transaction only if nothing would make libtdb wait: the transaction lock is taken
 * non-blocking, but the all-record read lock libtdb takes next would block while another
 * process holds a chain, so the whole file is probed first (a lock taken in between is the
 * only way left to wait, for as long as that one chain is held).
 */
function startTransactionNow(db: ClusterDatabase): boolean {
  if (db.frozen || db.transactionId !== null) return false;
  try {
    if (!db.file.lockAllNonblock()) return false;
  } catch (err) {
    // This process itself holds a record lock (a call in progress): wait for it like for others.
    if (err instanceof TdbError && err.status === TdbStatus.LOCK) return false;
    throw err;
  }
  db.file.unlockAll();
  return db.file.transactionStartNonblock();
}

export interface UpdateOutcome {
  /** UpdateStatus, or -1 when refused or timed out waiting for the file. */
  status: number;
  error?: string;
}

export interface UpdateOptions {
  /** Give up with -1 after this long without getting the transaction. */
  timeoutMs: number;
  /** Why the update may no longer start (a recovery began, ...); null while it may. */
  refusal(): string | null;
}

/** UPDATE_RECORD on this node: the records in one transaction, started when no lock is in the way. */
export function updateRecords(ctx: RecordContext, db: ClusterDatabase, records: readonly RecData[], options: UpdateOptions): Promise<UpdateOutcome> {
  const deadline = performance.now() + options.timeoutMs;
  let delay = LOCK_RETRY_FIRST_MS;
  return new Promise((resolve) => {
    const attempt = (): void => {
      const refusal = options.refusal();
      if (refusal !== null) return resolve({ status: -1, error: refusal });
      try {
        if (!startTransactionNow(db)) {
          if (performance.now() >= deadline) return resolve({ status: -1, error: 'timeout in ctdb_persistent_lock' });
          setTimeout(attempt, delay);
          delay = Math.min(delay * 2, LOCK_RETRY_MAX_MS);
          return;
        }
      } catch (err) {
        return resolve({ status: UpdateStatus.WRITE_FAILED, error: `${db.name}: ${(err as Error).message}` });
      }
      resolve(writeInTransaction(ctx, db, records));
    };
    attempt();
  });
}

function writeInTransaction(ctx: RecordContext, db: ClusterDatabase, records: readonly RecData[]): UpdateOutcome {
  try {
    applyRecords(ctx, db, records);
  } catch (err) {
    db.file.transactionCancel();
    return { status: UpdateStatus.WRITE_FAILED, error: (err as Error).message };
  }
  try {
    db.file.transactionCommit();
  } catch (err) {
    return { status: UpdateStatus.WRITE_FAILED, error: (err as Error).message };
  }
  return { status: UpdateStatus.APPLIED };
}

// ---- TRANS3_COMMIT -----------------------------------------------------------------------

export interface CommitReply {
  status: number;
  errorMessage: string | null;
}

export interface CommitHost {
  readonly logger: Logger;
  /** Recovery mode is ACTIVE on this node. */
  recovering(): boolean;
  /** Sets this node's recovery mode ACTIVE so that the leader runs a recovery. */
  forceRecovery(reason: string): void;
  /** ControlTimeout in ms. */
  timeoutMs(): number;
}

/** UPDATE_RECORD with the commit's records to one node. */
export type SendUpdate = (pnn: number) => Promise<CommitReply>;

interface PendingCommit {
  readonly dbId: number;
  readonly clientId: number;
  pending: number;
  timer: NodeJS.Timeout | undefined;
  readonly answer: (reply: CommitReply) => void;
}

/**
 * The commits in flight on this node: one per database and one per client at a time. Also
 * counts the updates clients announce with the pre-TRANS3 START/CANCEL_PERSISTENT_UPDATE
 * controls, which 4.17 still honours: a client leaving with any open forces a recovery.
 */
export class Trans3Commits {
  readonly #byDb = new Map<number, PendingCommit>();
  readonly #dbByClient = new Map<number, number>();
  readonly #announcedUpdates = new Map<number, number>();

  constructor(private readonly host: CommitHost) {}

  /** A refusal reason when this client may not commit to dbId now, else null. */
  refusal(clientId: number, dbId: number): string | null {
    if (this.host.recovering()) return 'rejecting trans3_commit when recovery active';
    const active = this.#dbByClient.get(clientId);
    if (active !== undefined) return `trans3_commit of client ${clientId} to db 0x${active.toString(16)} still active`;
    if (this.#byDb.has(dbId)) return `trans3_commit called while a commit to db 0x${dbId.toString(16)} is active`;
    return null;
  }

  /**
   * Sends the update to `targets` (the active nodes of the vnnmap); resolves with the control's
   * answer. Check refusal() first.
   */
  commit(clientId: number, dbId: number, targets: readonly number[], sendUpdate: SendUpdate): Promise<CommitReply> {
    if (targets.length === 0) return Promise.resolve({ status: CommitStatus.DONE, errorMessage: null });
    return new Promise((resolve) => {
      const commit: PendingCommit = { dbId, clientId, pending: targets.length, timer: undefined, answer: resolve };
      this.#byDb.set(dbId, commit);
      this.#dbByClient.set(clientId, dbId);
      for (const pnn of targets) void sendUpdate(pnn).then((reply) => this.#updateDone(commit, pnn, reply));
      commit.timer = setTimeout(() => this.#timedOut(commit), this.host.timeoutMs());
    });
  }

  /** END_RECOVERY: commits a recovery interrupted are over; the recovery has settled their data. */
  recoveryEnded(): void {
    if (this.host.recovering()) return;
    for (const commit of [...this.#byDb.values()]) {
      this.#finish(commit, { status: CommitStatus.ENDED_BY_RECOVERY, errorMessage: 'trans3 commit ended by recovery' });
    }
  }

  /** START_PERSISTENT_UPDATE. */
  updateAnnounced(clientId: number): void {
    this.#announcedUpdates.set(clientId, (this.#announcedUpdates.get(clientId) ?? 0) + 1);
  }

  /** CANCEL_PERSISTENT_UPDATE. */
  updateCancelled(clientId: number): void {
    const open = this.#announcedUpdates.get(clientId) ?? 0;
    if (open > 1) this.#announcedUpdates.set(clientId, open - 1);
    else this.#announcedUpdates.delete(clientId);
  }

  /** A client that leaves mid-commit may have left the nodes disagreeing: recovery repairs that. */
  clientGone(clientId: number): void {
    const announced = this.#announcedUpdates.get(clientId);
    if (announced !== undefined) {
      this.#announcedUpdates.delete(clientId);
      this.host.forceRecovery(`client disconnecting with ${announced} persistent updates in flight`);
    }
    const dbId = this.#dbByClient.get(clientId);
    if (dbId === undefined) return;
    const commit = this.#byDb.get(dbId);
    if (commit === undefined) return;
    this.host.forceRecovery('client exit while transaction commit active');
    this.#finish(commit, { status: -1, errorMessage: 'client disconnected' });
  }

  get activeCount(): number {
    return this.#byDb.size;
  }

  #updateDone(commit: PendingCommit, pnn: number, reply: CommitReply): void {
    if (this.#byDb.get(commit.dbId) !== commit || this.host.recovering()) return;
    if (reply.status !== 0) {
      this.host.logger.error(`UPDATE_RECORD for commit to db 0x${commit.dbId.toString(16)} failed on node ${pnn} with status ${reply.status} (${reply.errorMessage ?? 'no error message given'})`);
      // The nodes may now disagree; the recovery repairs that and then answers the commit.
      this.host.forceRecovery('update of a transaction commit failed');
      return;
    }
    if (--commit.pending === 0) this.#finish(commit, { status: CommitStatus.DONE, errorMessage: null });
  }

  #timedOut(commit: PendingCommit): void {
    commit.timer = undefined;
    if (this.#byDb.get(commit.dbId) !== commit || this.host.recovering()) return;
    this.#finish(commit, { status: CommitStatus.TIMEOUT, errorMessage: 'timeout in ctdb_persistent_state' });
  }

  #finish(commit: PendingCommit, reply: CommitReply): void {
    if (commit.timer !== undefined) clearTimeout(commit.timer);
    this.#byDb.delete(commit.dbId);
    this.#dbByClient.delete(commit.clientId);
    commit.answer(reply);
  }
}
