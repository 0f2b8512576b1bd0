// Cluster management: start-up agreement, administrative states (stop/continue,
// ban/unban, disable/enable, setleaderrole), leader failure and node stalls, on our
// daemons and — the same scenarios, side by side — on Debian's ctdbd. The Debian ctdb
// tool drives everything.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestCluster } from '../harness/cluster';
import type { ClusterStatus } from './status';
import { clusterAgrees, statusOf } from './status';

const ALL_OK = (): string => 'OK';

/**
 * Kills the leader of a healthy cluster with SIGKILL, waits until the others agree on a
 * new leader and a new generation, restarts it and waits until everybody is OK again.
 */
async function leaderLossAndRejoin(cluster: TestCluster, nodes: number[]): Promise<void> {
  const before = await agreed(cluster, nodes, ALL_OK, 60_000);
  const leader = Number(before.leader);
  const others = nodes.filter((p) => p !== leader);
  cluster.kill(leader, 'SIGKILL');
  const after = await agreed(
    cluster,
    others,
    (p) => (p === leader ? 'DISCONNECTED|UNHEALTHY|INACTIVE' : 'OK'),
    40_000,
    (s) => s.generation !== before.generation && Number(s.leader) !== leader,
  );
  expect(after.vnnmap.sort()).toEqual(others);
  await cluster.startNode(leader);
  const rejoined = await agreed(cluster, nodes, ALL_OK, 60_000);
  expect(rejoined.vnnmap.sort()).toEqual(nodes);
  expect((await statusOf(cluster, leader))?.nodes).toHaveLength(nodes.length);
}

async function agreed(
  cluster: TestCluster,
  pnns: number[],
  state: (pnn: number) => string,
  timeoutMs = 40_000,
  also: (s: ClusterStatus) => boolean = () => true,
): Promise<ClusterStatus> {
  let result: ClusterStatus | null = null;
  await cluster.waitFor(
    async () => {
      result = await clusterAgrees(cluster, pnns, state);
      return result !== null && also(result);
    },
    timeoutMs,
    `nodes ${pnns.join(',')} to agree`,
  );
  return result as unknown as ClusterStatus;
}

const DEBIAN_MUTEX_HELPER = '/usr/libexec/ctdb/ctdb_mutex_fcntl_helper';

/** Our daemons, Debian's, and ours with a cluster lock held through Debian's mutex helper. */
const VARIANTS = [
  { name: 'ours', impl: 'ours', lock: false },
  { name: 'real', impl: 'real', lock: false },
  { name: "ours, cluster lock via Debian's helper", impl: 'ours', lock: true },
] as const;

for (const variant of VARIANTS) describe(`cluster management, 3 nodes (${variant.name})`, () => {
  const impl = variant.impl;
  const lockDir = variant.lock ? fs.mkdtempSync(path.join(os.tmpdir(), 'ctdb-mgmt-lock-')) : null;
  const config = lockDir === null ? undefined : `[cluster]\n\tcluster lock = !${DEBIAN_MUTEX_HELPER} ${lockDir}/lock\n`;
  it('start: all nodes OK with the same generation, vnn map and leader, recovery NORMAL', async () => {
    const started = performance.now();
    const cluster = await TestCluster.start({ nodes: 3, impl, config });
    const status = await agreed(cluster, [0, 1, 2], ALL_OK);
    expect(status.vnnmap.sort()).toEqual([0, 1, 2]);
    expect(status.nodes).toHaveLength(3);
    console.log(`${variant.name}: 3 nodes agreed ${((performance.now() - started) / 1000).toFixed(1)} s after the first start`);
  }, 90_000);

  for (const [what, enter, leave, state] of [
    ['stop/continue', ['stop'], ['continue'], 'STOPPED|INACTIVE'],
    ['ban/unban', ['ban', '300'], ['unban'], 'BANNED|INACTIVE'],
    ['setleaderrole off/on', ['setleaderrole', 'off'], ['setleaderrole', 'on'], 'OK'],
    ['disable/enable', ['disable'], ['enable'], 'DISABLED'],
  ] as const) {
    it(`${what} on the leader: the command returns promptly, the role moves, and back`, async () => {
      const cluster = await TestCluster.start({ nodes: 3, impl, config });
      const before = await agreed(cluster, [0, 1, 2], ALL_OK);
      const leader = Number(before.leader);
      const others = [0, 1, 2].filter((p) => p !== leader);
      const t0 = performance.now();
      const r = await cluster.ctdb(leader, [...enter], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      const commandSeconds = (performance.now() - t0) / 1000;
      expect(commandSeconds).toBeLessThan(20);
      const movesLeader = what !== 'disable/enable';
      const during = await agreed(cluster, others, (p) => (p === leader ? state : 'OK'));
      if (movesLeader) expect(Number(during.leader)).not.toBe(leader);
      const back = await cluster.ctdb(leader, [...leave], { timeoutMs: 60_000 });
      expect(back.code, back.stderr).toBe(0);
      await agreed(cluster, [0, 1, 2], ALL_OK);
      console.log(`${variant.name} ${what}: '${enter.join(' ')}' returned in ${commandSeconds.toFixed(1)} s`);
    }, 150_000);
  }

  it('kill -9 of the leader: the others elect a new leader and recover; a restarted node rejoins', async () => {
    await leaderLossAndRejoin(await TestCluster.start({ nodes: 3, impl, config }), [0, 1, 2]);
  }, 150_000);

  // With a cluster lock the stalled node is not the leader: a stopped leader's mutex helper
  // keeps running and keeps the lock (Debian's helper without a ping timeout does the same
  // under ctdbd 4.17), so no other node can lead until SIGCONT — in both daemons.
  it('a node stalled with SIGSTOP beyond the keepalive limit is dropped, and comes back after SIGCONT', async () => {
    const cluster = await TestCluster.start({ nodes: 3, impl, config, tunables: { KeepaliveInterval: 1, KeepaliveLimit: 3 } });
    const before = await agreed(cluster, [0, 1, 2], ALL_OK);
    const stalled = variant.lock ? [0, 1, 2].find((p) => p !== Number(before.leader))! : 2;
    const others = [0, 1, 2].filter((p) => p !== stalled);
    cluster.kill(stalled, 'SIGSTOP');
    try {
      await agreed(cluster, others, (p) => (p === stalled ? 'DISCONNECTED|UNHEALTHY|INACTIVE' : 'OK'));
    } finally {
      cluster.kill(stalled, 'SIGCONT');
    }
    await agreed(cluster, [0, 1, 2], ALL_OK, 60_000);
  }, 150_000);
});

describe('cluster management, 5 nodes (ours)', () => {
  it('start, leader loss and rejoin', async () => {
    await leaderLossAndRejoin(await TestCluster.start({ nodes: 5, impl: 'ours' }), [0, 1, 2, 3, 4]);
  }, 180_000);
});
