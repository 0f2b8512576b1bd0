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
const RECOVERY_HEAD_OFFSET = 44; // header field: offset of the recovery area
const RECORD_HEADER = 24;
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

type Operation = { key: Buffer; value?: Buffer };

function writeOperations(file: string, operations: readonly Operation[]): string {
  fs.writeFileSync(file, Buffer.concat(operations.flatMap(({ key, value }) => {
    const lens = Buffer.alloc(8);
    lens.writeUInt32LE(key.length, 0);
    lens.writeUInt32LE(value?.length ?? DELETE, 4);
    return [lens, key, value ?? Buffer.alloc(0)];
  })));
  return file;
}

/** Every fifth record is deleted and every seventh rewritten larger, in the order they came. */
function churn(count: number, seed: number): Operation[] {
  const records = [...randomRecords(count, seed)].map(([key, value]) => ({ key: Buffer.from(key, 'hex'), value }));
  const operations: Operation[] = records.slice();
  records.forEach(({ key, value }, i) => {
    if (i % 5 === 0) operations.push({ key });
    else if (i % 7 === 0) operations.push({ key, value: Buffer.concat([value, value, Buffer.from('grown')]) });
  });
  return operations;
}

/**
 * The file with the recovery area's saved copy of the header's recovery-area offset zeroed. A
 * commit saves the old header there; libtdb saves it after pointing it at a new area, we before
 * (so that a rollback also restores the old pointer: see Store::SetupRecovery).
 */
function withoutSavedRecoveryHead(file: Buffer): Buffer {
  const base = file.readUInt32LE(MUTEX_SIZE_OFFSET);
  const area = file.readUInt32LE(base + RECOVERY_HEAD_OFFSET);
  if (area === 0) return file;
  const saved = area + RECORD_HEADER + file.readUInt32LE(base + area + 12); // data_len: bytes of saved pages
  for (let at = area + RECORD_HEADER; at < saved; ) {
    const [offset, length] = [file.readUInt32LE(base + at), file.readUInt32LE(base + at + 4)];
    if (offset <= RECOVERY_HEAD_OFFSET && RECOVERY_HEAD_OFFSET + 4 <= offset + length) file.writeUInt32LE(0, base + at + 8 + RECOVERY_HEAD_OFFSET - offset);
    at += 8 + length;
  }
  return file;
}

/** libtdb (oracle.py) and our store each apply `operations`, then `inTransaction` in one transaction; the files must be equal. */
async function expectSameFile(label: string, flags: number, hashSize: number, operations: readonly Operation[], inTransaction?: readonly Operation[]): Promise<void> {
  const opsFile = writeOperations(path.join(tmp.dir, `ops-${label}`), operations);
  const txnFile = inTransaction === undefined ? [] : [writeOperations(path.join(tmp.dir, `txn-ops-${label}`), inTransaction)];
  const theirs = path.join(tmp.dir, `replay-libtdb-${label}.tdb`);
  const ours = path.join(tmp.dir, `replay-ours-${label}.tdb`);
  await oracle(['replay', theirs, String(flags), String(hashSize), opsFile, ...txnFile]);
  const db = TdbFile.open(ours, { flags, hashSize });
  const apply = (ops: readonly Operation[]): void => {
    for (const { key, value } of ops) {
      if (value === undefined) db.delete(key);
      else db.store(key, value);
    }
  };
  apply(operations);
  if (inTransaction !== undefined) {
    db.transactionStart();
    apply(inTransaction);
    db.transactionCommit();
  }
  db.close();
  // The mutex area holds process-specific pthread state; everything after it must match.
  const [a, b] = [fs.readFileSync(theirs), fs.readFileSync(ours)].map(withoutSavedRecoveryHead);
  const mutexArea = a.readUInt32LE(MUTEX_SIZE_OFFSET);
  expect(b.length).toBe(a.length);
  expect(b.subarray(mutexArea).equals(a.subarray(mutexArea))).toBe(true);
}

describe.concurrent.each(modes)('same operations, same file, $name', ({ seed, flags, hashSize }) => {
  test('stores, deletes and growing rewrites leave a file byte-identical to libtdb\'s', async () => {
    await expectSameFile(`${seed}`, flags, hashSize, churn(scaled(20_000), seed + 7));
  }, 120_000);

  test('a transaction that grows the file over a fragmented free list allocates as libtdb does', async () => {
    // The churn leaves free blocks of all sizes; the transaction then stores many new records
    // (most longer than any free block, so the file grows, some short enough to fit one) and
    // deletes a few, which frees blocks in the middle of the growth.
    const inTransaction: Operation[] = [...randomRecords(scaled(20_000), seed + 11)].map(([key, value], i) => ({
      key: Buffer.from(key, 'hex'),
      value: i % 13 === 0 ? value.subarray(0, 3) : Buffer.concat([value, value]),
    }));
    inTransaction.forEach(({ key }, i) => i % 997 === 0 && inTransaction.push({ key }));
    await expectSameFile(`txn-${seed}`, flags, hashSize, churn(scaled(5_000), seed + 7), inTransaction);
  }, 120_000);
});
