// Identity, liveness, tunables, debug level and statistics controls.
import { ControlCode, DebugLevel, TUNABLE_LIST_FIELDS } from '../../protocol';
import type { TunableList } from '../../protocol';
import { memoryReport } from '../memory-report';
import { timevalNow } from '../../common/time';
import type { HandlerTable } from './types';
import { OK } from './types';

export const generalControls: HandlerTable = {
  [ControlCode.GET_PNN]: (_req, { daemon }) => ({ status: daemon.pnn }),
  [ControlCode.GET_PID]: () => ({ status: process.pid }),
  [ControlCode.PING]: (_req, { daemon }) => ({ status: daemon.clients.size }),
  [ControlCode.GET_RUNSTATE]: (_req, { daemon }) => ({ reply: daemon.state.runstate }),
  [ControlCode.GET_CAPABILITIES]: (_req, { daemon }) => ({ reply: daemon.state.capabilities }),
  [ControlCode.UPTIME]: (_req, { daemon }) => ({
    reply: {
      currentTime: timevalNow(),
      ctdbdStartTime: daemon.startedAt,
      lastRecoveryStarted: daemon.lastRecoveryStarted,
      lastRecoveryFinished: daemon.lastRecoveryFinished,
    },
  }),
  [ControlCode.GET_DEBUG]: (_req, { daemon }) => ({ reply: daemon.logger.level }),
  [ControlCode.SET_DEBUG]: (level, { daemon }) => {
    daemon.logger.level = level as DebugLevel;
    return OK;
  },
  [ControlCode.DUMP_MEMORY]: () => ({ reply: memoryReport() }),
  [ControlCode.GET_RECLOCK_FILE]: (_req, { daemon }) => ({ reply: daemon.config.cluster.clusterLock }),
  [ControlCode.STATISTICS]: (_req, { daemon }) => ({ reply: daemon.stats.snapshot(daemon.liveState()) }),
  [ControlCode.STATISTICS_RESET]: (_req, { daemon }) => {
    daemon.stats.reset();
    for (const db of daemon.databases.newestFirst()) db.statistics.reset();
    return OK;
  },
  [ControlCode.GET_STAT_HISTORY]: (_req, { daemon }) => ({ reply: daemon.stats.history() }),
  [ControlCode.LIST_TUNABLES]: (_req, { daemon }) => ({ reply: daemon.tunables.listNames() }),
  [ControlCode.GET_TUNABLE]: (name, { daemon }) => {
    const value = name === null ? undefined : daemon.tunables.get(name);
    return value === undefined ? { error: `unknown tunable ${name ?? ''}` } : { reply: value };
  },
  [ControlCode.SET_TUNABLE]: ({ name, value }, { daemon }) => {
    switch (daemon.tunables.set(name ?? '', value)) {
      case 'ok':
        // The scheduler needs at least one helper slot to make progress at all.
        if (name?.toLowerCase() === 'lockprocessesperdb') daemon.lockScheduler.setHelpersPerDatabase(Math.max(1, value));
        return OK;
      case 'obsolete':
        return { status: 1 };
      default:
        return { error: `unknown tunable ${name ?? ''}` };
    }
  },
  [ControlCode.GET_ALL_TUNABLES]: (_req, { daemon }) => {
    const values = daemon.tunables.toWireArray();
    return { reply: Object.fromEntries(TUNABLE_LIST_FIELDS.map((field, i) => [field, values[i]])) as TunableList };
  },
  [ControlCode.SHUTDOWN]: (_req, { daemon }) => {
    // Reply (if any was asked for) first, then stop.
    setImmediate(() => daemon.shutdown('shutdown control received'));
    return OK;
  },
};
