// Two clients exchange 100k messages through srvids, on one node and across two nodes:
// none is lost, none is duplicated, and they arrive in the order they were sent.
import { describe, expect, it } from 'vitest';
import { CtdbClient } from '../../src/client/ctdb-client';
import { TestCluster } from '../harness/cluster';

const COUNT = 100_000;
const SRVID = 0xae00000000001234n;

async function exchange(sender: CtdbClient, receiver: CtdbClient, destnode: number): Promise<void> {
  let next = 0;
  let errors = 0;
  const done = new Promise<void>((resolve) => {
    void receiver.registerSrvid(SRVID, (data) => {
      if (data.readUInt32LE(0) !== next) errors++;
      next++;
      if (next === COUNT) resolve();
    }).then(() => {
      for (let i = 0; i < COUNT; i++) {
        const data = Buffer.alloc(16);
        data.writeUInt32LE(i, 0);
        sender.sendMessage(destnode, SRVID, data);
      }
    });
  });
  await done;
  expect(errors).toBe(0);
  expect(next).toBe(COUNT);
}

describe('srvid messages', () => {
  it(`${COUNT} messages between two clients of one node`, async () => {
    const cluster = await TestCluster.start({ nodes: 1, impl: 'ours' });
    const a = await CtdbClient.connect(cluster.node(0).socket);
    const b = await CtdbClient.connect(cluster.node(0).socket);
    try {
      await exchange(a, b, 0);
    } finally {
      a.close();
      b.close();
    }
  }, 120_000);

  it(`${COUNT} messages from a client of node 1 to a client of node 0`, async () => {
    const cluster = await TestCluster.start({ nodes: 2, impl: 'ours' });
    await cluster.waitUntilHealthy();
    const receiver = await CtdbClient.connect(cluster.node(0).socket);
    const sender = await CtdbClient.connect(cluster.node(1).socket);
    try {
      await exchange(sender, receiver, 0);
    } finally {
      receiver.close();
      sender.close();
    }
  }, 120_000);
});
