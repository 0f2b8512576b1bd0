// Database administration: the ctdb tool's database commands (getdbmap, getdbstatus, attach,
// detach, getdbseqnum, dbstatistics, setdbreadonly/sticky, wipedb, backupdb, restoredb,
// dumpdbbackup) on three nodes of ours side by side with three real ctdbd nodes; DB_DETACH's
// refusals and seqnum propagation (ENABLE_SEQNUM / UPDATE_SEQNUM) through raw controls on both;
// and the per-database statistics (hop buckets, hot keys) on their own.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, Pnn, decodeControlReply, encodeControlReply, encodeControlRequest } from '../../src/protocol';
import { DatabaseStatistics, HOT_KEY_SLOTS, hopCountBucket } from '../../src/database/db-statistics';
import { TdbFile, TdbFlag } from '../../src/store';
import type { TestCluster } from '../harness/cluster';
import { compareTool, mask, useSideBySide } from '../integration/tool-compat';

const silent = { notice: (): void => undefined };

describe('database statistics', () => {
  it('hop counts land in power-of-two buckets, the last one open-ended', () => {
    expect([0, 1, 2, 3, 4, 7, 8, 1000, 0x8000, 0xffffffff].map(hopCountBucket)).toEqual([0, 1, 2, 2, 3, 3, 4, 10, 15, 15]);
  });

  it('keeps the ten hottest keys, ascending, replacing the coolest; a key only ever grows', () => {
    const stats = new DatabaseStatistics('hot.tdb');
    for (let i = 1; i <= 12; i++) stats.noteHotKey(Buffer.from(`k${i}`), i, silent);
    stats.noteHotKey(Buffer.from('k12'), 5, silent);
    stats.noteHotKey(Buffer.from('k5'), 3, silent);
    const keys = stats.snapshot().hotKeys.map((k) => `${k.key.toString()}:${k.count}`);
    expect(keys).toEqual(['k3:3', 'k4:4', 'k5:5', 'k6:6', 'k7:7', 'k8:8', 'k9:9', 'k10:10', 'k11:11', 'k12:12']);
  });

  it('counts migrations of a key within one second, logging a key when added and when its count doubles', () => {
    const stats = new DatabaseStatistics('mig.tdb');
    const logged: string[] = [];
    const log = { notice: (m: string): void => void logged.push(m) };
    const key = Buffer.from('hot\0');
    for (const t of [0, 100, 200, 300, 999]) stats.recordMigration(key, log, t);
    stats.recordMigration(key, log, 1000);
    stats.recordMigration(Buffer.from('cold'), log, 1001);
    const slots = stats.snapshot().hotKeys;
    expect(slots.slice(0, 2).map((k) => [k.key.toString('latin1'), k.count])).toEqual([
      ['cold', 1],
      ['hot\0', 5],
    ]);
    expect(slots.slice(2).every((k) => k.count === 0 && k.key.length === 0)).toBe(true);
    expect(logged).toEqual([
      'Added hot key database=mig.tdb key=686f7400 count=1',
      'Updated hot key database=mig.tdb key=686f7400 count=2',
      'Updated hot key database=mig.tdb key=686f7400 count=4',
      'Added hot key database=mig.tdb key=636f6c64 count=1',
    ]);
  });

  it('encodes as struct ctdb_db_statistics with all ten slots, and resets', () => {
    const stats = new DatabaseStatistics('enc.tdb');
    stats.readLocksFrom(() => ({ numCalls: 3, numCurrent: 1, numPending: 2, numFailed: 0, latency: { num: 3, min: 0.001, max: 0.5, total: 0.6 }, buckets: new Array<number>(16).fill(1) }));
    stats.recordHop(0);
    stats.recordHop(5);
    stats.recordVacuum(0.25);
    stats.noteHotKey(Buffer.from('abc'), 7, silent);
    const wire = encodeControlReply(ControlCode.GET_DB_STATISTICS, stats.snapshot());
    expect(wire.length).toBe(464 + 3);
    const back = decodeControlReply(ControlCode.GET_DB_STATISTICS, wire);
    expect(back.numHotKeys).toBe(HOT_KEY_SLOTS);
    expect(back.hopCountBucket.slice(0, 4)).toEqual([1, 0, 0, 1]);
    expect(back.locks.numCurrent).toBe(1);
    expect(back.vacuumLatency).toEqual({ num: 1, min: 0.25, max: 0.25, total: 0.25 });
    expect(back.hotKeys[0].key.toString()).toBe('abc');
    stats.reset();
    const cleared = stats.snapshot();
    expect(cleared.hopCountBucket.every((n) => n === 0) && cleared.hotKeys.every((k) => k.count === 0)).toBe(true);
  });
});

