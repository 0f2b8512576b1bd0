// Raw rec_buffer walking/packing and the LMDB staging store, without daemons.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LtdbFlag, MESSAGE_HEADROOM, Operation, PACKET_TAILROOM, decodePacket, decodeRecBuffer, encodePacket, encodeRecBuffer, frameMessage, makeHeader, type ReqMessage } from '../../src/protocol';
import { RecBufferError, RecBufferPacker, forEachRecord, isEmptyRecord, recordDmaster, recordKey, recordRsn } from '../../src/protocol/rec-buffer';
import { ALL_NODES, MemoryBudget, MergingStage, fromNode, highestRsn, type Outcome } from '../../workers/staging-store';

const DB = 0x1234;

function data(rsn: number, dmaster: number, value: string, flags = 0): Buffer {
  const d = Buffer.alloc(24 + value.length);
  d.writeBigUInt64LE(BigInt(rsn), 0);
  d.writeUInt32LE(dmaster, 8);
  d.writeUInt32LE(flags, 16);
  d.write(value, 24);
  return d;
}

function buffer(records: { key: string | Buffer; rsn: number; dmaster: number; value: string; flags?: number }[], dbId = DB): Buffer {
  return encodeRecBuffer({ dbId, records: records.map((r) => ({ reqid: 0, key: Buffer.from(r.key), data: data(r.rsn, r.dmaster, r.value, r.flags) })) });
}

function walk(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  forEachRecord(buf, DB, (r) => out.push(Buffer.from(r)));
  return out;
}

describe('rec_buffer walking', () => {
  it('yields each record with its header fields', () => {
    const records = walk(buffer([{ key: 'a', rsn: 7, dmaster: 2, value: 'x' }, { key: 'bb', rsn: 9, dmaster: 1, value: '' }]));
    expect(records.map((r) => recordKey(r).toString())).toEqual(['a', 'bb']);
    expect(records.map(recordRsn)).toEqual([7n, 9n]);
    expect(records.map(recordDmaster)).toEqual([2, 1]);
    expect(records.map(isEmptyRecord)).toEqual([false, true]);
  });

  it.each([
    ['another database', (b: Buffer) => b.writeUInt32LE(DB + 1, 0), /for db 0x1235 where 0x1234/],
    ['a count beyond the data', (b: Buffer) => b.writeUInt32LE(3, 4), /ends inside record 2/],
    ['a record length beyond the buffer', (b: Buffer) => b.writeUInt32LE(1000, 8), /length 1000/],
    ['data too short for a header', (b: Buffer) => b.writeUInt32LE(10, 8 + 12), /cannot hold an ltdb header/],
  ])('rejects %s before visiting anything', (_what, corrupt, message) => {
    const buf = buffer([{ key: 'a', rsn: 1, dmaster: 0, value: 'x' }, { key: 'b', rsn: 1, dmaster: 0, value: 'y' }]);
    corrupt(buf);
    let visited = 0;
    expect(() => forEachRecord(buf, DB, () => visited++)).toThrow(RecBufferError);
    expect(() => forEachRecord(buf, DB, () => visited++)).toThrow(message);
    expect(visited).toBe(0);
  });

  it('rejects a buffer shorter than its header', () => {
    expect(() => forEachRecord(Buffer.alloc(5), DB, () => undefined)).toThrow(/shorter than its header/);
  });
});

describe('rec_buffer packing', () => {
  it('closes a buffer once it passes the limit, records copied as they are', () => {
    const records = walk(buffer(Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, rsn: i, dmaster: 2, value: 'v'.repeat(50), flags: LtdbFlag.RO_FLAGS }))));
    const packer = new RecBufferPacker(DB, 200);
    const out = [...records.map((r) => packer.add(r)), packer.finish()].filter((b): b is Buffer => b !== null);
    // Records are 92 bytes: a buffer closes at its third (8 + 3 × 92 > 200), so 3 + 3 + 3 + 1.
    expect(out.map((b) => b.readUInt32LE(4))).toEqual([3, 3, 3, 1]);
    expect(packer.records).toBe(10);
    expect(packer.bytes).toBe(out.reduce((s, b) => s + b.length, 0));
    const decoded = out.flatMap((b) => decodeRecBuffer(b).records);
    expect(decoded.map((r) => r.key.toString())).toEqual(records.map((r) => recordKey(r).toString()));
    // Headers included: the push plan rewrites them, the packer does not.
    expect(Buffer.concat(out.map((b) => b.subarray(8)))).toEqual(Buffer.concat(records));
  });

  it('has nothing to finish when empty', () => {
    const packer = new RecBufferPacker(DB, 1_000_000);
    expect(packer.finish()).toBeNull();
    const [record] = walk(buffer([{ key: 'p', rsn: 5, dmaster: 1, value: 'x' }]));
    packer.add(record);
    expect((packer.finish() as Buffer).subarray(8)).toEqual(record);
  });
});

