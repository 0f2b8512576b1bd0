// Vacuuming on 3 nodes, ours and the real ctdbd in the same scenario: records written on one
// node, overwritten on another (so they migrate with data), emptied on a third and scheduled for
// deletion as smbd does it disappear from every node's file; live records stay; records written
// again while vacuuming runs keep their new value; a process holding the file's locks delays
// vacuuming without stalling the daemon; a recovery in the middle loses nothing. Then the
// controls' edges; and the engine alone against a faked cluster.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/common/logging';
import { fetchRecordHere, updateRecord } from '../../src/client/fetch-lock';
import { ControlCode, ControlFlag, LtdbFlag, Pnn, decodeControlReply, encodeControlRequest } from '../../src/protocol';
import type { LtdbHeader, RecBuffer } from '../../src/protocol';
import type { ClusterDatabase } from '../../src/database/database';
import { DatabaseRegistry } from '../../src/database/registry';
import { Vacuuming } from '../../src/database/vacuum';
import { lmasterOf } from '../../src/database/lmaster';
import { buildLtdbRecord, parseLtdbRecord, storeLtdbRecord } from '../../src/store';
import { useTestCluster } from '../harness/cluster';
import { holdAllRecordLock } from './lock-holder';
import { useNodeViews } from './node-views';
import type { NodeView } from './node-views';

const EMPTY = Buffer.alloc(0);
const TUNABLES = { VacuumInterval: 1, VacuumFastPathCount: 2 };
const SETTLE_MS = 30_000;

function write(view: NodeView, dbId: number, key: Buffer, value: string): Promise<unknown> {
  return updateRecord(view.client, view.file, dbId, key, () => Buffer.from(value));
}

/** What smbd's delete does: store the bare header under the lock, then SCHEDULE_FOR_DELETION (NOREPLY, srvid = db id). */
async function remove(view: NodeView, dbId: number, key: Buffer): Promise<void> {
  const { header } = await updateRecord(view.client, view.file, dbId, key, () => EMPTY);
  const data = encodeControlRequest(ControlCode.SCHEDULE_FOR_DELETION, { dbId, header, key });
  await view.client.control(Pnn.CURRENT_NODE, ControlCode.SCHEDULE_FOR_DELETION, data, { srvid: BigInt(dbId), flags: ControlFlag.NOREPLY });
}

/** Keys still present in some node's file, as "pnn:key". */
function present(views: NodeView[], keys: Buffer[]): string[] {
  return views.flatMap((view, pnn) => keys.filter((key) => view.file.exists(key)).map((key) => `${pnn}:${key.toString()}`));
}

