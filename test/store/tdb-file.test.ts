// TdbFile API behaviour: store modes, errors, locks, transactions, seqnum, wipe/repack, the
// ltdb header helpers and the dump format; checked against libtdb where it has an opinion.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  CTDB_VOLATILE_FLAGS,
  StoreMode,
  TdbError,
  TdbFile,
  TdbFlag,
  buildLtdbRecord,
  escapeTdbData,
  fetchLtdbRecord,
  formatDumpRecord,
  formatLtdbValue,
  isEmptyLtdbRecord,
  parseDump,
  parseLtdbRecord,
  storeLtdbRecord,
  tdbHash,
} from '../../src/store';
import { DIST_TOOLS, ORACLE, PYTHON, ensureToolsBuilt, exitOf, makeTempDir, oracle, parseHexDump, run, withChildren } from './helpers';

const tmp = makeTempDir('tdb-api');
afterAll(() => tmp.cleanup());
let n = 0;
const fresh = (name: string): string => path.join(tmp.dir, `${n++}-${name}.tdb`);

function errorOf(fn: () => unknown): TdbError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TdbError);
    return err as TdbError;
  }
  throw new Error('expected a TdbError');
}

describe('hashes', () => {
  test('match the values libtdb stores in its headers', () => {
    // magic1 is the hash of "TDB file\n\0" (see tdb-format.md).
    const food = Buffer.from('TDB file\n\0', 'latin1');
    expect(tdbHash(food, false)).toBe(0xf67d9f0d);
    expect(tdbHash(food, true)).toBe(0xd7b694e5);
    expect(tdbHash(Buffer.alloc(0), false)).toBe(12345);
    expect(tdbHash(Buffer.alloc(0), true)).toBe(0xdeadbeef);
  });
});

