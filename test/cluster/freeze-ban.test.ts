// A node whose databases cannot be frozen (a libtdb process holds the all-record lock,
// as a stuck smbd would) makes recoveries fail; the leader hands it ban credits until
// it is banned — it and only it — and the rest of the cluster recovers without it.
import { describe, expect, it } from 'vitest';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, RecMode } from '../../src/protocol';
import { TestCluster } from '../harness/cluster';
import { holdAllRecordLock } from '../database/lock-holder';
import { clusterAgrees } from './status';

for (const impl of ['ours', 'real'] as const) describe(`banning a node that cannot freeze (${impl})`, () => {
  it('bans the node holding up the freeze, and only it', async () => {
    const cluster = await TestCluster.start({ nodes: 3, impl, tunables: { RecoverTimeout: 3, RerecoveryTimeout: 2 } });
    await cluster.waitFor(async () => (await clusterAgrees(cluster, [0, 1, 2], () => 'OK')) !== null, 60_000, '3 nodes OK');
    expect((await cluster.ctdb(0, ['attach', 'stuck.tdb'])).code).toBe(0);

    const client2 = await CtdbClient.connect(cluster.node(2).socket);
    const { reply: dbmap } = await client2.call(2, ControlCode.GET_DBMAP, undefined);
    const db = dbmap[0].dbId;
    const path = (await client2.call(2, ControlCode.GETDBPATH, db)).reply as string;
    const flags = (await client2.call(2, ControlCode.DB_OPEN_FLAGS, db)).reply;
    client2.close();
    const holder = await holdAllRecordLock(path, flags);
    try {
      // Force a recovery (what `ctdb recover` does), then watch the leader deal with node 2.
      const client0 = await CtdbClient.connect(cluster.node(0).socket);
      await client0.call(0, ControlCode.SET_RECMODE, RecMode.ACTIVE);
      client0.close();
      await cluster.waitFor(
        async () => (await clusterAgrees(cluster, [0, 1], (p) => (p === 2 ? 'BANNED|INACTIVE' : 'OK'))) !== null,
        90_000,
        'node 2 banned, nodes 0 and 1 OK',
      );
      const status = await cluster.ctdb(0, ['status']);
      expect(status.stdout).toMatch(/pnn:0 \S+ +OK/);
      expect(status.stdout).toMatch(/pnn:1 \S+ +OK/);
    } finally {
      await holder.release();
    }
    expect((await cluster.ctdb(2, ['unban'], { timeoutMs: 60_000 })).code).toBe(0);
    await cluster.waitFor(async () => (await clusterAgrees(cluster, [0, 1, 2], () => 'OK')) !== null, 60_000, 'node 2 back');
  }, 240_000);
});
