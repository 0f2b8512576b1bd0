// Database attach and lookup through the Debian `ctdb` tool on three nodes of ours, side by
// side with three real ctdbd nodes, and the files we create checked with libtdb's tdbdump.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { TestCluster, ToolResult } from '../harness/cluster';
import { compareTool, mask, useSideBySide } from '../integration/tool-compat';
import { databaseId } from '../../src/database/registry';

const run = promisify(execFile);

async function dbPath(cluster: TestCluster, pnn: number, name: string): Promise<string> {
  const r = await cluster.ctdb(pnn, ['getdbstatus', name]);
  const m = /^path: (.+)$/m.exec(r.stdout);
  if (m === null) throw new Error(`no path for ${name} on node ${pnn}: ${r.stdout}${r.stderr}`);
  return m[1];
}

describe('database ids', () => {
  it('are lookup3 of the name with its NUL, as 4.17 computes them', () => {
    expect(databaseId('test.tdb')).toBe(0xc445c6ab);
    expect(databaseId('g_lock.tdb')).toBe(0x4d2a432b);
    expect(databaseId('locking.tdb')).toBe(0x7a19d84d);
    expect(databaseId('secrets.tdb')).toBe(0x7132c184);
  });
});

describe('attach on three nodes: ours side by side with the real ctdbd', () => {
  const { ours, real } = useSideBySide(3);

  const steps: string[][] = [
    ['getdbmap'],
    ['attach', 'vol1.tdb'],
    ['attach', 'pers1.tdb', 'persistent'],
    ['attach', 'repl1.tdb', 'replicated'],
    ['attach', 'vol1.tdb'],
    ['attach', 'vol1.tdb', 'persistent'],
    ['attach', 'pers1.tdb'],
    ['getdbmap'],
    ['-X', 'getdbmap'],
    ['getdbstatus', 'vol1.tdb'],
    ['getdbstatus', 'pers1.tdb'],
    ['getdbstatus', '0xc445c6ab'],
    ['getdbseqnum', 'pers1.tdb'],
    ['setdbreadonly', 'vol1.tdb'],
    ['setdbsticky', 'vol1.tdb'],
    ['setdbreadonly', 'pers1.tdb'],
    ['getdbmap'],
  ];
  for (const args of steps) {
    it(`ctdb ${args.join(' ')}`, async () => {
      await compareTool(ours(), real(), 0, args);
    });
  }

  it('the attach reached every node (getdbmap on nodes 1 and 2)', async () => {
    for (const pnn of [1, 2]) await compareTool(ours(), real(), pnn, ['getdbmap']);
  });

  // tstore opens files without TDB_MUTEX_LOCKING, so it works on the (fcntl) persistent files only.
  it('tstore/tfetch on a persistent database file and cattdb through the daemon', async () => {
    const outputs = await Promise.all(
      [ours(), real()].map(async (cluster) => {
        const file = await dbPath(cluster, 1, 'pers1.tdb');
        const results: ToolResult[] = [];
        for (const args of [
          ['tstore', file, 'key1', 'value1', '7', '1'],
          ['tstore', file, 'key2', 'value2'],
          ['tfetch', file, 'key1'],
          ['tfetch', file, 'missing'],
          ['cattdb', 'pers1.tdb'],
        ]) {
          results.push(await cluster.ctdb(1, args));
        }
        return results.map((r) => ({ code: r.code, stdout: mask(r.stdout, cluster), stderr: mask(r.stderr, cluster) }));
      }),
    );
    expect(outputs[0]).toEqual(outputs[1]);
    expect(outputs[0].map((r) => r.code)).toEqual([0, 0, 0, 1, 0]);
    expect(outputs[0][4].stdout).toMatch(/key\(4\) = "key1"\ndmaster: 1\nrsn: 7\n/);
  });

  it('files are <dir>/<name>.<pnn>, valid for libtdb', async () => {
    for (const pnn of [0, 1, 2]) {
      for (const name of ['vol1.tdb', 'pers1.tdb']) {
        const [o, r] = await Promise.all([dbPath(ours(), pnn, name), dbPath(real(), pnn, name)]);
        expect(o.slice(ours().root.length)).toBe(r.slice(real().root.length));
        expect(o.endsWith(`/${name}.${pnn}`)).toBe(true);
        const dumped = await run('tdbdump', [o]);
        expect(dumped.stdout).toBe((await run('tdbdump', [r])).stdout);
      }
    }
  });
});
