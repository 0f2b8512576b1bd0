// srvid registration and the liveness checks Samba does for its server ids.
import { ControlCode, NodeFlag, Srvid, encodeMessage } from '../../protocol';
import type { HandlerTable } from './types';
import { OK } from './types';

export const messagingControls: HandlerTable = {
  [ControlCode.REGISTER_SRVID]: (_req, { daemon, client, request }) => {
    if (client === undefined) return { error: 'srvids can only be registered by local clients' };
    daemon.srvids.register(request.srvid, client);
    client.srvids.push(request.srvid);
    // The ctdb tool registers for leader broadcasts and then waits for one (up to an interval)
    // before any command that needs the leader. On the leader itself the next broadcast is
    // known: the client is told at once, after the reply.
    if (request.srvid === Srvid.LEADER) {
      setImmediate(() => {
        if (daemon.recoverd.leadingHere && daemon.srvids.isRegisteredBy(Srvid.LEADER, client)) daemon.sendMessageTo(client, Srvid.LEADER, encodeMessage('LEADER', daemon.pnn));
      });
    }
    return OK;
  },
  [ControlCode.DEREGISTER_SRVID]: (_req, { daemon, client, request }) => {
    if (client === undefined || !daemon.srvids.deregister(request.srvid, client)) {
      return { error: 'srvid not registered' };
    }
    const i = client.srvids.indexOf(request.srvid);
    if (i >= 0) client.srvids.splice(i, 1);
    return OK;
  },
  [ControlCode.PROCESS_EXISTS]: (pid, { daemon }) => {
    const clients = daemon.clients.byPid(pid);
    if (clients === undefined) return { status: -1 };
    if ((daemon.state.self.flags & NodeFlag.INACTIVE) !== 0) {
      // A banned or stopped node must not keep Samba's records alive.
      daemon.logger.notice(`Killing client with pid:${pid} on banned/stopped node`);
      for (const c of [...clients]) daemon.disconnectClient(c);
      return { status: -1 };
    }
    return { status: processAlive(pid) ? 0 : -1 };
  },
  [ControlCode.CHECK_PID_SRVID]: ({ pid, srvid }, { daemon }) => {
    for (const c of daemon.clients.byPid(pid) ?? []) {
      if (daemon.srvids.isRegisteredBy(srvid, c)) return { status: 0 };
    }
    return { status: -1 };
  },
};

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
