// Persistent database writes: the UPDATE_RECORD store rules on a file of our own, the
// TRANS3_COMMIT bookkeeping against a fake cluster, raw TRANS3_COMMITs on three nodes of ours
// and of the real ctdbd (same outcomes), and the ctdb tool's transaction commands side by side.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, DbFlag, LtdbFlag, Pnn, RecMode, encodeRecBuffer } from '../../src/protocol';
import type { LtdbHeader, RecData } from '../../src/protocol';
import { ClusterDatabase } from '../../src/database/database';
import { CommitStatus, Trans3Commits, applyRecords, updateRecords } from '../../src/database/persistent';
import type { CommitHost, CommitReply, SendUpdate } from '../../src/database/persistent';
import type { Logger } from '../../src/common/logging';
import { TdbFile, buildLtdbRecord, fetchLtdbRecord } from '../../src/store';
import { useTestCluster } from '../harness/cluster';
import type { TestCluster, ToolResult } from '../harness/cluster';
import { mask, compareTool, useSideBySide } from '../integration/tool-compat';
import { holdAllRecordLock } from './lock-holder';

const SEQNUM_KEY = Buffer.from('__db_sequence_number__\0');
const VNNMAP = { generation: 7, map: [0, 1, 2] };

function header(rsn: bigint, dmaster: number, flags = 0): LtdbHeader {
  return { rsn, dmaster, reserved1: 0, flags };
}

