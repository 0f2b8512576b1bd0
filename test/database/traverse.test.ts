// Traverses. The engine alone, its nodes joined by an in-process network: who walks, what each
// node reports, timeouts, kills. Then side by side on three nodes of ours and three of Debian's
// ctdbd, with the same records written into every node's copies: `ctdb catdb` / `cattdb` print
// the same, the raw TRAVERSE_START stream is what smbd expects (reply first, one rec_data per
// message, the 16-byte end marker), a big traverse leaves the daemon responsive, and a stopped
// node ends the traverse after TraverseTimeout.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, LtdbFlag, Operation, Pnn, decodeControlRequest, decodePacket, encode, encodeControlRequest, encodePacket, makeHeader, recDataCodec, traverseStartCodec } from '../../src/protocol';
import type { ReplyControl, ReqMessage } from '../../src/protocol';
import { PacketStream } from '../../src/transport/framer';
import { mask, useSideBySide } from '../integration/tool-compat';
import type { TestCluster } from '../harness/cluster';
import { TdbFile, TdbFlag, buildLtdbRecord } from '../../src/store';
import { createLogger } from '../../src/common/logging';
import { TraverseEngine, type TraversedDatabase } from '../../src/database/traverse';

const NODES = [0, 1, 2];
const PER_NODE = 120;
const BIG_TOTAL = 20_001;
const TEST_SRVID = 0xae00000000000000n;

interface SeedRecord {
  key: string;
  rsn: bigint;
  dmaster: number;
  /** null: a deleted record (the bare header). */
  value: string | Buffer | null;
  flags?: number;
}

/**
 * Writes records straight into node pnn's file of the database, next to the daemon that keeps
 * it open (so a volatile file is not wiped): both daemons then hold byte-identical records,
 * whatever their store paths do to headers.
 */
async function writeRecords(client: CtdbClient, pnn: number, dbId: number, records: readonly SeedRecord[]): Promise<void> {
  const path = (await client.call(pnn, ControlCode.GETDBPATH, dbId)).reply;
  const flags = (await client.call(pnn, ControlCode.DB_OPEN_FLAGS, dbId)).reply;
  if (path === null) throw new Error(`no path for db 0x${dbId.toString(16)} on node ${pnn}`);
  const file = TdbFile.open(path, { access: 'rw', flags: flags & ~TdbFlag.CLEAR_IF_FIRST });
  try {
    for (const r of records) {
      const header = { rsn: r.rsn, dmaster: r.dmaster, reserved1: 0, flags: r.flags ?? LtdbFlag.MIGRATED_WITH_DATA };
      file.store(r.key, buildLtdbRecord(header, r.value === null ? undefined : Buffer.from(r.value)));
    }
  } finally {
    file.close();
  }
}

/** Values with bytes the tool escapes, so its dump formatting is compared too. */
function value(text: string, i: number): Buffer {
  return Buffer.concat([Buffer.from(`${text}"\\`), Buffer.from([0, i & 0xff, 0x7f]), Buffer.from('x'.repeat(i % 40))]);
}

/** Node pnn's copy of the volatile database: its own records, stale copies, deleted ones, shared keys. */
function volatileSeed(pnn: number): SeedRecord[] {
  const records: SeedRecord[] = [];
  for (let i = 0; i < PER_NODE; i++) {
    records.push({ key: `own-${pnn}-${i}`, rsn: BigInt(i + 1), dmaster: pnn, value: value(`own-${pnn}`, i) });
    // A copy this node holds but another node is dmaster of: only the dmaster reports it.
    records.push({ key: `stale-${pnn}-${i}`, rsn: 1n, dmaster: (pnn + 1) % 3, value: value('stale', i) });
    if (i % 4 === 0) records.push({ key: `deleted-${pnn}-${i}`, rsn: 5n, dmaster: pnn, value: null });
    if (i % 3 === 0) records.push({ key: `shared-${i}`, rsn: 3n, dmaster: i % 9 === 0 ? pnn : (pnn + 2) % 3, value: value(`shared-from-${pnn}`, i) });
  }
  return records;
}