describe('rec_buffer packing into message packets', () => {
  const header = makeHeader(Operation.REQ_MESSAGE, { destnode: 2, srcnode: 1, reqid: 0 });
  const srvid = 0xf10000001234n;
  const framed = (): RecBufferPacker =>
    new RecBufferPacker(DB, 200, { headroom: MESSAGE_HEADROOM, tailroom: PACKET_TAILROOM, frame: (room, length) => frameMessage(room, length, header, srvid) });

  it('gives the packets sendMessage would send for the same rec_buffers, reusing recycled memory', () => {
    // Record lengths that leave the rec_buffers unaligned, so the packets carry padding.
    const records = walk(buffer(Array.from({ length: 7 }, (_, i) => ({ key: `key${i}`, rsn: i, dmaster: 2, value: 'v'.repeat(45 + i) }))));
    const plain = new RecBufferPacker(DB, 200);
    const expected = [...records.map((r) => plain.add(r)), plain.finish()].filter((b): b is Buffer => b !== null);
    const packer = framed();
    const packets: Buffer[] = [];
    for (const r of records) {
      const packet = packer.add(r);
      if (packet === null) continue;
      packets.push(Buffer.from(packet));
      packer.recycle(packet);
    }
    packets.push(Buffer.from(packer.finish() as Buffer));
    expect(packets).toEqual(expected.map((data) => encodePacket({ header, srvid, data })));
    expect(packets.map((p) => (decodePacket(p) as ReqMessage).data)).toEqual(expected);
    expect(packer.bytes).toBe(plain.bytes);
  });

  it('packs into a recycled buffer instead of a new one', () => {
    const records = walk(buffer(Array.from({ length: 4 }, (_, i) => ({ key: `k${i}`, rsn: i, dmaster: 2, value: 'v'.repeat(80) }))));
    const packer = framed();
    const first = [packer.add(records[0]), packer.add(records[1])].find((b) => b !== null) as Buffer;
    packer.recycle(first);
    const second = [packer.add(records[2]), packer.add(records[3]), packer.finish()].find((b) => b !== null) as Buffer;
    expect(second.buffer).toBe(first.buffer);
  });
});