describe('records', () => {
  test('store modes, fetch, exists, delete, empty keys and values', () => {
    const db = TdbFile.open(fresh('modes'));
    try {
      db.store('a', 'one');
      expect(errorOf(() => db.store('a', 'two', StoreMode.INSERT)).code).toBe('TDB_ERR_EXISTS');
      expect(errorOf(() => db.store('b', 'two', StoreMode.MODIFY)).code).toBe('TDB_ERR_NOEXIST');
      db.store('a', 'three', StoreMode.MODIFY);
      expect(db.fetch('a')?.toString()).toBe('three');
      db.store(Buffer.alloc(0), Buffer.alloc(0));
      expect(db.fetch(Buffer.alloc(0))?.length).toBe(0);
      expect(db.exists('a')).toBe(true);
      expect(db.delete('a')).toBe(true);
      expect(db.delete('a')).toBe(false);
      expect(db.fetch('a')).toBeUndefined();
      const big = Buffer.alloc(200_000, 7);
      db.store('big', big);
      expect(db.fetch('big')?.equals(big)).toBe(true);
      const huge = Buffer.alloc(3 << 20, 9); // larger than the facade's fetch slab
      db.store('huge', huge);
      expect(db.fetch('huge')?.equals(huge)).toBe(true);
      expect(db.transaction(() => db.fetch('huge'))?.equals(huge)).toBe(true);
      const out = Buffer.alloc(10);
      expect(db.fetchInto('big', out)).toBe(200_000);
      expect(db.fetchInto('missing', out)).toBe(-1);
    } finally {
      db.close();
    }
  });

  test('storeMany stores (replacing) the records a buffer holds, and refuses spans outside it', () => {
    const db = TdbFile.open(fresh('many'));
    try {
      db.store('k1', 'old');
      // "k1" "one" "k22" "" "" "empty key" laid out back to back
      const buffer = Buffer.from('k1onek22empty key');
      db.storeMany(buffer, new Uint32Array([0, 2, 2, 3, 5, 3, 8, 0, 8, 0, 8, 9]));
      expect(db.fetch('k1')?.toString()).toBe('one');
      expect(db.fetch('k22')?.length).toBe(0);
      expect(db.fetch(Buffer.alloc(0))?.toString()).toBe('empty key');
      expect(() => db.storeMany(buffer, new Uint32Array([0, 2, 10, 8]))).toThrow(/record 0 of storeMany lies outside the buffer/);
      expect(() => db.storeMany(buffer, new Uint32Array([0, 2, 2]))).toThrow(/quadruples/);
      expect(db.fetch('k1')?.toString()).toBe('one');
    } finally {
      db.close();
    }
  });

  test('fetched values are plain Buffers that stay intact while later fetches fill new slabs', () => {
    const db = TdbFile.open(path.join(tmp.dir, 'values.tdb'), { hashSize: 1031 });
    try {
      const value = (i: number): Buffer => Buffer.alloc(1 + (i % 3000), i % 251);
      for (let i = 0; i < 2000; i++) db.store(`k${i}`, value(i));
      const kept = Array.from({ length: 2000 }, (_, i) => db.fetch(`k${i}`));
      kept.forEach((v, i) => expect(v).toStrictEqual(value(i)));
    } finally {
      db.close();
    }
  });

  test('a write traverse may delete the record it sits on; a read traverse may not write', () => {
    const db = TdbFile.open(fresh('traverse'));
    try {
      for (let i = 0; i < 500; i++) db.store(`k${i}`, `v${i}`);
      let visited = 0;
      db.traverse((key) => {
        visited++;
        db.delete(key);
      });
      expect(visited).toBe(500);
      expect(db.traverseRead(() => {})).toBe(0);
      db.store('x', 'y');
      expect(errorOf(() => db.traverseRead((key) => void db.store(key, 'z'))).code).toBe('TDB_ERR_RDONLY');
      expect(db.traverseRead(() => false)).toBe(1);
      expect(db.check()).toMatchObject({ ok: true, records: 1 });
    } finally {
      db.close();
    }
  });

  test('traverseRecBuffers lays the records out as rec_buffers of ctdb_rec_data, cut at the limit', () => {
    const db = TdbFile.open(fresh('rec-buffers'), { hashSize: 10007 });
    try {
      for (let i = 0; i < 3000; i++) db.store(`key-${i}`, Buffer.alloc(i % 200, i % 251));
      const expected: string[] = [];
      db.traverseRead((key, data) => void expected.push(`${key.toString('hex')}:${data.toString('hex')}`));
      const seen: string[] = [];
      const limit = 16 * 1024;
      const lengths: number[] = [];
      const total = db.traverseRecBuffers(limit, (buffer, records) => {
        expect(buffer.readUInt32LE(0)).toBe(0);
        let off = 8;
        for (let r = 0; r < records; r++) {
          const [length, reqid, keyLength, dataLength] = [0, 4, 8, 12].map((at) => buffer.readUInt32LE(off + at));
          expect([length, reqid]).toEqual([16 + keyLength + dataLength, 0]);
          const key = buffer.subarray(off + 16, off + 16 + keyLength);
          seen.push(`${key.toString('hex')}:${buffer.subarray(off + 16 + keyLength, off + length).toString('hex')}`);
          off += length;
        }
        expect(off).toBe(buffer.length);
        lengths.push(buffer.length);
      });
      // Cut as soon as the limit is reached (the last one holds the rest); a record is at most
      // 16 + 9 + 199 bytes.
      expect(lengths.slice(0, -1).every((length) => length >= limit && length < limit + 16 + 9 + 199)).toBe(true);
      expect(total).toBe(3000);
      expect(seen).toEqual(expected);
      expect(lengths.length).toBeGreaterThan(10);
      expect(db.traverseRecBuffers(limit, () => false)).toBeGreaterThan(0);
      expect(() => db.traverseRecBuffers(0, () => undefined)).toThrow(/limit must be a positive number/);
    } finally {
      db.close();
    }
  });

  test('updateMany stores a record over a lower rsn, or over the same value, and stops at the first it may not store', () => {
    const db = TdbFile.open(fresh('update-many'));
    try {
      // An 8-byte header (the rsn) then the value.
      const record = (rsn: number, value: string): Buffer => Buffer.concat([Buffer.from(new BigUint64Array([BigInt(rsn)]).buffer), Buffer.from(value)]);
      const batch = (entries: [string, Buffer][]): [Buffer, Uint32Array] => {
        const spans = new Uint32Array(entries.length * 4);
        let at = 0;
        entries.forEach(([key, value], i) => {
          spans.set([at, key.length, at + key.length, value.length], i * 4);
          at += key.length + value.length;
        });
        return [Buffer.concat(entries.flatMap(([key, value]) => [Buffer.from(key), value])), spans];
      };
      db.store('a', record(5, 'five'));
      db.store('headerless', Buffer.from('abc'));
      const ok = batch([
        ['a', record(6, 'six')],
        ['new', record(1, 'one')],
        ['empty', record(0, '')],
        ['headerless', record(0, '')],
      ]);
      expect(db.updateMany(...ok, 8)).toBe(4);
      expect(db.fetch('a')).toEqual(record(6, 'six'));
      expect(db.fetch('empty')).toEqual(record(0, ''));
      expect(db.fetch('headerless')).toEqual(record(0, ''));
      // Same rsn and value: stored (again); same rsn, other value: refused, and what follows is not stored.
      const stale = batch([
        ['a', record(6, 'six')],
        ['a', record(6, 'SIX')],
        ['later', record(1, 'x')],
      ]);
      expect(db.updateMany(...stale, 8)).toBe(1);
      expect(db.fetch('a')).toEqual(record(6, 'six'));
      expect(db.exists('later')).toBe(false);
      expect(db.updateMany(...batch([['zero', record(0, 'value')]]), 8)).toBe(0);
      expect(db.updateMany(...batch([['short', Buffer.from('1234')]]), 8)).toBe(0);
      const [buffer, spans] = batch([['k', record(9, 'v')]]);
      spans[3] = 100;
      expect(() => db.updateMany(buffer, spans, 8)).toThrow(/record 0 of updateMany lies outside the buffer/);
    } finally {
      db.close();
    }
  });

  test('digestRecData is the SHA-256 of what traverseRecBuffers lays out, and counts the unusual records', () => {
    const db = TdbFile.open(fresh('digest'), { hashSize: 1009 });
    try {
      // 20-byte values count as unusual (<= 24), and so do values with a bit of 0x0f000000 at offset 16.
      for (let i = 0; i < 3000; i++) {
        const value = Buffer.alloc(i % 7 === 0 ? 20 : 40 + (i % 300), i % 251);
        if (value.length > 24) value.writeUInt32LE(i % 11 === 0 ? 0x02000000 : 0x00100000, 16);
        db.store(`key-${i}`, value);
      }
      const hash = crypto.createHash('sha256');
      let unusual = 0;
      db.traverseRecBuffers(5000, (buffer) => void hash.update(buffer.subarray(8)));
      db.traverseRead((_key, data) => void (unusual += data.length <= 24 || (data.readUInt32LE(16) & 0x0f000000) !== 0 ? 1 : 0));
      const before = hash.digest();
      expect(db.digestRecData(24, 0x0f000000)).toEqual({ records: 3000, unusual, digest: before });
      // The same in steps of a few records each.
      const stepped = db.recDataDigest(24, 0x0f000000);
      expect(() => stepped.result()).toThrow(/before the walk is complete/);
      let steps = 1;
      while (!stepped.step(500)) steps++;
      expect(steps).toBeGreaterThan(100);
      expect(stepped.result()).toEqual({ records: 3000, unusual, digest: before });
      // Multiples of 7, and of 11 but not of 77.
      expect(unusual).toBe(429 + 273 - 39);
      db.store('key-1', Buffer.alloc(41, 1));
      expect(db.digestRecData(24, 0x0f000000).digest).not.toEqual(before);
    } finally {
      db.close();
    }
    const empty = TdbFile.open(fresh('digest-empty'));
    try {
      expect(empty.digestRecData(24, 0)).toEqual({ records: 0, unusual: 0, digest: crypto.createHash('sha256').digest() });
    } finally {
      empty.close();
    }
  });

  test('a read traverse in slices visits every record once, resuming at the chain it stopped at', () => {
    const db = TdbFile.open(fresh('slices'), { hashSize: 10007 });
    try {
      const value = Buffer.alloc(300, 7);
      for (let i = 0; i < 5000; i++) db.store(`key-${i}`, value);
      const seen = new Map<string, number>();
      const starts: number[] = [];
      for (let chain: number | null = 0; chain !== null; ) {
        starts.push(chain);
        chain = db.traverseReadSlice(chain, (key) => void seen.set(key.toString(), (seen.get(key.toString()) ?? 0) + 1));
      }
      // ~1.6 MB of records in slices of about 256 KiB.
      expect(starts.length).toBeGreaterThan(4);
      expect(starts.length).toBeLessThan(12);
      expect(seen.size).toBe(5000);
      expect([...seen.values()].every((count) => count === 1)).toBe(true);
      expect(db.traverseReadSlice(db.hashSize, () => undefined)).toBeNull();
      expect(db.traverseReadSlice(0, () => false)).toBeNull();
      expect(() => db.traverseReadSlice(db.hashSize + 1, () => undefined)).toThrow(/chain 10008 outside the hash table of .*slices\.tdb/);
    } finally {
      db.close();
    }
  });

  test('an exception in a traverse callback propagates and releases the locks', () => {
    const db = TdbFile.open(fresh('throw'));
    try {
      db.store('k', 'v');
      expect(() => db.traverse(() => {
        throw new Error('boom');
      })).toThrow('boom');
      db.transaction(() => db.store('k', 'w')); // would fail if locks leaked
      expect(db.fetch('k')?.toString()).toBe('w');
    } finally {
      db.close();
    }
  });
});