/** Each node's persistent copy differs: a traverse shows the copy of one node only. */
function persistentSeed(pnn: number): SeedRecord[] {
  const records: SeedRecord[] = Array.from({ length: PER_NODE }, (_, i) => ({ key: `p-${i}`, rsn: 1n, dmaster: pnn, value: value(`pers-${pnn}`, i), flags: 0 }));
  records.push({ key: `only-on-${pnn}`, rsn: 2n, dmaster: pnn, value: null, flags: 0 });
  return records;
}

/** i in letters: the comparison masks daemon pids, which four-digit record numbers could match. */
function letters(i: number): string {
  return [...i.toString(26)].map((c) => String.fromCharCode(97 + parseInt(c, 26))).join('');
}

function bigSeed(pnn: number): SeedRecord[] {
  const records: SeedRecord[] = [];
  for (let i = pnn; i < BIG_TOTAL; i += 3) records.push({ key: `big-${letters(i)}`, rsn: 1n, dmaster: pnn, value: `value of big record ${letters(i)} `.repeat(3) });
  return records;
}

/** The tool's dump with the record blocks sorted: nodes' records interleave in arrival order. */
function sortedDump(stdout: string): string {
  const blocks = stdout.split('\n\n');
  const summary = blocks.pop() ?? '';
  return [...blocks.sort(), summary].join('\n\n');
}

async function attach(cluster: TestCluster, client: CtdbClient, name: string, persistent: boolean): Promise<number> {
  const r = await cluster.ctdb(0, persistent ? ['attach', name, 'persistent'] : ['attach', name]);
  expect(r.code, r.stderr).toBe(0);
  for (const db of (await client.call(0, ControlCode.GET_DBMAP, undefined)).reply) {
    if ((await client.call(0, ControlCode.GET_DBNAME, db.dbId)).reply === name) return db.dbId;
  }
  throw new Error(`${name} not attached`);
}

/** A bare unix-socket connection that sees every packet in arrival order, as smbd reads them. */
class RawConnection {
  readonly #socket: net.Socket;
  readonly #queue: Buffer[] = [];
  #waiter: (() => void) | null = null;
  #closed = false;
  #reqid = 100;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    const stream = new PacketStream((packet) => {
      this.#queue.push(Buffer.from(packet));
      this.#waiter?.();
    });
    socket.on('data', (chunk) => stream.push(chunk));
    socket.on('close', () => {
      this.#closed = true;
      this.#waiter?.();
    });
  }

  static async open(path: string): Promise<RawConnection> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(s));
      s.once('error', reject);
    });
    return new RawConnection(socket);
  }

  /** Sends a control; returns its reqid. */
  control(opcode: ControlCode, data: Buffer, options: { srvid?: bigint; destnode?: number } = {}): number {
    const reqid = ++this.#reqid;
    this.#socket.write(
      encodePacket({
        header: makeHeader(Operation.REQ_CONTROL, { destnode: options.destnode ?? Pnn.CURRENT_NODE, srcnode: 0, reqid }),
        opcode,
        srvid: options.srvid ?? 0n,
        clientId: 0,
        flags: 0,
        data,
      }),
    );
    return reqid;
  }

  async next(timeoutMs = 30_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      if (this.#closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = null;
    }
    return this.#queue.shift() as Buffer;
  }

  async reply(reqid: number): Promise<ReplyControl> {
    const packet = decodePacket(await this.next());
    expect(packet.header.operation, 'a REPLY_CONTROL').toBe(Operation.REPLY_CONTROL);
    expect(packet.header.reqid).toBe(reqid);
    return packet as ReplyControl;
  }

  close(): void {
    this.#socket.destroy();
  }
}

