// Recovery of our daemons' databases: records with different RSNs on each node of our 3-node
// cluster, `ctdb recover`, and every node ends with the winner of each key (the leader's
// pipeline pulls, merges and pushes through our freeze/transaction/pull/push controls).
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, LtdbFlag } from '../../src/protocol';
import { TdbFile } from '../../src/store';
import { useTestCluster } from '../harness/cluster';
import { localRecords, seedNode, seqnumRecord, waitForNormal, type SeedRecord } from '../recovery/helpers';

const NODES = [0, 1, 2];

describe('ctdb recover on three nodes of ours', () => {
  const cluster = useTestCluster({ nodes: 3, impl: 'ours' });
  let client: CtdbClient;

  beforeAll(async () => {
    await cluster().waitUntilHealthy();
    await waitForNormal(cluster());
    client = await CtdbClient.connect(cluster().node(0).socket);
  }, 120_000);
  afterAll(() => client?.close());

  async function attach(name: string, persistent: boolean): Promise<number> {
    const r = await cluster().ctdb(0, persistent ? ['attach', name, 'persistent'] : ['attach', name]);
    expect(r.code, r.stderr).toBe(0);
    const dbmap = await client.call(0, ControlCode.GET_DBMAP, undefined);
    for (const db of dbmap.reply) if ((await client.call(0, ControlCode.GET_DBNAME, db.dbId)).reply === name) return db.dbId;
    throw new Error(`${name} not attached`);
  }

  it('the highest RSN wins on every node; the persistent copy with the highest seqnum wins whole', async () => {
    const volId = await attach('recover_vol.tdb', false);
    const persId = await attach('recover_pers.tdb', true);
    const COUNT = 300;
    const copy = (i: number, pnn: number, rsn: number, deleted = false): SeedRecord => ({
      key: `k${i}`,
      rsn: BigInt(rsn),
      dmaster: pnn,
      value: deleted ? null : `v${i}-node${pnn}-rsn${rsn}`,
    });
    const perNode: SeedRecord[][] = NODES.map(() => []);
    const winners = new Map<string, string | null>();
    for (let i = 0; i < COUNT; i++) {
      // The winner moves around the nodes; every third key is deleted by its winner.
      const best = i % 3;
      const deleted = i % 7 === 0;
      for (const pnn of NODES) perNode[pnn].push(copy(i, pnn, pnn === best ? 100 + i : 10 + pnn, pnn === best && deleted));
      winners.set(`k${i}`, deleted ? null : `v${i}-node${best}-rsn${100 + i}`);
    }
    await Promise.all(NODES.map((pnn) => seedNode(client, pnn, volId, perNode[pnn])));
    const persistent = (pnn: number, seqnum: bigint, extra: number): SeedRecord[] => [
      seqnumRecord(seqnum),
      ...Array.from({ length: 50 + extra }, (_, i) => ({ key: `p${i}`, rsn: 1n, dmaster: pnn, value: `p${i}-from-${pnn}`, flags: 0 })),
    ];
    await seedNode(client, 0, persId, persistent(0, 3n, 0));
    await seedNode(client, 1, persId, persistent(1, 8n, 0));
    await seedNode(client, 2, persId, persistent(2, 5n, 20));

    const started = performance.now();
    const r = await cluster().ctdb(0, ['recover'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    await waitForNormal(cluster());
    const recoverMs = performance.now() - started;
    const leader = Number((await cluster().ctdb(0, ['leader'])).stdout.trim());

    const expectedLive = [...winners].filter(([, v]) => v !== null);
    for (const pnn of NODES) {
      const vol = await localRecords(cluster(), pnn, 'recover_vol.tdb');
      expect(vol.size, `node ${pnn}`).toBe(expectedLive.length);
      for (const [key, value] of expectedLive) {
        const got = vol.get(key);
        expect(got?.value, `node ${pnn} ${key}`).toBe(value);
        expect(got?.dmaster).toBe(leader);
        expect((got?.flags ?? 0) & LtdbFlag.MIGRATED_WITH_DATA).toBe(LtdbFlag.MIGRATED_WITH_DATA);
      }
      const pers = await localRecords(cluster(), pnn, 'recover_pers.tdb');
      expect(pers.size, `node ${pnn}`).toBe(51);
      expect(pers.get('p7')?.value).toBe('p7-from-1');
      expect(pers.has('p60')).toBe(false);
    }
    const seqnums = await Promise.all(NODES.map((pnn) => client.call(pnn, ControlCode.GET_DB_SEQNUM, persId)));
    expect(seqnums.map((s) => s.reply)).toEqual([8n, 8n, 8n]);
    console.log(`ctdb recover of ${COUNT} volatile + 51 persistent records on 3 nodes of ours: ${recoverMs.toFixed(0)} ms until NORMAL`);
  }, 180_000);

  it('a restarted node attaches its persistent files at start and gets the volatile database back from the recovery', async () => {
    const before = await localRecords(cluster(), 0, 'recover_vol.tdb');
    await cluster().stopNode(2);
    await cluster().startNode(2);
    await cluster().waitUntilHealthy();
    await waitForNormal(cluster());
    const dbmap = await cluster().ctdb(2, ['getdbmap']);
    expect(dbmap.stdout).toMatch(/name:recover_pers\.tdb .*PERSISTENT/);
    expect(dbmap.stdout).toMatch(/name:recover_vol\.tdb /);
    expect((await localRecords(cluster(), 2, 'recover_pers.tdb')).get('p7')?.value).toBe('p7-from-1');
    const vol = await localRecords(cluster(), 2, 'recover_vol.tdb');
    expect([...vol].map(([k, r]) => [k, r.value]).sort()).toEqual([...before].map(([k, r]) => [k, r.value]).sort());
  }, 180_000);

  it('DB_DIGEST hashes a large database in slices: the daemon answers other controls meanwhile, and the digest is the whole file\'s', async () => {
    const persId = await attach('digest_big.tdb', true);
    const value = (i: number): string => `value-${i}-${'x'.repeat(100)}`;
    await seedNode(client, 0, persId, [seqnumRecord(2n), ...Array.from({ length: 20_000 }, (_, i) => ({ key: `big${i}`, rsn: 1n, dmaster: 0, value: value(i), flags: 0 }))]);
    const answered: string[] = [];
    await client.call(0, ControlCode.DB_FREEZE, persId);
    let digest;
    try {
      const digesting = client.call(0, ControlCode.DB_DIGEST, persId).then(({ reply }) => (answered.push('DB_DIGEST'), reply));
      const recmode = client.control(0, ControlCode.GET_RECMODE, Buffer.alloc(0)).then(() => answered.push('GET_RECMODE'));
      [digest] = await Promise.all([digesting, recmode]);
    } finally {
      await client.call(0, ControlCode.DB_THAW, persId);
    }
    expect(answered).toEqual(['GET_RECMODE', 'DB_DIGEST']);
    const { reply: path } = await client.call(0, ControlCode.GETDBPATH, persId);
    if (path === null) expect.fail('no path for digest_big.tdb');
    const file = TdbFile.open(path, { access: 'r' });
    try {
      expect(digest).toEqual(file.digestRecData(24, LtdbFlag.RO_FLAGS));
    } finally {
      file.close();
    }
    expect(digest.records).toBe(20_001);
  }, 180_000);

  it('a persistent database every node holds alike is neither pulled nor pushed; a node that differs is', async () => {
    const name = 'digest_pers.tdb';
    const persId = await attach(name, true);
    const records = (changed: string): SeedRecord[] => [
      seqnumRecord(4n),
      ...Array.from({ length: 200 }, (_, i) => ({ key: `d${i}`, rsn: 1n, dmaster: 0, value: i === 17 ? changed : `value-${i}`, flags: 0 })),
    ];
    await Promise.all(NODES.map((pnn) => seedNode(client, pnn, persId, records('value-17'))));
    const digests = async () => {
      await Promise.all(NODES.map((pnn) => client.call(pnn, ControlCode.DB_FREEZE, persId)));
      try {
        return await Promise.all(NODES.map(async (pnn) => (await client.call(pnn, ControlCode.DB_DIGEST, persId)).reply));
      } finally {
        await Promise.all(NODES.map((pnn) => client.call(pnn, ControlCode.DB_THAW, persId)));
      }
    };
    await expect(client.call(0, ControlCode.DB_DIGEST, persId)).rejects.toThrow(/DB_DIGEST failed .*frozen/);
    const alike = await digests();
    expect(alike.map((d) => [d.records, d.unusual])).toEqual(NODES.map(() => [201, 0]));
    for (const d of alike) expect(d.digest).toEqual(alike[0].digest);

    const recovered = async (): Promise<string> => {
      const logs = NODES.map((pnn) => fs.readFileSync(cluster().node(pnn).paths.log, 'utf8').length);
      expect((await cluster().ctdb(0, ['recover'], { timeoutMs: 60_000 })).code).toBe(0);
      await waitForNormal(cluster());
      const line = NODES.flatMap((pnn) => fs.readFileSync(cluster().node(pnn).paths.log, 'utf8').slice(logs[pnn]).split('\n')).find((l) => l.includes(`Recovered database ${name}:`));
      return /\((\d+ nodes pulled, \d+ pushed, \d+ nodes wiped)\)/.exec(line ?? '')?.[1] ?? `no line in ${line}`;
    };
    expect(await recovered()).toBe('0 nodes pulled, 0 pushed, 0 nodes wiped');

    // Node 2's copy changes one value (same seqnum: node 0, the first, is the source).
    await seedNode(client, 2, persId, records('changed'), { wipe: true });
    const differing = await digests();
    expect(differing[2].digest).not.toEqual(differing[0].digest);
    expect(differing[1].digest).toEqual(differing[0].digest);
    expect(await recovered()).toBe('2 nodes pulled, 1 pushed, 0 nodes wiped');
    for (const pnn of NODES) expect((await localRecords(cluster(), pnn, name)).get('d17')?.value).toBe('value-17');
  }, 180_000);
});

describe('ctdb recover of records written with tstore (fcntl-locked volatile files)', () => {
  // tstore opens files without TDB_MUTEX_LOCKING: without tdb mutexes it can write volatile files.
  const cluster = useTestCluster({ nodes: 3, impl: 'ours', config: '[database]\n\ttdb mutexes = false\n' });

  it('the copy with the highest RSN wins on every node', async () => {
    const c = cluster();
    await c.waitUntilHealthy();
    await waitForNormal(c);
    expect((await c.ctdb(0, ['attach', 'tstored.tdb'])).code).toBe(0);
    const copies: [number, string, string][] = [
      [0, '5', 'from-node0'],
      [1, '9', 'from-node1'],
      [2, '7', 'from-node2'],
    ];
    for (const [pnn, rsn, value] of copies) {
      const status = await c.ctdb(pnn, ['getdbstatus', 'tstored.tdb']);
      const file = /^path: (.+)$/m.exec(status.stdout)?.[1] ?? '';
      for (const [key, v] of [['shared', value], [`only-${pnn}`, value]]) {
        const r = await c.ctdb(pnn, ['tstore', file, key, v, rsn, String(pnn)]);
        expect(r.code, r.stderr).toBe(0);
      }
    }
    expect((await c.ctdb(0, ['recover'], { timeoutMs: 60_000 })).code).toBe(0);
    await waitForNormal(c);
    const leader = Number((await c.ctdb(0, ['leader'])).stdout.trim());
    for (const pnn of NODES) {
      const records = await localRecords(c, pnn, 'tstored.tdb');
      expect(records.get('shared'), `node ${pnn}`).toMatchObject({ value: 'from-node1', dmaster: leader });
      for (const [owner] of copies) expect(records.get(`only-${owner}`)?.value).toBe(`from-node${owner}`);
    }
  }, 180_000);
});
