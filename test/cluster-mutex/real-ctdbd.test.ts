// Drop-in check: Debian's own ctdbd, told by CTDB_CLUSTER_MUTEX_HELPER to use our
// ctdb_mutex_fcntl_helper, elects a leader through it and re-elects when the lock file vanishes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../harness/cluster';
import { OUR_HELPER } from './fixtures';

/** Our helper processes holding `lockFile`, as pid list (found through /proc). */
function ourHelpersHolding(lockFile: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (fs.readlinkSync(`/proc/${entry}/exe`) === OUR_HELPER && cmdline[1] === lockFile) pids.push(Number(entry));
    } catch {
      // The process went away while we looked.
    }
  }
  return pids;
}

describe("Debian's ctdbd with our fcntl helper", () => {
  const lockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'reclock-'));
  const lockFile = path.join(lockDir, 'reclock');
  afterAll(() => fs.rmSync(lockDir, { recursive: true, force: true }));

  it('takes the cluster lock through it and re-elects after the lock file is removed', async () => {
    const cluster = await TestCluster.start({
      nodes: 2,
      impl: 'real',
      config: `[cluster]\n\tcluster lock = ${lockFile}`,
      env: { CTDB_CLUSTER_MUTEX_HELPER: OUR_HELPER },
    });
    await cluster.waitUntilHealthy();
    await cluster.waitFor(() => ourHelpersHolding(lockFile).length > 0, 30_000, 'our helper holding the lock');
    const [firstHolder] = ourHelpersHolding(lockFile);
    expect((await cluster.ctdb(0, ['getreclock'])).stdout.trim()).toBe(lockFile);

    // Default re-check interval is 5 s: the holder exits, the leader's recoverd re-elects and
    // a new helper locks a freshly created file (which may well reuse the inode number).
    fs.unlinkSync(lockFile);
    await cluster.waitFor(
      () => fs.existsSync(lockFile) && ourHelpersHolding(lockFile).some((pid) => pid !== firstHolder),
      30_000,
      'a new helper holding a new lock file',
    );
    const logs = cluster.nodes.map((node) => fs.readFileSync(node.paths.log, 'utf8')).join('\n');
    // Our helper's reason reaches ctdbd's log, then recoverd reacts as it does to its own helper.
    expect(logs).toMatch(/ctdb_mutex_fcntl_helper: lock lost: .*No such file/);
    expect(logs).toContain('Cluster lock helper terminated');
    await cluster.waitUntilHealthy();
    await cluster.waitFor(async () => (await cluster.ctdb(0, ['status'])).stdout.includes('Recovery mode:NORMAL'), 30_000, 'recovery mode NORMAL');
  }, 120_000);
});