interface StreamedRecord {
  key: string;
  /** The record data: 24-byte ltdb header + value, hex. */
  data: string;
}

interface TraverseStream {
  records: StreamedRecord[];
  /** Arrival time of the end marker (performance.now()). */
  endedAt: number;
  startedAt: number;
}

/**
 * TRAVERSE_START (or _EXT) the way smbd runs it, checking the wire on the way: the reply comes
 * before any record, every message is one exact rec_data carrying our reqid, the stream ends
 * with the 16-byte empty rec_data. `onReply` runs as soon as the reply is in.
 */
async function rawTraverse(
  socket: string,
  dbId: number,
  options: { ext?: boolean; withEmptyRecords?: boolean; onReply?: () => void } = {},
): Promise<TraverseStream> {
  const conn = await RawConnection.open(socket);
  try {
    const srvid = TEST_SRVID | BigInt(Math.floor(Math.random() * 0xffffff));
    const traverseReqid = 0x5eed;
    expect((await conn.reply(conn.control(ControlCode.REGISTER_SRVID, Buffer.alloc(0), { srvid }))).status).toBe(0);
    const startedAt = performance.now();
    const start = { dbId, reqid: traverseReqid, srvid };
    const request =
      options.ext === true
        ? encodeControlRequest(ControlCode.TRAVERSE_START_EXT, { ...start, withEmptyRecords: options.withEmptyRecords ?? false })
        : encodeControlRequest(ControlCode.TRAVERSE_START, start);
    const reqid = conn.control(options.ext === true ? ControlCode.TRAVERSE_START_EXT : ControlCode.TRAVERSE_START, request, { srvid });
    const reply = await conn.reply(reqid);
    expect(reply.status).toBe(0);
    options.onReply?.();
    // Checked without expect() per record: 20k assertions would time the test, not the daemon.
    const records: StreamedRecord[] = [];
    const violations = new Set<string>();
    for (;;) {
      const raw = await conn.next();
      const msg = decodePacket(raw) as ReqMessage;
      if (msg.header.operation !== Operation.REQ_MESSAGE || msg.srvid !== srvid) {
        violations.add(`operation ${msg.header.operation} srvid ${msg.srvid} after the reply`);
        continue;
      }
      const datalen = raw.readUInt32LE(40);
      const length = msg.data.readUInt32LE(0);
      const keylen = msg.data.readUInt32LE(8);
      const reclen = msg.data.readUInt32LE(12);
      if (length !== datalen) violations.add('rec_data length != message datalen');
      if (16 + keylen + reclen !== length) violations.add('rec_data length != 16 + key + data');
      if (msg.data.readUInt32LE(4) !== traverseReqid) violations.add('rec_data reqid is not the client reqid');
      if (keylen === 0 && reclen === 0) {
        expect([...violations]).toEqual([]);
        return { records, endedAt: performance.now(), startedAt };
      }
      if (reclen < 24) violations.add('record data shorter than the ltdb header');
      records.push({ key: msg.data.subarray(16, 16 + keylen).toString('latin1'), data: msg.data.subarray(16 + keylen, length).toString('hex') });
    }
  } finally {
    conn.close();
  }
}

