// The write side: immediate writes, queueing on EAGAIN, queue limits, broadcasts.
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { PacketStream } from '../../src/transport/framer';
import { IoHarness, makePacket, runNode, unixListener } from './io-harness';

const QUEUE_LIMIT = 5000;
const h = new IoHarness({ maxQueuePackets: QUEUE_LIMIT });
const { socketPath, clients } = unixListener(h, 'ctdb-io-writes-');

/** A client that reads nothing until resume(): the kernel buffers fill and the daemon must queue. */
async function stalledClient(): Promise<{ client: net.Socket; conn: number; packets: Buffer[]; bytes: () => number }> {
  const { client, conn } = await h.connectUnix(socketPath);
  clients.push(client);
  client.pause();
  const packets: Buffer[] = [];
  let bytes = 0;
  const stream = new PacketStream((p) => packets.push(Buffer.from(p)));
  client.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    stream.push(chunk);
  });
  client.pause();
  return { client, conn, packets, bytes: () => bytes };
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

describe('native writes', () => {
  it('queues 100 MiB for a reader that does not read: bounded memory, no spinning, nothing lost', async () => {
    const c = await stalledClient();
    const packet = makePacket(1 << 20);
    const rssBefore = process.memoryUsage().rss;
    const waitsBefore = h.io.stats().eagainWaits;
    for (let i = 0; i < 100; i++) {
      packet.fill(i, 4);
      expect(h.io.send(c.conn, packet)).toBe(true);
    }
    const grew = process.memoryUsage().rss - rssBefore;
    expect(grew).toBeLessThan(160 << 20);
    expect(h.io.stats().eagainWaits).toBeGreaterThan(waitsBefore);

    const cpuBefore = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(cpuMs(cpuBefore)).toBeLessThan(150);

    c.client.resume();
    await h.waitFor('100 MiB at the client', () => c.packets.length === 100, 30_000);
    for (let i = 0; i < 100; i++) {
      expect(c.packets[i].length).toBe(1 << 20);
      expect(c.packets[i][4]).toBe(i);
      expect(c.packets[i][(1 << 20) - 1]).toBe(i);
    }
    expect(h.record(c.conn).closed).toEqual([]);
  });

  it('drops a connection whose queue passes the packet limit, once', async () => {
    const c = await stalledClient();
    c.client.on('error', () => undefined);
    const packet = makePacket(48);
    let refused = 0;
    for (let i = 0; i < 4 * QUEUE_LIMIT; i++) refused += h.io.send(c.conn, packet) ? 0 : 1;
    expect(refused).toBeGreaterThan(0);
    await h.waitFor('overflow report', () => h.record(c.conn).closed.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(h.record(c.conn).closed).toEqual([`send queue overflow: ${QUEUE_LIMIT} packets pending`]);
  });

  it('sendMany reaches every connection, sharing one copy for those that must queue', async () => {
    const fast: Array<{ client: net.Socket; conn: number; got: Buffer[] }> = [];
    for (let i = 0; i < 50; i++) {
      const { client, conn } = await h.connectUnix(socketPath);
      clients.push(client);
      const got: Buffer[] = [];
      const stream = new PacketStream((p) => got.push(p));
      client.on('data', (chunk: Buffer) => stream.push(chunk));
      fast.push({ client, conn, got });
    }
    const slow = [await stalledClient(), await stalledClient()];
    const filler = makePacket(1 << 20, 0xee);
    for (const s of slow) for (let i = 0; i < 4; i++) h.io.send(s.conn, filler);

    const packet = makePacket(40, 0x5a);
    const conns = new Uint32Array([...fast.map((f) => f.conn), ...slow.map((s) => s.conn)]);
    expect(h.io.sendMany(conns, packet)).toBe(52);
    expect(h.io.sendMany([fast[0].conn, 999_999], packet)).toBe(1);
    packet.fill(0, 4); // the queued copy must not see this

    await h.waitFor('fast clients', () => fast.every((f) => f.got.length >= 1));
    for (const s of slow) s.client.resume();
    await h.waitFor('slow clients', () => slow.every((s) => s.packets.length === 5));
    for (const s of slow) expect(s.packets[4]).toEqual(makePacket(40, 0x5a));
    for (const f of fast) expect(f.got[0]).toEqual(makePacket(40, 0x5a));
  });

  it('closeAfterFlush delivers what is queued, then closes without a report', async () => {
    const c = await stalledClient();
    const packet = makePacket(1 << 20, 3);
    for (let i = 0; i < 8; i++) h.io.send(c.conn, packet);
    h.io.closeAfterFlush(c.conn);
    expect(h.io.send(c.conn, packet)).toBe(false);
    const ended = new Promise<void>((resolve) => c.client.once('end', () => resolve()));
    c.client.resume();
    await ended;
    expect(c.bytes()).toBe(8 << 20);
    expect(h.record(c.conn).closed).toEqual([]);
  });

  it('echoes packets straight back from the packets callback', async () => {
    const { client, conn } = await h.connectUnix(socketPath);
    clients.push(client);
    const got: Buffer[] = [];
    const stream = new PacketStream((p) => got.push(p));
    client.on('data', (chunk: Buffer) => stream.push(chunk));
    h.onPackets = (conns, packets) => {
      for (let i = 0; i < packets.length; i++) if (conns[i] === conn) h.io.send(conn, packets[i]);
    };
    const sent = Array.from({ length: 1000 }, (_, i) => makePacket(32 + (i % 97), i & 0xff));
    client.write(Buffer.concat(sent));
    await h.waitFor('echo', () => got.length === 1000);
    h.onPackets = null;
    expect(got).toEqual(sent);
  });

  it('turns an exception in a handler into uncaughtException', async () => {
    const out = await runNode(`
      process.on('uncaughtException', (err) => { console.log('caught: ' + err.message); io.closeListener(l); });
      const path = require('path').join(require('os').tmpdir(), 'ctdb-io-throw-' + process.pid + '.socket');
      const io = new NativeIo({ packets() { throw new Error('handler failed'); }, accepted() {}, connected() {}, closed() {} });
      const l = io.listenUnix(path, 0o700);
      const c = require('net').createConnection(path, () => { const p = Buffer.alloc(32); p.writeUInt32LE(32, 0); c.end(p); });
    `);
    expect(out).toBe('caught: handler failed\n');
  });
});