describe('opening', () => {
  test('bad files and arguments give errors naming the file', () => {
    const garbage = fresh('garbage');
    fs.writeFileSync(garbage, Buffer.alloc(4096, 1));
    expect(errorOf(() => TdbFile.open(garbage)).message).toBe(`${garbage}: not a tdb file (bad magic): Input/output error`);
    expect(errorOf(() => TdbFile.open(path.join(tmp.dir, 'missing.tdb'), { access: 'rw' })).message).toContain('No such file');
    expect(() => TdbFile.open(fresh('h'), { hashSize: 0 })).toThrow(RangeError);
    const file = fresh('twice');
    const db = TdbFile.open(file);
    try {
      expect(errorOf(() => TdbFile.open(file)).message).toContain('already open in this process');
    } finally {
      db.close();
    }
    expect(() => db.fetch('x')).toThrow('closed');
  });

  test('a mutex file needs MUTEX_LOCKING unless opened read-only', () => {
    const file = fresh('mutex');
    TdbFile.open(file, { flags: CTDB_VOLATILE_FLAGS, hashSize: 1001 }).close();
    expect(errorOf(() => TdbFile.open(file, { access: 'rw' })).message).toContain('MUTEX_LOCKING');
    const ro = TdbFile.open(file, { access: 'r' });
    expect(ro.info).toMatchObject({ mutexes: true, jenkinsHash: true, hashSize: 1001 });
    ro.close();
  });

  test('CLEAR_IF_FIRST wipes only when nobody else holds the file open', () => {
    const file = fresh('cif');
    const first = TdbFile.open(file, { flags: TdbFlag.CLEAR_IF_FIRST });
    first.store('k', 'v');
    first.close();
    const second = TdbFile.open(file, { flags: TdbFlag.CLEAR_IF_FIRST });
    expect(second.fetch('k')).toBeUndefined();
    second.close();
  });
});