/** Nodes' records interleave in arrival order: streams are compared sorted. */
const byKeyAndData = (a: StreamedRecord, b: StreamedRecord): number => {
  const x = a.key + a.data;
  const y = b.key + b.data;
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Engines of a few nodes joined by an in-process network; each node has its own file. */
class EngineNetwork {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'traverse-engine-'));
  readonly engines: TraverseEngine[] = [];
  readonly dbs: TraversedDatabase[] = [];
  /** Messages to the client's srvid, per node, as rec_data. */
  readonly delivered: Buffer[][] = [];
  readonly controls: { from: number; dest: number; opcode: ControlCode }[] = [];
  readonly inactive = new Set<number>();
  /** Nodes that have stopped: what is sent to them is lost. */
  readonly silent = new Set<number>();
  timeouts = 0;

  constructor(nodes: number, options: { volatile: boolean; vnnMap?: number[]; timeoutMs?: number }) {
    const logger = createLogger({ location: 'file:/dev/null', level: 'ERROR', env: {} });
    const all = Array.from({ length: nodes }, (_, pnn) => pnn);
    for (const pnn of all) {
      const file = TdbFile.open(path.join(this.dir, `db.tdb.${pnn}`), { hashSize: 17 });
      this.dbs.push({ id: 0x1234, name: 'db.tdb', volatile: options.volatile, file });
      this.delivered.push([]);
      this.engines.push(
        new TraverseEngine({
          pnn,
          logger,
          activeNodes: () => all.filter((p) => !this.inactive.has(p)),
          isActive: (p) => !this.inactive.has(p),
          isConnected: () => true,
          vnnMap: () => options.vnnMap ?? all,
          sendControl: (dest, opcode, data) => {
            for (const target of dest === Pnn.BROADCAST_CONNECTED ? all : [dest]) {
              this.controls.push({ from: pnn, dest: target, opcode });
              setImmediate(() => this.#receive(pnn, target, opcode, data));
            }
          },
          deliver: (_srvid, data) => this.delivered[pnn].push(data),
          traverseTimeoutMs: () => options.timeoutMs ?? 20_000,
          countTimeout: () => this.timeouts++,
        }),
      );
    }
  }

  store(pnn: number, key: string, dmaster: number, value: string | null): void {
    this.dbs[pnn].file.store(key, buildLtdbRecord({ rsn: 1n, dmaster, reserved1: 0, flags: 0 }, value === null ? undefined : Buffer.from(value)));
  }

  /** Starts a traverse on node 0 and resolves with what its client got once the end marker came. */
  async traverse(options: { withEmptyRecords?: boolean; clientAlive?: () => boolean; waitMs?: number } = {}): Promise<{ key: string; value: string }[]> {
    const out = this.delivered[0];
    const request = { dbId: 0x1234, reqid: 42, srvid: 7n, withEmptyRecords: options.withEmptyRecords ?? false };
    this.engines[0].start(this.dbs[0], request, options.clientAlive ?? (() => true));
    expect(out.length, 'nothing before the reply').toBe(0);
    await until(() => out.length > 0 && isEndMarker(out[out.length - 1]), options.waitMs);
    return out.slice(0, -1).map((buf) => {
      const { reqid, key, data } = recDataCodec.pull(buf, 0, buf.length).value;
      expect(reqid).toBe(42);
      return { key: key.toString(), value: data.subarray(24).toString() };
    });
  }

  close(): void {
    for (const db of this.dbs) db.file.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  #receive(from: number, target: number, opcode: ControlCode, data: Buffer): void {
    if (this.silent.has(target)) return;
    const engine = this.engines[target];
    switch (opcode) {
      case ControlCode.TRAVERSE_ALL:
        engine.serve(this.dbs[target], { ...decodeControlRequest(ControlCode.TRAVERSE_ALL, data), withEmptyRecords: false });
        break;
      case ControlCode.TRAVERSE_ALL_EXT:
        engine.serve(this.dbs[target], decodeControlRequest(ControlCode.TRAVERSE_ALL_EXT, data));
        break;
      case ControlCode.TRAVERSE_DATA:
        engine.data(from, decodeControlRequest(ControlCode.TRAVERSE_DATA, data));
        break;
      case ControlCode.TRAVERSE_KILL: {
        const { dbId, reqid, srvid } = decodeControlRequest(ControlCode.TRAVERSE_KILL, data);
        engine.kill(dbId, reqid, srvid);
        break;
      }
      default:
        throw new Error(`unexpected control ${opcode}`);
    }
  }
}