function rec(key: string | Buffer, rsn: bigint, dmaster: number, value: string | Buffer): RecData {
  return { reqid: 0, key: Buffer.from(key), data: buildLtdbRecord(header(rsn, dmaster), Buffer.from(value)) };
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

describe('UPDATE_RECORD store rules on a local file', () => {
  let dir: string;
  const opened: ClusterDatabase[] = [];
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'persistent-test-'));
  });
  afterEach(() => {
    for (const db of opened.splice(0)) db.close();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function openDb(name: string, kindFlags: number): ClusterDatabase {
    const db = ClusterDatabase.open({ id: 1, name, kindFlags, path: path.join(dir, name), hashSize: 131, mutexes: false }, (f) => fs.rmSync(f, { force: true }));
    opened.push(db);
    return db;
  }
  const ctx = (pnn: number) => ({ pnn, vnnMap: VNNMAP });
  const noRefusal = { timeoutMs: 5_000, refusal: () => null };

  it('stores each record with its header; a lower or equal rsn may only bring identical data', async () => {
    const db = openDb('rsn.tdb', DbFlag.PERSISTENT);
    expect(await updateRecords(ctx(0), db, [rec('a', 1n, 0, 'one'), rec('b', 5n, 2, 'five')], noRefusal)).toEqual({ status: 0 });
    expect(fetchLtdbRecord(db.file, 'b')).toEqual({ header: header(5n, 2), data: Buffer.from('five') });
    // Same rsn, same data: accepted (a transaction re-sends what it read).
    expect((await updateRecords(ctx(0), db, [rec('b', 5n, 0, 'five')], noRefusal)).status).toBe(0);
    // The whole transaction fails on one stale record: nothing of it is written.
    const stale = await updateRecords(ctx(0), db, [rec('a', 2n, 0, 'two'), rec('b', 5n, 0, 'other')], noRefusal);
    expect(stale.status).toBe(1);
    expect(stale.error).toMatch(/RSN 5, not lower than the new RSN 5/);
    expect(fetchLtdbRecord(db.file, 'a')?.data.toString()).toBe('one');
    // A record without room for a header fails the update too.
    const short = await updateRecords(ctx(0), db, [{ reqid: 0, key: Buffer.from('c'), data: Buffer.alloc(10) }], noRefusal);
    expect(short.status).toBe(1);
    expect(db.file.exists('c')).toBe(false);
  });

  it('persistent records are stored as sent: an empty value stays as a bare header on every node', () => {
    const db = openDb('empty.tdb', DbFlag.PERSISTENT);
    for (const pnn of [0, 1, 2]) {
      db.file.transaction(() => applyRecords(ctx(pnn), db, [rec('gone', 1n, 0, 'value')]));
      const deleted = { reqid: 0, key: Buffer.from('gone'), data: buildLtdbRecord(header(2n, 2, LtdbFlag.AUTOMATIC)) };
      db.file.transaction(() => applyRecords(ctx(pnn), db, [deleted]));
      expect(fetchLtdbRecord(db.file, 'gone'), `node ${pnn}`).toEqual({ header: header(2n, 2, LtdbFlag.AUTOMATIC), data: Buffer.alloc(0) });
      db.file.wipe();
    }
  });

  it('replicated databases follow the persistent rules; volatile ones only replace existing records', () => {
    const repl = openDb('repl.tdb', DbFlag.REPLICATED);
    repl.file.transaction(() => applyRecords(ctx(0), repl, [rec('r', 3n, 0, 'x')]));
    expect(fetchLtdbRecord(repl.file, 'r')?.header.rsn).toBe(3n);
    const vol = openDb('vol.tdb', 0);
    vol.file.store('there', buildLtdbRecord(header(4n, 1), Buffer.from('old')));
    vol.file.transaction(() => applyRecords(ctx(0), vol, [rec('there', 5n, 1, 'new'), rec('absent', 1n, 1, 'v')]));
    expect(fetchLtdbRecord(vol.file, 'there')).toEqual({ header: header(5n, 1), data: Buffer.from('new') });
    expect(vol.file.exists('absent')).toBe(false);
  });

  it('waits without blocking while another process holds the file, then writes; gives up after the timeout', async () => {
    const db = openDb('locked.tdb', DbFlag.PERSISTENT);
    const holder = await holdAllRecordLock(db.path, db.tdbFlags);
    try {
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const timedOut = await updateRecords(ctx(0), db, [rec('x', 1n, 0, 'v')], { timeoutMs: 150, refusal: () => null });
      expect(timedOut).toEqual({ status: -1, error: 'timeout in ctdb_persistent_lock' });
      let done = false;
      const update = updateRecords(ctx(0), db, [rec('x', 1n, 0, 'v')], noRefusal).then((r) => ((done = true), r));
      await new Promise((r) => setTimeout(r, 100));
      clearInterval(ticker);
      expect(done).toBe(false);
      expect(ticks).toBeGreaterThan(10);
      await holder.release();
      expect(await update).toEqual({ status: 0 });
      expect(fetchLtdbRecord(db.file, 'x')?.data.toString()).toBe('v');
      // A record lock of this process (a call in progress) is waited for the same way.
      db.file.chainLock('x');
      expect(await updateRecords(ctx(0), db, [rec('y', 1n, 0, 'w')], { timeoutMs: 50, refusal: () => null })).toEqual(timedOut);
      db.file.chainUnlock('x');
      // A refusal (recovery started meanwhile) ends the wait with -1.
      expect(await updateRecords(ctx(0), db, [], { timeoutMs: 1000, refusal: () => 'recovery' })).toEqual({ status: -1, error: 'recovery' });
    } finally {
      holder.kill();
    }
  });
});

