// The recovery pipeline as the recovery helper of a 3-node cluster of real Debian ctdbds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LtdbFlag } from '../../src/protocol';
import { RecoveryPipeline, type RecoverDbResult } from '../../src/recovery/pipeline';
import { useTestCluster } from '../harness/cluster';
import { RecoveryDriver, localRecords, recoveryModes, seedNode, seqnumRecord, waitForNormal, type SeedRecord } from './helpers';
import { expectedWinner, mergeCase, storedCopy } from './merge-cases';

const NODES = [0, 1, 2];
const cluster = useTestCluster({ nodes: 3, impl: 'real' });
let driver: RecoveryDriver;

beforeAll(async () => {
  await cluster().waitUntilHealthy();
  await waitForNormal(cluster());
  driver = await RecoveryDriver.start(cluster());
}, 120_000);
afterAll(() => driver?.close());

describe('recovery of real ctdbd databases', () => {
  it('merges 10k volatile records by RSN and takes a 10k persistent database from the highest seqnum', async () => {
    const volId = await driver.attach('rec_vol.tdb');
    const persId = await driver.attach('rec_pers.tdb', 'persistent');
    const COUNT = 10_000;
    const perNode: SeedRecord[][] = NODES.map(() => []);
    const expected = new Map<string, SeedRecord>();
    for (let i = 0; i < COUNT; i++) {
      const copies = mergeCase(i, driver.via);
      copies.forEach((c, pnn) => c && perNode[pnn].push(c));
      const winner = expectedWinner(copies.map(storedCopy), driver.via);
      if (winner !== null) expected.set(winner.key, winner);
    }
    // Persistent: node 1 has the highest sequence number, node 2 extra keys that must vanish.
    const persistent = (pnn: number, seqnum: bigint, count: number): SeedRecord[] => [
      seqnumRecord(seqnum),
      ...Array.from({ length: count }, (_, i) => ({ key: `p-${i}`, rsn: BigInt(pnn + 1), dmaster: pnn, value: `p${i}-from-${pnn}`, flags: 0 })),
    ];
    await Promise.all(NODES.map((pnn) => seedNode(driver.client, pnn, volId, perNode[pnn])));
    await seedNode(driver.client, 0, persId, persistent(0, 5n, COUNT));
    await seedNode(driver.client, 1, persId, persistent(1, 9n, COUNT));
    await seedNode(driver.client, 2, persId, persistent(2, 7n, COUNT + 500));

    const result = await driver.recover();
    expect(result.error).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(await recoveryModes(cluster())).toEqual([0, 0, 0]);
    const vol = result.report?.results.find((r) => r.name === 'rec_vol.tdb');
    expect(vol?.records).toBe(expected.size);
    // Within the default memory budget: merged in memory.
    expect(vol?.spilled).toBe(false);

    for (const pnn of NODES) {
      const records = await localRecords(cluster(), pnn, 'rec_vol.tdb');
      expect(records.size).toBe(expected.size);
      for (const [key, winner] of expected) {
        const got = records.get(key);
        expect(got?.value, `node ${pnn} ${key}`).toBe(winner.value);
        expect(got?.dmaster).toBe(driver.via);
        expect(got?.flags ?? 0).toBe(LtdbFlag.MIGRATED_WITH_DATA);
        expect(got?.rsn).toBe(storedCopy({ ...winner, dmaster: driver.via }, pnn)?.rsn);
      }
      const pers = await localRecords(cluster(), pnn, 'rec_pers.tdb');
      expect(pers.size).toBe(COUNT + 1);
      expect(pers.get('p-17')).toEqual({ rsn: 2n, dmaster: 1, flags: 0, value: 'p17-from-1' });
      expect(pers.has(`p-${COUNT + 10}`)).toBe(false);
    }
    const { stdout } = await cluster().ctdb(2, ['pfetch', 'rec_pers.tdb', 'p-9999']);
    expect(stdout.trim()).toBe('p9999-from-1');
  }, 180_000);

  it('gives the same result as the real ctdb_recovery_helper on records written with the tool', async () => {
    // The real helper runs on the leader and makes it dmaster: recover through the same node.
    const leader = Number((await cluster().ctdb(0, ['leader'])).stdout.trim());
    const viaLeader = await RecoveryDriver.start(cluster(), { via: leader });
    try {
      const scenario = async (db: string): Promise<void> => {
        await viaLeader.attach(db);
        await viaLeader.attach(`${db}.p`, 'persistent');
        const steps: [number, string[]][] = [
          [0, ['writekey', db, 'k1', 'first']],
          [1, ['writekey', db, 'k1', 'second']],
          [2, ['writekey', db, 'k2', 'doomed']],
          [1, ['deletekey', db, 'k2']],
          [2, ['writekey', db, 'k3', 'a']],
          [0, ['writekey', db, 'k3', 'b']],
          [2, ['writekey', db, 'k3', 'c']],
          [1, ['pstore', `${db}.p`, 'pk', 'pv']],
          [2, ['pdelete', `${db}.p`, 'pk']],
          [0, ['pstore', `${db}.p`, 'pk2', 'pv2']],
        ];
        for (const [pnn, args] of steps) expect((await cluster().ctdb(pnn, args)).code, args.join(' ')).toBe(0);
      };
      // RSNs relative to the lowest copy of each key: the real recovery master may have run an
      // extra recovery of its own (each one bumps every RSN), which changes nothing else.
      const snapshot = async (db: string) => {
        const nodes = await Promise.all(NODES.map((pnn) => localRecords(cluster(), pnn, db)));
        const lowest = (key: string): bigint => nodes.reduce((min, n) => { const rsn = n.get(key)?.rsn ?? min; return rsn < min ? rsn : min; }, 2n ** 64n);
        return nodes.map((n) => [...n].map(([key, r]) => [key, { ...r, rsn: r.rsn - lowest(key) }]).sort());
      };

      // The real helper first, on its own database …
      await scenario('cmp_real.tdb');
      await viaLeader.setRealRecoveries(0);
      expect((await cluster().ctdb(0, ['recover'], { timeoutMs: 60_000 })).code).toBe(0);
      await waitForNormal(cluster());
      const real = await snapshot('cmp_real.tdb');
      const realPersistent = await snapshot('cmp_real.tdb.p');
      // … then ours on an identical one.
      await viaLeader.setRealRecoveries(600);
      await scenario('cmp_ours.tdb');
      const result = await viaLeader.recover();
      expect(result.ok).toBe(true);
      expect(await snapshot('cmp_ours.tdb')).toEqual(real);
      expect(await snapshot('cmp_ours.tdb.p')).toEqual(realPersistent);
      expect(real[0].map(([key]) => key)).toEqual(['k1', 'k3']);
    } finally {
      await viaLeader.close();
    }
  }, 180_000);

  it('recovers several databases concurrently and reports each one', async () => {
    const DBS = 6;
    const PER_DB = 15_000;
    /** DBS databases of PER_DB records spread over the nodes, none recovered yet. */
    const seedSet = async (prefix: string): Promise<string[]> => {
      const names = Array.from({ length: DBS }, (_, i) => `${prefix}_${i}.tdb`);
      for (const name of names) {
        const dbId = await driver.attach(name);
        const records = Array.from({ length: PER_DB }, (_, i) => ({ key: `r${i}`, rsn: 2n, dmaster: i % 3, value: `value-${i}-`.padEnd(100, 'x') }));
        await Promise.all(NODES.map((pnn) => seedNode(driver.client, pnn, dbId, records.filter((_, i) => i % 3 === pnn))));
      }
      return names;
    };
    const oneByOne = new RecoveryPipeline({ threads: 1, concurrentTasksPerWorker: 1 });
    try {
      // Both pools ready before anything is timed; each recovers a fresh set of its own.
      driver.pipeline.start();
      oneByOne.start();
      const parallelSet = await seedSet('par');
      const sequentialSet = await seedSet('seq');
      const finished: { result: RecoverDbResult; at: number }[] = [];
      const parallel = await driver.pipeline.recoverDatabases(await driver.tasksFor(parallelSet, 60_000), {
        onProgress: (r) => finished.push({ result: r, at: performance.now() }),
      });
      expect(parallel.ok).toBe(true);
      expect(finished.map((f) => f.result.name).sort()).toEqual([...parallelSet].sort());
      for (const f of finished) {
        expect(f.result.records).toBe(PER_DB);
        // Every node lacks two thirds of the records; the recovery master's own third is
        // already stored as the push would store it (mastered by it, MIGRATED_WITH_DATA).
        expect(f.result.pushedRecords).toBe(3 * PER_DB - PER_DB / 3);
        expect(Object.keys(f.result.phaseMs ?? {})).toEqual(['freeze', 'transactionStart', 'collect', 'wipe', 'push', 'commit', 'thaw']);
      }
      // Concurrency: every database started before the first one finished.
      const intervals = finished.map((f) => ({ start: f.at - f.result.durationMs, end: f.at }));
      const lastStart = Math.max(...intervals.map((i) => i.start));
      const firstEnd = Math.min(...intervals.map((i) => i.end));
      const sum = finished.reduce((total, f) => total + f.result.durationMs, 0);
      expect(lastStart).toBeLessThan(firstEnd);
      expect(parallel.durationMs).toBeLessThan(sum * 0.6);
      // The same work one database after the other.
      const sequential = await oneByOne.recoverDatabases(await driver.tasksFor(sequentialSet, 60_000));
      expect(sequential.ok).toBe(true);
      console.log(`parallel recovery: ${DBS} × ${PER_DB} records, wall ${parallel.durationMs.toFixed(0)} ms (sum of per-database times ${sum.toFixed(0)} ms); one after the other ${sequential.durationMs.toFixed(0)} ms`);
      // Each database's own steps overlap (above); the whole is bound by the daemons' and our
      // CPU time, which concurrency does not shrink on 2 shared cores. Two wall times taken one
      // after the other on a shared machine differ by a third either way (857 vs 1144 ms seen):
      // this only catches databases that hold each other up; the speed is the benchmark's.
      expect(parallel.durationMs).toBeLessThan(sequential.durationMs * 2);
    } finally {
      await oneByOne.close();
    }
  }, 240_000);

  it('keeps the worker memory bounded while recovering 200k records beyond its memory budget', async () => {
    const value = 'x'.repeat(100);
    // A 4 MiB budget: both databases outgrow it and are merged in LMDB.
    const lowBudget = new RecoveryPipeline({ memoryBudgetBytes: 4 * 2 ** 20 });
    /** Seeds `count` keys (each on two nodes, so the merge really compares) and recovers. */
    const recoverSized = async (name: string, count: number) => {
      const dbId = await driver.attach(name);
      await Promise.all(
        NODES.map((pnn) =>
          seedNode(
            driver.client,
            pnn,
            dbId,
            Array.from({ length: count }, (_, i) => i)
              .filter((i) => i % 3 !== pnn)
              .map((i) => ({ key: `big-${i}`, rsn: BigInt(1 + ((i + pnn) % 3)), dmaster: pnn, value })),
          ),
        ),
      );
      const result = await driver.recover({}, lowBudget);
      expect(result.ok).toBe(true);
      const db = result.report?.results.find((r) => r.name === name);
      expect(db?.records).toBe(count);
      expect(db?.spilled).toBe(true);
      const pulledMiB = (2 * count * (16 + 10 + 24 + value.length)) / 2 ** 20;
      const peakMiB = (db?.peakMemoryBytes ?? 0) / 2 ** 20;
      console.log(`${count} records: ${db?.durationMs.toFixed(0)} ms, phases ${JSON.stringify(db?.phaseMs)} (merging ${db?.stagingMs?.toFixed(0)} ms), peak worker memory ${peakMiB.toFixed(1)} MiB for ${pulledMiB.toFixed(1)} MiB pulled`);
      return { pulledMiB, peakMiB };
    };
    let small, big;
    try {
      small = await recoverSized('small.tdb', 40_000);
      big = await recoverSized('big.tdb', 200_000);
    } finally {
      await lowBudget.close();
    }
    // Five times the data, but the worker's memory (heap + Buffers, garbage included) grows by
    // less than the extra data: records live in the staging files, not in memory. (Alone this
    // run grows by ~8 MiB for 46 MiB more data; next to other test files, garbage is collected
    // later and it has reached 26 MiB.)
    expect(big.peakMiB - small.peakMiB).toBeLessThan(big.pulledMiB - small.pulledMiB);
    expect(big.peakMiB).toBeLessThan(128);
    const { stdout } = await cluster().ctdb(1, ['cattdb', 'big.tdb'], { timeoutMs: 120_000 });
    expect(stdout).toContain('Dumped 200000 record(s)');
  }, 300_000);
});
