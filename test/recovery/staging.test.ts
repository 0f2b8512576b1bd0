// Raw rec_buffer walking/packing and the LMDB staging store, without daemons.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LtdbFlag, decodeRecBuffer, encodeRecBuffer } from '../../src/protocol';
import { RecBufferError, RecBufferPacker, forEachRecord, isEmptyRecord, recordDmaster, recordKey, recordRsn } from '../../src/protocol/rec-buffer';
import { MergingStage, SpoolStage, highestRsn, type RecordStage } from '../../workers/staging-store';

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
  it('closes a buffer once it passes the limit and rewrites volatile headers', () => {
    const records = walk(buffer(Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, rsn: i, dmaster: 2, value: 'v'.repeat(50), flags: LtdbFlag.RO_FLAGS }))));
    const packer = new RecBufferPacker(DB, 200, { dmaster: 0 });
    const out = [...records.map((r) => packer.add(r)), packer.finish()].filter((b): b is Buffer => b !== null);
    // Records are 92 bytes: a buffer closes at its third (8 + 3 × 92 > 200), so 3 + 3 + 3 + 1.
    expect(out.map((b) => b.readUInt32LE(4))).toEqual([3, 3, 3, 1]);
    expect(packer.records).toBe(10);
    expect(packer.bytes).toBe(out.reduce((s, b) => s + b.length, 0));
    const decoded = out.flatMap((b) => decodeRecBuffer(b).records);
    expect(decoded.map((r) => r.key.toString())).toEqual(records.map((r) => recordKey(r).toString()));
    for (const r of decoded) {
      expect(r.data.readUInt32LE(8)).toBe(0);
      // MIGRATED_WITH_DATA added; read-only flags are the receiving daemon's to strip.
      expect(r.data.readUInt32LE(16)).toBe((LtdbFlag.RO_FLAGS | LtdbFlag.MIGRATED_WITH_DATA) >>> 0);
    }
    // The staged records are untouched.
    expect(recordDmaster(records[0])).toBe(2);
  });

  it('leaves persistent headers alone and has nothing to finish when empty', () => {
    const packer = new RecBufferPacker(DB, 1_000_000, null);
    expect(packer.finish()).toBeNull();
    const [record] = walk(buffer([{ key: 'p', rsn: 5, dmaster: 1, value: 'x' }]));
    packer.add(record);
    expect((packer.finish() as Buffer).subarray(8)).toEqual(record);
  });
});

describe('staging', () => {
  const stages: RecordStage[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'staging-test-'));
  afterEach(async () => {
    await Promise.all(stages.splice(0).map((s) => s.destroy()));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const open = <S extends RecordStage>(stage: S): S => {
    stages.push(stage);
    return stage;
  };
  const merging = (): MergingStage => open(MergingStage.create(dir, 'test.tdb', highestRsn(0)));
  const contents = (store: RecordStage) => new Map([...store.records()].map((r) => [recordKey(r).toString(), r.subarray(16 + recordKey(r).length + 24).toString()]));

  it('keeps the highest RSN; on a tie replaces only a copy naming the recovery master', () => {
    const store = merging();
    store.add(buffer([{ key: 'up', rsn: 1, dmaster: 1, value: 'old' }, { key: 'down', rsn: 5, dmaster: 1, value: 'new' }, { key: 'tieMine', rsn: 3, dmaster: 0, value: 'mine' }, { key: 'tieOther', rsn: 3, dmaster: 1, value: 'first' }]), DB);
    store.nextSource();
    store.add(buffer([{ key: 'up', rsn: 2, dmaster: 2, value: 'newer' }, { key: 'down', rsn: 4, dmaster: 2, value: 'older' }, { key: 'tieMine', rsn: 3, dmaster: 2, value: 'theirs' }, { key: 'tieOther', rsn: 3, dmaster: 2, value: 'second' }]), DB);
    expect(contents(store)).toEqual(new Map([['up', 'newer'], ['down', 'new'], ['tieMine', 'theirs'], ['tieOther', 'first']]));
  });

  it('stages empty and huge keys', () => {
    const store = merging();
    const huge = Buffer.alloc(5000, 'k');
    expect(store.add(buffer([{ key: '', rsn: 1, dmaster: 0, value: 'empty key' }, { key: huge, rsn: 1, dmaster: 0, value: 'huge key' }]), DB)).toBe(2);
    store.nextSource();
    store.add(buffer([{ key: huge, rsn: 2, dmaster: 1, value: 'huge key 2' }]), DB);
    const got = contents(store);
    expect(got.get('')).toBe('empty key');
    expect(got.get(huge.toString())).toBe('huge key 2');
  });

  it('spools a persistent database in pull order', () => {
    const spool = open(SpoolStage.create(dir, 'pers.tdb'));
    expect(spool.add(buffer([{ key: 'x', rsn: 9, dmaster: 0, value: 'a' }, { key: 'y', rsn: 1, dmaster: 2, value: 'b' }]), DB)).toBe(2);
    spool.add(buffer([{ key: 'z', rsn: 1, dmaster: 0, value: 'c' }]), DB);
    expect([...contents(spool)]).toEqual([['x', 'a'], ['y', 'b'], ['z', 'c']]);
    expect([...spool.records()].map(recordRsn)).toEqual([9n, 1n, 1n]);
  });

  it.each([
    ['merging', () => MergingStage.create(dir, 'gone.tdb', highestRsn(0))],
    ['spool', () => SpoolStage.create(dir, 'gone.tdb')],
  ])('%s stage leaves nothing behind and rejects a malformed buffer whole', async (_kind, create) => {
    const stage = create();
    const bad = buffer([{ key: 'a', rsn: 1, dmaster: 0, value: 'x' }, { key: 'b', rsn: 1, dmaster: 0, value: 'y' }]);
    bad.writeUInt32LE(3, 4);
    expect(() => stage.add(bad, DB)).toThrow(RecBufferError);
    expect([...stage.records()]).toEqual([]);
    stage.add(buffer([{ key: 'a', rsn: 1, dmaster: 0, value: 'x' }]), DB);
    await stage.destroy();
    expect(fs.readdirSync(dir).filter((f) => f.includes('gone'))).toEqual([]);
  });
});