describe('TRANS3_COMMIT bookkeeping', () => {
  interface FakeCluster extends CommitHost {
    recoveryActive: boolean;
    forced: string[];
    targets: number[];
    send: SendUpdate;
    /** Answers the update sent to a node. */
    answer(pnn: number, reply: CommitReply): void;
  }

  function fakeCluster(targets: number[], timeoutMs = 5_000): FakeCluster {
    const waiting = new Map<number, (r: CommitReply) => void>();
    const fake: FakeCluster = {
      logger: { error: () => undefined } as unknown as Logger,
      recoveryActive: false,
      forced: [],
      targets,
      recovering: () => fake.recoveryActive,
      forceRecovery: (reason) => {
        fake.forced.push(reason);
        fake.recoveryActive = true;
      },
      send: (pnn) => new Promise((resolve) => waiting.set(pnn, resolve)),
      timeoutMs: () => timeoutMs,
      answer: (pnn, reply) => waiting.get(pnn)?.(reply),
    };
    return fake;
  }
  /** A commit to dbId by clientId of the fake cluster's targets. */
  const start = (commits: Trans3Commits, fake: FakeCluster, clientId: number, dbId: number) => commits.commit(clientId, dbId, fake.targets, fake.send);
  const ok: CommitReply = { status: 0, errorMessage: null };
  const flush = () => new Promise((r) => setImmediate(r));
  const settled = async <T>(p: Promise<T>): Promise<T | 'pending'> => Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), 20))]);

  it('answers 0 once every node applied the update; one commit per database and per client', async () => {
    const fake = fakeCluster([0, 1, 2]);
    const commits = new Trans3Commits(fake);
    expect(commits.refusal(1, 0xaa)).toBeNull();
    const commit = start(commits, fake, 1, 0xaa);
    expect(commits.refusal(1, 0xbb)).toMatch(/still active/);
    expect(commits.refusal(2, 0xaa)).toMatch(/commit to db 0xaa is active/);
    expect(commits.refusal(2, 0xbb)).toBeNull();
    fake.answer(0, ok);
    fake.answer(2, ok);
    expect(await settled(commit)).toBe('pending');
    fake.answer(1, ok);
    expect(await commit).toEqual({ status: CommitStatus.DONE, errorMessage: null });
    expect(commits.refusal(1, 0xaa)).toBeNull();
    const idle = fakeCluster([]);
    expect(await start(new Trans3Commits(idle), idle, 1, 0xaa)).toEqual(ok);
  });

  it('a failed update forces a recovery; replies during it are ignored; END_RECOVERY answers 2', async () => {
    const fake = fakeCluster([0, 1, 2]);
    const commits = new Trans3Commits(fake);
    const commit = start(commits, fake, 1, 0xaa);
    fake.answer(0, ok);
    fake.answer(1, { status: 1, errorMessage: null });
    await flush();
    expect(fake.forced).toHaveLength(1);
    fake.answer(2, ok);
    await flush();
    expect(commits.refusal(3, 0xcc)).toMatch(/recovery active/);
    commits.recoveryEnded(); // still recovering: nothing happens
    expect(await settled(commit)).toBe('pending');
    fake.recoveryActive = false;
    commits.recoveryEnded();
    expect(await commit).toEqual({ status: CommitStatus.ENDED_BY_RECOVERY, errorMessage: 'trans3 commit ended by recovery' });
  });

  it('no answer within ControlTimeout: 1, unless a recovery is running (then END_RECOVERY answers)', async () => {
    const fake = fakeCluster([0, 1], 30);
    const commits = new Trans3Commits(fake);
    const late = start(commits, fake, 1, 0xaa);
    fake.answer(0, ok);
    expect(await late).toEqual({ status: CommitStatus.TIMEOUT, errorMessage: 'timeout in ctdb_persistent_state' });
    const interrupted = start(commits, fake, 1, 0xaa);
    fake.recoveryActive = true;
    expect(await settled(new Promise((r) => setTimeout(r, 60)).then(() => settled(interrupted)))).toBe('pending');
    fake.recoveryActive = false;
    commits.recoveryEnded();
    expect((await interrupted).status).toBe(CommitStatus.ENDED_BY_RECOVERY);
  });

  it('a client leaving mid-commit forces a recovery and frees the database for the next commit', async () => {
    const fake = fakeCluster([0]);
    const commits = new Trans3Commits(fake);
    const commit = start(commits, fake, 4, 0xaa);
    commits.clientGone(5);
    expect(fake.forced).toEqual([]);
    commits.clientGone(4);
    expect(fake.forced).toHaveLength(1);
    expect((await commit).status).toBe(-1);
    expect(commits.activeCount).toBe(0);
    fake.answer(0, ok); // a late reply changes nothing
    await flush();
    expect(commits.activeCount).toBe(0);
  });

  it('a client leaving with persistent updates announced (START_PERSISTENT_UPDATE) forces a recovery', () => {
    const fake = fakeCluster([0]);
    const commits = new Trans3Commits(fake);
    commits.updateAnnounced(1);
    commits.updateCancelled(1);
    commits.updateCancelled(1);
    commits.clientGone(1);
    expect(fake.forced).toEqual([]);
    commits.updateAnnounced(2);
    commits.updateAnnounced(2);
    commits.updateCancelled(2);
    commits.clientGone(2);
    expect(fake.forced).toEqual(['client disconnecting with 1 persistent updates in flight']);
  });
});

