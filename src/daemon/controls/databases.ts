// Database controls: attach and lookup, per-database flags and health, and the freeze /
// transaction / pull / push steps a recovery drives each database through.
import { ControlCode, ControlFlag, DbFlag, LtdbFlag, NodeFlag, Pnn, RecMode, Runstate } from '../../protocol';
import type { ControlRequest } from '../control-router';
import type { Daemon } from '../daemon';
import type { Subscriber } from '../srvid-table';
import { PushSession, digestRecords, pullRecords } from '../../database/record-transfer';
import { fetchLtdbRecord, storeLtdbRecord } from '../../store';
import { lmasterOf } from '../../database/lmaster';
import type { ClusterDatabase } from '../../database/database';
import type { ControlContext, HandlerTable, Outcome } from './types';
import { OK } from './types';
import { vacuumingOf } from './vacuum';

const SEQNUM_KEY = Buffer.from('__db_sequence_number__\0');
const DEFERRED_ATTACH_POLL_MS = 50;

const ATTACH_KINDS = {
  [ControlCode.DB_ATTACH]: 0,
  [ControlCode.DB_ATTACH_PERSISTENT]: DbFlag.PERSISTENT,
  [ControlCode.DB_ATTACH_REPLICATED]: DbFlag.REPLICATED,
} as const;
type AttachCode = keyof typeof ATTACH_KINDS;

/** The opcode that attaches a database of this kind on the other nodes. */
function attachCodeFor(flags: number): AttachCode {
  if ((flags & DbFlag.PERSISTENT) !== 0) return ControlCode.DB_ATTACH_PERSISTENT;
  if ((flags & DbFlag.REPLICATED) !== 0) return ControlCode.DB_ATTACH_REPLICATED;
  return ControlCode.DB_ATTACH;
}

function attachAllowedNow(d: Daemon): boolean {
  return d.state.recMode !== RecMode.ACTIVE && d.state.runstate >= Runstate.STARTUP;
}

/** Resolves once recovery is over and the node has started up; fails after DeferredAttachTO. */
function deferredAttach(d: Daemon): Promise<boolean> {
  const deadline = Date.now() + d.tunables.values.DeferredAttachTO * 1000;
  return new Promise((resolve) => {
    const poll = (): void => {
      if (attachAllowedNow(d)) resolve(true);
      else if (Date.now() >= deadline || d.state.runstate === Runstate.SHUTDOWN) resolve(false);
      else setTimeout(poll, DEFERRED_ATTACH_POLL_MS);
    };
    poll();
  });
}

function attachHandler(code: AttachCode) {
  return async (name: string | null, { daemon, client, request }: ControlContext): Promise<Outcome<number>> => {
    if (name === null) return { error: 'database name missing' };
    if (daemon.tunables.values.AllowClientDBAttach === 0) {
      return { error: `DB Attach to database ${name} denied by tunable AllowClientDBAccess == 0` };
    }
    const recoveryAttach = (request.flags & ControlFlag.ATTACH_RECOVERY) !== 0;
    if (client !== undefined) {
      if ((daemon.state.self.flags & NodeFlag.INACTIVE) !== 0) return { error: `DB Attach to database ${name} refused since node is inactive` };
      if (recoveryAttach && daemon.state.recMode !== RecMode.ACTIVE) return { error: 'Attach from recovery refused because recovery is not active' };
      if (!recoveryAttach && !attachAllowedNow(daemon)) {
        daemon.logger.error(`DB Attach to database ${name} deferred for client with pid:${client.pid} since node is in recovery mode.`);
        if (!(await deferredAttach(daemon))) return { error: `DB Attach to database ${name} timed out waiting for recovery` };
      }
    }
    const { db, created } = daemon.databases.attach(name, ATTACH_KINDS[code]);
    if (created) {
      daemon.logger.notice(`Attached to database '${db.path}' with flags 0x${db.tdbFlags.toString(16)}`);
      announceAttach(daemon, attachCodeFor(db.flags), request);
    }
    return { reply: db.id };
  };
}

