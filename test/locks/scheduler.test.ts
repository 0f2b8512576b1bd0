import { describe, expect, it } from 'vitest';
import { LockError, LockScheduler, lockHelperArgs, lockLatencyBucket, type LockGrant } from '../../src/locks';
import { FakeDatabase, FakeLauncher } from './fakes';

function grantOf(result: LockGrant | LockError): LockGrant {
  if (result instanceof Error) throw result;
  return result;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('LockScheduler with scripted contention', () => {
  it('1000 requests on 10 hot records in 3 databases: per-record order, no starvation, helper limit, freeze first', async () => {
    const databases = [new FakeDatabase('a.tdb'), new FakeDatabase('b.tdb'), new FakeDatabase('c.tdb')];
    const launcher = new FakeLauncher();
    const limit = 2;
    const scheduler = new LockScheduler({ launcher, helpersPerDatabase: limit });
    const hot = Array.from({ length: 10 }, (_, i) => ({ db: databases[i % 3], key: `hot-${i}` }));
    // smbd-like holders hold every hot chain at first, then grab and drop them while the requests run
    for (const { db, key } of hot) db.holdExternally(key);
    const churn = setInterval(() => {
      for (const { db, key } of hot) {
        if (db.holders.get(key) === 'external') db.releaseExternally(key);
        else if (!db.holders.has(key) && Math.random() < 0.5) db.holdExternally(key);
      }
    }, 2);
    const submitted = new Map<string, number[]>();
    const granted = new Map<string, number[]>();
    const grantLog: string[] = [];
    let freezeSubmittedAt = -1;
    let freezeGrantedAt = -1;
    const done: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      const { db, key } = hot[i % hot.length];
      const id = `${db.name}/${key}`;
      submitted.set(id, [...(submitted.get(id) ?? []), i]);
      done.push(
        new Promise((resolve) => {
          scheduler.lockRecord(db, Buffer.from(key), (result) => {
            const grant = grantOf(result);
            granted.set(id, [...(granted.get(id) ?? []), i]);
            grantLog.push(db.name);
            setTimeout(() => {
              grant.release();
              resolve();
            }, Math.random() < 0.1 ? 1 : 0);
          });
        }),
      );
      if (i === 500) {
        freezeSubmittedAt = grantLog.length;
        done.push(
          new Promise((resolve) => {
            scheduler.lockDatabase(databases[0], (result) => {
              const grant = grantOf(result);
              freezeGrantedAt = grantLog.length;
              grantLog.push('freeze');
              setTimeout(() => {
                grant.release();
                resolve();
              }, 5);
            });
          }),
        );
      }
    }
    await Promise.all(done);
    clearInterval(churn);

    expect([...granted.values()].flat()).toHaveLength(1000);
    for (const [id, order] of submitted) expect(granted.get(id), id).toEqual(order);
    for (const db of databases) expect(launcher.maxRunning.get(db.name) ?? 0).toBeLessThanOrEqual(limit);
    expect(launcher.maxRunning.get('a.tdb')).toBe(limit); // the limit did bite
    // Between the freeze request and its grant no record of that database was granted.
    expect(grantLog.slice(freezeSubmittedAt, freezeGrantedAt)).not.toContain('a.tdb');
    expect(scheduler.statistics.numPending).toBe(0);
    expect(scheduler.statistics.numCurrent).toBe(0);
    expect(scheduler.statistics.numCalls).toBeGreaterThan(0);
  });

  it('grants an uncontended record at once, without a helper and without counting a wait', async () => {
    const db = new FakeDatabase('d.tdb');
    const launcher = new FakeLauncher();
    const scheduler = new LockScheduler({ launcher });
    const grant = grantOf(await new Promise((resolve) => scheduler.lockRecord(db, Buffer.from('k'), resolve)));
    expect(grant.holder).toBe('daemon');
    expect(db.holders.get('k')).toBe('daemon');
    grant.release();
    grant.release();
    expect(db.holders.size).toBe(0);
    expect(launcher.launched).toBe(0);
    expect(scheduler.statistics.numCalls).toBe(0);
  });

  it('keeps one helper per record; later requests wait on it', async () => {
    const db = new FakeDatabase('e.tdb');
    const launcher = new FakeLauncher();
    const scheduler = new LockScheduler({ launcher });
    db.holdExternally('k');
    const order: number[] = [];
    const all = [0, 1, 2, 3].map(
      (i) => new Promise<void>((resolve) => scheduler.lockRecord(db, Buffer.from('k'), (r) => {
        order.push(i);
        grantOf(r).release();
        resolve();
      })),
    );
    await sleep(10);
    expect(launcher.running.get('e.tdb')).toBe(1);
    db.releaseExternally('k');
    await Promise.all(all);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(launcher.launched).toBe(1);
    const stats = scheduler.databaseStatistics(db);
    expect(stats.numCalls).toBe(4);
    expect(stats.buckets.slice(0, 3).reduce((a, b) => a + b, 0)).toBe(4);
    expect(stats.latency.num).toBe(4);
  });

  it('logs a lock waited on too long, naming the database and key', async () => {
    const db = new FakeDatabase('locking.tdb');
    const lines: string[] = [];
    const scheduler = new LockScheduler({ launcher: new FakeLauncher(), log: { warning: (m) => lines.push(m) }, warnAfterSeconds: 0.02 });
    db.holdExternally('\u0001k');
    const granted = new Promise<LockGrant | LockError>((resolve) => scheduler.lockRecord(db, Buffer.from('\u0001k'), resolve));
    await sleep(60);
    db.releaseExternally('\u0001k');
    grantOf(await granted).release();
    expect(lines[0]).toMatch(/^Unable to get RECORD lock on database locking\.tdb for \d+ seconds \(key 016B\)$/);
  });

  it('fails a request whose helpers keep dying, and reports a lost helper-held lock', async () => {
    const db = new FakeDatabase('f.tdb');
    const launcher = new FakeLauncher();
    const scheduler = new LockScheduler({ launcher, helperAttempts: 2 });
    db.holdExternally('k');
    const launched: Array<{ kill(): void }> = [];
    const launch = launcher.launch.bind(launcher);
    launcher.launch = (d, k, e) => {
      const handle = launch(d, k, e);
      launched.push(handle);
      return handle;
    };
    const failing = new Promise<LockGrant | LockError>((resolve) => scheduler.lockRecord(db, Buffer.from('k'), resolve));
    const killer = setInterval(() => {
      for (const handle of launched) handle.kill();
    }, 3);
    const result = await failing;
    clearInterval(killer);
    expect(result).toBeInstanceOf(LockError);
    expect((result as Error).message).toMatch(/RECORD lock on database f\.tdb \(key 6B\) failed: killed/);
    expect(scheduler.statistics.numFailed).toBe(1);

    db.releaseExternally('k');
    db.holdExternally('k');
    launched.length = 0;
    const next = new Promise<LockGrant | LockError>((resolve) => scheduler.lockRecord(db, Buffer.from('k'), resolve));
    await sleep(5);
    db.releaseExternally('k');
    const grant = grantOf(await next);
    expect(grant.holder).toBe('helper');
    let lost = false;
    grant.onLost = () => (lost = true);
    launched[0].kill();
    await sleep(5);
    expect(grant.lost && lost).toBe(true);
    const after = grantOf(await new Promise((resolve) => scheduler.lockRecord(db, Buffer.from('k'), resolve)));
    expect(after.holder).toBe('daemon');
    after.release();
  });

  it('cancel withdraws a waiting request and stops its helper', async () => {
    const db = new FakeDatabase('g.tdb');
    const launcher = new FakeLauncher();
    const scheduler = new LockScheduler({ launcher });
    db.holdExternally('k');
    const pending = scheduler.lockRecord(db, Buffer.from('k'), () => {
      throw new Error('cancelled request must not be called');
    });
    await sleep(3);
    pending.cancel();
    await sleep(3);
    expect(launcher.running.get('g.tdb')).toBe(0);
    expect(scheduler.statistics.numPending).toBe(0);
  });

  it('close() fails what is waiting', async () => {
    const db = new FakeDatabase('h.tdb');
    const scheduler = new LockScheduler({ launcher: new FakeLauncher() });
    db.holdExternally(undefined);
    const freeze = new Promise<LockGrant | LockError>((resolve) => scheduler.lockDatabase(db, resolve));
    scheduler.close();
    expect(await freeze).toBeInstanceOf(LockError);
    expect(() => scheduler.lockRecord(db, Buffer.from('x'), () => undefined)).toThrow(/closed/);
  });

  it('rejects a bad LockProcessesPerDB', () => {
    expect(() => new LockScheduler({ launcher: new FakeLauncher(), helpersPerDatabase: 0 })).toThrow(RangeError);
    expect(() => new LockScheduler({ launcher: new FakeLauncher() }).setHelpersPerDatabase(1.5)).toThrow(RangeError);
  });

  it('a raised LockProcessesPerDB starts helpers that were waiting for a slot', async () => {
    const db = new FakeDatabase('i.tdb');
    const launcher = new FakeLauncher();
    const scheduler = new LockScheduler({ launcher, helpersPerDatabase: 1 });
    db.holdExternally('a');
    db.holdExternally('b');
    const both = ['a', 'b'].map((key) => new Promise<LockGrant | LockError>((resolve) => scheduler.lockRecord(db, Buffer.from(key), resolve)));
    await sleep(3);
    expect(launcher.running.get('i.tdb')).toBe(1);
    scheduler.setHelpersPerDatabase(2);
    expect(launcher.running.get('i.tdb')).toBe(2);
    db.releaseExternally('a');
    db.releaseExternally('b');
    for (const result of await Promise.all(both)) grantOf(result).release();
  });
});