describe('staging', () => {
  const stages: MergingStage[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'staging-test-'));
  afterEach(async () => {
    await Promise.all(stages.splice(0).map((s) => s.destroy()));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  /** A stage whose memory budget is `budget` bytes (0: everything goes to LMDB at once). */
  const merging = (budget = 1 << 30, label = 'test.tdb'): MergingStage => {
    const stage = new MergingStage({ dbId: DB, nodes: 3, label, stagingDir: dir, merge: highestRsn(0), source: null, budget: new MemoryBudget(budget) });
    stages.push(stage);
    return stage;
  };
  const contents = (stage: MergingStage) =>
    new Map([...stage.entries()].map(([r]) => [recordKey(r).toString(), r.subarray(16 + recordKey(r).length + 24).toString()]));
  const kinds = [
    ['in memory', 1 << 30],
    ['in LMDB', 0],
  ] as const;

  it.each(kinds)('%s: keeps the highest RSN; on a tie the copy naming the recovery master loses, else the first node', (_kind, budget) => {
    const stage = merging(budget);
    stage.add(buffer([{ key: 'up', rsn: 1, dmaster: 1, value: 'old' }, { key: 'down', rsn: 5, dmaster: 1, value: 'new' }, { key: 'tieMine', rsn: 3, dmaster: 0, value: 'mine' }, { key: 'tieOther', rsn: 3, dmaster: 1, value: 'first' }]), 0);
    stage.add(buffer([{ key: 'up', rsn: 2, dmaster: 2, value: 'newer' }, { key: 'down', rsn: 4, dmaster: 2, value: 'older' }, { key: 'tieMine', rsn: 3, dmaster: 2, value: 'theirs' }, { key: 'tieOther', rsn: 3, dmaster: 2, value: 'second' }]), 1);
    expect(contents(stage)).toEqual(new Map([['up', 'newer'], ['down', 'new'], ['tieMine', 'theirs'], ['tieOther', 'first']]));
  });

  it('picks the same winners as a fold in node order, whatever order the nodes arrive in', () => {
    // Every combination of rsn (1-2) and dmaster (recovery master 0 or another) on 3 nodes.
    const copies = [1, 2].flatMap((rsn) => [0, 5].map((dmaster) => ({ rsn, dmaster })));
    const keys: { key: string; copies: (typeof copies)[number][] }[] = [];
    for (const a of copies) for (const b of copies) for (const c of copies) keys.push({ key: `k${keys.length}`, copies: [a, b, c] });
    const perNode = [0, 1, 2].map((node) => buffer(keys.map(({ key, copies: cs }) => ({ key, ...cs[node], value: `${key}@${node}` }))));
    // 4.17's recdb_add, applied node after node.
    const folded = new Map<string, string>();
    for (const { key, copies: cs } of keys) {
      let winner = 0;
      for (let node = 1; node < 3; node++) {
        if (cs[node].rsn > cs[winner].rsn || (cs[node].rsn === cs[winner].rsn && cs[winner].dmaster === 0)) winner = node;
      }
      folded.set(key, `${key}@${winner}`);
    }
    for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0]]) {
      const stage = merging();
      for (const node of order) stage.add(perNode[node], node);
      expect(contents(stage), `arrival order ${order.join(',')}`).toEqual(folded);
    }
  });

  it.each(kinds)('%s: stages empty and huge keys', (_kind, budget) => {
    const stage = merging(budget);
    const huge = Buffer.alloc(5000, 'k');
    expect(stage.add(buffer([{ key: '', rsn: 1, dmaster: 0, value: 'empty key' }, { key: huge, rsn: 1, dmaster: 0, value: 'huge key' }]), 0)).toBe(2);
    stage.add(buffer([{ key: huge, rsn: 2, dmaster: 1, value: 'huge key 2' }]), 1);
    const got = contents(stage);
    expect(got.get('')).toBe('empty key');
    expect(got.get(huge.toString())).toBe('huge key 2');
  });

  it('moves to LMDB when the budget runs out and merges on there', () => {
    const first = buffer(Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, rsn: 5, dmaster: 1, value: 'first' })));
    const cost = Math.ceil((first.length + 100 * (64 + 3 * 12)) / 1024) * 1024;
    const budget = new MemoryBudget(cost);
    const stage = new MergingStage({ dbId: DB, nodes: 3, label: 'spill.tdb', stagingDir: dir, merge: highestRsn(0), source: null, budget });
    stages.push(stage);
    stage.add(first, 0);
    expect(stage.spilled).toBe(false);
    expect(budget.used).toBe(cost);
    stage.add(buffer([{ key: 'k1', rsn: 6, dmaster: 2, value: 'second' }, { key: 'k2', rsn: 4, dmaster: 2, value: 'stale' }]), 1);
    expect(stage.spilled).toBe(true);
    expect(budget.used).toBe(0);
    const got = contents(stage);
    expect(got.size).toBe(100);
    expect([got.get('k1'), got.get('k2'), got.get('k99')]).toEqual(['second', 'first', 'first']);
    expect(fs.readdirSync(dir).some((f) => f.startsWith('recdb.spill.tdb.'))).toBe(true);
  });

  it('shares one budget between stages (and threads) through its counter', () => {
    const counter = new SharedArrayBuffer(4);
    const records = buffer(Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, rsn: 1, dmaster: 1, value: 'x' })));
    const cost = Math.ceil((records.length + 100 * (64 + 3 * 12)) / 1024) * 1024;
    const [first, second] = ['one.tdb', 'two.tdb'].map((label) => {
      const stage = new MergingStage({ dbId: DB, nodes: 3, label, stagingDir: dir, merge: highestRsn(0), source: null, budget: new MemoryBudget(cost + 1024, counter) });
      stages.push(stage);
      return stage;
    });
    first.add(records, 0);
    second.add(records, 0);
    expect([first.spilled, second.spilled]).toEqual([false, true]);
    expect(new MemoryBudget(0, counter).used).toBe(cost);
  });

  it('keeps a record that came padded (trimmed to its exact length) in memory', () => {
    const padded = buffer([{ key: 'a', rsn: 1, dmaster: 1, value: 'x' }, { key: 'b', rsn: 1, dmaster: 1, value: 'y' }]);
    // Pad the first record by 4 bytes, as a sender may.
    const first = padded.readUInt32LE(8);
    const grown = Buffer.concat([padded.subarray(0, 8 + first), Buffer.alloc(4), padded.subarray(8 + first)]);
    grown.writeUInt32LE(first + 4, 8);
    const stage = merging();
    stage.add(grown, 0);
    expect(contents(stage)).toEqual(new Map([['a', 'x'], ['b', 'y']]));
    expect([...stage.entries()].map(([r]) => r.readUInt32LE(0))).toEqual([first, padded.length - 8 - first]);
  });

  it.each(kinds)('%s: leaves nothing behind and rejects a malformed buffer whole', async (_kind, budget) => {
    const stage = merging(budget, 'gone.tdb');
    const bad = buffer([{ key: 'a', rsn: 1, dmaster: 0, value: 'x' }, { key: 'b', rsn: 1, dmaster: 0, value: 'y' }]);
    bad.writeUInt32LE(3, 4);
    expect(() => stage.add(bad, 0)).toThrow(RecBufferError);
    expect([...stage.entries()]).toEqual([]);
    stage.add(buffer([{ key: 'a', rsn: 1, dmaster: 0, value: 'x' }]), 0);
    await stage.destroy();
    expect(fs.readdirSync(dir).filter((f) => f.includes('gone'))).toEqual([]);
  });

  describe('push plan', () => {
    const RM = 0;
    /** What each node gets (key list per node) and which nodes are wiped. */
    const planOf = (stage: MergingStage, outcome: Outcome = { source: null, rewrite: { dmaster: RM } }) => {
      stage.settle();
      const plan = stage.plan(outcome);
      const gets: string[][] = [[], [], []];
      for (const nodes of plan.deliveries()) {
        const { buffer, offset, length } = plan.record;
        const key = recordKey(buffer.subarray(offset, offset + length)).toString();
        for (let p = 0; p < 3; p++) if (nodes === ALL_NODES || (nodes & (1 << p)) !== 0) gets[p].push(key);
      }
      return { wipe: plan.wipe, gets: gets.map((keys) => keys.sort()), survivors: plan.survivors() };
    };
    /** A copy as a previous recovery by node RM would have stored it. */
    const stored = (key: string, rsn: number, value: string) => ({ key, rsn, dmaster: RM, value, flags: LtdbFlag.MIGRATED_WITH_DATA });

    it.each(kinds)('%s: a node gets only what it does not hold exactly as the push would store it', (kind, budget) => {
      const stage = merging(budget);
      stage.add(buffer([stored('same', 4, 'v'), stored('stale', 3, 'old'), { key: 'unmastered', rsn: 5, dmaster: 0, value: 'u' }]), 0);
      stage.add(buffer([stored('same', 4, 'v'), stored('stale', 4, 'new'), stored('ro', 2, 'r')]), 1);
      stage.add(buffer([stored('same', 4, 'v'), { ...stored('ro', 2, 'r'), flags: LtdbFlag.MIGRATED_WITH_DATA | LtdbFlag.RO_FLAGS }]), 2);
      const { wipe, gets, survivors } = planOf(stage);
      expect(survivors).toBe(4);
      if (kind === 'in LMDB') {
        expect(wipe).toEqual([true, true, true]);
        expect(gets).toEqual([0, 1, 2].map(() => ['ro', 'same', 'stale', 'unmastered']));
        return;
      }
      expect(wipe).toEqual([false, false, false]);
      // 'unmastered' lacks MIGRATED_WITH_DATA on node 0; node 2's 'ro' carries delegation flags.
      expect(gets).toEqual([['ro', 'stale', 'unmastered'], ['unmastered'], ['ro', 'stale', 'unmastered']]);
    });

    it.each(kinds)('%s: what the packers send carries the rewrite once', (_kind, budget) => {
      const stage = merging(budget);
      stage.add(buffer([{ key: 'a', rsn: 5, dmaster: 1, value: 'from 0', flags: LtdbFlag.RO_FLAGS }]), 0);
      stage.add(buffer([{ key: 'a', rsn: 4, dmaster: 1, value: 'from 1' }, { key: 'b', rsn: 1, dmaster: 2, value: 'from 1' }]), 1);
      stage.settle();
      const rewrite = { dmaster: RM };
      const plan = stage.plan({ source: null, rewrite });
      const packer = new RecBufferPacker(DB, 1 << 20);
      for (const _nodes of plan.deliveries()) packer.add(plan.record.buffer, plan.record.offset, plan.record.length);
      const records = decodeRecBuffer(packer.finish() as Buffer).records.sort((x, y) => x.key.compare(y.key));
      expect(records.map((r) => [r.key.toString(), r.data.readUInt32LE(8), r.data.readUInt32LE(16), r.data.subarray(24).toString()])).toEqual([
        ['a', RM, (LtdbFlag.RO_FLAGS | LtdbFlag.MIGRATED_WITH_DATA) >>> 0, 'from 0'],
        ['b', RM, LtdbFlag.MIGRATED_WITH_DATA, 'from 1'],
      ]);
    });

    it('wipes a node that holds a record that goes, sent nothing, or sent a key twice', () => {
      const deleted = merging();
      deleted.add(buffer([stored('gone', 2, 'old'), stored('kept', 1, 'k')]), 0);
      deleted.add(buffer([{ key: 'gone', rsn: 3, dmaster: 1, value: '' }, stored('kept', 1, 'k')]), 1);
      deleted.add(buffer([stored('kept', 1, 'k')]), 2);
      expect(planOf(deleted)).toEqual({ wipe: [true, true, false], gets: [['kept'], ['kept'], []], survivors: 1 });

      const silent = merging();
      silent.add(buffer([stored('a', 1, 'x')]), 0);
      silent.add(buffer([stored('a', 1, 'x'), stored('a', 1, 'x')]), 1);
      expect(planOf(silent)).toEqual({ wipe: [false, true, true], gets: [[], ['a'], ['a']], survivors: 1 });
    });

    const persistent = (): MergingStage => {
      const stage = new MergingStage({ dbId: DB, nodes: 3, label: 'pers.tdb', stagingDir: dir, merge: fromNode(1), source: 1, budget: new MemoryBudget(1 << 30) });
      stages.push(stage);
      return stage;
    };
    const copy = (key: string, value: string, flags = 0) => ({ key, rsn: 1, dmaster: 2, value, flags });

    it('persistent: the source copy as it is; keys only elsewhere go', () => {
      const stage = persistent();
      stage.add(buffer([copy('a', 'old'), copy('b', 'b')]), 0);
      stage.add(buffer([copy('a', 'new'), copy('b', 'b')]), 1);
      stage.add(buffer([copy('a', 'new'), copy('b', 'b'), copy('extra', 'x')]), 2);
      const plan = planOf(stage, { source: 1, rewrite: null });
      expect(plan).toEqual({ wipe: [false, false, true], gets: [['a'], [], ['a', 'b']], survivors: 2 });
    });

    it('persistent: a node that sent the very bytes the source sent is planned as the source', () => {
      const same = [buffer([copy('a', 'x'), copy('b', 'y')]), buffer([copy('c', 'z')])];
      const stage = persistent();
      // Node 0 mirrors the source, node 2 holds the same records cut into other buffers.
      for (const b of same) stage.add(Buffer.from(b), 0);
      for (const b of same) stage.add(Buffer.from(b), 1);
      stage.add(buffer([copy('a', 'x')]), 2);
      stage.add(buffer([copy('b', 'y'), copy('c', 'z')]), 2);
      expect(planOf(stage, { source: 1, rewrite: null })).toEqual({ wipe: [false, false, false], gets: [[], [], []], survivors: 3 });

      // Whatever the source needs, its mirror needs: a delegation flag to drop, a tombstone to wipe.
      const needy = [buffer([copy('a', 'x', LtdbFlag.RO_FLAGS), { key: 'gone', rsn: 2, dmaster: 2, value: '' }])];
      const other = persistent();
      for (const p of [0, 1, 2]) for (const b of needy) other.add(Buffer.from(b), p);
      expect(planOf(other, { source: 1, rewrite: null })).toEqual({ wipe: [true, true, true], gets: [['a'], ['a'], ['a']], survivors: 1 });
    });

    it('persistent: a node known by its digest to mirror the source is planned as the source, unpulled', () => {
      const stage = persistent();
      stage.mirror(0);
      stage.add(buffer([copy('a', 'x', LtdbFlag.RO_FLAGS), copy('b', 'y')]), 1);
      stage.add(buffer([copy('b', 'y')]), 2);
      // Node 0 holds what the source holds: the delegation flag goes on both, node 2 lacks 'a'.
      expect(planOf(stage, { source: 1, rewrite: null })).toEqual({ wipe: [false, false, false], gets: [['a'], ['a'], ['a']], survivors: 2 });

      // A source that sent nothing is wiped, and so is its mirror.
      const empty = persistent();
      empty.mirror(2);
      expect(planOf(empty, { source: 1, rewrite: null }).wipe).toEqual([true, true, true]);
      expect(() => empty.mirror(1)).toThrow('cannot mirror');
    });
  });
});