describe('locks', () => {
  test('chain and all-record locks exclude a libtdb process', () =>
    withChildren(async (children) => {
      const file = fresh('locks');
      const db = TdbFile.open(file, { flags: TdbFlag.MUTEX_LOCKING | TdbFlag.INCOMPATIBLE_HASH });
      try {
        db.chainLock('key');
        db.chainLock('key'); // nests within the process
        const locker = children.spawn(PYTHON, [ORACLE, 'lockchain', file, String(TdbFlag.MUTEX_LOCKING | TdbFlag.INCOMPATIBLE_HASH), 'key']);
        const done = exitOf(locker);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(locker.exitCode).toBeNull(); // still waiting for our lock
        db.chainUnlock('key');
        db.chainUnlock('key');
        expect((await done).stdout.trim()).toBe('ok');
        expect(db.fetch('key')?.toString()).toBe('python');
        expect(db.lockAllNonblock()).toBe(true);
        db.chainLock('key'); // covered by the all-record write lock
        db.chainUnlock('key');
        db.unlockAll();
        db.lockAllRead();
        expect(errorOf(() => db.chainLock('key')).code).toBe('TDB_ERR_LOCK'); // no write under a read all-record lock
        db.unlockAllRead();
      } finally {
        db.close();
      }
    }));
});

describe('sharing with smbd-style openers', () => {
  test('a libtdb CLEAR_IF_FIRST opener neither wipes our file nor re-initialises its mutexes', () =>
    withChildren(async (children) => {
      const file = fresh('volatile');
      const db = TdbFile.open(file, { flags: CTDB_VOLATILE_FLAGS, hashSize: 100001 });
      try {
        db.store('ours', 'kept');
        const smbd = children.spawn(PYTHON, [ORACLE, 'lockchain', file, String(CTDB_VOLATILE_FLAGS), 'theirs']);
        expect((await exitOf(smbd)).stdout.trim()).toBe('ok');
        expect(db.fetch('ours')?.toString()).toBe('kept');
        expect(db.fetch('theirs')?.toString()).toBe('python');
        expect(db.chainLockNonblock('theirs')).toBe(true); // its mutex was left unlocked and valid
        db.chainUnlock('theirs');
      } finally {
        db.close();
      }
    }));
});

