// Failure handling of the recovery pipeline against real ctdbds: a task that throws, a node
// that stops answering, a node that dies mid-recovery, cancellation. Nothing may hang and the
// failing node must be named.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlCode } from '../../src/protocol';
import { RecoveryPipeline, type RecoveryPhase } from '../../src/recovery/pipeline';
import { useTestCluster } from '../harness/cluster';
import { RecoveryDriver, localRecords, recoveryModes, seedNode, waitForNormal } from './helpers';

const cluster = useTestCluster({ nodes: 3, impl: 'real' });
let driver: RecoveryDriver;

beforeAll(async () => {
  await cluster().waitUntilHealthy();
  await waitForNormal(cluster());
  driver = await RecoveryDriver.start(cluster(), { attempts: 1 });
}, 120_000);
afterAll(() => driver?.close());

function accepts(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('recovery failures', () => {
  it('turns a task that throws into a failed result while the other databases recover', async () => {
    const [good] = await driver.tasksFor(['fail_good.tdb'], 10_000);
    const report = await driver.pipeline.recoverDatabases([{ ...good, name: 'broken', activeNodes: [] }, good]);
    expect(report.ok).toBe(false);
    expect(report.results[0].error).toMatch(/invalid recovery task for database broken: bad activeNodes/);
    expect(report.culprit).toBeUndefined();
    expect(report.results[1]).toMatchObject({ ok: true, name: 'fail_good.tdb' });
  }, 60_000);

  it('blames a node that stops answering once its control times out, and cancels on close', async () => {
    const tasks = await driver.tasksFor(['fail_stop.tdb'], 1_500);
    cluster().kill(2, 'SIGSTOP');
    try {
      const started = performance.now();
      const report = await driver.pipeline.recoverDatabases(tasks);
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(report.ok).toBe(false);
      expect(report.culprit).toBe(2);
      expect(report.results[0].error).toMatch(/DB_FREEZE .*node 2.*timed out/);

      // close() while a task waits on the stopped node: it ends at once, cancelled.
      const closing = new RecoveryPipeline({ attempts: 3 });
      const [slow] = await driver.tasksFor(['fail_stop.tdb'], 60_000);
      const pending = closing.recoverDatabases([slow]);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const closeStarted = performance.now();
      await closing.close();
      const cancelled = await pending;
      expect(performance.now() - closeStarted).toBeLessThan(3_000);
      expect(cancelled.results[0]).toMatchObject({ ok: false });
      expect(cancelled.results[0].error).toMatch(/cancelled/);
    } finally {
      cluster().kill(2, 'SIGCONT');
    }
    // Frozen databases are left for the next recovery, which repairs them.
    expect((await driver.recover()).ok).toBe(true);
  }, 120_000);

  it("fails with the dead node as culprit when a node dies mid-recovery; the survivors recover, then the node rejoins and gets the databases it missed", async () => {
    const dbId = await driver.attach('fail_kill.tdb');
    const COUNT = 60_000;
    await Promise.all(
      [0, 1, 2].map((pnn) =>
        seedNode(driver.client, pnn, dbId, Array.from({ length: COUNT / 3 }, (_, i) => ({ key: `kill-${pnn}-${i}`, rsn: 3n, dmaster: pnn, value: 'y'.repeat(200) }))),
      ),
    );
    let killedIn: RecoveryPhase | undefined;
    const result = await driver.recover({
      onPhase: ({ dbId: id, phase }) => {
        if (id === dbId && phase === 'collect' && killedIn === undefined) {
          killedIn = phase;
          cluster().kill(2, 'SIGKILL');
        }
      },
    });
    expect(killedIn).toBe('collect');
    expect(result.ok).toBe(false);
    expect(result.culprit).toBe(2);
    expect(result.report?.banCredits.get(2)).toBeGreaterThan(0);

    // Node 2 is gone: the next recovery covers nodes 0 and 1 and loses nothing they held.
    await cluster().waitFor(async () => (await recoveryModes(cluster())).length === 2, 30_000, 'node 2 to be gone');
    // If node 2 led, the survivors elect a new leader, and an election puts every node in
    // recovery mode: let it be over before recovering (the tool waits for a leader broadcast).
    await cluster().waitFor(async () => ['0', '1'].includes((await cluster().ctdb(0, ['leader'], { timeoutMs: 15_000 })).stdout.trim()), 60_000, 'a leader among nodes 0 and 1');
    const again = await driver.recover();
    expect(again.error).toBeUndefined();
    expect(again.activeNodes).toEqual([0, 1]);
    const records = await localRecords(cluster(), 1, 'fail_kill.tdb');
    expect(records.size).toBe((2 * COUNT) / 3);
    expect(records.get('kill-0-7')?.value).toBe('y'.repeat(200));
    expect(await recoveryModes(cluster())).toEqual([0, 0]);

    // Node 2 comes back without the databases attached meanwhile: the recovery attaches them there.
    const lateId = await driver.attach('late.tdb');
    await seedNode(driver.client, 1, lateId, [{ key: 'late-key', rsn: 4n, dmaster: 1, value: 'late value' }]);
    // The killed daemon's event daemon notices its parent is gone only after a while, and a new
    // ctdbd cannot start its own while the old one still holds the socket.
    const eventdSocket = path.join(cluster().node(2).base, 'run', 'eventd.socket');
    await cluster().waitFor(async () => !(await accepts(eventdSocket)), 30_000, 'the killed node\'s event daemon to exit');
    // What the init event (00.ctdb) does on a real system: a restarted ctdbd refuses (aborts)
    // to attach a volatile database whose old file still holds records.
    const volatileDir = path.join(cluster().node(2).base, 'db', 'volatile');
    for (const file of fs.readdirSync(volatileDir)) fs.rmSync(path.join(volatileDir, file));
    await cluster().startNode(2);
    await cluster().waitFor(async () => (await driver.client.control(2, ControlCode.GET_PNN, Buffer.alloc(0), { timeoutMs: 2000 })).status === 2, 30_000, 'node 2 to connect');
    const dbmapBefore = (await driver.client.call(2, ControlCode.GET_DBMAP, undefined)).reply;
    expect(dbmapBefore.some((db) => db.dbId === lateId)).toBe(false);
    await driver.setRealRecoveries(600);
    const rejoined = await driver.recover();
    expect(rejoined.error).toBeUndefined();
    expect(rejoined.activeNodes).toEqual([0, 1, 2]);
    expect((await localRecords(cluster(), 2, 'late.tdb')).get('late-key')?.value).toBe('late value');
    expect((await localRecords(cluster(), 2, 'fail_kill.tdb')).size).toBe((2 * COUNT) / 3);
  }, 180_000);
});