/** Every connected node attaches the database too (as ctdbd, a NOREPLY broadcast). */
function announceAttach(d: Daemon, opcode: AttachCode, request: ControlRequest): void {
  void d.router.send(Pnn.BROADCAST_CONNECTED, {
    opcode,
    srvid: 0n,
    flags: ControlFlag.NOREPLY,
    clientId: 0,
    srcnode: d.pnn,
    data: request.data,
  });
}

/** SET_DB_READONLY / SET_DB_STICKY: volatile databases only; setting a flag again does nothing. */
function volatileFlagHandler(flag: number, what: string, set: (db: ClusterDatabase, daemon: Daemon) => void) {
  return (dbId: number, { daemon }: ControlContext): Outcome<never> => {
    const db = daemon.databases.require(dbId);
    if ((db.flags & flag) !== 0) return OK;
    if (!db.volatile) {
      daemon.logger.error(`Non-volatile databases do not support ${what} flag`);
      return { error: `cannot set ${what} on non-volatile database ${db.name}` };
    }
    set(db, daemon);
    return OK;
  };
}

/**
 * The u64 seqnum record of a database; 0 when it has none. As ctdb_ltdb_fetch does, a missing
 * record is created as a bare header owned by its lmaster (persistent databases always).
 */
function databaseSeqnum(d: Daemon, dbId: number): bigint {
  const db = d.databases.require(dbId);
  const record = fetchLtdbRecord(db.file, SEQNUM_KEY);
  if (record === undefined) {
    const dmaster = lmasterOf(d.state.vnnMap, SEQNUM_KEY);
    if (dmaster !== undefined && (db.persistent || dmaster === d.pnn)) {
      storeLtdbRecord(db.file, SEQNUM_KEY, { rsn: 0n, dmaster, reserved1: 0, flags: LtdbFlag.AUTOMATIC });
    }
    return 0n;
  }
  return record.data.length === 8 ? record.data.readBigUInt64LE(0) : 0n;
}

