// Persistent database writes: TRANS3_COMMIT from a local client fans out as UPDATE_RECORD to
// every active node; UPDATE_RECORD applies the records locally (src/database/persistent.ts).
import { ControlCode, RecMode } from '../../protocol';
import type { RecBuffer } from '../../protocol';
import { Trans3Commits, updateRecords } from '../../database/persistent';
import type { CommitReply, SendUpdate } from '../../database/persistent';
import type { Daemon } from '../daemon';
import { updateLatency } from '../statistics';
import type { HandlerTable, Outcome } from './types';
import { OK } from './types';

/** Longest the local update of a commit waits for the copies to the other nodes to leave. */
const SEND_DRAIN_MAX_MS = 500;
const SEND_DRAIN_POLL_MS = 1;

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
      timeoutMs: () => d.controlTimeoutMs(),
    });
    commitsByDaemon.set(d, commits);
  }
  return commits;
}

function recoveryRefusal(d: Daemon): string | null {
  return d.state.recMode !== RecMode.NORMAL ? 'rejecting update_record when recovery active' : null;
}

/** UPDATE_RECORD on this node. */
async function updateHere(d: Daemon, { dbId, records }: RecBuffer): Promise<Outcome<never>> {
  const refused = recoveryRefusal(d);
  if (refused !== null) return { error: refused };
  const db = d.databases.get(dbId);
  if (db === undefined) return { error: `update_record: unknown database 0x${dbId.toString(16)}` };
  if (db.unhealthyReason !== null) return { error: `db(${db.name}) unhealthy in update_record: ${db.unhealthyReason}` };
  d.stats.counters.childwriteCalls++;
  d.stats.counters.pendingChildwriteCalls++;
  const started = performance.now();
  const outcome = await updateRecords({ pnn: d.pnn, vnnMap: d.state.vnnMap }, db, records, {
    timeoutMs: d.controlTimeoutMs(),
    refusal: () => recoveryRefusal(d) ?? (db.file.isOpen ? null : `database ${db.name} was detached`),
  });
  // Read again: a statistics reset meanwhile replaces the counters (and zeroes the gauge).
  const counters = d.stats.counters;
  counters.pendingChildwriteCalls = Math.max(0, counters.pendingChildwriteCalls - 1);
  updateLatency(counters.childwriteLatency, (performance.now() - started) / 1000);
  if (outcome.status === 0) return { status: 0 };
  d.logger.error(`update_record for db ${db.name} failed: ${outcome.error ?? `status ${outcome.status}`}`);
  return outcome.status < 0 ? { error: outcome.error ?? 'update_record failed' } : { status: outcome.status };
}

/**
 * The local update holds the event loop for as long as its transaction takes, and the copies
 * to the other nodes only leave while the loop turns: it starts once the transport has written
 * that much more (ctdbd writes in a child and never faces this), or after SEND_DRAIN_MAX_MS.
 */
function afterTransportWrote(d: Daemon, since: number, bytes: number): Promise<void> {
  const deadline = performance.now() + SEND_DRAIN_MAX_MS;
  return new Promise((resolve) => {
    const poll = (): void => {
      if (d.io.stats().bytesWritten - since >= bytes || performance.now() >= deadline) resolve();
      else setTimeout(poll, SEND_DRAIN_POLL_MS);
    };
    // First look once the sends of this turn are queued (a small commit is out by then).
    setImmediate(poll);
  });
}

function commitReply(outcome: Outcome<never>): CommitReply {
  return outcome.error !== undefined ? { status: -1, errorMessage: outcome.error } : { status: outcome.status ?? 0, errorMessage: null };
}

export const persistentControls: HandlerTable = {
  [ControlCode.TRANS3_COMMIT]: async (recbuf, { daemon, client, request }) => {
    const commits = trans3Commits(daemon);
    const dbId = recbuf.dbId;
    if (client === undefined) return { error: 'trans3_commit can not be matched to a client' };
    if (daemon.databases.get(dbId) === undefined) return { error: `trans3_commit: unknown database db_id 0x${dbId.toString(16)}` };
    const refusal = commits.refusal(client.id, dbId);
    if (refusal !== null) return { error: refusal };
    const targets = daemon.state.vnnMap.map.filter((pnn) => daemon.state.isActive(pnn));
    const peers = targets.filter((pnn) => pnn !== daemon.pnn).length;
    const written = daemon.io.stats().bytesWritten;
    const sendUpdate: SendUpdate = (pnn) =>
      pnn === daemon.pnn
        ? afterTransportWrote(daemon, written, peers * request.data.length).then(() => updateHere(daemon, recbuf).then(commitReply))
        : daemon.router.send(pnn, { opcode: ControlCode.UPDATE_RECORD, srvid: 0n, flags: 0, clientId: client.id, srcnode: daemon.pnn, data: request.data });
    const { status, errorMessage } = await commits.commit(client.id, dbId, targets, sendUpdate);
    if (status === 0) return { status };
    daemon.logger.error(`trans3_commit to db 0x${dbId.toString(16)} answered ${status}: ${errorMessage}`);
    return status < 0 ? { error: errorMessage ?? 'trans3_commit failed' } : { status };
  },

  [ControlCode.UPDATE_RECORD]: (recbuf, { daemon }) => updateHere(daemon, recbuf),

  [ControlCode.START_PERSISTENT_UPDATE]: (_req, { daemon, client }) => {
    if (client === undefined) return { error: 'start_persistent_update can not be matched to a client' };
    trans3Commits(daemon).updateAnnounced(client.id);
    return OK;
  },
  [ControlCode.CANCEL_PERSISTENT_UPDATE]: (_req, { daemon, client }) => {
    if (client === undefined) return { error: 'cancel_persistent_update can not be matched to a client' };
    trans3Commits(daemon).updateCancelled(client.id);
    return OK;
  },
};