describe('transactions', () => {
  test('commit, cancel, nesting and prepare', () => {
    const db = TdbFile.open(fresh('txn'), { flags: TdbFlag.NOSYNC });
    try {
      db.store('a', '1');
      db.transactionStart();
      db.store('a', '2');
      db.store('b', '2');
      expect(db.fetch('a')?.toString()).toBe('2');
      db.transactionCancel();
      expect(db.fetch('a')?.toString()).toBe('1');
      expect(db.fetch('b')).toBeUndefined();
      db.transactionStart();
      db.transactionStart(); // nesting is allowed by default
      db.store('c', '3');
      db.transactionCommit();
      db.transactionPrepareCommit();
      db.transactionCommit();
      expect(db.fetch('c')?.toString()).toBe('3');
      expect(() => db.transaction(() => {
        db.store('d', '4');
        throw new Error('abort');
      })).toThrow('abort');
      expect(db.fetch('d')).toBeUndefined();
      expect(db.check()).toMatchObject({ ok: true, records: 2 });
    } finally {
      db.close();
    }
  });

  test('DISALLOW_NESTING refuses a nested start', () => {
    const db = TdbFile.open(fresh('nest'), { flags: TdbFlag.DISALLOW_NESTING });
    try {
      db.transactionStart();
      expect(errorOf(() => db.transactionStart()).code).toBe('TDB_ERR_NESTING');
      db.transactionCancel();
    } finally {
      db.close();
    }
  });

  test('large transactions that grow the file are read back by libtdb', async () => {
    const file = fresh('grow');
    const db = TdbFile.open(file, { hashSize: 1009 });
    db.transaction(() => {
      for (let i = 0; i < 20_000; i++) db.store(`key-${i}`, `value-${i}`.repeat(3));
    });
    db.close();
    const view = parseHexDump(await oracle(['dump', file, '0']));
    expect(view.size).toBe(20_000);
    expect(view.get(Buffer.from('key-123').toString('hex'))?.toString()).toBe('value-123'.repeat(3));
  });

  test('a transaction storing what is already there changes nothing in the file, as with libtdb', async () => {
    const file = fresh('same');
    const db = TdbFile.open(file, { hashSize: 1009 });
    db.transaction(() => {
      for (let i = 0; i < 5000; i++) db.store(`rec-${i}`, 'unchanged');
    });
    const before = fs.readFileSync(file);
    // Every page would otherwise be rewritten, and saved first in a recovery area as large as the data.
    db.transaction(() => {
      for (let i = 0; i < 5000; i++) db.store(`rec-${i}`, 'unchanged');
    });
    db.close();
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    const libtdbCopy = `${file}.libtdb`;
    fs.writeFileSync(libtdbCopy, before);
    await oracle(['commit', libtdbCopy, '0', '5000', 'unchanged']);
    expect(fs.readFileSync(libtdbCopy).equals(before)).toBe(true);
  });
});

describe('maintenance', () => {
  test('seqnum counts changes when enabled, like libtdb', () => {
    const db = TdbFile.open(fresh('seqnum'), { flags: TdbFlag.SEQNUM });
    try {
      const start = db.seqnum;
      db.store('a', '1');
      db.delete('a');
      expect(db.seqnum).toBe(start + 2);
    } finally {
      db.close();
    }
  });

  test('wipe and repack keep the file valid', async () => {
    const file = fresh('repack');
    const db = TdbFile.open(file);
    for (let i = 0; i < 3000; i++) db.store(`k${i}`, 'x'.repeat(i % 50));
    for (let i = 0; i < 3000; i += 2) db.delete(`k${i}`);
    db.repack();
    expect(db.check()).toMatchObject({ ok: true, records: 1500, freeBlocks: 1 });
    db.close();
    expect((await run('tdbtool', [file, 'check'])).stdout).toContain('has 1500 records');
    const again = TdbFile.open(file);
    again.wipe();
    expect(again.traverseRead(() => {})).toBe(0);
    again.close();
    expect((await run('tdbtool', [file, 'check'])).stdout).toContain('has 0 records');
  });
});

