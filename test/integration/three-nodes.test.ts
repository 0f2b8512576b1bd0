// Three nodes: the tool's view side by side with a real 3-node ctdbd cluster, forwarding
// of controls to other nodes, and dead-node detection after kill -9.
import { describe, expect, it } from 'vitest';
import { useTestCluster } from '../harness/cluster';
import { compareTool, useSideBySide } from './tool-compat';

describe('ctdb tool on three nodes: ours side by side with the real ctdbd', () => {
  const { ours, real } = useSideBySide(3);

  it('every node names the same leader, in both clusters', async () => {
    for (const cluster of [ours(), real()]) {
      const leaders = await Promise.all([0, 1, 2].map(async (p) => (await cluster.ctdb(p, ['leader'])).stdout.trim()));
      expect(new Set(leaders).size, `${cluster.impl}: ${leaders.join(',')}`).toBe(1);
      expect(leaders[0]).toMatch(/^[012]$/);
    }
  });

  for (const args of [
    ['status'],
    ['-X', 'status'],
    ['nodestatus', 'all'],
    ['listnodes'],
    ['leader'],
    ['-n', '1', 'pnn'],
    ['-n', '2', 'runstate'],
    ['-n', 'all', 'getcapabilities'],
    ['-n', '2', 'getvar', 'KeepaliveLimit'],
    ['-n', '1', 'uptime'],
    ['-n', 'all', 'ping'],
    ['ipreallocate'],
  ]) {
    it(`ctdb ${args.join(' ')}`, async () => {
      const leaderShown = args.includes('status') || args.includes('leader');
      for (const pnn of [0, 2]) await compareTool(ours(), real(), pnn, args, { leader: leaderShown });
    });
  }
});

describe('node failure on three nodes of ours', () => {
  const cluster = useTestCluster({ nodes: 3, impl: 'ours', tunables: { KeepaliveInterval: 1, KeepaliveLimit: 3 } });

  it('kill -9 of a node: the others show it DISCONNECTED, a restart reconnects it', async () => {
    const c = cluster();
    await c.waitUntilHealthy();
    c.kill(2, 'SIGKILL');
    const started = performance.now();
    await c.waitFor(
      async () => {
        const views = await Promise.all([0, 1].map((p) => c.ctdb(p, ['-X', 'nodestatus', '2'])));
        return views.every((v) => /\|2\|[^|]*\|1\|/.test(v.stdout));
      },
      3 * 1000 + 5_000,
      'node 2 DISCONNECTED on nodes 0 and 1',
    );
    expect(performance.now() - started).toBeLessThan(3 * 1000 + 5_000);
    await c.startNode(2);
    await c.waitUntilHealthy(30_000);
    const { stdout } = await c.ctdb(0, ['status']);
    expect(stdout).toMatch(/pnn:2 \S+ +OK/);
  }, 90_000);
});
