// The cluster lock: the leader holds it and nobody else can; replacing the lock file
// makes the leader notice within the helper's re-check interval and the cluster
// settles again; Debian's ctdb_mutex_fcntl_helper through `!` behaves the same.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestCluster } from '../harness/cluster';
import type { ClusterStatus } from './status';
import { clusterAgrees } from './status';

const DEBIAN_HELPER = '/usr/libexec/ctdb/ctdb_mutex_fcntl_helper';

/** What a third party gets when it tries the lock now: '0' locked, '1' contended. */
function tryLock(file: string): string {
  const r = spawnSync(DEBIAN_HELPER, [file], { timeout: 3000, encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'] });
  return (r.stdout ?? '').slice(0, 1);
}

function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Pids of mutex helpers whose parent is one of the cluster's daemons. */
function lockHolders(cluster: TestCluster): number[] {
  const daemons = new Set(cluster.nodes.map((n) => n.pid));
  const holders: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      if (daemons.has(parentOf(pid)) && /mutex_fcntl_helper/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1'))) holders.push(pid);
    } catch {
      // the process went away while we looked
    }
  }
  return holders;
}

async function settled(cluster: TestCluster, also: (s: ClusterStatus) => boolean = () => true): Promise<ClusterStatus> {
  let status: ClusterStatus | null = null;
  await cluster.waitFor(
    async () => (status = await clusterAgrees(cluster, [0, 1, 2], () => 'OK')) !== null && also(status),
    60_000,
    'cluster settled with the lock',
  );
  return status as unknown as ClusterStatus;
}

for (const variant of ['our helper (plain path)', "Debian's helper (!command)"] as const) {
  describe(`cluster lock with ${variant}`, () => {
    it('the leader holds it, nobody else can, and replacing the lock file is noticed', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdb-lock-'));
      const lockFile = path.join(dir, 'cluster.lock');
      const setting = variant.startsWith('our') ? lockFile : `!${DEBIAN_HELPER} ${lockFile} 1`;
      const cluster = await TestCluster.start({ nodes: 3, impl: 'ours', config: `[cluster]\n\tcluster lock = ${setting}\n` });
      const before = await settled(cluster);
      expect((await cluster.ctdb(0, ['getreclock'])).stdout.trim()).toBe(setting);
      expect(tryLock(lockFile)).toBe('1');
      const holders = lockHolders(cluster);
      expect(holders).toHaveLength(1);
      const leaderPid = cluster.node(Number(before.leader)).pid;
      expect(parentOf(holders[0])).toBe(leaderPid);

      // Replace the lock file: the holder's re-check notices, an election follows, and a lock is taken on the new file.
      const replaced = `${lockFile}.new`;
      fs.writeFileSync(replaced, '');
      fs.renameSync(replaced, lockFile);
      const t0 = performance.now();
      await cluster.waitFor(() => !lockHolders(cluster).includes(holders[0]), 15_000, 'the old lock holder to notice');
      const noticedSeconds = (performance.now() - t0) / 1000;
      await settled(cluster, (s) => s.generation !== before.generation);
      await cluster.waitFor(() => tryLock(lockFile) === '1', 30_000, 'the new lock file held');
      console.log(`${variant}: lock file replacement noticed in ${noticedSeconds.toFixed(1)} s`);
    }, 180_000);
  });
}
