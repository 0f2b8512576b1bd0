// Which line of the nodes file is this node: the configured `[cluster] node address`,
// else the first nodes-file address that is configured on a local interface.
import os from 'node:os';
import type { NodeEntry } from '../config/nodes';

export class OwnNodeError extends Error {}

export function findOwnPnn(nodes: readonly NodeEntry[], configured: string | null): number {
  const live = nodes.filter((n) => !n.deleted);
  if (configured !== null) {
    const match = live.find((n) => sameAddress(n.address, configured));
    if (match === undefined) {
      throw new OwnNodeError(`Node address ${configured} from ctdb.conf is not in the nodes file`);
    }
    return match.pnn;
  }
  const local = new Set(
    Object.values(os.networkInterfaces())
      .flatMap((list) => list ?? [])
      .map((a) => a.address.toLowerCase()),
  );
  const match = live.find((n) => local.has(n.address.toLowerCase()));
  if (match === undefined) {
    throw new OwnNodeError('None of the nodes file addresses is configured on this host; set [cluster] node address');
  }
  return match.pnn;
}

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
