// chainLockMark / chainUnlockMark (libtdb's tdb_chainlock_mark): while a lock helper holds a
// record's chain lock for us, we mark the chain and work on the record without locking it again;
// after unmark and the helper's release, libtdb sees what we wrote. Our helper and Debian's
// (libtdb itself), in fcntl and mutex mode.
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { processLockHelperLauncher, type LockHelperHandle } from '../../src/locks';
import { TdbFile, TdbFlag } from '../../src/store';
import { makeTempDir, oracle, parseHexDump } from './helpers';

const MUTEX = TdbFlag.MUTEX_LOCKING | TdbFlag.INCOMPATIBLE_HASH;
const tmp = makeTempDir('tdb-chainlock-mark');
afterAll(() => tmp.cleanup());

/** Starts a ctdb_lock_helper on `key`; resolves once it holds the lock. */
function helperHolds(executable: string | undefined, file: TdbFile, key: Buffer): Promise<{ helper: LockHelperHandle; gone: Promise<string> }> {
  const launcher = executable === undefined ? processLockHelperLauncher() : processLockHelperLauncher(executable);
  return new Promise((resolve, reject) => {
    let onExit: (reason: string) => void = reject;
    const gone = new Promise<string>((resolveGone) => (onExit = resolveGone));
    const helper = launcher.launch({ name: 'mark.tdb', path: file.path, tdbFlags: file.info.tdbFlags, tryLockRecord: () => false, unlockRecord: () => {}, tryLockAll: () => false, unlockAll: () => {} }, key, {
      locked: () => resolve({ helper, gone }),
      exited: (reason) => {
        reject(new Error(reason));
        onExit(reason);
      },
    });
  });
}

const helpers = [
  { helper: 'our ctdb_lock_helper', executable: undefined },
  { helper: "Debian's ctdb_lock_helper (libtdb)", executable: '/usr/libexec/ctdb/ctdb_lock_helper' },
];
const modes = [
  { mode: 'fcntl', flags: TdbFlag.DEFAULT },
  { mode: 'mutex', flags: MUTEX },
];
const cases = helpers.flatMap((h) => modes.map((m) => ({ ...h, ...m })));

describe.each(cases)('$helper holds the chain, $mode', ({ executable, mode, flags }) => {
  test('marked: store, fetch and delete go ahead; unmarked: libtdb sees our value after release', async () => {
    const file = path.join(tmp.dir, `${mode}-${executable === undefined ? 'ours' : 'debian'}.tdb`);
    // hash size 1: every key shares the held chain.
    const db = TdbFile.open(file, { flags, hashSize: 1 });
    const key = Buffer.from('record');
    try {
      db.store(key, 'before');
      db.store('neighbour', 'gone soon');
      const { helper, gone } = await helperHolds(executable, db, key);
      try {
        expect(db.chainLockNonblock(key)).toBe(false);
        db.chainLockMark(key);
        // None of these may try the lock: with fcntl or mutex they would block forever.
        db.store(key, 'ours');
        expect(db.fetch(key)?.toString()).toBe('ours');
        expect(db.delete('neighbour')).toBe(true);
        db.chainUnlockMark(key);
        // Bookkeeping is gone and the helper still holds the lock.
        expect(db.chainLockNonblock(key)).toBe(false);
      } finally {
        helper.kill(); // SIGTERM, as ctdbd ends a lock helper: it unlocks and exits
      }
      expect(await gone).toMatch(/exited with status 0/);
      expect(db.chainLockNonblock(key)).toBe(true);
      db.chainUnlock(key);
      const seen = parseHexDump(await oracle(['dump', file, String(flags)]));
      expect(seen.get(key.toString('hex'))?.toString()).toBe('ours');
      expect(seen.has(Buffer.from('neighbour').toString('hex'))).toBe(false);
      expect(db.check()).toMatchObject({ ok: true, records: 1 });
    } finally {
      db.close();
    }
  }, 20_000);
});

describe('mark bookkeeping', () => {
  test('nests with real locks and unmark of an unmarked chain is an error', () => {
    const db = TdbFile.open(path.join(tmp.dir, 'nesting.tdb'), { hashSize: 7 });
    try {
      db.chainLockMark('k');
      db.chainLockMark('k');
      db.chainUnlockMark('k');
      db.store('k', 'v');
      db.chainUnlockMark('k');
      expect(() => db.chainUnlockMark('k')).toThrow(/chainlock_unmark: unlock of a lock not held/);
      // Nothing was really locked: our own lock is free to take.
      expect(db.chainLockNonblock('k')).toBe(true);
      db.chainUnlock('k');
    } finally {
      db.close();
    }
  });
});
