// Persistent database writes: TRANS3_COMMIT from a local client fans out as UPDATE_RECORD to
// every active node; UPDATE_RECORD applies the records locally (src/database/persistent.ts).
import { ControlCode, RecMode } from '../../protocol';
import { Trans3Commits, updateRecords } from '../../database/persistent';
import type { Daemon } from '../daemon';
import { updateLatency } from '../statistics';
import type { HandlerTable } from './types';

const commitsByDaemon = new WeakMap<Daemon, Trans3Commits>();

/** The daemon's commits in flight; END_RECOVERY and client disconnects report to it. */
export function trans3Commits(d: Daemon): Trans3Commits {
  let commits = commitsByDaemon.get(d);
  if (commits === undefined) {
    commits = new Trans3Commits({
      logger: d.logger,
      recovering: () => d.state.recMode !== RecMode.NORMAL,
      forceRecovery: (reason) => {
        d.logger.error(`${reason}: forcing a recovery`);
        d.state.recMode = RecMode.ACTIVE;
      },
      updateTargets: () => d.state.vnnMap.map.filter((pnn) => d.state.isActive(pnn)),
      sendUpdate: (pnn, clientId, data) =>
        d.router.send(pnn, { opcode: ControlCode.UPDATE_RECORD, srvid: 0n, flags: 0, clientId, srcnode: d.pnn, data }),
      timeoutMs: () => d.controlTimeoutMs(),
    });
    commitsByDaemon.set(d, commits);
  }
  return commits;
}

export const persistentControls: HandlerTable = {
  [ControlCode.TRANS3_COMMIT]: async ({ dbId }, { daemon, client, request }) => {
    const commits = trans3Commits(daemon);
    if (client === undefined) return { error: 'trans3_commit can not be matched to a client' };
    if (daemon.databases.get(dbId) === undefined) return { error: `trans3_commit: unknown database db_id 0x${dbId.toString(16)}` };
    const refusal = commits.refusal(client.id, dbId);
    if (refusal !== null) return { error: refusal };
    const { status, errorMessage } = await commits.commit(client.id, dbId, request.data);
    if (status === 0) return { status };
    daemon.logger.error(`trans3_commit to db 0x${dbId.toString(16)} answered ${status}: ${errorMessage}`);
    return status < 0 ? { error: errorMessage ?? 'trans3_commit failed' } : { status };
  },

  [ControlCode.UPDATE_RECORD]: async ({ dbId, records }, { daemon }) => {
    const recovering = (): string | null => (daemon.state.recMode !== RecMode.NORMAL ? 'rejecting update_record when recovery active' : null);
    const refused = recovering();
    if (refused !== null) return { error: refused };
    const db = daemon.databases.get(dbId);
    if (db === undefined) return { error: `update_record: unknown database 0x${dbId.toString(16)}` };
    if (db.unhealthyReason !== null) return { error: `db(${db.name}) unhealthy in update_record: ${db.unhealthyReason}` };
    daemon.stats.counters.childwriteCalls++;
    daemon.stats.counters.pendingChildwriteCalls++;
    const started = performance.now();
    const outcome = await updateRecords({ pnn: daemon.pnn, vnnMap: daemon.state.vnnMap }, db, records, {
      timeoutMs: daemon.controlTimeoutMs(),
      refusal: () => recovering() ?? (db.file.isOpen ? null : `database ${db.name} was detached`),
    });
    // Read again: a statistics reset meanwhile replaces the counters (and zeroes the gauge).
    const counters = daemon.stats.counters;
    counters.pendingChildwriteCalls = Math.max(0, counters.pendingChildwriteCalls - 1);
    updateLatency(counters.childwriteLatency, (performance.now() - started) / 1000);
    if (outcome.status === 0) return { status: 0 };
    daemon.logger.error(`update_record for db ${db.name} failed: ${outcome.error ?? `status ${outcome.status}`}`);
    return outcome.status < 0 ? { error: outcome.error ?? 'update_record failed' } : { status: outcome.status };
  },
};
