// Parses `ctdb status` as printed by the Debian tool, for cluster-management tests.
import type { TestCluster } from '../harness/cluster';

export interface ClusterStatus {
  nodes: Array<{ pnn: number; state: string }>;
  generation: string;
  vnnmap: number[];
  recoveryMode: string;
  leader: string;
}

export function parseStatus(text: string): ClusterStatus {
  const nodes = [...text.matchAll(/^pnn:(\d+) \S+\s+(\S+(?:\|\S+)*)/gm)].map((m) => ({ pnn: Number(m[1]), state: m[2] }));
  return {
    nodes,
    generation: /^Generation:(\S+)/m.exec(text)?.[1] ?? '',
    vnnmap: [...text.matchAll(/^hash:\d+ lmaster:(\d+)/gm)].map((m) => Number(m[1])),
    recoveryMode: /^Recovery mode:(\S+)/m.exec(text)?.[1] ?? '',
    leader: /^Leader:(\S+)/m.exec(text)?.[1] ?? '',
  };
}

export async function statusOf(cluster: TestCluster, pnn: number): Promise<ClusterStatus | null> {
  const r = await cluster.ctdb(pnn, ['status'], { timeoutMs: 15_000 });
  return r.code === 0 ? parseStatus(r.stdout) : null;
}

/** Every listed node reports the same generation, vnn map and leader, recovery NORMAL, and the given states. */
export async function clusterAgrees(
  cluster: TestCluster,
  pnns: readonly number[],
  expectState: (pnn: number) => string,
): Promise<ClusterStatus | null> {
  const views = await Promise.all(pnns.map((p) => statusOf(cluster, p)));
  const first = views[0];
  if (first == null) return null;
  for (const v of views) {
    if (v === null || v.recoveryMode !== 'NORMAL' || v.generation !== first.generation || v.leader !== first.leader) return null;
    if (v.vnnmap.join(',') !== first.vnnmap.join(',')) return null;
    if (v.leader === 'UNKNOWN' || v.generation === 'INVALID') return null;
    if (!v.nodes.every((n) => n.state === expectState(n.pnn))) return null;
  }
  return first;
}
