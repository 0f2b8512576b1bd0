// 5000 clients on the unix socket (what the daemon must serve), and teardown of the
// io module inside worker threads.
import net from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/native';
import { PacketStream } from '../../src/transport/framer';
import { IoHarness, makePacket, unixListener } from './io-harness';

const h = new IoHarness();
const { socketPath, clients } = unixListener(h, 'ctdb-io-scale-');
const dir = path.dirname(socketPath);

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('scale', () => {
  it('serves 5000 clients at once, each getting its reply', async () => {
    h.onPackets = (conns, packets) => {
      for (let i = 0; i < packets.length; i++) h.io.send(conns[i], packets[i]);
    };
    for (let i = 0; i < 5000; i += 500) clients.push(...(await Promise.all(Array.from({ length: 500 }, connect))));
    await h.waitFor('5000 accepts', () => h.accepted.length === 5000);
    let replies = 0;
    const batchesBefore = h.batches.length;
    for (const [i, client] of clients.entries()) {
      const stream = new PacketStream((p) => {
        expect(p).toEqual(makePacket(48, i & 0xff));
        replies++;
      });
      client.on('data', (chunk: Buffer) => stream.push(chunk));
      client.write(makePacket(48, i & 0xff));
    }
    await h.waitFor('5000 replies', () => replies === 5000, 30_000);
    expect(h.batches.length - batchesBefore).toBeLessThan(500);
    h.onPackets = null;
  });
});

describe('idle', () => {
  it('5000 idle connections cost no CPU', async () => {
    expect(h.accepted.length).toBe(5000); // the clients of the test above are still connected
    // Let the garbage of the test above be collected first: that is not the io module's cost.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stats = h.io.stats();
    const before = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const used = process.cpuUsage(before);
    // No polling: an idle connection is not read, written or reported.
    const after = h.io.stats();
    expect([after.reads, after.writes, after.batches]).toEqual([stats.reads, stats.writes, stats.batches]);
    // A loop that polled would burn a whole core; idle stays under 5% of one.
    expect((used.user + used.system) / 1000).toBeLessThan(100);
  });
});

describe('worker threads', () => {
  const facade = path.join(projectRoot, 'dist', 'src', 'transport', 'native-io.js');
  // Each worker has its own io instance; terminating it mid-traffic must release everything.
  const workerCode = `
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    const { NativeIo } = require(${JSON.stringify(facade)});
    let io;
    io = new NativeIo({
      packets(conns, packets) { for (let i = 0; i < packets.length; i++) io.send(conns[i], packets[i]); },
      accepted() {}, connected() {}, closed() {},
    });
    io.listenUnix(workerData.socket, 0o700);
    const client = net.createConnection(workerData.socket, () => {
      const p = Buffer.alloc(64); p.writeUInt32LE(64, 0);
      client.write(p);
      let echoed = 0;
      client.on('data', (d) => { echoed += d.length; if (echoed >= 64) { parentPort.postMessage('echoed'); client.write(p); echoed = 0; } });
    });
  `;

  it('tears the io module down when a worker is terminated, repeatedly', async () => {
    for (let round = 0; round < 3; round++) {
      const worker = new Worker(workerCode, { eval: true, workerData: { socket: path.join(dir, 'worker.socket') } });
      await new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await worker.terminate()).toBe(1);
    }
  });
});