// ---- on a cluster -----------------------------------------------------------------------------

/** The marshall buffer of a client's commit: every record with rsn+1 and dmaster = committing node. */
function commitBuffer(dbId: number, pnn: number, records: { key: string | Buffer; value: string | Buffer; rsn: bigint }[]): Buffer {
  return encodeRecBuffer({ dbId, records: records.map((r) => rec(r.key, r.rsn, pnn, r.value)) });
}

async function connectAll(cluster: TestCluster): Promise<CtdbClient[]> {
  return Promise.all(cluster.nodes.map((n) => CtdbClient.connect(n.socket)));
}

/** The record as it is in a node's file (read-only open, no locks), or undefined. */
async function fileRecord(client: CtdbClient, dbId: number, key: string | Buffer) {
  const file = TdbFile.open((await client.call(Pnn.CURRENT_NODE, ControlCode.GETDBPATH, dbId)).reply as string, { access: 'r' });
  try {
    const r = fetchLtdbRecord(file, typeof key === 'string' ? Buffer.from(key) : key);
    return r === undefined ? undefined : { rsn: r.header.rsn, dmaster: r.header.dmaster, value: r.data.toString() };
  } finally {
    file.close();
  }
}

async function seqnum(client: CtdbClient, dbId: number): Promise<bigint> {
  return (await client.call(Pnn.CURRENT_NODE, ControlCode.GET_DB_SEQNUM, dbId)).reply;
}

async function waitForRecModeNormal(cluster: TestCluster, clients: CtdbClient[]): Promise<void> {
  await cluster.waitFor(
    async () => (await Promise.all(clients.map((c) => c.control(Pnn.CURRENT_NODE, ControlCode.GET_RECMODE, Buffer.alloc(0), { timeoutMs: 5_000 })))).every((r) => r.status === RecMode.NORMAL),
    60_000,
    'recovery mode NORMAL everywhere',
  );
}

