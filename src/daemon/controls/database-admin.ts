// Database administration: detaching a volatile database from the cluster, seqnum
// propagation between nodes, and per-database statistics, with ctdbd 4.17's rules.
import { ControlCode, ControlFlag, Pnn, RecMode, encodeControlRequest } from '../../protocol';
import type { Daemon } from '../daemon';
import type { ClusterDatabase } from '../../database/database';
import { applyRemoteSeqnumUpdate, enableSeqnumPropagation } from '../../database/seqnum';
import { endPush } from './databases';
import type { HandlerTable, Outcome } from './types';
import { vacuumingOf } from './vacuum';
import { OK } from './types';

function hexId(dbId: number): string {
  return `0x${dbId.toString(16).padStart(8, '0')}`;
}

/** A refusal ctdbd logs before failing the control. */
function refuse(d: Daemon, message: string): Outcome<never> {
  d.logger.error(message);
  return { error: message };
}

/** UPDATE_SEQNUM for a database whose file a local writer changed, to every active node. */
function announceSeqnumChange(d: Daemon, db: ClusterDatabase): void {
  void d.router.send(Pnn.BROADCAST_ACTIVE, {
    opcode: ControlCode.UPDATE_SEQNUM,
    srvid: 0n,
    flags: ControlFlag.NOREPLY,
    clientId: 0,
    srcnode: d.pnn,
    data: encodeControlRequest(ControlCode.UPDATE_SEQNUM, db.id),
  });
}

export const databaseAdminControls: HandlerTable = {
  // Asked by a client: checked here, then every connected node (this one included) is told to
  // detach; the client's answer does not wait for them. From a node: the detach itself.
  [ControlCode.DB_DETACH]: (dbId, { daemon, client, request }) => {
    const db = daemon.databases.get(dbId);
    if (db === undefined) return refuse(daemon, `Invalid dbid ${hexId(dbId)} in DB detach`);
    // Exactly 1, as ctdbd compares it.
    if (daemon.tunables.values.AllowClientDBAttach === 1) {
      return refuse(daemon, `DB detach from database ${db.name} denied. Clients are allowed access to databases (AllowClientDBAccess == 1)`);
    }
    if (!db.volatile) return refuse(daemon, `Detaching non-volatile database ${db.name} denied`);
    if (daemon.state.recMode === RecMode.ACTIVE) return refuse(daemon, 'DB detach denied while in recovery');
    if (request.clientId !== 0) {
      if (client === undefined) return refuse(daemon, `Client has gone away. Failing DB detach for database '${db.name}'`);
      void daemon.router.send(Pnn.BROADCAST_CONNECTED, { ...request, clientId: 0, srcnode: daemon.pnn, flags: ControlFlag.NOREPLY });
      return OK;
    }
    endPush(daemon, dbId);
    daemon.migration.forget(db);
    vacuumingOf(daemon).forget(db);
    daemon.databases.detach(dbId);
    daemon.logger.notice(`Detached from database '${db.name}'`);
    return OK;
  },

  // The file counts changes from now on, and this node watches for local ones.
  [ControlCode.ENABLE_SEQNUM]: (dbId, { daemon }) => {
    enableSeqnumPropagation(daemon.databases.require(dbId), {
      intervalMs: () => daemon.tunables.values.SeqnumInterval,
      announce: (db) => announceSeqnumChange(daemon, db),
    });
    return OK;
  },

  [ControlCode.UPDATE_SEQNUM]: (dbId, { daemon, request }) => {
    if (request.srcnode === daemon.pnn) return OK;
    const db = daemon.databases.get(dbId);
    if (db === undefined) return refuse(daemon, `Unknown db_id ${hexId(dbId)} in UPDATE_SEQNUM`);
    if (db.unhealthyReason !== null) return refuse(daemon, `db(${db.name}) unhealthy in UPDATE_SEQNUM: ${db.unhealthyReason}`);
    applyRemoteSeqnumUpdate(db);
    return OK;
  },

  [ControlCode.GET_DB_STATISTICS]: (dbId, { daemon }) => ({ reply: daemon.databases.require(dbId).statistics.snapshot() }),
};
