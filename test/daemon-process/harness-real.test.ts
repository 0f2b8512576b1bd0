// Self-test of the cluster harness against Debian's ctdbd: proves the harness drives a real
// test-mode cluster on this machine, which the side-by-side comparisons rely on.
import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, allocateNodeAddresses } from '../harness/cluster';
import { ensureReferencePeers } from '../harness/reference-peers';

beforeAll(() => ensureReferencePeers());

describe('TestCluster with the real ctdbd', () => {
  it('runs one node that reaches OK', async () => {
    const cluster = await TestCluster.start({ nodes: 1, impl: 'real' });
    const node = cluster.node(0);
    expect(Number(fs.readFileSync(node.paths.pidFile, 'utf8'))).toBe(node.pid);
    await cluster.waitUntilHealthy();
    const status = await cluster.ctdb(0, ['status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('Number of nodes:1');
    expect(status.stdout).toMatch(new RegExp(`pnn:0 ${node.address.replaceAll('.', '\\.')}\\s+OK \\(THIS NODE\\)`));
    await cluster.stop();
    expect(fs.existsSync(node.paths.pidFile)).toBe(false);
  });

  it('runs three nodes that see each other, and restarts a stopped node', async () => {
    const cluster = await TestCluster.start({ nodes: 3, impl: 'real', tunables: { KeepaliveInterval: 1 } });
    await cluster.waitUntilHealthy();
    const status = await cluster.ctdb(1, ['status']);
    expect(status.stdout).toContain('Number of nodes:3');
    expect(status.stdout.match(/ OK/g)).toHaveLength(3);
    expect((await cluster.ctdb(2, ['getvar', 'KeepaliveInterval'])).stdout).toMatch(/^KeepaliveInterval\s+= 1$/m);

    await cluster.stopNode(2);
    await cluster.waitFor(async () => (await cluster.ctdb(0, ['nodestatus', '2'])).stdout.includes('DISCONNECTED'), 30_000, 'node 2 disconnected');
    await cluster.startNode(2);
    await cluster.waitUntilHealthy();
  });

  it('appends extra ctdb.conf text and writes public_addresses', async () => {
    const cluster = await TestCluster.start({
      nodes: 1,
      impl: 'real',
      config: '[logging]\n\tlog level = DEBUG',
      publicAddresses: '192.0.2.10/24 lo\n',
    });
    expect((await cluster.ctdb(0, ['getdebug'])).stdout.trim()).toBe('DEBUG');
    expect((await cluster.ctdb(0, ['ip', 'all'])).stdout).toContain('192.0.2.10');
  });

  it('hands out disjoint address blocks', async () => {
    const blocks = await Promise.all([allocateNodeAddresses(3), allocateNodeAddresses(3)]);
    try {
      expect(blocks[0].addresses).toHaveLength(3);
      expect(blocks[0].addresses.filter((a) => blocks[1].addresses.includes(a))).toEqual([]);
      expect(blocks[0].addresses[0]).toMatch(/^127\.\d+\.\d+\.1$/);
    } finally {
      for (const block of blocks) block.release();
    }
  });
});