describe.each(['ours', 'real'] as const)('TRANS3_COMMIT from a raw client on 3 nodes (%s)', (impl) => {
  const cluster = useTestCluster({ nodes: 3, impl });
  let clients: CtdbClient[] = [];
  let dbId = 0;
  const commit = (via: number, buffer: Buffer) =>
    clients[via].control(Pnn.CURRENT_NODE, ControlCode.TRANS3_COMMIT, buffer, { srvid: BigInt(dbId), timeoutMs: 90_000 });

  beforeAll(async () => {
    await cluster().waitUntilHealthy();
    clients = await connectAll(cluster());
    dbId = (await clients[0].call(Pnn.CURRENT_NODE, ControlCode.DB_ATTACH_PERSISTENT, 'raw.tdb')).reply;
  }, 120_000);
  afterAll(() => clients.forEach((c) => c.close()));

  it('the records reach every node with the committed headers; the seqnum record moves on', async () => {
    const first = commitBuffer(dbId, 0, [
      { key: 'alpha', value: 'A', rsn: 1n },
      { key: 'beta', value: 'B', rsn: 1n },
      { key: SEQNUM_KEY, value: u64(1n), rsn: 1n },
    ]);
    expect((await commit(0, first)).status).toBe(0);
    const second = commitBuffer(dbId, 1, [
      { key: 'alpha', value: 'A2', rsn: 2n },
      { key: 'beta', value: '', rsn: 2n },
      { key: SEQNUM_KEY, value: u64(2n), rsn: 2n },
    ]);
    expect((await commit(1, second)).status).toBe(0);
    for (const c of clients) {
      expect(await fileRecord(c, dbId, 'alpha')).toEqual({ rsn: 2n, dmaster: 1, value: 'A2' });
      expect(await seqnum(c, dbId)).toBe(2n);
    }
    // The emptied record stays as a bare header everywhere.
    for (const c of clients) expect(await fileRecord(c, dbId, 'beta')).toEqual({ rsn: 2n, dmaster: 1, value: '' });
  });

  it('is refused during recovery and for an unknown database (-1)', async () => {
    const buffer = commitBuffer(dbId, 0, [{ key: 'gamma', value: 'G', rsn: 1n }]);
    expect((await commit(0, commitBuffer(0x1234567, 0, []))).status).toBe(-1);
    // The pre-TRANS3 announcements are still accepted from clients.
    for (const code of [ControlCode.START_PERSISTENT_UPDATE, ControlCode.CANCEL_PERSISTENT_UPDATE]) {
      expect((await clients[0].control(Pnn.CURRENT_NODE, code, Buffer.alloc(0), { timeoutMs: 10_000 })).status, ControlCode[code]).toBe(0);
    }
    await clients[2].call(Pnn.CURRENT_NODE, ControlCode.SET_RECMODE, RecMode.ACTIVE);
    expect((await commit(2, buffer)).status).toBe(-1);
    await waitForRecModeNormal(cluster(), clients);
    expect(await fileRecord(clients[0], dbId, 'gamma')).toBeUndefined();
  }, 90_000);

  it('an update a node cannot apply (its copy has a higher rsn) forces a recovery; the commit then answers 2', async () => {
    const path1 = (await clients[1].call(Pnn.CURRENT_NODE, ControlCode.GETDBPATH, dbId)).reply as string;
    expect((await cluster().ctdb(1, ['tstore', path1, 'delta', 'theirs', '100', '1'])).code).toBe(0);
    const before = await seqnum(clients[0], dbId);
    const buffer = commitBuffer(dbId, 0, [
      { key: 'delta', value: 'ours', rsn: 1n },
      { key: SEQNUM_KEY, value: u64(before + 1n), rsn: before + 1n },
    ]);
    expect((await commit(0, buffer)).status).toBe(CommitStatus.ENDED_BY_RECOVERY);
    await waitForRecModeNormal(cluster(), clients);
    // The recovery took the copy with the highest seqnum (one that applied the commit) everywhere.
    for (const c of clients) {
      expect(await seqnum(c, dbId)).toBe(before + 1n);
      expect((await fileRecord(c, dbId, 'delta'))?.value).toBe('ours');
    }
  }, 120_000);

  it('with a node down the commit goes to the others; the node gets it back from the recovery when it returns', async () => {
    await cluster().stopNode(2);
    clients[2].close();
    // Until the recovery without node 2 is over: a commit during it would be refused.
    await cluster().waitFor(async () => {
      const vnnMap = (await clients[0].call(Pnn.CURRENT_NODE, ControlCode.GETVNNMAP, undefined)).reply;
      if (vnnMap.map.includes(2)) return false;
      const modes = await Promise.all([0, 1].map((pnn) => clients[pnn].control(Pnn.CURRENT_NODE, ControlCode.GET_RECMODE, Buffer.alloc(0))));
      return modes.every((r) => r.status === RecMode.NORMAL);
    }, 60_000, 'a recovery without node 2');
    const before = await seqnum(clients[0], dbId);
    const buffer = commitBuffer(dbId, 0, [
      { key: 'epsilon', value: 'E', rsn: 1n },
      { key: SEQNUM_KEY, value: u64(before + 1n), rsn: before + 1n },
    ]);
    expect((await commit(0, buffer)).status).toBe(0);
    expect((await fileRecord(clients[1], dbId, 'epsilon'))?.value).toBe('E');
    await cluster().startNode(2);
    await cluster().waitUntilHealthy(90_000);
    clients[2] = await CtdbClient.connect(cluster().node(2).socket);
    await waitForRecModeNormal(cluster(), clients);
    expect((await fileRecord(clients[2], dbId, 'epsilon'))?.value).toBe('E');
    expect(await seqnum(clients[2], dbId)).toBe(before + 1n);
  }, 180_000);
});

