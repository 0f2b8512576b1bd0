// Vacuuming controls: SCHEDULE_FOR_DELETION from clients (smbd, the ctdb tool), VACUUM_FETCH and
// TRY_DELETE_RECORDS between nodes, DB_VACUUM (a run on demand). The engine is
// database/vacuum.ts; each daemon has one, made when the daemon builds its record migration
// (which feeds the delete queue with the records it empties).
import { ControlCode, Pnn, RecMode, Runstate } from '../../protocol';
import { Vacuuming } from '../../database/vacuum';
import type { Daemon } from '../daemon';
import type { HandlerTable } from './types';
import { OK } from './types';

const engines = new WeakMap<Daemon, Vacuuming>();

/**
 * The daemon's vacuuming engine. The daemon's constructor asks for it (the delete queue of its
 * record migration), before its migration engine exists, so the host reads the daemon lazily.
 */
export function vacuumingOf(d: Daemon): Vacuuming {
  let engine = engines.get(d);
  if (engine === undefined) {
    engine = new Vacuuming({
      pnn: d.pnn,
      logger: d.logger,
      databases: d.databases,
      vnnMap: () => d.state.vnnMap,
      recovering: () => d.state.recMode === RecMode.ACTIVE,
      shuttingDown: () => d.state.runstate === Runstate.SHUTDOWN,
      otherActiveNodes: () => d.broadcastTargets(Pnn.BROADCAST_ACTIVE).filter((pnn) => pnn !== d.pnn),
      tunables: () => d.tunables.values,
      tryDeleteRecords: async (pnn, records) => (await d.router.call(pnn, ControlCode.TRY_DELETE_RECORDS, records)).reply,
      vacuumFetch: async (pnn, records) => void (await d.router.call(pnn, ControlCode.VACUUM_FETCH, records)),
      callRecord: (db, call, done) => d.migration.callRecord(db, call, done),
    });
    engines.set(d, engine);
  }
  return engine;
}

export const vacuumControls: HandlerTable = {
  [ControlCode.SCHEDULE_FOR_DELETION]: ({ dbId, header, key }, { daemon }) => {
    vacuumingOf(daemon).schedule(daemon.databases.require(dbId), key, header);
    return OK;
  },
  [ControlCode.VACUUM_FETCH]: ({ dbId, records }, { daemon }) => {
    vacuumingOf(daemon).fetch(daemon.databases.require(dbId), records);
    return OK;
  },
  [ControlCode.TRY_DELETE_RECORDS]: async ({ dbId, records }, { daemon }) => {
    const db = daemon.databases.require(dbId);
    return { reply: { dbId: db.id, records: await vacuumingOf(daemon).tryDelete(db, records) } };
  },
  [ControlCode.DB_VACUUM]: async ({ dbId, fullVacuumRun }, { daemon }) => {
    const completed = await vacuumingOf(daemon).vacuumNow(daemon.databases.require(dbId), fullVacuumRun);
    return completed ? OK : { error: 'vacuuming did not complete' };
  },
};
