// `ctdb reloadnodes` on a running cluster: a node deleted from the nodes file (after
// it has been shut down) disappears, and added back it rejoins.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestCluster } from '../harness/cluster';
import { clusterAgrees } from './status';

function rewriteNodesFiles(cluster: TestCluster, line: (address: string, pnn: number) => string): void {
  const text = cluster.nodes.map((n) => line(n.address, n.pnn)).join('\n') + '\n';
  for (const n of cluster.nodes) fs.writeFileSync(path.join(n.base, 'nodes'), text);
}

describe('ctdb reloadnodes', () => {
  it('deletes a stopped node and adds it back', async () => {
    const t0 = performance.now();
    const stage = (what: string) => console.log(`${what} at ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const cluster = await TestCluster.start({ nodes: 3, impl: 'ours' });
    await cluster.waitFor(async () => (await clusterAgrees(cluster, [0, 1, 2], () => 'OK')) !== null, 40_000, '3 nodes OK');

    stage('3 nodes OK');
    await cluster.stopNode(2);
    // The tool asks every node it believes connected for its nodes file.
    await cluster.waitFor(
      async () => (await Promise.all([0, 1].map((p) => cluster.ctdb(p, ['-X', 'nodestatus', '2'])))).every((r) => /\|2\|[^|]*\|1\|/.test(r.stdout)),
      30_000,
      'node 2 seen disconnected',
    );
    rewriteNodesFiles(cluster, (address, pnn) => (pnn === 2 ? `#${address}` : address));
    const del = await cluster.ctdb(0, ['reloadnodes'], { timeoutMs: 60_000 });
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toContain('Node 2 is DELETED');
    await cluster.waitFor(
      async () => {
        const r = await cluster.ctdb(0, ['status']);
        return /Number of nodes:3/.test(r.stdout) && !/pnn:2/.test(r.stdout) && /Recovery mode:NORMAL/.test(r.stdout);
      },
      40_000,
      'node 2 gone from status',
    );

    stage('node 2 deleted');
    rewriteNodesFiles(cluster, (address) => address);
    await cluster.startNode(2);
    stage('node 2 restarted');
    const add = await cluster.ctdb(0, ['reloadnodes'], { timeoutMs: 60_000 });
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain('Node 2 is UNDELETED');
    stage('reloadnodes done');
    await cluster.waitFor(async () => (await clusterAgrees(cluster, [0, 1, 2], () => 'OK')) !== null, 60_000, 'node 2 back');
    stage('node 2 back');
  }, 180_000);
});
