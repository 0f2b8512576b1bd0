// Acceptance: files we write are read identically by libtdb (Debian tdbdump, tdbtool check,
// python3-tdb) and files libtdb writes read back identically through our store, for the
// default and jenkins hashes in fcntl and mutex mode.
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { TdbFile, TdbFlag } from '../../src/store';
import { DIST_TOOLS, ensureToolsBuilt, makeTempDir, oracle, parseHexDump, randomRecords, run, scaled, writeRecordsFile, type RecordMap } from './helpers';

const RECORDS = scaled(100_000);
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