describe('ltdb header and dump format', () => {
  const header = { rsn: 42n, dmaster: 0xffffffff, reserved1: 0, flags: 0x10000 };

  test('header round trip and empty records', () => {
    const value = buildLtdbRecord(header, Buffer.from('data'));
    expect(value.length).toBe(28);
    expect(parseLtdbRecord(value)).toEqual({ header, data: Buffer.from('data') });
    expect(isEmptyLtdbRecord(buildLtdbRecord(header))).toBe(true);
    expect(() => parseLtdbRecord(Buffer.alloc(10))).toThrow('too short');
    const db = TdbFile.open(fresh('ltdb'), { flags: CTDB_VOLATILE_FLAGS, hashSize: 101 });
    try {
      storeLtdbRecord(db, 'key', header, Buffer.from('value'));
      expect(fetchLtdbRecord(db, 'key')).toEqual({ header, data: Buffer.from('value') });
      expect(fetchLtdbRecord(db, 'none')).toBeUndefined();
    } finally {
      db.close();
    }
  });

  test('escaping and ltdbtool-style records', () => {
    expect(escapeTdbData(Buffer.from('a"b\\c\n\x00~'))).toBe('a\\22b\\5Cc\\0A\\00~');
    expect(formatDumpRecord(Buffer.from('k'), Buffer.from('v'))).toBe('{\nkey(1) = "k"\ndata(1) = "v"\n}\n');
    expect(formatLtdbValue(Buffer.from('k'), buildLtdbRecord(header, Buffer.from('v')), false)).toBe(
      '{\nkey(1) = "k"\ndmaster: -1\nrsn: 42\nflags: 0x10000\ndata(1) = "v"\n}\n',
    );
    expect(formatLtdbValue(Buffer.from('k'), buildLtdbRecord(header), false)).toBeUndefined();
  });

  test('parseDump reads both formats and rejects damage with a line number', () => {
    const text = formatDumpRecord(Buffer.from('k\n'), Buffer.from([0, 255])) + formatLtdbValue(Buffer.from('h'), buildLtdbRecord(header, Buffer.from('v')), true);
    const records = [...parseDump(Buffer.from(text, 'latin1'))];
    expect(records.map((r) => r.key.toString('latin1'))).toEqual(['k\n', 'h']);
    expect(records[0].data).toEqual(Buffer.from([0, 255]));
    expect(parseLtdbRecord(records[1].data).header).toEqual(header);
    expect(() => [...parseDump(Buffer.from('{\nkey(2) = "k"\n'))]).toThrow('line 2: key has 1 bytes, header says 2');
    expect(() => [...parseDump(Buffer.from('{\nkey(1) = "\\ZZ"\n'))]).toThrow('invalid escape');
  });

  test('the CLIs match Debian tdbdump / tdbrestore / tdbtool check', async () => {
    ensureToolsBuilt();
    const file = fresh('cli');
    const db = TdbFile.open(file);
    for (let i = 0; i < 300; i++) db.store(Buffer.from([i % 256, 0, 34, 92]), Buffer.from(`v${i}\n`));
    db.close();
    const dump = await run('tdbdump', [file]);
    expect((await run(process.execPath, [path.join(DIST_TOOLS, 'tdbdump.js'), file])).stdout).toBe(dump.stdout);
    const dumpFile = path.join(tmp.dir, 'cli.dump');
    fs.writeFileSync(dumpFile, dump.stdout);
    const restored = fresh('restored');
    const restore = await run('sh', ['-c', `"${process.execPath}" "${path.join(DIST_TOOLS, 'tdbrestore.js')}" "${restored}" < "${dumpFile}"`]);
    expect(restore.code, restore.stderr).toBe(0);
    expect((await run('tdbdump', [restored])).stdout.split('}\n').sort()).toEqual(dump.stdout.split('}\n').sort());
    const again = await run('sh', ['-c', `"${process.execPath}" "${path.join(DIST_TOOLS, 'tdbrestore.js')}" "${restored}" < "${dumpFile}"`]);
    expect(again.code).toBe(1); // never overwrites an existing file
    const check = await run(process.execPath, [path.join(DIST_TOOLS, 'tdbcheck.js'), restored]);
    expect(check.stdout).toBe((await run('tdbtool', [restored, 'check'])).stdout.trim() + '\n');
  });
});
