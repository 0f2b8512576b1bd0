// Samba bug 14294: a node that was stopped while a record was deleted still holds an old copy
// of it. The recovery that takes the node back must not bring that copy back: the record was
// deleted for good on the active nodes (its tombstone did not survive the recovery in between).
// Same scenario, same expectations on our daemons and on Debian's ctdbd.
import { describe, expect, it } from 'vitest';
import { ControlCode, NodeFlag, RecMode } from '../../src/protocol';
import { CtdbClient } from '../../src/client/ctdb-client';
import { useTestCluster, type TestCluster } from '../harness/cluster';
import { localRecords, recoveryModes, waitForNormal } from './helpers';

const DB = 'zombie.tdb';
const NODES = [0, 1, 2];

async function run(c: TestCluster, pnn: number, args: string[]): Promise<string> {
  const r = await c.ctdb(pnn, args, { timeoutMs: 60_000 });
  expect(r.code, `ctdb ${args.join(' ')} on node ${pnn}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** Per node: the value of `key`, '' for an empty (deleted) record, undefined when absent. */
async function copies(c: TestCluster, key: string, nodes = NODES): Promise<(string | undefined)[]> {
  return Promise.all(nodes.map(async (pnn) => (await localRecords(c, pnn, DB)).get(key)?.value));
}

async function generationOf(c: TestCluster, pnn: number): Promise<number> {
  const client = await CtdbClient.connect(c.node(pnn).socket);
  try {
    return (await client.call(pnn, ControlCode.GETVNNMAP, undefined)).reply.generation;
  } finally {
    client.close();
  }
}

/** Until node `pnn` has (or lacks) `flag` in every running node's view. */
async function waitForFlag(c: TestCluster, pnn: number, flag: number, set: boolean): Promise<void> {
  await c.waitFor(
    async () => {
      const client = await CtdbClient.connect(c.node(0).socket);
      try {
        const views = await Promise.all(NODES.map(async (viewer) => (await client.call(viewer, ControlCode.GET_NODEMAP, undefined)).reply));
        return views.every((map) => ((map.find((n) => n.pnn === pnn)?.flags ?? 0) & flag) !== 0 === set);
      } finally {
        client.close();
      }
    },
    60_000,
    `node ${pnn} ${set ? 'with' : 'without'} flag 0x${flag.toString(16)}`,
  );
}

describe.each(['ours', 'real'] as const)('a record deleted while a node was stopped (%s)', (impl) => {
  const cluster = useTestCluster({ nodes: 3, impl, tunables: { RerecoveryTimeout: 0 } });

  it('stays deleted after the node continues and the cluster recovers', async () => {
    const c = cluster();
    await c.waitUntilHealthy();
    await waitForNormal(c);
    await run(c, 0, ['attach', DB]);
    // Node 2 writes the record first; node 1 then takes it over, so node 2 keeps an older copy.
    await run(c, 2, ['writekey', DB, 'victim', 'first']);
    await run(c, 1, ['writekey', DB, 'victim', 'second']);
    await run(c, 1, ['writekey', DB, 'survivor', 'kept']);
    expect(await copies(c, 'victim', [1, 2])).toEqual(['second', 'first']);

    await run(c, 2, ['stop']);
    await waitForFlag(c, 2, NodeFlag.STOPPED, true);
    // A stopped node puts itself in recovery mode and freezes (declaring its records invalid)
    // at its recovery daemon's next pass, which waits while an election runs (4.17's order):
    // the scenario needs that to have happened before the node continues.
    await c.waitFor(async () => (await recoveryModes(c, [2]))[0] === RecMode.ACTIVE, 60_000, 'node 2 in recovery mode');
    await waitForNormal(c, 60_000, [0, 1]);
    await run(c, 1, ['deletekey', DB, 'victim']);
    // A recovery without node 2: the deleted record's tombstone is not pushed, so nothing on
    // the active nodes remembers the deletion any more.
    const before = await generationOf(c, 0);
    await run(c, 0, ['recover']);
    expect(await generationOf(c, 0)).not.toBe(before);
    expect(await copies(c, 'victim', [0, 1])).toEqual([undefined, undefined]);

    const stopped = await generationOf(c, 0);
    await run(c, 2, ['continue']);
    await waitForFlag(c, 2, NodeFlag.STOPPED, false);
    await c.waitFor(async () => (await generationOf(c, 0)) !== stopped, 60_000, 'the recovery that takes node 2 back');
    await waitForNormal(c);
    await c.waitUntilHealthy();

    expect(await copies(c, 'victim')).toEqual([undefined, undefined, undefined]);
    expect(await copies(c, 'survivor')).toEqual(['kept', 'kept', 'kept']);
    for (const pnn of NODES) {
      const { stdout } = await c.ctdb(pnn, ['readkey', DB, 'victim']);
      expect(stdout, `readkey on node ${pnn}`).toMatch(/Data: size:0 ptr:\[\]/);
    }
  }, 240_000);
});
