// Traverse controls: TRAVERSE_START[_EXT] from local clients (smbd, `ctdb catdb`), and the
// node-to-node TRAVERSE_ALL[_EXT] / TRAVERSE_DATA / TRAVERSE_KILL; the engine is
// database/traverse.ts. Each daemon gets its engine on first use.
import { ControlCode, ControlFlag, Pnn, traverseAllCodec, traverseAllExtCodec } from '../../protocol';
import type { TraverseAll } from '../../protocol';
import type { ClusterDatabase } from '../../database/database';
import { TraverseEngine } from '../../database/traverse';
import type { Daemon } from '../daemon';
import type { ControlContext, HandlerTable, Outcome } from './types';
import { OK } from './types';

const engines = new WeakMap<Daemon, TraverseEngine>();

function traverseEngine(d: Daemon): TraverseEngine {
  let engine = engines.get(d);
  if (engine === undefined) {
    engine = new TraverseEngine({
      pnn: d.pnn,
      logger: d.logger,
      activeNodes: () => d.broadcastTargets(Pnn.BROADCAST_ACTIVE),
      isActive: (pnn) => d.state.isActive(pnn),
      isConnected: (pnn) => d.state.isConnected(pnn),
      vnnMap: () => d.state.vnnMap.map,
      sendControl: (destnode, opcode, data) =>
        void d.router.send(destnode, { opcode, srvid: 0n, flags: ControlFlag.NOREPLY, clientId: 0, srcnode: d.pnn, data }),
      deliver: (srvid, data) => d.sendMessage(d.pnn, srvid, data),
      traverseTimeoutMs: () => d.tunables.values.TraverseTimeout * 1000,
      countTimeout: () => void d.stats.counters.timeouts.traverse++,
    });
    engines.set(d, engine);
  }
  return engine;
}

/** The database, if a traverse may read it: healthy, or unhealthy with AllowUnhealthyDBRead set. */
function readableDatabase(d: Daemon, dbId: number, control: string): ClusterDatabase {
  const db = d.databases.require(dbId);
  if (db.unhealthyReason !== null) {
    const message = `db(${db.name}) unhealthy in ${control}: ${db.unhealthyReason}`;
    if (d.tunables.values.AllowUnhealthyDBRead === 0) throw new Error(message);
    d.logger.warning(`warn: ${message}`);
  }
  return db;
}

function startHandler(request: { dbId: number; reqid: number; srvid: bigint; withEmptyRecords?: boolean }, { daemon, client }: ControlContext): Outcome<never> {
  // Records go to the client's srvid registrations on this node: a forwarded start has no client here.
  if (client === undefined) return { error: 'No client found' };
  const db = readableDatabase(daemon, request.dbId, 'traverse start');
  const withEmptyRecords = request.withEmptyRecords ?? false;
  traverseEngine(daemon).start(db, { ...request, withEmptyRecords }, () => daemon.clients.byConn(client.conn) === client);
  return OK;
}

/** TRAVERSE_ALL[_EXT]: ctdbd insists on the exact structure size. */
function serveHandler(size: number) {
  return (request: TraverseAll & { withEmptyRecords?: boolean }, { daemon, request: raw }: ControlContext): Outcome<never> => {
    if (raw.data.length !== size) return { error: `invalid size ${raw.data.length} for traverse all, expected ${size}` };
    const db = readableDatabase(daemon, request.dbId, 'traverse all');
    traverseEngine(daemon).serve(db, { ...request, withEmptyRecords: request.withEmptyRecords ?? false });
    return OK;
  };
}

export const traverseControls: HandlerTable = {
  [ControlCode.TRAVERSE_START]: startHandler,
  [ControlCode.TRAVERSE_START_EXT]: startHandler,
  [ControlCode.TRAVERSE_ALL]: serveHandler(traverseAllCodec.fixedSize as number),
  [ControlCode.TRAVERSE_ALL_EXT]: serveHandler(traverseAllExtCodec.fixedSize as number),
  [ControlCode.TRAVERSE_DATA]: (record, { daemon, request }) => {
    if (request.data.readUInt32LE(0) !== request.data.length) return { error: 'Bad record size in traverse data' };
    return traverseEngine(daemon).data(request.srcnode, record) ? OK : { error: `no traverse with reqid ${record.reqid}` };
  },
  [ControlCode.TRAVERSE_KILL]: ({ dbId, reqid, srvid }, { daemon }) => {
    daemon.databases.require(dbId);
    traverseEngine(daemon).kill(dbId, reqid, srvid);
    return OK;
  },
};