function isEndMarker(buf: Buffer): boolean {
  return buf.length === 16 && buf.readUInt32LE(8) === 0 && buf.readUInt32LE(12) === 0;
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const keys = (records: { key: string }[]): string[] => records.map((r) => r.key).sort();

describe('traverse engine on an in-process network', () => {
  let net3: EngineNetwork | undefined;
  afterEach(() => net3?.close());

  it('volatile: every active node reports the non-empty records it is dmaster of; empty ones on request', async () => {
    const n = (net3 = new EngineNetwork(3, { volatile: true }));
    for (let pnn = 0; pnn < 3; pnn++) {
      n.store(pnn, `own-${pnn}`, pnn, `v${pnn}`);
      n.store(pnn, `stale-${pnn}`, (pnn + 1) % 3, 'old copy');
      n.store(pnn, `deleted-${pnn}`, pnn, null);
    }
    n.dbs[1].file.store('not-a-ctdb-record', Buffer.from('short'));
    expect(keys(await n.traverse())).toEqual(['own-0', 'own-1', 'own-2']);
    n.delivered[0].length = 0;
    expect(keys(await n.traverse({ withEmptyRecords: true }))).toEqual(['deleted-0', 'deleted-1', 'deleted-2', 'own-0', 'own-1', 'own-2']);
    const opcodes = n.controls.filter((c) => c.from === 0).map((c) => c.opcode);
    expect(opcodes.filter((o) => o === ControlCode.TRAVERSE_ALL)).toHaveLength(3);
    expect(opcodes.filter((o) => o === ControlCode.TRAVERSE_ALL_EXT)).toHaveLength(3);
    expect(opcodes).not.toContain(ControlCode.TRAVERSE_KILL);
  });

  it('persistent: one node walks, this one when it is in the vnn map, else the first of the map', async () => {
    const n = (net3 = new EngineNetwork(3, { volatile: false, vnnMap: [2, 1] }));
    for (let pnn = 0; pnn < 3; pnn++) n.store(pnn, `from-${pnn}`, 0, null);
    expect(keys(await n.traverse())).toEqual(['from-2']);
    const walkers = n.controls.filter((c) => c.opcode === ControlCode.TRAVERSE_ALL).map((c) => c.dest);
    expect(walkers).toEqual([2]);
  });

  it('a stopped node: the client gets the others records and the end marker after TraverseTimeout; walks are killed', async () => {
    const n = (net3 = new EngineNetwork(3, { volatile: true, timeoutMs: 300 }));
    for (let pnn = 0; pnn < 3; pnn++) n.store(pnn, `own-${pnn}`, pnn, 'v');
    n.silent.add(2);
    const t0 = performance.now();
    expect(keys(await n.traverse())).toEqual(['own-0', 'own-1']);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(n.timeouts).toBe(1);
    expect(n.controls.filter((c) => c.opcode === ControlCode.TRAVERSE_KILL).map((c) => c.dest)).toEqual([0, 1, 2]);
  });

  it('a node that leaves the cluster is not waited for', async () => {
    const n = (net3 = new EngineNetwork(3, { volatile: true }));
    for (let pnn = 0; pnn < 3; pnn++) n.store(pnn, `own-${pnn}`, pnn, 'v');
    n.silent.add(1);
    setTimeout(() => n.inactive.add(1), 100);
    expect(keys(await n.traverse())).toEqual(['own-0', 'own-2']);
    expect(n.timeouts).toBe(0);
  });

  it('a client that goes away gets nothing more, and the walks are killed', async () => {
    const n = (net3 = new EngineNetwork(3, { volatile: true }));
    for (let pnn = 0; pnn < 3; pnn++) n.store(pnn, `own-${pnn}`, pnn, 'v');
    let alive = true;
    n.silent.add(2);
    const done = n.traverse({ clientAlive: () => alive, waitMs: 2_000 }).catch((err: Error) => err);
    await until(() => n.delivered[0].length === 2);
    alive = false;
    expect(await done).toBeInstanceOf(Error);
    expect(n.delivered[0]).toHaveLength(2);
    expect(n.controls.filter((c) => c.opcode === ControlCode.TRAVERSE_KILL)).toHaveLength(3);
    expect(n.engines[0].data(1, { reqid: 1, key: Buffer.alloc(0), data: Buffer.alloc(0) })).toBe(false);
  });

  it('TRAVERSE_KILL stops a walk before it sends anything', async () => {
    const n = (net3 = new EngineNetwork(2, { volatile: true }));
    n.store(1, 'own-1', 1, 'v');
    n.engines[1].serve(n.dbs[1], { dbId: 0x1234, reqid: 5, pnn: 0, clientReqid: 42, srvid: 7n, withEmptyRecords: false });
    n.engines[1].kill(0x1234, 42, 7n);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(n.controls).toEqual([]);
  });
});

describe('traverse side by side: 3 nodes of ours and 3 of Debian ctdbd', () => {
  const { ours, real } = useSideBySide(3);
  const ids = new Map<TestCluster, { vol: number; pers: number; big: number }>();
  const clients: CtdbClient[] = [];

  beforeAll(async () => {
    for (const cluster of [ours(), real()]) {
      const client = await CtdbClient.connect(cluster.node(0).socket);
      clients.push(client);
      const vol = await attach(cluster, client, 'trav_vol.tdb', false);
      const pers = await attach(cluster, client, 'trav_pers.tdb', true);
      const big = await attach(cluster, client, 'trav_big.tdb', false);
      for (const pnn of NODES) {
        await writeRecords(client, pnn, vol, volatileSeed(pnn));
        await writeRecords(client, pnn, pers, persistentSeed(pnn));
        await writeRecords(client, pnn, big, bigSeed(pnn));
      }
      ids.set(cluster, { vol, pers, big });
    }
  }, 180_000);
  afterAll(() => clients.forEach((c) => c.close()));

  /** Runs the tool on both; same exit code and output (record blocks sorted if `sort`). */
  async function compareDump(pnn: number, args: string[], sort: boolean): Promise<{ stdout: string; oursMs: number; realMs: number }> {
    const t0 = performance.now();
    const o = await ours().ctdb(pnn, args);
    const t1 = performance.now();
    const r = await real().ctdb(pnn, args);
    const t2 = performance.now();
    const view = (res: { code: number; stdout: string; stderr: string }, cluster: TestCluster) => ({
      code: res.code,
      stdout: mask(sort ? sortedDump(res.stdout) : res.stdout, cluster),
      stderr: mask(res.stderr, cluster),
    });
    expect(view(o, ours()), `ctdb ${args.join(' ')} on node ${pnn}`).toEqual(view(r, real()));
    return { stdout: o.stdout, oursMs: t1 - t0, realMs: t2 - t1 };
  }

  it('catdb of a volatile database: each node reports the records it is dmaster of, non-empty ones only', async () => {
    for (const pnn of NODES) {
      const { stdout } = await compareDump(pnn, ['catdb', 'trav_vol.tdb'], true);
      const authoritative = NODES.flatMap((n) => volatileSeed(n).filter((r) => r.dmaster === n && r.value !== null));
      expect(stdout).toContain(`Dumped ${authoritative.length} records`);
      expect(stdout).not.toMatch(/stale-|deleted-/);
    }
  });

  it('catdb of a persistent database shows the copy of the node asked, in the same order as ctdbd', async () => {
    for (const pnn of NODES) {
      const { stdout } = await compareDump(pnn, ['catdb', 'trav_pers.tdb'], false);
      expect(stdout).toContain(`Dumped ${PER_NODE} records`);
      expect(stdout).toContain(`pers-${pnn}`);
    }
  });

  it('cattdb, catdb by id and catdb of an unknown database print the same', async () => {
    for (const pnn of NODES) {
      await compareDump(pnn, ['cattdb', 'trav_vol.tdb'], false);
      await compareDump(pnn, ['cattdb', 'trav_pers.tdb'], false);
    }
    const dbId = `0x${ids.get(ours())?.vol.toString(16)}`;
    expect(dbId).toBe(`0x${ids.get(real())?.vol.toString(16)}`);
    await compareDump(1, ['catdb', dbId], true);
    await compareDump(0, ['catdb', 'no_such_db.tdb'], false);
  });

  it('the raw stream is what smbd reads: reply first, exact rec_data messages, 16-byte end marker', async () => {
    for (const [name, ext, withEmptyRecords] of [
      ['vol', false, false],
      ['vol', true, true],
      ['pers', false, false],
      ['pers', true, true],
    ] as const) {
      const streams = await Promise.all(
        [ours(), real()].map(async (cluster) => {
          const ids_ = ids.get(cluster);
          if (ids_ === undefined) throw new Error('not seeded');
          return (await rawTraverse(cluster.node(0).socket, ids_[name], { ext, withEmptyRecords })).records.sort(byKeyAndData);
        }),
      );
      expect(streams[0], `${name} ext=${ext} withEmptyRecords=${withEmptyRecords}`).toEqual(streams[1]);
      const empty = streams[0].filter((r) => r.data.length === 48);
      // Volatile: deleted records only when asked for; persistent databases are not filtered.
      expect(empty.length > 0, `${name} empty records`).toBe(name === 'pers' || withEmptyRecords);
    }
  });

  it('bad requests fail the same way on both', async () => {
    const statuses = async (cluster: TestCluster): Promise<number[]> => {
      const client = clients[cluster === ours() ? 0 : 1];
      const vol = ids.get(cluster)?.vol ?? 0;
      const start = encode(traverseStartCodec, { dbId: vol, reqid: 1, srvid: TEST_SRVID });
      const unknownDb = encode(traverseStartCodec, { dbId: 0x0badf00d, reqid: 1, srvid: TEST_SRVID });
      const badData = Buffer.alloc(20);
      badData.writeUInt32LE(99, 0);
      const unknownReqid = Buffer.alloc(16);
      unknownReqid.writeUInt32LE(16, 0);
      unknownReqid.writeUInt32LE(0x7ffffff0, 4);
      const requests: [ControlCode, Buffer][] = [
        [ControlCode.TRAVERSE_START, start.subarray(0, 15)],
        [ControlCode.TRAVERSE_START, unknownDb],
        [ControlCode.TRAVERSE_START_EXT, start],
        [ControlCode.TRAVERSE_ALL, Buffer.alloc(23)],
        [ControlCode.TRAVERSE_ALL_EXT, Buffer.alloc(24)],
        [ControlCode.TRAVERSE_DATA, badData],
        [ControlCode.TRAVERSE_DATA, unknownReqid],
        [ControlCode.TRAVERSE_KILL, unknownDb],
        [ControlCode.TRAVERSE_KILL, start],
      ];
      const out: number[] = [];
      for (const [code, data] of requests) out.push((await client.control(0, code, data, { timeoutMs: 10_000 })).status);
      // Forwarded to another node, a start has no client there to send records to.
      out.push((await client.control(1, ControlCode.TRAVERSE_START, start, { timeoutMs: 10_000 })).status);
      return out;
    };
    const [o, r] = [await statuses(ours()), await statuses(real())];
    expect(o).toEqual(r);
    expect(o).toEqual([-1, -1, -1, -1, -1, -1, -1, -1, 0, -1]);
  });

  it(`${BIG_TOTAL} records from 3 nodes: complete, and a ping sent after the reply is answered before the end`, async () => {
    const timings: string[] = [];
    const counts: number[] = [];
    for (const [cluster, client] of [
      [ours(), clients[0]],
      [real(), clients[1]],
    ] as const) {
      let pingMs = Number.NaN;
      let pingAnsweredAt = Number.POSITIVE_INFINITY;
      let ping: Promise<void> = Promise.resolve();
      const stream = await rawTraverse(cluster.node(0).socket, ids.get(cluster)?.big ?? 0, {
        onReply: () => {
          const sent = performance.now();
          ping = client.control(0, ControlCode.PING, Buffer.alloc(0), { timeoutMs: 10_000 }).then((r) => {
            expect(r.status).toBeGreaterThanOrEqual(0);
            pingAnsweredAt = performance.now();
            pingMs = pingAnsweredAt - sent;
          });
        },
      });
      await ping;
      counts.push(stream.records.length);
      const totalMs = stream.endedAt - stream.startedAt;
      timings.push(`${cluster.impl}: ${totalMs.toFixed(0)} ms (ping ${pingMs.toFixed(1)} ms)`);
      if (cluster === ours()) expect(pingAnsweredAt).toBeLessThan(stream.endedAt);
    }
    expect(counts).toEqual([BIG_TOTAL, BIG_TOTAL]);
    console.log(`raw traverse of ${BIG_TOTAL} records over 3 nodes: ${timings.join(', ')}`);
    const catdb = await compareDump(0, ['catdb', 'trav_big.tdb'], true);
    expect(catdb.stdout).toContain(`Dumped ${BIG_TOTAL} records`);
    console.log(`ctdb catdb of ${BIG_TOTAL} records: ours ${catdb.oursMs.toFixed(0)} ms, ctdbd ${catdb.realMs.toFixed(0)} ms`);
  }, 120_000);

  it('a client that disconnects mid-traverse stops it; the next traverse is complete', async () => {
    for (const cluster of [ours(), real()]) {
      const big = ids.get(cluster)?.big ?? 0;
      const conn = await RawConnection.open(cluster.node(0).socket);
      const srvid = TEST_SRVID | 0x77n;
      await conn.reply(conn.control(ControlCode.REGISTER_SRVID, Buffer.alloc(0), { srvid }));
      const reqid = conn.control(ControlCode.TRAVERSE_START, encode(traverseStartCodec, { dbId: big, reqid: 9, srvid }), { srvid });
      expect((await conn.reply(reqid)).status).toBe(0);
      conn.close();
      expect((await rawTraverse(cluster.node(0).socket, big)).records.length).toBe(BIG_TOTAL);
      expect((await cluster.ctdb(0, ['ping'])).code).toBe(0);
    }
  }, 60_000);

  it('a node that stops answering ends the traverse after TraverseTimeout with the other nodes records', async () => {
    const elapsed: number[] = [];
    const dumps: string[] = [];
    try {
      for (const cluster of [ours(), real()]) {
        expect((await cluster.ctdb(0, ['setvar', 'TraverseTimeout', '3'])).code).toBe(0);
        cluster.kill(2, 'SIGSTOP');
      }
      for (const cluster of [ours(), real()]) {
        const t0 = performance.now();
        const r = await cluster.ctdb(0, ['catdb', 'trav_vol.tdb'], { timeoutMs: 30_000 });
        elapsed.push(performance.now() - t0);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain('own-1-');
        expect(r.stdout).not.toContain('own-2-');
        dumps.push(mask(sortedDump(r.stdout), cluster));
      }
    } finally {
      for (const cluster of [ours(), real()]) {
        cluster.kill(2, 'SIGCONT');
        await cluster.ctdb(0, ['setvar', 'TraverseTimeout', '20']);
      }
    }
    expect(dumps[0]).toEqual(dumps[1]);
    for (const ms of elapsed) expect(ms).toBeGreaterThan(2_500);
    console.log(`catdb with a stopped node (TraverseTimeout 3): ours ${elapsed[0].toFixed(0)} ms, ctdbd ${elapsed[1].toFixed(0)} ms`);
  }, 90_000);
});