async function until(what: string, done: () => boolean): Promise<number> {
  const started = Date.now();
  while (!done()) {
    if (Date.now() - started > SETTLE_MS) throw new Error(`not within ${SETTLE_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return Date.now() - started;
}

const keys = (prefix: string, n: number): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.from(`${prefix}-${i}`));

describe.each(['ours', 'real'] as const)('vacuuming on 3 nodes (%s)', (impl) => {
  const cluster = useTestCluster({ nodes: 3, impl, tunables: TUNABLES });
  const opened = useNodeViews(cluster, 'vacuum.tdb');
  let dbId: number;
  let views: NodeView[] = [];
  beforeEach(() => {
    ({ dbId, views } = opened());
  });

  it('emptied records vanish from every node, live ones stay', async () => {
    // Written on one node, overwritten on the next (migrated with data), emptied on the third.
    const local = keys('local', 100);
    const travelled = keys('travelled', 150);
    const live = keys('live', 60);
    for (const [i, key] of local.entries()) await write(views[i % 3], dbId, key, `v${i}`);
    for (const [i, key] of [...travelled, ...live].entries()) {
      await write(views[i % 3], dbId, key, `first ${i}`);
      await write(views[(i + 1) % 3], dbId, key, `second ${i}`);
    }
    for (const [i, key] of local.entries()) await remove(views[i % 3], dbId, key);
    for (const [i, key] of travelled.entries()) await remove(views[(i + 2) % 3], dbId, key);

    const ms = await until('emptied records deleted everywhere', () => present(views, [...local, ...travelled]).length === 0);
    for (const [i, key] of live.entries()) {
      const record = await fetchRecordHere(views[i % 3].client, views[i % 3].file, dbId, key);
      expect(record.data.toString()).toBe(`second ${i + travelled.length}`);
    }
    // Every node counts its runs in `ctdb dbstatistics`.
    for (const pnn of [0, 1, 2]) {
      const stats = await cluster().ctdb(pnn, ['dbstatistics', 'vacuum.tdb']);
      expect(Number(/vacuum_latency\s+MIN\/AVG\/MAX\s+\S+ sec out of (\d+)/.exec(stats.stdout)?.[1])).toBeGreaterThan(0);
    }
    console.log(`vacuuming (${impl}): ${local.length + travelled.length} emptied records gone from 3 nodes after ${ms} ms`);
  }, 120_000);

  it('a record written again while vacuuming runs keeps its new value', async () => {
    const revived = keys('revived', 120);
    for (const [i, key] of revived.entries()) {
      await write(views[i % 3], dbId, key, `old ${i}`);
      await write(views[(i + 1) % 3], dbId, key, `older ${i}`);
    }
    // Emptied and scheduled, then (over a few vacuum intervals) written again on yet another node.
    for (const [i, key] of revived.entries()) await remove(views[(i + 2) % 3], dbId, key);
    for (const [i, key] of revived.entries()) {
      if (i % 2 === 0) await write(views[i % 3], dbId, key, `new ${i}`);
      if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const gone = revived.filter((_, i) => i % 2 === 1);
    await until('emptied records deleted everywhere', () => present(views, gone).length === 0);
    // Several more runs, full ones included, must not touch the revived records.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const [i, key] of revived.entries()) {
      if (i % 2 === 1) continue;
      const record = await fetchRecordHere(views[(i + 1) % 3].client, views[(i + 1) % 3].file, dbId, key);
      expect(record.data.toString()).toBe(`new ${i}`);
    }
  }, 120_000);

  it('ctdb writekey then deletekey: the record is vacuumed away from every node', async () => {
    const key = Buffer.from('tool-key');
    expect((await cluster().ctdb(1, ['writekey', 'vacuum.tdb', 'tool-key', 'tool value'])).code).toBe(0);
    expect((await cluster().ctdb(2, ['readkey', 'vacuum.tdb', 'tool-key'])).stdout).toBe('Data: size:10 ptr:[tool value]\n');
    expect((await cluster().ctdb(0, ['deletekey', 'vacuum.tdb', 'tool-key'])).code).toBe(0);
    await until('the deleted key gone everywhere', () => present(views, [key]).length === 0);
  }, 60_000);

  it('a record emptied without SCHEDULE_FOR_DELETION is found by the full scan', async () => {
    const key = Buffer.from('unscheduled');
    await write(views[1], dbId, key, 'value');
    await updateRecord(views[1].client, views[1].file, dbId, key, () => EMPTY);
    await until('the emptied record deleted everywhere', () => present(views, [key]).length === 0);
  }, 60_000);

  it('a process holding the all-record lock delays vacuuming but never stalls the daemon', async () => {
    const held = keys('held', 40);
    for (const key of held) {
      await write(views[0], dbId, key, 'x');
      await remove(views[0], dbId, key);
    }
    const path = (await views[0].client.call(Pnn.CURRENT_NODE, ControlCode.GETDBPATH, dbId)).reply;
    const flags = (await views[0].client.call(Pnn.CURRENT_NODE, ControlCode.DB_OPEN_FLAGS, dbId)).reply;
    const holder = await holdAllRecordLock(path ?? '', flags);
    let slowestPingMs = 0;
    try {
      // Several vacuum runs (full ones included) come and go meanwhile; node 0 answers throughout.
      const deadline = Date.now() + 4000;
      while (Date.now() < deadline) {
        const t0 = performance.now();
        await views[0].client.call(Pnn.CURRENT_NODE, ControlCode.PING, undefined);
        slowestPingMs = Math.max(slowestPingMs, performance.now() - t0);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await holder.release();
    }
    expect(slowestPingMs).toBeLessThan(1000);
    await until('the records deleted once the lock is gone', () => present(views, held).length === 0);
    console.log(`vacuuming (${impl}) against a held all-record lock: slowest ping ${slowestPingMs.toFixed(1)} ms`);
  }, 60_000);

  it('a recovery in the middle of vacuuming loses no live record and keeps no emptied one', async () => {
    const emptied = keys('recovered', 150);
    const live = keys('survivor', 30);
    for (const [i, key] of [...emptied, ...live].entries()) await write(views[i % 3], dbId, key, `value ${i}`);
    for (const [i, key] of emptied.entries()) await remove(views[(i + 1) % 3], dbId, key);
    const recover = await cluster().ctdb(0, ['recover'], { timeoutMs: 60_000 });
    expect(recover.code).toBe(0);
    await until('emptied records deleted everywhere', () => present(views, emptied).length === 0);
    for (const [i, key] of live.entries()) {
      const record = await fetchRecordHere(views[i % 3].client, views[i % 3].file, dbId, key);
      expect(record.data.toString()).toBe(`value ${i + emptied.length}`);
    }
  }, 120_000);

  it('TRY_DELETE_RECORDS deletes stale copies and returns the ones it must keep', async () => {
    // Node 1's own copies, written straight into its file (with data, so its own vacuuming leaves them alone).
    const vnnMap = (await views[1].client.call(Pnn.CURRENT_NODE, ControlCode.GETVNNMAP, undefined)).reply;
    const notOwnLmaster = (name: string): Buffer => {
      for (let i = 0; ; i++) {
        const key = Buffer.from(`${name}-${i}`);
        if (lmasterOf(vnnMap, key) !== 1) return key;
      }
    };
    const lmasterKey = (() => {
      for (let i = 0; ; i++) {
        const key = Buffer.from(`td-lmaster-${i}`);
        if (lmasterOf(vnnMap, key) === 1) return key;
      }
    })();
    const header = (rsn: bigint, dmaster: number, flags = 0): LtdbHeader => ({ rsn, dmaster, reserved1: 0, flags });
    const cases: { key: Buffer; local: LtdbHeader | null; sent: Buffer; kept: boolean }[] = [
      { key: notOwnLmaster('td-missing'), local: null, sent: buildLtdbRecord(header(5n, 0)), kept: false },
      { key: notOwnLmaster('td-older'), local: header(3n, 0), sent: buildLtdbRecord(header(5n, 0)), kept: false },
      { key: notOwnLmaster('td-same'), local: header(5n, 2), sent: buildLtdbRecord(header(5n, 0)), kept: false },
      { key: notOwnLmaster('td-newer'), local: header(9n, 0), sent: buildLtdbRecord(header(5n, 0)), kept: true },
      { key: notOwnLmaster('td-own'), local: header(1n, 1), sent: buildLtdbRecord(header(5n, 0)), kept: true },
      { key: notOwnLmaster('td-ro'), local: header(1n, 0, LtdbFlag.RO_HAVE_READONLY), sent: buildLtdbRecord(header(5n, 0)), kept: true },
      { key: notOwnLmaster('td-sent-ro'), local: header(1n, 0), sent: buildLtdbRecord(header(5n, 0, LtdbFlag.RO_HAVE_DELEGATIONS)), kept: true },
      { key: notOwnLmaster('td-size'), local: header(1n, 0), sent: buildLtdbRecord(header(5n, 0), Buffer.from('data')), kept: true },
      { key: lmasterKey, local: header(1n, 0), sent: buildLtdbRecord(header(5n, 0)), kept: true },
    ];
    for (const c of cases) if (c.local !== null) storeLtdbRecord(views[1].file, c.key, c.local, Buffer.from('stale'));
    const request = { dbId, records: cases.map((c) => ({ reqid: dbId, key: c.key, data: c.sent })) };
    const reply = await views[0].client.control(1, ControlCode.TRY_DELETE_RECORDS, encodeControlRequest(ControlCode.TRY_DELETE_RECORDS, request));
    expect(reply.status).toBe(0);
    const kept = decodeControlReply(ControlCode.TRY_DELETE_RECORDS, reply.data);
    expect(kept.dbId).toBe(dbId);
    expect(kept.records.map((r) => r.key.toString()).sort()).toEqual(cases.filter((c) => c.kept).map((c) => c.key.toString()).sort());
    for (const c of cases) expect(views[1].file.exists(c.key), c.key.toString()).toBe(c.kept && c.local !== null);
    // A record too short to hold a header fails the whole control.
    const bad = { dbId, records: [{ reqid: 0, key: Buffer.from('short'), data: Buffer.alloc(8) }] };
    expect((await views[0].client.control(1, ControlCode.TRY_DELETE_RECORDS, encodeControlRequest(ControlCode.TRY_DELETE_RECORDS, bad))).status).toBe(-1);
  }, 60_000);

  it('DB_VACUUM runs a vacuum now; unknown databases are refused', async () => {
    const c = views[0].client;
    const run = await c.control(Pnn.CURRENT_NODE, ControlCode.DB_VACUUM, encodeControlRequest(ControlCode.DB_VACUUM, { dbId, fullVacuumRun: true }));
    // Another run may be in progress (status -1, "vacuuming collision"); either way the daemon answers.
    expect([0, -1]).toContain(run.status);
    const unknown = 0x0badbeef;
    for (const [code, data] of [
      [ControlCode.DB_VACUUM, encodeControlRequest(ControlCode.DB_VACUUM, { dbId: unknown, fullVacuumRun: false })],
      [ControlCode.SCHEDULE_FOR_DELETION, encodeControlRequest(ControlCode.SCHEDULE_FOR_DELETION, { dbId: unknown, header: { rsn: 1n, dmaster: 0, reserved1: 0, flags: 0 }, key: Buffer.from('k') })],
      [ControlCode.VACUUM_FETCH, encodeControlRequest(ControlCode.VACUUM_FETCH, { dbId: unknown, records: [] })],
      [ControlCode.TRY_DELETE_RECORDS, encodeControlRequest(ControlCode.TRY_DELETE_RECORDS, { dbId: unknown, records: [] })],
      [ControlCode.TRY_DELETE_RECORDS, Buffer.alloc(3)],
    ] as const) {
      expect((await c.control(Pnn.CURRENT_NODE, code, data)).status, ControlCode[code]).toBe(-1);
    }
  }, 60_000);
});

// The engine alone, on a real database file, with the cluster faked: which records each run
// deletes, sends on or keeps, and how a run gives way to a freeze and to another run.
describe('vacuuming engine on one node of a faked 3-node cluster', () => {
  const PNN = 0;
  const vnnMap = { generation: 7, map: [0, 1, 2] };
  let dir: string;
  let registry: DatabaseRegistry;
  let db: ClusterDatabase;
  let engine: Vacuuming;
  let fetched: Map<number, string[]>;
  let tryDelete: (pnn: number, records: RecBuffer) => Promise<RecBuffer>;

  /** A key whose lmaster is `lmaster`. */
  function keyOf(name: string, lmaster: number): Buffer {
    for (let i = 0; ; i++) {
      const key = Buffer.from(`${name}-${i}`);
      if (lmasterOf(vnnMap, key) === lmaster) return key;
    }
  }

  function put(key: Buffer, header: Partial<LtdbHeader>, data = EMPTY): LtdbHeader {
    const full = { rsn: 3n, dmaster: PNN, reserved1: 0, flags: 0, ...header };
    storeLtdbRecord(db.file, key, full, data);
    return full;
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vacuum-engine-'));
    registry = new DatabaseRegistry({ pnn: PNN, volatileDir: dir, persistentDir: dir, mutexes: false, hashSize: () => 131 });
    db = registry.attach('unit.tdb', 0).db;
    fetched = new Map();
    tryDelete = async (_pnn, records) => ({ dbId: records.dbId, records: [] });
    const logger = { error() {}, warning() {}, notice() {}, info() {}, debug() {} } as unknown as Logger;
    engine = new Vacuuming({
      pnn: PNN,
      logger,
      databases: registry,
      vnnMap: () => vnnMap,
      recovering: () => false,
      shuttingDown: () => false,
      otherActiveNodes: () => [1, 2],
      tunables: () => ({ VacuumInterval: 3600, VacuumMaxRunTime: 120, VacuumFastPathCount: 60, RepackLimit: 10000 }),
      tryDeleteRecords: (pnn, records) => tryDelete(pnn, records),
      vacuumFetch: async (pnn, records) => void fetched.set(pnn, records.records.map((r) => r.key.toString())),
      callRecord: (_db, _call, done) => done({ error: 'no migrations in this test' }),
    });
  });
  afterEach(() => {
    engine.stop();
    registry.closeAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a fast run deletes, sends on to the lmaster or leaves each queued record as 4.17 does', async () => {
    const neverMigrated = keyOf('never-migrated', PNN);
    const otherLmaster = keyOf('other-lmaster', 2);
    const writtenAgain = keyOf('written-again', PNN);
    const refilled = keyOf('refilled', PNN);
    const migratedAway = keyOf('migrated-away', PNN);
    for (const key of [neverMigrated, otherLmaster, writtenAgain, refilled, migratedAway]) engine.schedule(db, key, put(key, {}));
    put(writtenAgain, { rsn: 4n });
    put(refilled, {}, Buffer.from('data'));
    put(migratedAway, { dmaster: 1 });
    expect(await engine.vacuumNow(db, false)).toBe(true);
    expect(db.file.exists(neverMigrated)).toBe(false);
    expect(fetched).toEqual(new Map([[2, [otherLmaster.toString()]]]));
    for (const key of [otherLmaster, writtenAgain, refilled, migratedAway]) expect(db.file.exists(key), key.toString()).toBe(true);
  });

  it('a record migrated with data is deleted only when every other node deleted its copy', async () => {
    const agreed = keyOf('agreed', PNN);
    const refused = keyOf('refused', PNN);
    for (const key of [agreed, refused]) engine.schedule(db, key, put(key, { flags: LtdbFlag.MIGRATED_WITH_DATA }));
    const asked: number[] = [];
    tryDelete = async (pnn, request) => {
      asked.push(pnn);
      expect(request.records.map((r) => parseLtdbRecord(r.data).header.rsn)).toEqual([3n, 3n]);
      return { dbId: request.dbId, records: pnn === 2 ? request.records.filter((r) => r.key.equals(refused)) : [] };
    };
    expect(await engine.vacuumNow(db, false)).toBe(true);
    expect(asked).toEqual([1, 2]);
    expect(db.file.exists(agreed)).toBe(false);
    expect(db.file.exists(refused)).toBe(true);
  });

  it('a full run finds empty records nobody scheduled; nothing is deleted while a node does not answer', async () => {
    const unscheduled = keyOf('unscheduled', PNN);
    const withData = keyOf('with-data', PNN);
    put(unscheduled, { flags: LtdbFlag.MIGRATED_WITH_DATA });
    put(withData, {}, Buffer.from('live'));
    tryDelete = async () => {
      throw new Error('node 1 is not answering');
    };
    expect(await engine.vacuumNow(db, true)).toBe(true);
    expect(db.file.exists(unscheduled)).toBe(true);
    // It stayed queued: the next (fast) run deletes it once the nodes answer.
    tryDelete = async (_pnn, records) => ({ dbId: records.dbId, records: [] });
    expect(await engine.vacuumNow(db, false)).toBe(true);
    expect(db.file.exists(unscheduled)).toBe(false);
    expect(db.file.exists(withData)).toBe(true);
  });

  it('a run gives way to a freeze, another run has to wait, and the record is deleted after the thaw', async () => {
    const key = keyOf('frozen', PNN);
    engine.schedule(db, key, put(key, { flags: LtdbFlag.MIGRATED_WITH_DATA }));
    let release!: () => void;
    const answered = new Promise<void>((resolve) => (release = resolve));
    tryDelete = async (_pnn, records) => {
      await answered;
      return { dbId: records.dbId, records: [] };
    };
    const run = engine.vacuumNow(db, false);
    expect(() => engine.vacuumNow(db, false)).toThrow(/in progress/);
    await db.freeze();
    release();
    expect(await run).toBe(false);
    expect(db.file.exists(key)).toBe(true);
    expect(() => engine.vacuumNow(db, false)).toThrow(/frozen/);
    db.thaw();
    expect(await engine.vacuumNow(db, false)).toBe(true);
    expect(db.file.exists(key)).toBe(false);
  });

  it('TRY_DELETE_RECORDS with a record too short for a header fails as a whole', async () => {
    await expect(engine.tryDelete(db, [{ reqid: 0, key: Buffer.from('k'), data: Buffer.alloc(4) }])).rejects.toThrow(/bad ltdb record/);
  });
});
