// The scheduler with real ctdb_lock_helper processes and a real libtdb user (python3 + ctypes on
// Debian's libtdb) holding chain locks, in both locking modes.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  LockError,
  LockScheduler,
  processLockHelperLauncher,
  tdbLockDatabase,
  type LockDatabase,
  type LockGrant,
  type LockHelperLauncher,
} from '../../src/locks';
import { helperExecutable, runningHelpers } from '../../src/spawn';
import { CTDB_VOLATILE_FLAGS, TdbFile, TdbFlag } from '../../src/store';

const HOLDER = path.join(__dirname, 'fixtures', 'libtdb-holder.py');

let dir: string;
const holders: ChildProcess[] = [];
const files: TdbFile[] = [];
const schedulers: LockScheduler[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdb-locks-'));
});

afterEach(async () => {
  for (const scheduler of schedulers.splice(0)) scheduler.close();
  for (const holder of holders.splice(0)) holder.kill('SIGKILL');
  while (runningHelpers() > 0) await sleep(5);
  for (const file of files.splice(0)) file.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function openDatabase(name: string, flags: number): { file: TdbFile; db: LockDatabase } {
  const file = TdbFile.open(path.join(dir, name), { hashSize: 10007, flags });
  files.push(file);
  return { file, db: tdbLockDatabase(name, file) };
}

/** A libtdb process holding `keys` (none: the whole database) until release() is called. */
async function holdWithLibtdb(file: TdbFile, flags: number, keys: string[]): Promise<{ release(): Promise<void> }> {
  const holder = spawn('/usr/bin/python3', [HOLDER, file.path, String(flags), ...keys.map((k) => Buffer.from(k).toString('hex'))], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  holders.push(holder);
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.once('data', () => resolve());
    holder.once('exit', (code) => reject(new Error(`libtdb holder exited with ${code}`)));
  });
  return {
    release: () =>
      new Promise<void>((resolve) => {
        holder.once('exit', () => resolve());
        holder.stdin!.end();
      }),
  };
}

function lock(scheduler: LockScheduler, db: LockDatabase, key: string): Promise<LockGrant> {
  return new Promise((resolve, reject) =>
    scheduler.lockRecord(db, Buffer.from(key), (result) => (result instanceof LockError ? reject(result) : resolve(result))),
  );
}

/**
 * `grant` came from a helper, which really holds the chain of `key` (a libtdb-style try from this
 * process fails); once released, the daemon locks `key` itself again.
 */
async function expectHelperHoldsThenHandsBack(scheduler: LockScheduler, db: LockDatabase, file: TdbFile, grant: LockGrant, key: string): Promise<void> {
  expect(grant.holder).toBe('helper');
  expect(file.chainLockNonblock(key)).toBe(false);
  grant.release();
  const again = await lock(scheduler, db, key);
  expect(again.holder).toBe('daemon');
  again.release();
}

/** The real launcher, remembering each helper's pid. */
function recordingLauncher(pids: number[]): LockHelperLauncher {
  const real = processLockHelperLauncher();
  return {
    launch(database, key, events) {
      const handle = real.launch(database, key, events);
      pids.push(handle.pid);
      return handle;
    },
  };
}

describe.each([
  ['fcntl', TdbFlag.DEFAULT],
  ['mutex', CTDB_VOLATILE_FLAGS],
])('lock helpers on a %s-locked tdb', (_mode, flags) => {
  it('a libtdb process holding a chain lock delays only that record', async () => {
    const { file, db } = openDatabase('delay.tdb', flags);
    const scheduler = new LockScheduler({ launcher: processLockHelperLauncher() });
    schedulers.push(scheduler);
    const holder = await holdWithLibtdb(file, flags, ['busy']);
    const start = performance.now();
    const busy = lock(scheduler, db, 'busy').then((grant) => ({ grant, at: performance.now() - start }));
    for (const key of ['free-1', 'free-2', 'free-3']) {
      const grant = await lock(scheduler, db, key);
      expect(grant.holder).toBe('daemon');
      grant.release();
    }
    expect(performance.now() - start).toBeLessThan(150);
    await sleep(300);
    expect(scheduler.helpersRunning(db)).toBe(1);
    await holder.release();
    const { grant, at } = await busy;
    expect(at).toBeGreaterThanOrEqual(300);
    await expectHelperHoldsThenHandsBack(scheduler, db, file, grant, 'busy');
    // waits: 'busy' behind libtdb (0.1 s .. 1 s), then 'again' behind the exiting helper (< 0.1 s)
    expect(scheduler.statistics.numCalls).toBe(2);
    expect(scheduler.statistics.buckets[3]).toBe(1);
  });

  it('a helper killed mid-hold releases its lock; one killed while waiting is replaced', async () => {
    const { file, db } = openDatabase('kill.tdb', flags);
    const pids: number[] = [];
    const scheduler = new LockScheduler({ launcher: recordingLauncher(pids) });
    schedulers.push(scheduler);
    let holder = await holdWithLibtdb(file, flags, ['k']);
    const waiting = lock(scheduler, db, 'k');
    await sleep(100);
    process.kill(pids[0], 'SIGKILL'); // dies waiting: the request is retried with a new helper
    await sleep(100);
    expect(pids).toHaveLength(2);
    await holder.release();
    const grant = await waiting;
    expect(grant.holder).toBe('helper');
    const lost = new Promise<void>((resolve) => (grant.onLost = resolve));
    process.kill(pids[1], 'SIGKILL');
    await lost;
    expect(grant.lost).toBe(true);
    // the kernel (fcntl) or robust mutex recovery freed the chain: libtdb and we can take it
    holder = await holdWithLibtdb(file, flags, ['k']);
    await holder.release();
    const next = await lock(scheduler, db, 'k');
    expect(next.holder).toBe('daemon');
    next.release();
  });

  it('a freeze waits for a libtdb lock holder through a DB helper', async () => {
    const { file, db } = openDatabase('freeze.tdb', flags);
    const scheduler = new LockScheduler({ launcher: processLockHelperLauncher() });
    schedulers.push(scheduler);
    const holder = await holdWithLibtdb(file, flags, ['x']);
    const frozen = new Promise<LockGrant>((resolve, reject) =>
      scheduler.lockDatabase(db, (r) => (r instanceof LockError ? reject(r) : resolve(r))),
    );
    await sleep(100);
    await holder.release();
    const grant = await frozen;
    await expectHelperHoldsThenHandsBack(scheduler, db, file, grant, 'y');
  });
});

describe('1000 requests with real helpers', () => {
  it('10 hot records in 3 databases: in order per record, none starves, helper limit kept, freeze overtakes', async () => {
    const limit = 2;
    const dbs = ['a.tdb', 'b.tdb', 'c.tdb'].map((name) => openDatabase(name, CTDB_VOLATILE_FLAGS));
    const scheduler = new LockScheduler({ launcher: processLockHelperLauncher(), helpersPerDatabase: limit });
    schedulers.push(scheduler);
    const hot = Array.from({ length: 10 }, (_, i) => ({ index: i % 3, key: `hot-${i}` }));
    const held = await Promise.all(
      [0, 1, 2].map((index) => holdWithLibtdb(dbs[index].file, CTDB_VOLATILE_FLAGS, hot.filter((h) => h.index === index).map((h) => h.key))),
    );
    let maxHelpers = 0;
    const sample = (): void => {
      maxHelpers = Math.max(maxHelpers, runningHelpers());
      for (const { db } of dbs) expect(scheduler.helpersRunning(db)).toBeLessThanOrEqual(limit);
    };
    const sampler = setInterval(sample, 1);
    const order = new Map<string, number[]>();
    const grantLog: string[] = [];
    let freezeWindow: [number, number] = [0, 0];
    const done: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      const { index, key } = hot[i % hot.length];
      const db = dbs[index].db;
      done.push(
        lock(scheduler, db, key).then((grant) => {
          order.set(key, [...(order.get(key) ?? []), i]);
          grantLog.push(db.name);
          sample();
          grant.release();
        }),
      );
      if (i === 500) {
        const submittedAt = grantLog.length;
        done.push(
          new Promise<void>((resolve) =>
            scheduler.lockDatabase(dbs[0].db, (r) => {
              if (r instanceof LockError) throw r;
              freezeWindow = [submittedAt, grantLog.length];
              setTimeout(() => {
                r.release();
                resolve();
              }, 20);
            }),
          ),
        );
      }
    }
    await sleep(200);
    await Promise.all(held.map((h) => h.release()));
    await Promise.all(done);
    clearInterval(sampler);
    for (const [key, granted] of order) {
      expect(granted, key).toEqual(Array.from({ length: 100 }, (_, n) => n * 10 + Number(key.slice(4))));
    }
    expect(maxHelpers).toBeLessThanOrEqual(limit * 3);
    expect(maxHelpers).toBeGreaterThan(0);
    expect(grantLog.slice(...freezeWindow)).not.toContain('a.tdb');
    expect(scheduler.statistics.numPending).toBe(0);
  });
});

