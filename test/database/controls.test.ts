// Database controls sent directly to one node of ours: the tdb flags smbd gets, the recovery
// steps' preconditions, and DB_FREEZE against a libtdb process holding the whole database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, ControlFlag, LMASTER_ANY, RecMode, encodeControlRequest } from '../../src/protocol';
import { useTestCluster } from '../harness/cluster';
import { holdAllRecordLock } from './lock-holder';

describe('database controls on a node of ours', () => {
  const cluster = useTestCluster({ nodes: 1, impl: 'ours' });
  let client: CtdbClient;

  beforeAll(async () => {
    await cluster().waitUntilHealthy();
    client = await CtdbClient.connect(cluster().node(0).socket);
  }, 120_000);
  afterAll(() => client?.close());

  async function attach(name: string, code: ControlCode.DB_ATTACH | ControlCode.DB_ATTACH_PERSISTENT = ControlCode.DB_ATTACH): Promise<number> {
    return (await client.call(0, code, name)).reply;
  }

  async function raw(code: ControlCode, request: unknown): Promise<{ status: number; errorMessage: string | null }> {
    const data = (encodeControlRequest as (c: ControlCode, v: unknown) => Buffer)(code, request);
    return client.control(0, code, data, { timeoutMs: 10_000 });
  }

  it('DB_OPEN_FLAGS are the real tdb flags: volatile 0x1c41, +SEQNUM after ENABLE_SEQNUM, persistent 0x400', async () => {
    const vol = await attach('flags_vol.tdb');
    expect((await client.call(0, ControlCode.DB_OPEN_FLAGS, vol)).reply).toBe(0x1c41);
    await client.call(0, ControlCode.ENABLE_SEQNUM, vol);
    expect((await client.call(0, ControlCode.DB_OPEN_FLAGS, vol)).reply).toBe(0x1cc1);
    const pers = await attach('flags_pers.tdb', ControlCode.DB_ATTACH_PERSISTENT);
    expect((await client.call(0, ControlCode.DB_OPEN_FLAGS, pers)).reply).toBe(0x400);
  });

  it('rejects bad requests with an error: unknown ids, bad names, steps out of order', async () => {
    const db = await attach('order.tdb');
    const transdb = { dbId: db, tid: 77 };
    const failures: [ControlCode, unknown][] = [
      [ControlCode.GETDBPATH, 0x12345678],
      [ControlCode.DB_FREEZE, 0x12345678],
      [ControlCode.DB_ATTACH, 'a/b.tdb'],
      [ControlCode.DB_ATTACH, '..'],
      [ControlCode.DB_ATTACH_PERSISTENT, 'order.tdb'],
      [ControlCode.DB_TRANSACTION_START, transdb],
      [ControlCode.WIPE_DATABASE, transdb],
      [ControlCode.DB_PULL, { dbId: db, lmaster: LMASTER_ANY, srvid: 1n }],
      [ControlCode.DB_PUSH_START, { dbId: db, lmaster: 0, srvid: 1n }],
      [ControlCode.DB_PUSH_CONFIRM, db],
      [ControlCode.SET_DB_READONLY, await attach('order_p.tdb', ControlCode.DB_ATTACH_PERSISTENT)],
    ];
    for (const [code, request] of failures) expect((await raw(code, request)).status, ControlCode[code]).toBe(-1);
    // A recovery attach outside recovery is refused too.
    const name = Buffer.from('late.tdb\0');
    expect((await client.control(0, ControlCode.DB_ATTACH, name, { flags: ControlFlag.ATTACH_RECOVERY })).status).toBe(-1);
    // Frozen, but the wrong transaction id.
    await client.call(0, ControlCode.DB_FREEZE, db);
    await client.call(0, ControlCode.DB_TRANSACTION_START, transdb);
    expect((await raw(ControlCode.WIPE_DATABASE, { dbId: db, tid: 78 })).status).toBe(-1);
    expect((await raw(ControlCode.DB_TRANSACTION_COMMIT, { dbId: db, tid: 78 })).status).toBe(-1);
    await client.call(0, ControlCode.DB_TRANSACTION_COMMIT, transdb);
    await client.call(0, ControlCode.DB_THAW, db);
  });

  it('a client attach during recovery waits for recovery mode NORMAL; a recovery attach does not', async () => {
    await client.call(0, ControlCode.SET_RECMODE, RecMode.ACTIVE);
    let attached = false;
    const deferred = client.call(0, ControlCode.DB_ATTACH, 'deferred.tdb', { timeoutMs: 60_000 }).then((r) => ((attached = true), r.reply));
    const name = Buffer.from('during_recovery.tdb\0');
    expect((await client.control(0, ControlCode.DB_ATTACH, name, { flags: ControlFlag.ATTACH_RECOVERY })).status).toBe(0);
    expect((await client.call(0, ControlCode.GET_RECMODE, undefined)).status).toBe(RecMode.ACTIVE);
    expect(attached).toBe(false);
    // The leader's recovery ends recovery mode; then the attach goes through.
    const id = await deferred;
    expect((await client.call(0, ControlCode.GET_RECMODE, undefined)).status).toBe(RecMode.NORMAL);
    expect((await client.call(0, ControlCode.GET_DBNAME, id)).reply).toBe('deferred.tdb');
  }, 60_000);

  it('DB_FREEZE waits for a libtdb process holding the whole database without blocking the daemon', async () => {
    const db = await attach('freeze.tdb');
    const path = (await client.call(0, ControlCode.GETDBPATH, db)).reply as string;
    const flags = (await client.call(0, ControlCode.DB_OPEN_FLAGS, db)).reply;
    const holder = await holdAllRecordLock(path, flags);
    try {
      let frozen = false;
      const freeze = client.call(0, ControlCode.DB_FREEZE, db).then(() => (frozen = true));
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        await client.call(0, ControlCode.GET_PNN, undefined);
        expect(performance.now() - started).toBeLessThan(100);
        await new Promise((r) => setTimeout(r, 40));
      }
      expect(frozen).toBe(false);
      // FREEZE of every database waits for the same lock.
      let allFrozen = false;
      const freezeAll = client.call(0, ControlCode.FREEZE, undefined).then(() => (allFrozen = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(allFrozen).toBe(false);
      await holder.release();
      await Promise.all([freeze, freezeAll]);
      expect(frozen && allFrozen).toBe(true);
      const { reply: dbmap } = await client.call(0, ControlCode.GET_DBMAP, undefined);
      for (const { dbId } of dbmap) await client.call(0, ControlCode.DB_THAW, dbId);
    } finally {
      holder.kill();
    }
  });
});
