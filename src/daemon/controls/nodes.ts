// Node map, vnn map, recovery mode and this node's administrative state
// (stop/continue, disable/enable, ban, roles).
import { Capability, ControlCode, NodeFlag, RecMode } from '../../protocol';
import type { NodeAndFlags } from '../../protocol';
import { loadNodesFile } from '../../config/nodes';
import type { ClusterNode } from '../../cluster/node-state';
import { CTDB_PORT } from '../../cluster/peer-links';
import type { Daemon } from '../daemon';
import { checkLockHeldElsewhere } from '../../cluster/cluster-lock';
import { updateLatency } from '../statistics';
import { timevalNow } from '../../common/time';
import type { HandlerTable } from './types';
import { OK } from './types';

export const nodeControls: HandlerTable = {
  [ControlCode.GET_NODEMAP]: (_req, { daemon }) => ({ reply: daemon.state.nodes.map(nodeAndFlags) }),
  // The file as it is on disk: deleted lines are DELETED, nothing else is known.
  [ControlCode.GET_NODES_FILE]: (_req, { daemon }) => ({
    reply: loadNodesFile(daemon.paths.nodesFile).map((e) =>
      nodeAndFlags({ pnn: e.pnn, address: e.address, deleted: e.deleted, flags: e.deleted ? NodeFlag.DELETED : 0, capabilities: 0 }),
    ),
  }),
  [ControlCode.GETVNNMAP]: (_req, { daemon }) => ({ reply: daemon.state.vnnMap }),
  [ControlCode.SETVNNMAP]: (map, { daemon }) => {
    if (daemon.state.recMode !== RecMode.ACTIVE) return { error: 'Attempt to set vnnmap when not in recovery' };
    daemon.state.vnnMap = { generation: map.generation, map: [...map.map] };
    return OK;
  },
  [ControlCode.GET_RECMODE]: (_req, { daemon }) => ({ status: daemon.state.recMode }),
  [ControlCode.SET_RECMODE]: async (mode, { daemon }) => {
    if (mode !== RecMode.NORMAL && mode !== RecMode.ACTIVE) return { error: `invalid recovery mode ${mode}` };
    if (mode === daemon.state.recMode) return OK;
    const lock = daemon.config.cluster.clusterLock;
    if (mode === RecMode.NORMAL && lock !== null) {
      const { ok, result } = await checkLockHeldElsewhere(lock, daemon.logger);
      if (!ok) {
        const error =
          result.status === 'locked'
            ? 'Took recovery lock from daemon during recovery - probably a cluster filesystem lock coherence problem'
            : 'Unexpected error when testing recovery lock';
        daemon.logger.error(error);
        return { error };
      }
      if (result.status === 'contended') updateLatency(daemon.stats.counters.reclock.ctdbd, result.latency);
    }
    daemon.logger.notice(`Recovery mode set to ${RecMode[mode]}`);
    daemon.state.recMode = mode;
    return OK;
  },
  [ControlCode.RECD_RECLOCK_LATENCY]: (seconds, { daemon }) => {
    updateLatency(daemon.stats.counters.reclock.recd, seconds);
    return OK;
  },
  [ControlCode.START_RECOVERY]: (_req, { daemon }) => {
    daemon.lastRecoveryStarted = timevalNow();
    daemon.stats.counters.numRecoveries++;
    return OK;
  },
  [ControlCode.END_RECOVERY]: (_req, { daemon }) => {
    daemon.recoveryEnded();
    return OK;
  },
  [ControlCode.MODIFY_FLAGS]: ({ pnn, newFlags }, { daemon }) => {
    if (daemon.state.node(pnn) === undefined) return { error: `Node ${pnn} is invalid` };
    daemon.applyPeerFlags(pnn, newFlags);
    return OK;
  },
  [ControlCode.STOP_NODE]: (_req, { daemon }) => changeOwnFlags(daemon, 'Stopping node', NodeFlag.STOPPED, 0),
  [ControlCode.CONTINUE_NODE]: (_req, { daemon }) => changeOwnFlags(daemon, 'Continue node', 0, NodeFlag.STOPPED),
  [ControlCode.DISABLE_NODE]: (_req, { daemon }) => changeOwnFlags(daemon, 'Disable node', NodeFlag.PERMANENTLY_DISABLED, 0),
  [ControlCode.ENABLE_NODE]: (_req, { daemon }) => changeOwnFlags(daemon, 'Enable node', 0, NodeFlag.PERMANENTLY_DISABLED),
  [ControlCode.SET_BAN_STATE]: ({ pnn, time }, { daemon }) => {
    if (pnn !== daemon.pnn) return { error: `SET_BAN_STATE control for PNN ${pnn} ignored` };
    daemon.ban.set(time);
    return OK;
  },
  [ControlCode.GET_BAN_STATE]: (_req, { daemon }) => ({ reply: { pnn: daemon.pnn, time: daemon.ban.seconds } }),
  [ControlCode.SET_LMASTERROLE]: (on, { daemon }) => setCapability(daemon, Capability.LMASTER, on !== 0),
  [ControlCode.SET_RECMASTERROLE]: (on, { daemon }) => setCapability(daemon, Capability.RECMASTER, on !== 0),
  [ControlCode.RECD_PING]: () => OK,
  [ControlCode.RELOAD_NODES_FILE]: (_req, { daemon }) => {
    daemon.reloadNodes();
    return OK;
  },
};

function nodeAndFlags(n: ClusterNode): NodeAndFlags {
  const ipv6 = n.address.includes(':');
  return {
    pnn: n.pnn,
    flags: n.flags,
    addr: { family: ipv6 ? 'ipv6' : 'ipv4', address: n.deleted ? '0.0.0.0' : n.address, port: n.deleted ? 0 : CTDB_PORT },
  };
}

function changeOwnFlags(daemon: Daemon, what: string, set: number, clear: number) {
  daemon.logger.error(what);
  daemon.setOwnFlags((daemon.state.self.flags | set) & ~clear);
  return OK;
}

function setCapability(daemon: Daemon, cap: number, on: boolean) {
  const caps = on ? daemon.state.capabilities | cap : daemon.state.capabilities & ~cap;
  daemon.state.capabilities = caps;
  daemon.state.self.capabilities = caps;
  daemon.recoverd.requestRecovery();
  return OK;
}
