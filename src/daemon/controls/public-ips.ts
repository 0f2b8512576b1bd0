// Interfaces and public addresses. IP failover is not implemented yet: a node has no
// public addresses, so the lists are empty and takeover runs only run IPREALLOCATED.
import { ControlCode } from '../../protocol';
import type { HandlerTable } from './types';
import { OK } from './types';

export const publicIpControls: HandlerTable = {
  [ControlCode.GET_IFACES]: () => ({ reply: [] }),
  [ControlCode.GET_PUBLIC_IPS]: () => ({ reply: [] }),
  [ControlCode.GET_PUBLIC_IP_INFO]: (addr) => ({ error: `${addr.address} is not a public address of this node` }),
  [ControlCode.IPREALLOCATED]: () => OK,
  // smbd registers every client connection; without public addresses there is nothing to tickle.
  [ControlCode.TCP_CLIENT]: () => OK,
};
