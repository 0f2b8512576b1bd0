// Wall-clock jumps of ±10 years under running daemons (libfaketime, with the monotonic
// clock left alone, is the injected clock): the leader broadcast, keepalives and the
// recovery master's timers run on the monotonic clock, so nothing notices — no node is
// dropped, no election, no recovery.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestCluster } from '../harness/cluster';
import { LIBFAKETIME } from '../harness/reference-peers';
import { clusterAgrees } from './status';

describe('wall-clock jumps', () => {
  it('±10 years change nothing: same leader, same generation, every node OK', async () => {
    const offsetFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ctdb-faketime-')), 'offset');
    fs.writeFileSync(offsetFile, '+0\n');
    const cluster = await TestCluster.start({
      nodes: 3,
      impl: 'ours',
      tunables: { KeepaliveInterval: 1, KeepaliveLimit: 3 },
      env: {
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME_TIMESTAMP_FILE: offsetFile,
        FAKETIME_NO_CACHE: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      },
    });
    let baseline = null as Awaited<ReturnType<typeof clusterAgrees>>;
    await cluster.waitFor(async () => (baseline = await clusterAgrees(cluster, [0, 1, 2], () => 'OK')) !== null, 40_000, '3 nodes OK');
    const before = baseline!;
    // The daemons really see the jump: uptime's current time moves by ten years.
    for (const offset of ['+10y', '-10y']) {
      fs.writeFileSync(offsetFile, `${offset}\n`);
      const uptime = await cluster.ctdb(0, ['uptime']);
      const year = Number(/Current time of node 0\s*:\s*\S+ \S+ +\d+ \S+ (\d{4})/.exec(uptime.stdout)?.[1]);
      expect(Math.abs(year - new Date().getFullYear())).toBeGreaterThanOrEqual(9);
      // Longer than KeepaliveInterval × KeepaliveLimit and the leader timeout.
      const until = performance.now() + 8_000;
      while (performance.now() < until) {
        const now = await clusterAgrees(cluster, [0, 1, 2], () => 'OK');
        expect(now, `cluster state after a ${offset} jump`).not.toBeNull();
        expect(now!.leader).toBe(before.leader);
        expect(now!.generation).toBe(before.generation);
      }
    }
  }, 120_000);
});