describe('TRANS3_COMMIT on ours while a libtdb process holds the persistent file', () => {
  const cluster = useTestCluster({ nodes: 1, impl: 'ours' });

  it('the commit waits for the lock, the daemon keeps answering, then the commit succeeds', async () => {
    await cluster().waitUntilHealthy();
    const client = await CtdbClient.connect(cluster().node(0).socket);
    try {
      const dbId = (await client.call(Pnn.CURRENT_NODE, ControlCode.DB_ATTACH_PERSISTENT, 'held.tdb')).reply;
      const file = (await client.call(Pnn.CURRENT_NODE, ControlCode.GETDBPATH, dbId)).reply as string;
      const holder = await holdAllRecordLock(file, (await client.call(Pnn.CURRENT_NODE, ControlCode.DB_OPEN_FLAGS, dbId)).reply);
      try {
        let answered = false;
        const buffer = commitBuffer(dbId, 0, [{ key: 'k', value: 'v', rsn: 1n }]);
        const committed = client
          .control(Pnn.CURRENT_NODE, ControlCode.TRANS3_COMMIT, buffer, { srvid: BigInt(dbId), timeoutMs: 30_000 })
          .then((r) => ((answered = true), r));
        for (let i = 0; i < 5; i++) {
          const started = performance.now();
          await client.call(Pnn.CURRENT_NODE, ControlCode.GET_PNN, undefined);
          expect(performance.now() - started).toBeLessThan(100);
          await new Promise((r) => setTimeout(r, 40));
        }
        expect(answered).toBe(false);
        await holder.release();
        expect((await committed).status).toBe(0);
        expect(await fileRecord(client, dbId, 'k')).toEqual({ rsn: 1n, dmaster: 0, value: 'v' });
      } finally {
        holder.kill();
      }
    } finally {
      client.close();
    }
  }, 60_000);
});

