// Acceptance: files we write are read identically by libtdb (Debian tdbdump, tdbtool check,
// python3-tdb) and files libtdb writes read back identically through our store, for the
// default and jenkins hashes in fcntl and mutex mode; the same operations give the same bytes.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { TdbFile, TdbFlag } from '../../src/store';
import { DIST_TOOLS, ensureToolsBuilt, makeTempDir, oracle, parseHexDump, randomRecords, run, scaled, writeRecordsFile, type RecordMap } from './helpers';

const RECORDS = scaled(100_000);
const DELETE = 0xffffffff; // an operations file's data length for "delete the key" (oracle.py)
const MUTEX_SIZE_OFFSET = 64; // header field: bytes of the mutex area in front of the header
const tmp = makeTempDir('tdb-roundtrip');
afterAll(() => tmp.cleanup());

const modes = [
  { name: 'fcntl, default hash', seed: 1, flags: TdbFlag.DEFAULT, hashSize: 10007 },
  { name: 'fcntl, jenkins hash', seed: 2, flags: TdbFlag.INCOMPATIBLE_HASH, hashSize: 100001 },
  { name: 'mutex, jenkins hash', seed: 3, flags: TdbFlag.MUTEX_LOCKING | TdbFlag.INCOMPATIBLE_HASH | TdbFlag.NOSYNC, hashSize: 100001 },
];

function expectSameRecords(actual: RecordMap, expected: RecordMap): void {
  expect(actual.size).toBe(expected.size);
  for (const [key, value] of expected) {
    const got = actual.get(key);
    if (got === undefined || !got.equals(value)) expect.fail(`record ${key}: got ${got?.toString('hex')}, want ${value.toString('hex')}`);
  }
}

describe.concurrent.each(modes)('round trip, $name', ({ seed, flags, hashSize }) => {
  test(`${RECORDS} records written by us read identically by libtdb`, async () => {
    ensureToolsBuilt();
    const file = path.join(tmp.dir, `ours-${seed}.tdb`);
    const expected = randomRecords(RECORDS, seed);
    const db = TdbFile.open(file, { hashSize, flags });
    for (const [key, value] of expected) db.store(Buffer.from(key, 'hex'), value);
    // Deletes and growing rewrites exercise the free list, merging and dead records.
    let i = 0;
    for (const [key, value] of [...expected]) {
      if (i % 10 === 0) {
        expect(db.delete(Buffer.from(key, 'hex'))).toBe(true);
        expected.delete(key);
      } else if (i % 7 === 0) {
        const bigger = Buffer.concat([value, value, Buffer.from('grown')]);
        db.store(Buffer.from(key, 'hex'), bigger);
        expected.set(key, bigger);
      }
      i++;
    }
    expect(db.check()).toMatchObject({ ok: true, records: expected.size });
    db.close();

    const [debianDump, ourDump, tdbtool, libtdbView] = await Promise.all([
      run('tdbdump', [file]),
      run(process.execPath, [path.join(DIST_TOOLS, 'tdbdump.js'), file]),
      run('tdbtool', [file, 'check']),
      oracle(['dump', file, String(flags)]),
    ]);
    expect(debianDump.code).toBe(0);
    expect(ourDump.stdout).toBe(debianDump.stdout);
    expect(tdbtool.stdout).toContain(`Database integrity is OK and has ${expected.size} records.`);
    expectSameRecords(parseHexDump(libtdbView), expected);
  }, 180_000);

  test(`${RECORDS} records written by libtdb read identically by us`, async () => {
    const file = path.join(tmp.dir, `libtdb-${seed}.tdb`);
    const recordsFile = path.join(tmp.dir, `libtdb-${seed}.records`);
    const expected = randomRecords(RECORDS, seed + 1);
    writeRecordsFile(recordsFile, expected);
    await oracle(['load', file, String(flags), String(hashSize), recordsFile]);

    const db = TdbFile.open(file, { flags, access: 'rw' });
    try {
      expect(db.info).toMatchObject({ hashSize, jenkinsHash: (flags & TdbFlag.INCOMPATIBLE_HASH) !== 0 });
      const seen: RecordMap = new Map();
      db.traverseRead((key, value) => {
        seen.set(key.toString('hex'), value);
      });
      expectSameRecords(seen, expected);
      for (const [key, value] of expected) {
        const got = db.fetch(Buffer.from(key, 'hex'));
        if (got === undefined || !got.equals(value)) expect.fail(`fetch ${key}`);
      }
      expect(db.check()).toMatchObject({ ok: true, records: expected.size });
    } finally {
      db.close();
    }
  }, 180_000);
});

describe.concurrent.each(modes)('same operations, same file, $name', ({ seed, flags, hashSize }) => {
  test('stores, deletes and growing rewrites leave a file byte-identical to libtdb\'s', async () => {
    // Every fifth record is deleted and every seventh rewritten larger, in the order they came.
    const records = [...randomRecords(scaled(20_000), seed + 7)].map(([key, value]) => ({ key: Buffer.from(key, 'hex'), value }));
    const operations: Array<{ key: Buffer; value?: Buffer }> = records.slice();
    records.forEach(({ key, value }, i) => {
      if (i % 5 === 0) operations.push({ key });
      else if (i % 7 === 0) operations.push({ key, value: Buffer.concat([value, value, Buffer.from('grown')]) });
    });
    const opsFile = path.join(tmp.dir, `ops-${seed}`);
    fs.writeFileSync(opsFile, Buffer.concat(operations.flatMap(({ key, value }) => {
      const lens = Buffer.alloc(8);
      lens.writeUInt32LE(key.length, 0);
      lens.writeUInt32LE(value?.length ?? DELETE, 4);
      return [lens, key, value ?? Buffer.alloc(0)];
    })));
    const theirs = path.join(tmp.dir, `replay-libtdb-${seed}.tdb`);
    const ours = path.join(tmp.dir, `replay-ours-${seed}.tdb`);
    await oracle(['replay', theirs, String(flags), String(hashSize), opsFile]);
    const db = TdbFile.open(ours, { flags, hashSize });
    for (const { key, value } of operations) {
      if (value === undefined) db.delete(key);
      else db.store(key, value);
    }
    db.close();
    // The mutex area holds process-specific pthread state; everything after it must match.
    const [a, b] = [fs.readFileSync(theirs), fs.readFileSync(ours)];
    const mutexArea = a.readUInt32LE(MUTEX_SIZE_OFFSET);
    expect(b.length).toBe(a.length);
    expect(b.subarray(mutexArea).equals(a.subarray(mutexArea))).toBe(true);
  }, 120_000);
});