describe('lock statistics and helper arguments', () => {
  it.each([
    [0.0005, 0],
    [0.005, 1],
    [0.05, 2],
    [0.5, 3],
    [1.5, 4],
    [3, 5],
    [7, 6],
    [15, 7],
    [31, 8],
    [63, 9],
    [64, 10],
    [1000, 10],
  ])('a %s s wait goes to bucket %i, as in ctdbd', (seconds, bucket) => {
    expect(lockLatencyBucket(seconds)).toBe(bucket);
  });

  it('builds ctdbd 4.17 lock helper arguments', () => {
    const db = { name: 'x.tdb', path: '/var/lib/ctdb/volatile/x.tdb.0', tdbFlags: 0x1841 } as never;
    expect(lockHelperArgs(42, db, Buffer.from([0xab, 1]))).toEqual(['42', '3', 'RECORD', '/var/lib/ctdb/volatile/x.tdb.0', '0x1841', 'AB01']);
    expect(lockHelperArgs(42, db, Buffer.alloc(0))).toEqual(['42', '3', 'RECORD', '/var/lib/ctdb/volatile/x.tdb.0', '0x1841', 'NULL']);
    expect(lockHelperArgs(42, db, undefined)).toEqual(['42', '3', 'DB', '/var/lib/ctdb/volatile/x.tdb.0', '0x1841']);
  });
});
