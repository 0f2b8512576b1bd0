// Record calls and migration between nodes (REQ_CALL, REQ_DMASTER, REPLY_DMASTER, REPLY_CALL,
// REPLY_ERROR) with ctdbd 4.17's rules:
// - the lmaster of a key (vnnmap slot of its hash) always knows the dmaster; a node that is not
//   dmaster redirects a call to the lmaster, the lmaster to the dmaster it has recorded;
// - the dmaster of a record hands it to any other node that calls it: directly (REPLY_DMASTER)
//   when it is also the lmaster, otherwise through the lmaster (REQ_DMASTER), which records the
//   new dmaster and passes the record on;
// - the node that becomes dmaster stores the record, runs the call on it and answers the caller;
//   afterwards the record exists locally with dmaster = this node (smbd relies on it);
// - while a dmaster packet waits for a chain lock, calls for that record wait behind it, and
//   client calls for a record already being fetched wait for that fetch (fetch collapse);
// - calls still in flight when a recovery thaws a database are sent again.
import type { Logger } from '../common/logging';
import { CallFlag, CallId, DbFlag, LtdbFlag, Operation, encodePacket, makeHeader } from '../protocol';
import type { LtdbHeader, Packet, ReplyCall, ReplyDmaster, ReplyError, ReqCall, ReqDmaster, Statistics, VnnMap } from '../protocol';
import { encode } from '../protocol/codec';
import { ltdbHeaderCodec } from '../protocol/types';
import { LTDB_HEADER_SIZE, parseLtdbRecord } from '../store';
import type { ClusterDatabase } from './database';
import type { DatabaseRegistry } from './registry';
import { lmasterOf } from './lmaster';
import type { RecordLocks } from './record-lock';
import { fetchRecord, storeRecord } from './record-store';
import { StickyRecords } from './sticky-records';
import { hopCountBucket } from './db-statistics';
import { ReadOnlyDelegations } from './readonly-delegations';
import type { ReadOnlyTracking } from './readonly-tracking';
import type { DeletionQueue, LocalRecord, RecordContext } from './record-store';

export interface MigrationHost {
  readonly pnn: number;
  readonly logger: Logger;
  readonly databases: DatabaseRegistry;
  readonly locks: RecordLocks;
  statistics(): Statistics;
  vnnMap(): VnnMap;
  /** Sends to another node; false when it is not connected (the call then waits for a recovery). */
  sendToNode(pnn: number, packet: Buffer): boolean;
  /** This node is banned: it takes no part in record traffic. */
  banned(): boolean;
  tunables(): MigrationTunables;
  /** UPDATE_RECORD of one record to a node (a read-only copy being revoked); true on success. */
  updateRecord(pnn: number, db: ClusterDatabase, key: Buffer, header: LtdbHeader, data: Buffer): Promise<boolean>;
  /** The cluster's record bookkeeping is inconsistent: recovery must repair it. */
  forceRecovery(reason: string): void;
  readonly deletions?: DeletionQueue;
}

export interface MigrationTunables {
  readonly FetchCollapse: number;
  readonly HopcountMakeSticky: number;
  readonly StickyDuration: number;
  readonly StickyPindown: number;
}

/** What a client call ends with: the call's status and reply data, or an error text. */
export type CallOutcome = { status: number; data: Buffer } | { error: string };

export interface Call {
  readonly flags: number;
  readonly callId: number;
  readonly key: Buffer;
  readonly callData: Buffer;
}

interface PendingCall {
  reqid: number;
  generation: number;
  readonly db: ClusterDatabase;
  readonly call: Call;
  readonly started: number;
  readonly done: (outcome: CallOutcome) => void;
  /** Client calls for the same key waiting for this one (fetch collapse). */
  collapsed: CollapsedFetches | undefined;
}

interface CollapsedFetches {
  readonly waiting: (() => void)[];
  timer: NodeJS.Timeout | undefined;
}

/** Records whose dmaster packet waits for the chain lock: calls for them wait too. */
interface DmasterInProgress {
  readonly generation: number;
  readonly deferred: ReqCall[];
}

const EMPTY = Buffer.alloc(0);
const COLLAPSE_TIMEOUT_MS = 30_000;

function keyId(key: Buffer): string {
  return key.toString('latin1');
}