describe('tdb seqnum increment (UPDATE_SEQNUM on a receiving node)', () => {
  it('bumps the header only when seqnums are enabled, as tdb_increment_seqnum_nonblock', () => {
    const dir = fs.mkdtempSync('/tmp/admin-seqnum-');
    try {
      const file = TdbFile.open(path.join(dir, 'x.tdb'), { access: 'create', hashSize: 17 });
      file.incrementSeqnum();
      expect(file.seqnum).toBe(0);
      file.enableSeqnum();
      file.incrementSeqnum();
      file.incrementSeqnum();
      expect(file.seqnum).toBe(2);
      file.close();
      expect(() => file.incrementSeqnum()).toThrow();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Dates in backup headers ("@ 2024/05/01 12:00:00") differ between the two runs. */
function maskBackupDate(text: string): string {
  return text.replace(/@ \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d/g, '@ <date>');
}

describe('database commands of the ctdb tool: ours and the real ctdbd, 3 nodes', () => {
  const { ours, real } = useSideBySide(3);
  const both = (): TestCluster[] => [ours(), real()];

  async function same(pnn: number, args: string[]): Promise<string> {
    return (await compareTool(ours(), real(), pnn, args)).ours.stdout;
  }

  /** Runs the command on both with `<root>` in its arguments, compares after masking. */
  async function sameIn(pnn: number, args: string[]): Promise<string> {
    const results = await Promise.all(
      both().map(async (c) => {
        const r = await c.ctdb(pnn, args.map((a) => a.replace('<root>', c.root)));
        return { code: r.code, stdout: maskBackupDate(mask(r.stdout, c)), stderr: mask(r.stderr, c) };
      }),
    );
    expect(results[0]).toEqual(results[1]);
    return results[0].stdout;
  }

  it('attach, fill, getdbmap, getdbstatus, getdbseqnum, dbstatistics', async () => {
    await same(0, ['attach', 'adm_vol.tdb']);
    await same(1, ['attach', 'adm_pers.tdb', 'persistent']);
    await same(2, ['attach', 'adm_repl.tdb', 'replicated']);
    // Written from one node, so its copy (the backup below) holds every record with its value:
    // ctdbd's push deletes an empty record on a node that is neither its lmaster nor dmaster.
    for (const [key, value] of [
      ['alpha', 'one'],
      ['beta', 'two'],
      ['gamma', 'three'],
    ]) {
      await same(0, ['writekey', 'adm_vol.tdb', key, value]);
    }
    for (const pnn of [0, 1, 2]) {
      await same(pnn, ['getdbmap']);
      await same(pnn, ['-X', 'getdbmap']);
    }
    for (const db of ['adm_vol.tdb', 'adm_pers.tdb', 'adm_repl.tdb', '0x12345678', 'missing.tdb']) await same(1, ['getdbstatus', db]);
    for (const db of ['adm_pers.tdb', 'adm_vol.tdb', 'missing.tdb']) await same(2, ['getdbseqnum', db]);
    for (const db of ['adm_pers.tdb', 'adm_repl.tdb', 'missing.tdb']) await same(0, ['dbstatistics', db]);
  }, 120_000);

  it('getdbseqnum reads the __db_sequence_number__ record of a persistent database', async () => {
    const key = `0x${Buffer.from('__db_sequence_number__\0').toString('hex')}`;
    for (const c of both()) {
      const file = /^path: (.+)$/m.exec((await c.ctdb(1, ['getdbstatus', 'adm_pers.tdb'])).stdout)?.[1];
      expect(file).toBeDefined();
      const stored = await c.ctdb(1, ['tstore', file as string, key, '0x2a00000000000000']);
      expect(stored.code).toBe(0);
    }
    expect(await same(1, ['getdbseqnum', 'adm_pers.tdb'])).toBe('0x2a\n');
    await same(0, ['getdbseqnum', 'adm_pers.tdb']);
  });

  it('setdbreadonly and setdbsticky: volatile only, shown by getdbmap and getdbstatus', async () => {
    await same(0, ['setdbreadonly', 'adm_vol.tdb']);
    await same(1, ['setdbsticky', 'adm_vol.tdb']);
    await same(0, ['setdbreadonly', 'adm_pers.tdb']);
    await same(0, ['setdbsticky', 'adm_repl.tdb']);
    await same(0, ['setdbsticky', 'missing.tdb']);
    for (const pnn of [0, 1, 2]) await same(pnn, ['getdbstatus', 'adm_vol.tdb']);
    await same(2, ['getdbmap']);
  });

  it('backupdb, dumpdbbackup, wipedb, restoredb', async () => {
    await sameIn(0, ['backupdb', 'adm_vol.tdb', '<root>/vol.backup']);
    const dumped = await sameIn(0, ['dumpdbbackup', '<root>/vol.backup']);
    expect(dumped).toMatch(/^Dumping database adm_vol.tdb from backup @ <date>\n/);
    await sameIn(2, ['backupdb', 'adm_pers.tdb', '<root>/pers.backup']);
    await sameIn(2, ['dumpdbbackup', '<root>/pers.backup']);
    await sameIn(0, ['dumpdbbackup', '<root>/no-such.backup']);

    await same(2, ['wipedb', 'adm_vol.tdb']);
    for (const pnn of [0, 1, 2]) expect(await same(pnn, ['readkey', 'adm_vol.tdb', 'beta'])).toBe('Data: size:0 ptr:[]\n');
    await same(0, ['wipedb', 'missing.tdb']);

    await sameIn(0, ['restoredb', '<root>/vol.backup']);
    for (const pnn of [0, 1, 2]) expect(await same(pnn, ['readkey', 'adm_vol.tdb', 'beta'])).toBe('Data: size:3 ptr:[two]\n');
    await sameIn(1, ['restoredb', '<root>/vol.backup', 'adm_copy.tdb']);
    await same(2, ['readkey', 'adm_copy.tdb', 'gamma']);
    await sameIn(0, ['restoredb', '<root>/pers.backup', 'adm_pers2.tdb']);
    await same(1, ['getdbseqnum', 'adm_pers2.tdb']);
    await same(0, ['getdbmap']);
  }, 120_000);

  // Not a READONLY database: ctdbd 4.17 aborts when it detaches one (it talloc_frees the
  // read-only tracking tdb, which is no talloc object); ours is checked on that below.
  it('detach: refused while clients may attach, non-volatile refused, then gone on every node', async () => {
    await same(1, ['attach', 'adm_tmp.tdb']);
    await same(1, ['writekey', 'adm_tmp.tdb', 'k', 'v']);
    await same(0, ['detach', 'adm_tmp.tdb']);
    await same(0, ['setvar', 'AllowClientDBAttach', '0']);
    await same(1, ['detach', 'adm_tmp.tdb']);
    for (const pnn of [1, 2]) await same(pnn, ['setvar', 'AllowClientDBAttach', '0']);
    await same(1, ['detach', 'adm_pers.tdb']);
    await same(1, ['detach', 'adm_repl.tdb']);
    await same(1, ['detach', 'adm_tmp.tdb', 'missing.tdb']);
    await Promise.all(
      both().map((c) => c.waitFor(async () => (await Promise.all([0, 1, 2].map((p) => c.ctdb(p, ['getdbmap'])))).every((r) => !r.stdout.includes('adm_tmp')), 10_000, 'the detach on every node')),
    );
    for (const pnn of [0, 1, 2]) await same(pnn, ['getdbmap']);
    await same(2, ['attach', 'adm_tmp.tdb']);
    for (const pnn of [0, 1, 2]) await same(pnn, ['setvar', 'AllowClientDBAttach', '1']);
    await same(2, ['attach', 'adm_tmp.tdb']);
    expect(await same(0, ['readkey', 'adm_tmp.tdb', 'k'])).toBe('Data: size:0 ptr:[]\n');
  }, 120_000);

  it('ours detaches a READONLY database too, its files staying on disk', async () => {
    const c = ours();
    const file = /^path: (.+)$/m.exec((await c.ctdb(0, ['getdbstatus', 'adm_copy.tdb'])).stdout)?.[1] as string;
    expect((await c.ctdb(0, ['getdbstatus', 'adm_copy.tdb'])).stdout).toMatch(/READONLY: yes/);
    for (const pnn of [0, 1, 2]) expect((await c.ctdb(pnn, ['setvar', 'AllowClientDBAttach', '0'])).code).toBe(0);
    expect(await c.ctdb(0, ['detach', 'adm_copy.tdb'])).toMatchObject({ code: 0, stderr: '' });
    await c.waitFor(async () => (await Promise.all([0, 1, 2].map((p) => c.ctdb(p, ['getdbmap'])))).every((r) => !r.stdout.includes('adm_copy')), 10_000, 'the detach on every node');
    expect(fs.existsSync(file)).toBe(true);
    for (const pnn of [0, 1, 2]) expect((await c.ctdb(pnn, ['setvar', 'AllowClientDBAttach', '1'])).code).toBe(0);
  });
});

describe('DB_DETACH and seqnum propagation through raw controls: ours and the real ctdbd', () => {
  const { ours, real } = useSideBySide(3);

  async function clients(c: TestCluster): Promise<CtdbClient[]> {
    return Promise.all(c.nodes.map((n) => CtdbClient.connect(n.socket)));
  }

  /** The header sequence number of a node's copy of a database, opened as smbd would. */
  function fileSeqnum(file: string, flags: number): number {
    const tdb = TdbFile.open(file, { flags, access: 'rw' });
    try {
      return tdb.seqnum;
    } finally {
      tdb.close();
    }
  }

  async function detachStatuses(c: TestCluster): Promise<number[]> {
    const [client] = await clients(c);
    try {
      const vol = (await client.call(Pnn.CURRENT_NODE, ControlCode.DB_ATTACH, 'raw_vol.tdb')).reply;
      const pers = (await client.call(Pnn.CURRENT_NODE, ControlCode.DB_ATTACH_PERSISTENT, 'raw_pers.tdb')).reply;
      const detach = async (dbId: number): Promise<number> => (await client.control(Pnn.CURRENT_NODE, ControlCode.DB_DETACH, encodeControlRequest(ControlCode.DB_DETACH, dbId))).status;
      const statuses = [await detach(vol)];
      await client.call(Pnn.CURRENT_NODE, ControlCode.SET_TUNABLE, { name: 'AllowClientDBAttach', value: 0 });
      statuses.push(await detach(pers), await detach(0x0badcafe));
      statuses.push(await detach(vol));
      await client.call(Pnn.CURRENT_NODE, ControlCode.SET_TUNABLE, { name: 'AllowClientDBAttach', value: 1 });
      return statuses;
    } finally {
      client.close();
    }
  }

  it('DB_DETACH refusals and success give the same statuses', async () => {
    const [o, r] = await Promise.all([detachStatuses(ours()), detachStatuses(real())]);
    expect(o).toEqual(r);
    expect(o[o.length - 1]).toBe(0);
  });

  interface SeqnumRun {
    /** Every node's file seqnum: before, after one local change on node 0, after no change. */
    rounds: number[][];
  }

  async function seqnumRun(c: TestCluster): Promise<SeqnumRun> {
    const nodeClients = await clients(c);
    try {
      const dbId = (await nodeClients[0].call(Pnn.CURRENT_NODE, ControlCode.DB_ATTACH, 'seq.tdb')).reply;
      await c.waitFor(async () => (await c.ctdb(2, ['getdbstatus', 'seq.tdb'])).code === 0, 10_000, 'seq.tdb on every node');
      const paths = await Promise.all(nodeClients.map(async (cl) => (await cl.call(Pnn.CURRENT_NODE, ControlCode.GETDBPATH, dbId)).reply ?? ''));
      for (const cl of nodeClients) await cl.call(Pnn.CURRENT_NODE, ControlCode.SET_TUNABLE, { name: 'SeqnumInterval', value: 100 });
      // Node 2 never enables seqnums: its daemon's bump is a no-op there.
      for (const cl of nodeClients.slice(0, 2)) await cl.call(Pnn.CURRENT_NODE, ControlCode.ENABLE_SEQNUM, dbId);
      const flags = (await nodeClients[0].call(Pnn.CURRENT_NODE, ControlCode.DB_OPEN_FLAGS, dbId)).reply;
      expect(flags & TdbFlag.SEQNUM).toBe(TdbFlag.SEQNUM);
      // The first look after ENABLE_SEQNUM uses the old interval (1 s).
      await new Promise((resolve) => setTimeout(resolve, 1300));
      const look = (): number[] => paths.map((p) => fileSeqnum(p, flags));
      const rounds = [look()];
      const writer = TdbFile.open(paths[0], { flags, access: 'rw' });
      writer.store('k1', Buffer.alloc(24 + 3));
      writer.close();
      await new Promise((resolve) => setTimeout(resolve, 500));
      rounds.push(look());
      await new Promise((resolve) => setTimeout(resolve, 500));
      rounds.push(look());
      return { rounds };
    } finally {
      for (const cl of nodeClients) cl.close();
    }
  }

  it('a local change moves the seqnum of every node that enabled it, once per look', async () => {
    const [o, r] = await Promise.all([seqnumRun(ours()), seqnumRun(real())]);
    expect(o).toEqual(r);
    expect(o.rounds).toEqual([
      [0, 0, 0],
      [1, 1, 0],
      [1, 1, 0],
    ]);
  }, 60_000);
});
