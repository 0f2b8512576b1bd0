// This node's view of the cluster: every node of the nodes file with its flags and
// capabilities, plus the vnn map, recovery mode and runstate that controls report.
import { Capability, INVALID_GENERATION, NodeFlag, RecMode, Runstate } from '../protocol';
import type { NodeEntry } from '../config/nodes';

/** A deleted node is also disconnected, as ctdbd reports it (the tool relies on that). */
export const DELETED_FLAGS = NodeFlag.DELETED | NodeFlag.DISCONNECTED;

export interface ClusterNode {
  readonly pnn: number;
  address: string;
  deleted: boolean;
  flags: number;
  /** Capabilities as last reported by the node (own node: our own). */
  capabilities: number;
}

export interface VnnMap {
  generation: number;
  map: number[];
}

export class NodeState {
  readonly nodes: ClusterNode[];
  recMode: RecMode = RecMode.ACTIVE;
  runstate: Runstate = Runstate.UNKNOWN;
  vnnMap: VnnMap;
  capabilities: number;
  /** Leader as last announced by a SRVID_LEADER broadcast (UNKNOWN until one arrives). */
  leader: number;

  constructor(
    entries: readonly NodeEntry[],
    readonly pnn: number,
    capabilities: number,
    unknownPnn: number,
  ) {
    this.nodes = entries.map((e) => ({
      pnn: e.pnn,
      address: e.address,
      deleted: e.deleted,
      // Every node starts unhealthy; peers also disconnected until the transport is up.
      flags: e.deleted ? DELETED_FLAGS : NodeFlag.UNHEALTHY | (e.pnn === pnn ? 0 : NodeFlag.DISCONNECTED),
      capabilities: e.pnn === pnn ? capabilities : Capability.DEFAULT,
    }));
    this.capabilities = capabilities;
    this.leader = unknownPnn;
    this.vnnMap = { generation: INVALID_GENERATION, map: this.nodes.filter((n) => !n.deleted).map((n) => n.pnn) };
  }

  get self(): ClusterNode {
    return this.nodes[this.pnn];
  }

  node(pnn: number): ClusterNode | undefined {
    return this.nodes[pnn];
  }

  isConnected(pnn: number): boolean {
    const n = this.nodes[pnn];
    return n !== undefined && (n.flags & (NodeFlag.DISCONNECTED | NodeFlag.DELETED)) === 0;
  }

  isActive(pnn: number): boolean {
    const n = this.nodes[pnn];
    return n !== undefined && (n.flags & NodeFlag.INACTIVE) === 0;
  }

  /** Sets flags of a node; returns the old flags. */
  setFlags(pnn: number, flags: number): number {
    const n = this.nodes[pnn];
    const old = n.flags;
    n.flags = flags;
    return old;
  }

  /**
   * RELOAD_NODES_FILE: unchanged nodes keep their state; new or changed addresses
   * join as new, disconnected nodes; lines that became `#` are deleted.
   */
  reload(entries: readonly NodeEntry[]): { added: ClusterNode[]; removed: ClusterNode[] } {
    const added: ClusterNode[] = [];
    const removed: ClusterNode[] = [];
    entries.forEach((e, pnn) => {
      const old = this.nodes[pnn];
      if (old !== undefined && old.address === e.address && old.deleted === e.deleted) return;
      if (old !== undefined && !old.deleted) removed.push(old);
      const node: ClusterNode = {
        pnn,
        address: e.address,
        deleted: e.deleted,
        flags: e.deleted ? DELETED_FLAGS : NodeFlag.UNHEALTHY | NodeFlag.DISCONNECTED,
        capabilities: Capability.DEFAULT,
      };
      this.nodes[pnn] = node;
      if (!e.deleted) added.push(node);
    });
    return { added, removed };
  }

  connectedPeers(): number[] {
    return this.nodes.filter((n) => n.pnn !== this.pnn && this.isConnected(n.pnn)).map((n) => n.pnn);
  }
}