describe('ctdb transaction commands on 3 nodes: ours side by side with the real ctdbd', () => {
  const { ours, real } = useSideBySide(3);
  let ptransFile: string;
  beforeAll(() => {
    ptransFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ptrans-')), 'input');
    fs.writeFileSync(
      ptransFile,
      ['"key1" "from ptrans"', '"key2" "second"', '  "key3"\t"third"', 'not quoted', '"key2" "second, again"', '"key4" ""', '"key5" "unterminated', ''].join('\n'),
    );
  });
  afterAll(() => fs.rmSync(path.dirname(ptransFile), { recursive: true, force: true }));

  const steps: [pnn: number, args: string[]][] = [
    [0, ['attach', 'trans.tdb', 'persistent']],
    [0, ['attach', 'trans_repl.tdb', 'replicated']],
    [0, ['attach', 'trans_vol.tdb']],
    [0, ['pstore', 'trans.tdb', 'key1', 'value1']],
    [1, ['pfetch', 'trans.tdb', 'key1']],
    [2, ['pstore', 'trans.tdb', 'key1', 'value2']],
    [0, ['pfetch', 'trans.tdb', 'key1']],
    [1, ['pfetch', 'trans.tdb', 'missing']],
    [0, ['pstore', 'trans.tdb', '0x6b6579', '0x00ff']],
    [2, ['pfetch', 'trans.tdb', 'key']],
    [0, ['pstore', 'trans.tdb', 'gone', 'soon']],
    [1, ['pdelete', 'trans.tdb', 'gone']],
    [2, ['pfetch', 'trans.tdb', 'gone']],
    [0, ['pdelete', 'trans.tdb', 'never-there']],
    [0, ['getdbseqnum', 'trans.tdb']],
    [2, ['getdbseqnum', 'trans.tdb']],
    [0, ['pstore', 'trans_repl.tdb', 'rkey', 'rvalue']],
    [2, ['pfetch', 'trans_repl.tdb', 'rkey']],
    [0, ['pstore', 'trans_vol.tdb', 'k', 'v']],
    [0, ['pfetch', 'trans_vol.tdb', 'k']],
    [0, ['pstore', 'nosuch.tdb', 'k', 'v']],
    [0, ['pdelete', 'nosuch.tdb', 'k']],
    [0, ['pstore', 'trans.tdb', 'k']],
  ];
  for (const [pnn, args] of steps) {
    it(`node ${pnn}: ctdb ${args.join(' ')}`, async () => {
      await compareTool(ours(), real(), pnn, args);
    });
  }

  it('ptrans from a file (bad lines ignored), read back on another node', async () => {
    await compareTool(ours(), real(), 1, ['ptrans', 'trans.tdb', ptransFile]);
    for (const key of ['key1', 'key2', 'key3', 'key4', 'key5']) await compareTool(ours(), real(), 2, ['pfetch', 'trans.tdb', key]);
    await compareTool(ours(), real(), 0, ['getdbseqnum', 'trans.tdb']);
    await compareTool(ours(), real(), 0, ['ptrans', 'trans.tdb', '/nonexistent/input']);
  });

  /** The same tool command on each cluster with that cluster's file of `name` on node `pnn`. */
  async function onEachFile(pnn: number, name: string, args: (file: string) => string[]): Promise<ToolResult[]> {
    return Promise.all(
      [ours(), real()].map(async (cluster) => {
        const status = await cluster.ctdb(pnn, ['getdbstatus', name]);
        const file = /^path: (.+)$/m.exec(status.stdout)?.[1];
        if (file === undefined) throw new Error(`no path of ${name} on node ${pnn}: ${status.stdout}${status.stderr}`);
        const r = await cluster.ctdb(pnn, args(file));
        return { code: r.code, stdout: mask(r.stdout, cluster), stderr: mask(r.stderr, cluster) };
      }),
    );
  }

  it('tfetch shows the same headers in every node file, deleted records included', async () => {
    for (const pnn of [0, 1, 2]) {
      for (const [name, key] of [['trans.tdb', 'key1'], ['trans.tdb', 'key2'], ['trans.tdb', 'gone'], ['trans.tdb', `0x${SEQNUM_KEY.toString('hex')}`], ['trans_repl.tdb', 'rkey']]) {
        const [o, r] = await onEachFile(pnn, name, (file) => ['tfetch', file, key]);
        expect(o, `node ${pnn} ${name} ${key}`).toEqual(r);
      }
    }
  });

  it('tstore into a node file, then pfetch and tfetch of it through the tool', async () => {
    const stored = await onEachFile(1, 'trans.tdb', (file) => ['tstore', file, 'tkey', 'tvalue', '9', '1']);
    expect(stored[0]).toEqual(stored[1]);
    await compareTool(ours(), real(), 1, ['pfetch', 'trans.tdb', 'tkey']);
    const fetched = await onEachFile(1, 'trans.tdb', (file) => ['tfetch', file, 'tkey']);
    expect(fetched[0]).toEqual(fetched[1]);
    expect(fetched[0].stdout).toMatch(/rsn: 9/);
    // A pstore over it: the client builds rsn 10 from the local copy; every node takes it.
    await compareTool(ours(), real(), 1, ['pstore', 'trans.tdb', 'tkey', 'newer']);
    for (const pnn of [0, 2]) {
      const after = await onEachFile(pnn, 'trans.tdb', (file) => ['tfetch', file, 'tkey']);
      expect(after[0]).toEqual(after[1]);
      expect(after[0].stdout).toMatch(/rsn: 10/);
    }
  });
});
