// Daemons started by the harness never outlive the process that started them, even when that
// process is SIGKILLed (a crashed or timed-out test worker): their stdin pipe closes.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../scripts/package-root';
import { isAlive, killProcessTree, waitForExit } from '../../scripts/cluster/processes';
import type { DaemonImpl } from '../harness/cluster';

// Starts a 1-node cluster from the built harness code, prints the daemon's pid, then idles.
const starter = `
const { LocalCluster } = require(${JSON.stringify(path.join(packageRoot, 'dist', 'scripts', 'cluster', 'local-cluster.js'))});
LocalCluster.create({ nodes: 1, impl: process.argv[1] })
  .then(async (cluster) => { await cluster.startAll(); console.log(cluster.nodes[0].pid); setInterval(() => {}, 1000); })
  .catch((err) => { console.error(err); process.exit(1); });
`;

function startOwner(impl: DaemonImpl): Promise<{ owner: number; daemon: number }> {
  const child = spawn(process.execPath, ['-e', starter, impl], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (line: Buffer) => resolve({ owner: child.pid ?? -1, daemon: Number(line.toString().trim()) }));
    child.once('exit', (code) => reject(new Error(`cluster owner exited with ${code} before starting its node`)));
  });
}

describe('harness lifeline', () => {
  it.each<DaemonImpl>(['real', 'ours'])('a %s ctdbd exits when the process that started it is SIGKILLed', async (impl) => {
    const { owner, daemon } = await startOwner(impl);
    try {
      expect(isAlive(daemon)).toBe(true);
      process.kill(owner, 'SIGKILL');
      expect(await waitForExit(daemon, 15_000)).toBe(true);
    } finally {
      if (isAlive(daemon)) killProcessTree(daemon, [daemon]);
    }
  });
});