export class MigrationEngine {
  readonly #host: MigrationHost;
  readonly #pending = new Map<number, PendingCall>();
  readonly #collapsing = new Map<ClusterDatabase, Map<string, CollapsedFetches>>();
  readonly #dmasterInProgress = new Map<ClusterDatabase, Map<string, DmasterInProgress>>();
  /** Client calls that arrived while their database was frozen. */
  readonly #waitingForThaw = new Map<ClusterDatabase, (() => void)[]>();
  readonly #sticky: StickyRecords;
  readonly #delegations = new ReadOnlyDelegations();
  #nextReqid = 1;

  constructor(host: MigrationHost) {
    this.#host = host;
    this.#sticky = new StickyRecords(
      () => ({ durationS: host.tunables().StickyDuration, pindownMs: host.tunables().StickyPindown }),
      (message) => host.logger.notice(message),
    );
  }

  #fetchCollapse(): boolean {
    return this.#host.tunables().FetchCollapse === 1;
  }

  get #pnn(): number {
    return this.#host.pnn;
  }

  #ctx(): RecordContext {
    return { pnn: this.#pnn, vnnMap: this.#host.vnnMap(), deletions: this.#host.deletions };
  }

  // ---- calls from local clients ----------------------------------------------------------

  /** A client's REQ_CALL (its destnode is ignored: smbd leaves it 0). `done` gets the outcome. */
  clientCall(request: ReqCall, done: (outcome: CallOutcome) => void): void {
    const stats = this.#host.statistics();
    stats.totalCalls++;
    const db = this.#host.databases.get(request.dbId);
    if (db === undefined) {
      this.#host.logger.error(`Unknown database in request. db_id==0x${request.dbId.toString(16).padStart(8, '0')}`);
      done({ error: 'Unknown database in request' });
      return;
    }
    stats.pendingCalls++;
    const started = performance.now();
    const finish = (outcome: CallOutcome): void => {
      stats.pendingCalls--;
      const seconds = (performance.now() - started) / 1000;
      const latency = stats.callLatency;
      latency.num++;
      latency.total += seconds;
      if (latency.num === 1 || seconds < latency.min) latency.min = seconds;
      if (seconds > latency.max) latency.max = seconds;
      done(outcome);
    };
    // A read-only copy is asked for with the header, which a FETCH caller does not get back.
    const readonly = (request.flags & CallFlag.WANT_READONLY) !== 0 && (db.flags & DbFlag.READONLY) !== 0;
    const call: Call = {
      flags: readonly ? request.flags : request.flags & ~CallFlag.WANT_READONLY,
      callId: readonly ? CallId.FETCH_WITH_HEADER_FUNC : request.callId,
      key: request.key,
      callData: request.callData,
    };
    const stripHeader = readonly && request.callId === CallId.FETCH_FUNC;
    this.callRecord(db, call, (outcome) => finish(stripHeader && 'data' in outcome ? { ...outcome, data: outcome.data.subarray(LTDB_HEADER_SIZE) } : outcome));
  }

  /**
   * Runs a call on a record from this node: here if this node is dmaster, else through its
   * dmaster (migrating the record here). The daemon's own calls (vacuuming's VACUUM_MIGRATION)
   * come in here too.
   */
  callRecord(db: ClusterDatabase, call: Call, done: (outcome: CallOutcome) => void): void {
    if (db.frozen) {
      this.#parkUntilThaw(db, () => this.callRecord(db, call, done));
      return;
    }
    const { key } = call;
    const later = { retry: () => this.callRecord(db, call, done), failed: (err: Error) => done({ error: err.message }) };
    if (!this.#host.locks.tryLock(db, key, later)) return;
    let local: CallOutcome | undefined;
    try {
      const record = fetchRecord(this.#ctx(), db, key);
      const collapsed = this.#fetchCollapse() ? this.#collapsing.get(db)?.get(keyId(key)) : undefined;
      if (collapsed !== undefined) {
        collapsed.waiting.push(() => this.callRecord(db, call, done));
        return;
      }
      if (this.#waitForRevoke(db, key, record, call.flags, () => this.callRecord(db, call, done))) return;
      if (record.header.dmaster === this.#pnn && this.#revokeBeforeWrite(db, key, record, call.flags, () => this.callRecord(db, call, done))) return;
      if (record.header.dmaster === this.#pnn) local = this.#callLocal(db, call, record);
      else this.#sendCall(db, call, record.header.dmaster, done);
    } catch (err) {
      local = { error: `${db.name}: ${(err as Error).message}` };
    } finally {
      this.#host.locks.unlock(db, key);
    }
    if (local !== undefined) done(local);
  }

  /** Sends the call to the node believed to be dmaster and remembers it until answered. */
  #sendCall(db: ClusterDatabase, call: Call, dmaster: number, done: (outcome: CallOutcome) => void): void {
    const pending: PendingCall = {
      reqid: this.#nextReqid++,
      generation: this.#host.vnnMap().generation,
      db,
      call,
      started: performance.now(),
      done,
      collapsed: undefined,
    };
    this.#pending.set(pending.reqid, pending);
    if (this.#fetchCollapse()) pending.collapsed = this.#collapse(db, call.key);
    this.#emit(this.#reqCallPacket(pending, dmaster));
  }

  #reqCallPacket(pending: PendingCall, destnode: number): ReqCall {
    return {
      header: this.#header(Operation.REQ_CALL, destnode, pending.reqid, pending.generation),
      flags: pending.call.flags,
      dbId: pending.db.id,
      callId: pending.call.callId,
      hopcount: 0,
      key: pending.call.key,
      callData: pending.call.callData,
    };
  }

  #collapse(db: ClusterDatabase, key: Buffer): CollapsedFetches {
    let byKey = this.#collapsing.get(db);
    if (byKey === undefined) {
      byKey = new Map();
      this.#collapsing.set(db, byKey);
    }
    const id = keyId(key);
    const collapsed: CollapsedFetches = { waiting: [], timer: undefined };
    // A fetch that takes this long is given up on as a reason to wait: the waiters try again.
    collapsed.timer = setTimeout(() => this.#releaseCollapsed(db, id, collapsed), COLLAPSE_TIMEOUT_MS);
    byKey.set(id, collapsed);
    return collapsed;
  }

  #releaseCollapsed(db: ClusterDatabase, id: string, collapsed: CollapsedFetches): void {
    clearTimeout(collapsed.timer);
    const byKey = this.#collapsing.get(db);
    if (byKey?.get(id) === collapsed) byKey.delete(id);
    // In arrival order, each from its own event-loop turn (as ctdbd requeues them).
    for (const retry of collapsed.waiting.splice(0)) setImmediate(retry);
  }

  #complete(pending: PendingCall, outcome: CallOutcome): void {
    this.#pending.delete(pending.reqid);
    if (pending.collapsed !== undefined) this.#releaseCollapsed(pending.db, keyId(pending.call.key), pending.collapsed);
    pending.done(outcome);
  }

  // ---- packets from nodes (and from this node to itself) ----------------------------------------

  /** REQ_CALL, REPLY_CALL, REQ_DMASTER, REPLY_DMASTER or REPLY_ERROR from a node. */
  nodePacket(packet: ReqCall | ReplyCall | ReqDmaster | ReplyDmaster | ReplyError): void {
    const { header } = packet;
    if (header.operation !== Operation.REPLY_ERROR) {
      // Record traffic belongs to one generation of the cluster, and a banned node takes no part.
      if (this.#host.banned() || header.generation !== this.#host.vnnMap().generation) return;
    }
    switch (header.operation) {
      case Operation.REQ_CALL:
        this.#requestCall(packet as ReqCall);
        return;
      case Operation.REPLY_CALL:
        this.#replyCall(packet as ReplyCall);
        return;
      case Operation.REQ_DMASTER:
        this.#requestDmaster(packet as ReqDmaster);
        return;
      case Operation.REPLY_DMASTER:
        this.#replyDmaster(packet as ReplyDmaster);
        return;
      case Operation.REPLY_ERROR:
        this.#replyError(packet as ReplyError);
        return;
    }
  }

  #requestCall(c: ReqCall): void {
    const db = this.#host.databases.get(c.dbId);
    if (db === undefined) {
      this.#sendError(c, `Unknown database in request. db_id==0x${c.dbId.toString(16).padStart(8, '0')}`);
      return;
    }
    const sticky = (db.flags & DbFlag.STICKY) !== 0;
    if (sticky && this.#sticky.deferIfPinned(db, c.key, () => this.nodePacket(c))) return;
    const inProgress = this.#dmasterInProgress.get(db)?.get(keyId(c.key));
    if (inProgress !== undefined && inProgress.generation === c.header.generation) {
      inProgress.deferred.push(c);
      return;
    }
    if (!this.#lockForNode(db, c, () => this.#requestCall(c))) return;
    try {
      const record = fetchRecord(this.#ctx(), db, c.key);
      const { header } = record;
      const flags = (db.flags & DbFlag.READONLY) !== 0 ? c.flags : c.flags & ~CallFlag.WANT_READONLY;
      const requeue = (): void => this.nodePacket(c);
      if (this.#waitForRevoke(db, c.key, record, flags, requeue)) return;
      if (header.dmaster !== this.#pnn && (header.flags & LtdbFlag.RO_HAVE_DELEGATIONS) === 0) {
        this.#redirect(db, c, header);
        return;
      }
      if (this.#revokeBeforeWrite(db, c.key, record, flags, requeue)) return;
      if ((flags & CallFlag.WANT_READONLY) !== 0 && c.callId === CallId.FETCH_WITH_HEADER_FUNC) {
        this.#delegate(db, c, record);
        return;
      }
      const stats = this.#host.statistics();
      stats.maxHopCount = Math.max(stats.maxHopCount, c.hopcount);
      stats.hopCountBucket[hopCountBucket(c.hopcount)]++;
      db.statistics.recordHop(c.hopcount);
      if (sticky && c.hopcount >= this.#host.tunables().HopcountMakeSticky) this.#sticky.makeSticky(db, c.key);
      if (c.header.srcnode !== this.#pnn) {
        this.#giveRecord(db, c, record);
        return;
      }
      const outcome = this.#callLocal(db, c, record);
      const reply: ReplyCall = {
        header: this.#header(Operation.REPLY_CALL, c.header.srcnode, c.header.reqid),
        status: 'error' in outcome ? -1 : outcome.status,
        data: 'error' in outcome ? EMPTY : outcome.data,
      };
      this.#emit(reply);
    } catch (err) {
      this.#sendError(c, `${db.name}: call failed: ${(err as Error).message}`);
    } finally {
      this.#host.locks.unlock(db, c.key);
    }
  }

  /** Not the dmaster: the lmaster knows who is, and anyone else asks the lmaster. */
  #redirect(db: ClusterDatabase, c: ReqCall, header: LtdbHeader): void {
    const lmaster = lmasterOf(this.#host.vnnMap(), c.key) ?? header.dmaster;
    const destnode = lmaster === this.#pnn ? header.dmaster : lmaster;
    const hopcount = c.hopcount + 1;
    if (hopcount % 100 > 95) {
      this.#host.logger.warning(
        `High hopcount ${hopcount} dbid:${db.name} reqid=${c.header.reqid.toString(16).padStart(8, '0')} pnn:${this.#pnn} src:${c.header.srcnode} lmaster:${lmaster} header->dmaster:${header.dmaster} dst:${destnode}`,
      );
    }
    this.#emit({ ...c, header: { ...c.header, destnode }, hopcount });
  }

  /** The dmaster migrates the record to the calling node, through the lmaster unless it is that. */
  #giveRecord(db: ClusterDatabase, c: ReqCall, record: LocalRecord): void {
    const { header, data } = record;
    const newDmaster = c.header.srcnode;
    if (data.length > 0) header.flags |= LtdbFlag.MIGRATED_WITH_DATA;
    if (lmasterOf(this.#host.vnnMap(), c.key) === this.#pnn) {
      this.#sendDmasterReply(db, header, c.key, data, newDmaster, c.header.reqid);
      return;
    }
    const request: ReqDmaster = {
      header: this.#header(Operation.REQ_DMASTER, lmasterOf(this.#host.vnnMap(), c.key) ?? newDmaster, c.header.reqid),
      dbId: db.id,
      rsn: header.rsn,
      dmaster: newDmaster,
      key: c.key,
      data,
      recordFlags: header.flags,
    };
    header.dmaster = newDmaster;
    storeRecord(this.#ctx(), db, c.key, header, data);
    this.#emit(request);
  }

  /** The lmaster records the new dmaster and sends it the record. */
  #sendDmasterReply(db: ClusterDatabase, header: LtdbHeader, key: Buffer, data: Buffer, newDmaster: number, reqid: number): void {
    header.dmaster = newDmaster;
    storeRecord(this.#ctx(), db, key, header, data);
    this.#emit({
      header: this.#header(Operation.REPLY_DMASTER, newDmaster, reqid),
      dbId: db.id,
      rsn: header.rsn,
      key,
      data,
      recordFlags: header.flags,
    } satisfies ReplyDmaster);
  }

  #requestDmaster(c: ReqDmaster): void {
    const db = this.#host.databases.get(c.dbId);
    if (db === undefined) {
      this.#sendError(c, `Unknown database in request. db_id==0x${c.dbId.toString(16).padStart(8, '0')}`);
      return;
    }
    if (!this.#lockForDmaster(db, c, () => this.#requestDmaster(c))) return;
    try {
      const { header } = fetchRecord(this.#ctx(), db, c.key);
      const lmaster = lmasterOf(this.#host.vnnMap(), c.key);
      if (lmaster !== this.#pnn) {
        this.#host.forceRecovery(`dmaster request for ${db.name} to non-lmaster (lmaster is ${lmaster})`);
        return;
      }
      if (header.dmaster !== c.header.srcnode) {
        this.#host.logger.error(
          `pnn ${this.#pnn} dmaster request for new-dmaster ${c.dmaster} from non-master ${c.header.srcnode} real-dmaster=${header.dmaster} dbid 0x${db.id.toString(16)} c->rsn=${c.rsn} header.rsn=${header.rsn}`,
        );
        if (header.rsn !== 0n || header.dmaster !== this.#pnn) {
          this.#host.forceRecovery(`ctdb_req_dmaster from non-master for ${db.name}`);
          return;
        }
      }
      header.rsn = c.rsn;
      header.flags = c.recordFlags;
      if (c.dmaster === this.#pnn) this.#becomeDmaster(db, c.header, c.key, c.data, c.rsn, c.recordFlags);
      else this.#sendDmasterReply(db, header, c.key, c.data, c.dmaster, c.header.reqid);
    } finally {
      this.#host.locks.unlock(db, c.key);
    }
  }

  #replyDmaster(c: ReplyDmaster): void {
    const db = this.#host.databases.get(c.dbId);
    if (db === undefined) {
      this.#host.logger.error(`Unknown db_id 0x${c.dbId.toString(16)} in ctdb_reply_dmaster`);
      return;
    }
    if (!this.#lockForDmaster(db, c, () => this.#replyDmaster(c))) return;
    try {
      this.#becomeDmaster(db, c.header, c.key, c.data, c.rsn, c.recordFlags);
    } finally {
      this.#host.locks.unlock(db, c.key);
    }
  }

  /** Under the chain lock: this node now holds the record; the call it asked for runs here. */
  #becomeDmaster(db: ClusterDatabase, hdr: Packet['header'], key: Buffer, data: Buffer, rsn: bigint, flags: number): void {
    const header: LtdbHeader = { rsn, dmaster: this.#pnn, reserved1: 0, flags };
    const pending = this.#pending.get(hdr.reqid);
    if (pending !== undefined && (pending.call.flags & CallFlag.VACUUM_MIGRATION) !== 0) header.flags |= LtdbFlag.VACUUM_MIGRATED;
    storeRecord(this.#ctx(), db, key, header, data);
    if ((db.flags & DbFlag.STICKY) !== 0) this.#sticky.pinDown(db, key);
    if (pending === undefined) {
      this.#host.logger.error(`pnn ${this.#pnn} Invalid reqid ${hdr.reqid} in ctdb_become_dmaster from node ${hdr.srcnode}`);
      return;
    }
    if (!pending.call.key.equals(key) || pending.db !== db) {
      this.#host.logger.error(`Got bogus DMASTER packet reqid:${hdr.reqid} from node ${hdr.srcnode}. Key does not match key held in matching idr.`);
      return;
    }
    db.statistics.recordMigration(key, this.#host.logger);
    this.#complete(pending, this.#callLocal(db, pending.call, { header, data }));
  }

  #replyCall(c: ReplyCall): void {
    const pending = this.#pending.get(c.header.reqid);
    if (pending === undefined) {
      this.#host.logger.error(`reqid ${c.header.reqid} not found`);
      return;
    }
    if (pending.call.callId === CallId.FETCH_WITH_HEADER_FUNC && !this.#keepReadonlyCopy(pending, c)) return;
    this.#complete(pending, { status: c.status, data: c.data });
  }

  /**
   * A FETCH_WITH_HEADER answer carrying a read-only delegation: the copy is stored here (if newer
   * than what this node has) so that local readers use it. False while waiting for the lock.
   */
  #keepReadonlyCopy(pending: PendingCall, c: ReplyCall): boolean {
    if (c.data.length < LTDB_HEADER_SIZE) return true;
    const copy = parseLtdbRecord(c.data);
    if ((copy.header.flags & LtdbFlag.RO_HAVE_READONLY) === 0) return true;
    const { db } = pending;
    const key = pending.call.key;
    if (!this.#host.locks.tryLock(db, key, { retry: () => this.#replyCall(c), stillWanted: () => this.#pending.get(c.header.reqid) === pending })) {
      return false;
    }
    try {
      const old = fetchRecord(this.#ctx(), db, key);
      if (copy.header.rsn > old.header.rsn) storeRecord(this.#ctx(), db, key, { ...copy.header }, Buffer.from(copy.data));
    } finally {
      this.#host.locks.unlock(db, key);
    }
    return true;
  }

  // ---- read-only delegations -----------------------------------------------------------------

  /**
   * Under the record lock: a finished revoke is cleared from the header; while one is running
   * the call waits for it (true).
   */
  #waitForRevoke(db: ClusterDatabase, key: Buffer, record: LocalRecord, flags: number, retry: () => void): boolean {
    const { header } = record;
    if ((header.flags & LtdbFlag.RO_REVOKE_COMPLETE) !== 0) {
      header.flags &= ~LtdbFlag.RO_FLAGS;
      storeRecord(this.#ctx(), db, key, header, record.data);
      db.readonlyTracking?.clear(key);
      this.#host.statistics().totalRoRevokes++;
      db.statistics.roRevokes++;
    }
    if ((header.flags & LtdbFlag.RO_REVOKING_READONLY) === 0) return false;
    this.#delegations.defer(db, key, retry, (flags & CallFlag.WANT_READONLY) !== 0);
    return true;
  }

  /** A call that may write a record with read-only copies out: revoke them first, the call waits. */
  #revokeBeforeWrite(db: ClusterDatabase, key: Buffer, record: LocalRecord, flags: number, retry: () => void): boolean {
    const { header, data } = record;
    if ((flags & CallFlag.WANT_READONLY) !== 0 || (header.flags & (LtdbFlag.RO_HAVE_DELEGATIONS | LtdbFlag.RO_HAVE_READONLY)) === 0) return false;
    header.flags |= LtdbFlag.RO_REVOKING_READONLY;
    storeRecord(this.#ctx(), db, key, header, data);
    this.#delegations.startRevoke(db, key);
    this.#delegations.defer(db, key, retry, false);
    void this.#revoke(db, key, { ...header }, data);
    return true;
  }

  /**
   * Tells every holder of a read-only copy that the copy is no longer one (UPDATE_RECORD with the
   * delegation flags gone), then marks the revoke complete in the record, or takes the revoking
   * flag off again if a holder did not answer (a recovery will sort the copies out).
   */
  async #revoke(db: ClusterDatabase, key: Buffer, header: LtdbHeader, data: Buffer): Promise<void> {
    const revoked: LtdbHeader = {
      ...header,
      rsn: header.rsn - 1n,
      flags: (header.flags & ~LtdbFlag.RO_FLAGS) | LtdbFlag.MIGRATED_WITH_DATA,
    };
    const answers = await Promise.all((db.readonlyTracking?.holders(key) ?? []).map((pnn) => this.#host.updateRecord(pnn, db, key, revoked, data)));
    const ok = answers.every((a) => a);
    const finish = (): void => {
      if (!db.file.isOpen) return;
      if (!this.#host.locks.tryLock(db, key, { retry: finish, failed: () => this.#delegations.endRevoke(db, key, false) })) return;
      try {
        const current = fetchRecord(this.#ctx(), db, key);
        const both = LtdbFlag.RO_REVOKING_READONLY | LtdbFlag.RO_HAVE_DELEGATIONS;
        if (current.header.rsn > header.rsn || (current.header.flags & both) !== both) {
          this.#host.logger.error(`${db.name}: record changed during a read-only revoke`);
          return;
        }
        if (ok) {
          current.header.rsn++;
          current.header.flags |= LtdbFlag.RO_REVOKE_COMPLETE;
        } else current.header.flags &= ~LtdbFlag.RO_REVOKING_READONLY;
        storeRecord(this.#ctx(), db, key, current.header, current.data);
      } finally {
        this.#host.locks.unlock(db, key);
        this.#delegations.endRevoke(db, key, ok);
      }
    };
    finish();
  }

  /** The dmaster hands out a read-only copy: rsn moves by 3 on the first delegation. */
  #delegate(db: ClusterDatabase, c: ReqCall, record: LocalRecord): void {
    const { header, data } = record;
    // Noted first: a holder the tracking file could not take would never be revoked.
    (db.readonlyTracking as ReadOnlyTracking).addHolder(c.key, c.header.srcnode);
    if ((header.flags & LtdbFlag.RO_HAVE_DELEGATIONS) === 0) {
      header.rsn += 3n;
      header.flags |= LtdbFlag.RO_HAVE_DELEGATIONS;
      storeRecord(this.#ctx(), db, c.key, header, data);
    }
    const copy: LtdbHeader = {
      ...header,
      rsn: header.rsn - 2n,
      flags: (header.flags | LtdbFlag.RO_HAVE_READONLY) & ~LtdbFlag.RO_HAVE_DELEGATIONS,
    };
    this.#emit({
      header: this.#header(Operation.REPLY_CALL, c.header.srcnode, c.header.reqid),
      status: 0,
      data: Buffer.concat([encode(ltdbHeaderCodec, copy), data]),
    } satisfies ReplyCall);
    this.#host.statistics().totalRoDelegations++;
    db.statistics.roDelegations++;
  }

  #replyError(c: ReplyError): void {
    const pending = this.#pending.get(c.header.reqid);
    if (pending === undefined) {
      this.#host.logger.error(`pnn ${this.#pnn} Invalid reqid ${c.header.reqid} in ctdb_reply_error`);
      return;
    }
    this.#complete(pending, { error: c.msg.toString('utf8').replace(/\0+$/, '') });
  }

  // ---- recovery ----------------------------------------------------------------------------

  /**
   * A database was thawed after recovery: client calls that waited for it run, and calls still in
   * flight are sent again (new reqid, current generation) to this node, which routes them anew.
   */
  thawed(db: ClusterDatabase): void {
    const waiting = this.#waitingForThaw.get(db);
    this.#waitingForThaw.delete(db);
    for (const run of waiting ?? []) setImmediate(run);
    this.#dmasterInProgress.delete(db);
    db.readonlyTracking?.wipe(); // recovery stripped every delegation
    let resent = 0;
    for (const pending of [...this.#pending.values()]) {
      if (pending.db !== db) continue;
      this.#pending.delete(pending.reqid);
      pending.reqid = this.#nextReqid++;
      pending.generation = this.#host.vnnMap().generation;
      this.#pending.set(pending.reqid, pending);
      this.#emit(this.#reqCallPacket(pending, this.#pnn));
      resent++;
    }
    if (resent > 0) this.#host.logger.notice(`Resent calls for database=${db.name}, generation=${this.#host.vnnMap().generation}, count=${resent}`);
  }

  /** A detached or closed database: its waiting and pending calls fail. */
  forget(db: ClusterDatabase): void {
    const waiting = this.#waitingForThaw.get(db);
    this.#waitingForThaw.delete(db);
    this.#dmasterInProgress.delete(db);
    this.#sticky.forget(db);
    this.#delegations.forget(db);
    const byKey = this.#collapsing.get(db);
    this.#collapsing.delete(db);
    for (const collapsed of byKey?.values() ?? []) clearTimeout(collapsed.timer);
    for (const pending of [...this.#pending.values()]) {
      if (pending.db === db) this.#complete(pending, { error: `database ${db.name} went away` });
    }
    for (const run of waiting ?? []) setImmediate(run);
  }

  // ---- the local call functions --------------------------------------------------------------

  /**
   * Runs a call on a record this node is dmaster of and stores the record back (a volatile
   * record's rsn moves on with every store). FETCH_WITH_HEADER returns the header as it was.
   */
  #callLocal(db: ClusterDatabase, call: Call, record: LocalRecord): CallOutcome {
    let outcome: CallOutcome;
    switch (call.callId) {
      case CallId.NULL_FUNC:
        outcome = { status: 0, data: EMPTY };
        break;
      case CallId.FETCH_FUNC:
        outcome = { status: 0, data: record.data };
        break;
      case CallId.FETCH_WITH_HEADER_FUNC:
        outcome = { status: 0, data: Buffer.concat([encode(ltdbHeaderCodec, record.header), record.data]) };
        break;
      default:
        return { error: `Unknown call id ${call.callId >>> 0}` };
    }
    storeRecord(this.#ctx(), db, call.key, record.header, record.data);
    return outcome;
  }

  // ---- plumbing ------------------------------------------------------------------------------

  #parkUntilThaw(db: ClusterDatabase, run: () => void): void {
    let waiting = this.#waitingForThaw.get(db);
    if (waiting === undefined) {
      waiting = [];
      this.#waitingForThaw.set(db, waiting);
    }
    waiting.push(run);
  }

  /** A node's packet whose lock had to be waited for is dropped if a recovery came in between. */
  #lockForNode(db: ClusterDatabase, packet: ReqCall | ReqDmaster | ReplyDmaster, retry: () => void): boolean {
    if (db.frozen) return false;
    const generation = packet.header.generation;
    return this.#host.locks.tryLock(db, packet.key, { retry, stillWanted: () => generation === this.#host.vnnMap().generation && !db.frozen });
  }

  /** Like #lockForNode; while a dmaster packet waits, calls for its record wait behind it. */
  #lockForDmaster(db: ClusterDatabase, packet: ReqDmaster | ReplyDmaster, retry: () => void): boolean {
    const id = keyId(packet.key);
    let byKey = this.#dmasterInProgress.get(db);
    const existing = byKey?.get(id);
    const entry = existing ?? { generation: packet.header.generation, deferred: [] };
    const locked = this.#lockForNode(db, packet, () => {
      try {
        retry();
      } finally {
        this.#releaseDmaster(db, id, entry);
      }
    });
    if (!locked && existing === undefined && !db.frozen) {
      if (byKey === undefined) {
        byKey = new Map();
        this.#dmasterInProgress.set(db, byKey);
      }
      byKey.set(id, entry);
    }
    return locked;
  }

  #releaseDmaster(db: ClusterDatabase, id: string, entry: DmasterInProgress): void {
    const byKey = this.#dmasterInProgress.get(db);
    if (byKey?.get(id) !== entry) return;
    byKey.delete(id);
    if (entry.generation !== this.#host.vnnMap().generation) return;
    for (const c of entry.deferred) setImmediate(() => this.nodePacket(c));
  }

  #sendError(c: ReqCall | ReqDmaster, message: string): void {
    this.#host.logger.error(message);
    this.#emit({ header: this.#header(Operation.REPLY_ERROR, c.header.srcnode, c.header.reqid), status: -1, msg: Buffer.from(`${message}\0`) } satisfies ReplyError);
  }

  #header<Op extends Operation>(operation: Op, destnode: number, reqid: number, generation = this.#host.vnnMap().generation) {
    return makeHeader(operation, { destnode, srcnode: this.#pnn, reqid, generation });
  }

  /** Packets to this node go through the event loop (never recursively), the rest over TCP. */
  #emit(packet: ReqCall | ReplyCall | ReqDmaster | ReplyDmaster | ReplyError): void {
    const destnode = packet.header.destnode;
    if (destnode === this.#pnn) {
      setImmediate(() => this.nodePacket(packet));
      return;
    }
    if (!this.#host.sendToNode(destnode, encodePacket(packet))) {
      this.#host.logger.debug(`record packet ${Operation[packet.header.operation]} to node ${destnode} dropped: not connected`);
    }
  }
}