export const databaseControls: HandlerTable = {
  [ControlCode.DB_ATTACH]: attachHandler(ControlCode.DB_ATTACH),
  [ControlCode.DB_ATTACH_PERSISTENT]: attachHandler(ControlCode.DB_ATTACH_PERSISTENT),
  [ControlCode.DB_ATTACH_REPLICATED]: attachHandler(ControlCode.DB_ATTACH_REPLICATED),
  [ControlCode.GET_DBMAP]: (_req, { daemon }) => ({ reply: daemon.databases.newestFirst().map((db) => ({ dbId: db.id, flags: db.flags })) }),
  [ControlCode.GETDBPATH]: (dbId, { daemon }) => ({ reply: daemon.databases.require(dbId).path }),
  [ControlCode.GET_DBNAME]: (dbId, { daemon }) => ({ reply: daemon.databases.require(dbId).name }),
  [ControlCode.DB_OPEN_FLAGS]: (dbId, { daemon }) => ({ reply: daemon.databases.require(dbId).tdbFlags }),
  [ControlCode.DB_GET_HEALTH]: (dbId, { daemon }) => ({ reply: daemon.databases.require(dbId).unhealthyReason }),
  [ControlCode.DB_SET_HEALTHY]: (dbId, { daemon }) => {
    const db = daemon.databases.require(dbId);
    if (db.unhealthyReason !== null) daemon.logger.notice(`db ${db.name} is now healthy`);
    db.unhealthyReason = null;
    return OK;
  },
  [ControlCode.GET_DB_SEQNUM]: (dbId, { daemon }) => ({ reply: databaseSeqnum(daemon, dbId) }),
  [ControlCode.SET_DB_READONLY]: volatileFlagHandler(DbFlag.READONLY, 'readonly', (db, daemon) => {
    const tracking = db.setReadonly(daemon.tunables.values.DatabaseHashSize);
    daemon.logger.notice(`OPENED tracking database : '${tracking.path}'`);
    daemon.logger.notice(`Readonly property set on DB ${db.name}`);
  }),
  [ControlCode.SET_DB_STICKY]: volatileFlagHandler(DbFlag.STICKY, 'sticky', (db, daemon) => {
    db.flags |= DbFlag.STICKY;
    daemon.logger.notice(`set db sticky ${db.name}`);
  }),

  // Every database (an inactive node's recovery daemon asks for this); replies once all are locked.
  [ControlCode.FREEZE]: async (_req, { daemon }) => {
    await Promise.all(daemon.databases.newestFirst().map((db) => db.freeze()));
    return OK;
  },
  [ControlCode.DB_FREEZE]: async (dbId, { daemon }) => {
    await daemon.databases.require(dbId).freeze();
    return OK;
  },
  [ControlCode.DB_THAW]: (dbId, { daemon }) => {
    const db = daemon.databases.require(dbId);
    daemon.logger.error(`Thaw db: ${db.name} generation ${db.generation}`);
    endPush(daemon, dbId);
    db.thaw();
    daemon.migration.thawed(db);
    return OK;
  },
  [ControlCode.DB_TRANSACTION_START]: ({ dbId, tid }, { daemon }) => {
    daemon.databases.require(dbId).startTransaction(tid);
    return OK;
  },
  [ControlCode.DB_TRANSACTION_COMMIT]: ({ dbId, tid }, { daemon }) => {
    daemon.databases.require(dbId).commitTransaction(tid);
    return OK;
  },
  [ControlCode.DB_TRANSACTION_CANCEL]: (dbId, { daemon }) => {
    const db = daemon.databases.require(dbId);
    daemon.logger.error(`Recovery db transaction cancelled for ${db.name}`);
    db.cancelTransaction();
    return OK;
  },
  [ControlCode.WIPE_DATABASE]: ({ dbId, tid }, { daemon }) => {
    daemon.databases.require(dbId).wipe(tid);
    return OK;
  },
  // The records go to the requesting node before the reply, which carries their count.
  [ControlCode.DB_PULL]: ({ dbId, srvid }, { daemon, request }) => {
    const db = daemon.databases.require(dbId);
    const limit = daemon.tunables.values.RecBufferSizeLimit;
    return { reply: pullRecords(db, limit, (buffer) => daemon.sendMessage(request.srcnode, srvid, buffer)) };
  },
  [ControlCode.DB_DIGEST]: async (dbId, { daemon }) => ({ reply: await digestRecords(daemon.databases.require(dbId)) }),
  [ControlCode.DB_PUSH_START]: ({ dbId, srvid }, { daemon }) => {
    const db = daemon.databases.require(dbId);
    db.requireFrozen('start a push');
    endPush(daemon, dbId);
    const session = new PushSession(db, srvid, () => ({ pnn: daemon.pnn, vnnMap: daemon.state.vnnMap, deletions: vacuumingOf(daemon) }));
    // The push rewrites headers in place: it gets its own copy (a client listening to every
    // srvid sees the message as sent).
    const subscriber: Subscriber = { deliver: (_srvid, _packet, data) => session.apply(Buffer.from(data)) };
    daemon.subscribe(srvid, subscriber);
    daemon.databases.pushes.set(dbId, { session, subscriber });
    return OK;
  },
  [ControlCode.DB_PUSH_CONFIRM]: (dbId, { daemon }) => {
    daemon.databases.require(dbId).requireFrozen('confirm a push');
    const push = daemon.databases.pushes.get(dbId);
    if (push === undefined) return { error: 'DB push not started' };
    endPush(daemon, dbId);
    if (push.session.failure !== null) return { error: `DB push failed: ${push.session.failure.message}` };
    return { reply: push.session.records };
  },
};

export function endPush(d: Daemon, dbId: number): void {
  const push = d.databases.pushes.get(dbId);
  if (push === undefined) return;
  d.srvids.deregister(push.session.srvid, push.subscriber);
  d.databases.pushes.delete(dbId);
}