describe('ctdb_lock_helper on bad input', () => {
  function runHelper(args: string[]): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve) => {
      execFile(helperExecutable('ctdb_lock_helper'), args, (error, _stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stderr }));
    });
  }

  it.each([
    [[], /usage: ctdb_lock_helper/],
    [[String(process.pid), '2', 'RECORD', '/x.tdb', '0x0'], /usage/],
    [[String(process.pid), '2', 'LOCK', '/x.tdb', '0x0'], /usage/],
    [[String(process.pid), '2', 'RECORD', '/x.tdb', 'flags', '00'], /bad tdb flags 'flags'/],
    [[String(process.pid), '2', 'RECORD', '/x.tdb', '0x0', 'abc'], /key 'abc' is not hexadecimal/],
    [[String(process.pid), '2', 'RECORD', '/x.tdb', '0x0', 'zz'], /key 'zz' is not hexadecimal/],
    [[String(process.pid), '2', 'DB', '/nonexistent/x.tdb', '0x0'], /cannot open \/nonexistent\/x\.tdb/],
  ])('%j fails with a clear message', async (args, message) => {
    const { code, stderr } = await runHelper(args);
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
  });

  it('a request whose helper cannot open the database fails cleanly', async () => {
    const scheduler = new LockScheduler({ launcher: processLockHelperLauncher() });
    schedulers.push(scheduler);
    const missing: LockDatabase = {
      name: 'missing.tdb',
      path: path.join(dir, 'missing.tdb'),
      tdbFlags: 0,
      tryLockRecord: () => false,
      unlockRecord: () => undefined,
      tryLockAll: () => false,
      unlockAll: () => undefined,
    };
    const result = await new Promise((resolve) => scheduler.lockRecord(missing, Buffer.from('k'), resolve));
    expect(result).toBeInstanceOf(LockError);
    expect((result as Error).message).toMatch(/RECORD lock on database missing\.tdb \(key 6B\) failed: lock helper \d+ reported failure, exited with status 1/);
    expect(scheduler.statistics.numFailed).toBe(1);
  });
});
