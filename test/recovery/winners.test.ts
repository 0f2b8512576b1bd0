// `ctdb recover` on 3 nodes with a volatile and a persistent database of 100k records each:
// every node ends with the right winner of every key. Our daemons and Debian's ctdbd, same
// data, same expectations (a daemon gives a pushed record it is dmaster of the next rsn, see storedCopy).
import { describe, expect, it } from 'vitest';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, LtdbFlag } from '../../src/protocol';
import { useTestCluster, type TestCluster } from '../harness/cluster';
import { localRecords, waitForNormal } from './helpers';
import { expectedWinner, mergeCase, storedCopy } from './merge-cases';
import { seedNode, seqnumRecord, type SeedRecord } from './seed';

const NODES = [0, 1, 2];
const COUNT = 100_000;
const VOLATILE = 'winners_vol.tdb';
const PERSISTENT = 'winners_pers.tdb';

async function attach(c: TestCluster, client: CtdbClient, args: string[]): Promise<number> {
  const r = await c.ctdb(0, args);
  expect(r.code, r.stderr).toBe(0);
  let dbId: number | undefined;
  // The attach reaches the other nodes a moment after the tool returns.
  await c.waitFor(async () => {
    const maps = await Promise.all(NODES.map(async (pnn) => (await client.call(pnn, ControlCode.GET_DBMAP, undefined)).reply));
    const names = await Promise.all(maps[0].map(async (db) => (await client.call(0, ControlCode.GET_DBNAME, db.dbId)).reply));
    dbId = maps[0][names.indexOf(args[1])]?.dbId;
    return dbId !== undefined && maps.every((map) => map.some((db) => db.dbId === dbId));
  });
  return dbId as number;
}

describe.each(['ours', 'real'] as const)('ctdb recover of 100k + 100k records (%s)', (impl) => {
  const cluster = useTestCluster({ nodes: 3, impl, tunables: { RerecoveryTimeout: 0 } });

  it('leaves the right winner of every key on every node', async () => {
    const c = cluster();
    await c.waitUntilHealthy();
    await waitForNormal(c);
    const client = await CtdbClient.connect(c.node(0).socket);
    try {
      const leader = Number((await c.ctdb(0, ['leader'])).stdout.trim());
      const volId = await attach(c, client, ['attach', VOLATILE]);
      const persId = await attach(c, client, ['attach', PERSISTENT, 'persistent']);
      const perNode: SeedRecord[][] = NODES.map(() => []);
      const winners = new Map<string, string>();
      for (let i = 0; i < COUNT; i++) {
        const copies = mergeCase(i, leader);
        copies.forEach((copy, pnn) => copy !== null && perNode[pnn].push(copy));
        const winner = expectedWinner(copies.map((copy, pnn) => storedCopy(copy, pnn)), leader);
        if (winner !== null) winners.set(winner.key, winner.value as string);
      }
      // Persistent: node 1 has the highest sequence number, node 2 extra keys that must vanish.
      const persistent = (pnn: number, seqnum: bigint, count: number): SeedRecord[] => [
        seqnumRecord(seqnum),
        ...Array.from({ length: count }, (_, i) => ({ key: `p-${i}`, rsn: 1n, dmaster: pnn, value: `p${i}-from-${pnn}`, flags: 0 })),
      ];
      await Promise.all(NODES.map((pnn) => seedNode(client, pnn, volId, perNode[pnn])));
      await Promise.all([seedNode(client, 0, persId, persistent(0, 5n, COUNT)), seedNode(client, 1, persId, persistent(1, 9n, COUNT)), seedNode(client, 2, persId, persistent(2, 7n, COUNT + 500))]);

      const before = (await client.call(0, ControlCode.GETVNNMAP, undefined)).reply.generation;
      const recovered = await c.ctdb(0, ['recover'], { timeoutMs: 120_000 });
      expect(recovered.code, recovered.stderr).toBe(0);
      await waitForNormal(c);
      const generations = await Promise.all(NODES.map(async (pnn) => (await client.call(pnn, ControlCode.GETVNNMAP, undefined)).reply.generation));
      expect(generations.every((g) => g !== before && g === generations[0])).toBe(true);

      for (const pnn of NODES) {
        const vol = await localRecords(c, pnn, VOLATILE);
        expect(vol.size, `node ${pnn}`).toBe(winners.size);
        const wrong = [...winners].filter(([key, value]) => {
          const got = vol.get(key);
          return got?.value !== value || got.dmaster !== leader || (got.flags & LtdbFlag.MIGRATED_WITH_DATA) === 0;
        });
        expect(wrong.slice(0, 5), `node ${pnn}: ${wrong.length} keys without their winner`).toEqual([]);
        const pers = await localRecords(c, pnn, PERSISTENT);
        expect(pers.size, `node ${pnn}`).toBe(COUNT + 1);
        const stale = [...pers].filter(([key, r]) => key.startsWith('p-') && r.value !== `p${key.slice(2)}-from-1`);
        expect(stale.slice(0, 5), `node ${pnn}`).toEqual([]);
      }
      const seqnums = await Promise.all(NODES.map(async (pnn) => (await client.call(pnn, ControlCode.GET_DB_SEQNUM, persId)).reply));
      expect(seqnums).toEqual([9n, 9n, 9n]);
    } finally {
      client.close();
    }
  }, 300_000);
});
