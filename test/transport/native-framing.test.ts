// Framing through real sockets: node:net clients write, the native io module splits.
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { IoHarness, makePacket, unixListener, write } from './io-harness';

const MAX_PACKET = 16 << 20;
const h = new IoHarness({ maxPacketSize: MAX_PACKET });
const { socketPath, clients } = unixListener(h, 'ctdb-io-framing-');

async function client(): Promise<{ client: net.Socket; conn: number }> {
  const c = await h.connectUnix(socketPath);
  clients.push(c.client);
  return c;
}

/** Writes `bytes` in the given pieces, each only after the daemon side has read the previous one. */
async function writeInPieces(socket: net.Socket, pieces: Buffer[]): Promise<void> {
  for (const piece of pieces) {
    const target = h.io.stats().bytesRead + piece.length;
    await write(socket, piece);
    await h.waitFor('the piece to be read', () => h.io.stats().bytesRead >= target);
  }
}

const sample = [makePacket(32), makePacket(48), makePacket(33), makePacket(71), makePacket(100)];
const stream = Buffer.concat(sample);

describe('native framing (client mode, unix socket)', () => {
  it('reassembles packets split at every byte boundary', async () => {
    const { client: c, conn } = await client();
    const rec = h.record(conn);
    for (let cut = 1; cut < stream.length; cut++) {
      const expected = rec.packets.length + sample.length;
      await writeInPieces(c, [stream.subarray(0, cut), stream.subarray(cut)]);
      await h.waitFor('packets', () => rec.packets.length === expected);
    }
    for (let i = 0; i < rec.packets.length; i++) expect(rec.packets[i]).toEqual(sample[i % sample.length]);
    expect(rec.closed).toEqual([]);
  });

  it('splits many packets from one write, in order', async () => {
    const { client: c, conn } = await client();
    const packets = Array.from({ length: 2000 }, (_, i) => makePacket(32 + (i % 200), i & 0xff));
    const batchesBefore = h.batches.length;
    await write(c, Buffer.concat(packets));
    const rec = h.record(conn);
    await h.waitFor('2000 packets', () => rec.packets.length === 2000);
    expect(rec.packets).toEqual(packets);
    expect(h.batches.length - batchesBefore).toBeLessThan(50);
  });

  it('takes a one-byte dribble', async () => {
    const { client: c, conn } = await client();
    const packets = [makePacket(1024, 7), makePacket(40, 8)];
    const bytes = Buffer.concat(packets);
    await writeInPieces(c, Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1)));
    const rec = h.record(conn);
    await h.waitFor('dribbled packets', () => rec.packets.length === 2);
    expect(rec.packets).toEqual(packets);
  });

  it('delivers a 10 MiB packet intact, followed by small ones', async () => {
    const { client: c, conn } = await client();
    const big = Buffer.alloc(10 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    big.writeUInt32LE(big.length, 0);
    const largeBefore = h.io.stats().largePackets;
    await write(c, Buffer.concat([makePacket(40), big, makePacket(56)]));
    const rec = h.record(conn);
    await h.waitFor('the big packet', () => rec.packets.length === 3);
    expect(rec.packets[0]).toEqual(makePacket(40));
    expect(rec.packets[1].equals(big)).toBe(true);
    expect(rec.packets[2]).toEqual(makePacket(56));
    expect(h.io.stats().largePackets).toBe(largeBefore + 1);
  });

  it('accepts unpadded client packets (as smbd sends them)', async () => {
    const { client: c, conn } = await client();
    const packets = [makePacket(60), makePacket(71), makePacket(33)];
    await write(c, Buffer.concat(packets));
    const rec = h.record(conn);
    await h.waitFor('unpadded packets', () => rec.packets.length === 3);
    expect(rec.packets).toEqual(packets);
  });

  it('keeps delivered packets unchanged while more arrive', async () => {
    const { client: c, conn } = await client();
    const rec = h.record(conn);
    await write(c, makePacket(64, 1));
    await h.waitFor('first', () => rec.packets.length === 1);
    const first = rec.packets[0];
    for (let i = 0; i < 50; i++) await write(c, makePacket(64, 2));
    await h.waitFor('the rest', () => rec.packets.length === 51);
    expect(first).toEqual(makePacket(64, 1));
  });

  const rejected: Array<[string, Buffer, string]> = [
    ['a length below the header', (() => { const b = Buffer.alloc(12); b.writeUInt32LE(12, 0); return b; })(), 'packet length 12 below header size 32'],
    ['a zero length', Buffer.alloc(32), 'packet length 0 below header size 32'],
    ['a length above the maximum', makePacket(40).fill(0xff, 0, 4), `packet length 4294967295 above maximum ${MAX_PACKET}`],
    ['a length just above the maximum (header only sent)', (() => { const b = Buffer.alloc(4); b.writeUInt32LE(MAX_PACKET + 1, 0); return b; })(), `packet length ${MAX_PACKET + 1} above maximum ${MAX_PACKET}`],
  ];
  for (const [what, bytes, reason] of rejected) {
    it(`closes the connection on ${what}, after the good packets before it`, async () => {
      const { client: c, conn } = await client();
      const ended = new Promise<void>((resolve) => c.once('close', () => resolve()));
      c.on('error', () => undefined);
      await write(c, Buffer.concat([makePacket(40), bytes]));
      const rec = h.record(conn);
      await h.waitFor('close', () => rec.closed.length > 0);
      expect(rec.closed).toEqual([reason]);
      expect(rec.packets).toEqual([makePacket(40)]);
      await ended;
    });
  }

  it('batches packets from many connections into few callbacks', async () => {
    const many: Array<{ client: net.Socket; conn: number }> = [];
    for (let i = 0; i < 200; i++) many.push(await client());
    const batchesBefore = h.batches.length;
    // One synchronous burst: every socket is readable by the next poll phase.
    for (const [i, { client: c }] of many.entries()) c.write(makePacket(48, i & 0xff));
    await h.waitFor('200 packets', () => many.every(({ conn }) => h.record(conn).packets.length === 1));
    const batches = h.batches.length - batchesBefore;
    expect(batches).toBeLessThan(20);
    for (const [i, { conn }] of many.entries()) expect(h.record(conn).packets[0]).toEqual(makePacket(48, i & 0xff));
  });

  it('reports the end of a connection exactly once, and never after close()', async () => {
    const a = await client();
    const b = await client();
    a.client.end();
    await h.waitFor('EOF', () => h.record(a.conn).closed.length > 0);
    expect(h.record(a.conn).closed).toEqual(['connection closed by peer']);
    h.io.close(b.conn);
    await new Promise<void>((resolve) => b.client.once('close', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.record(a.conn).closed).toHaveLength(1);
    expect(h.record(b.conn).closed).toEqual([]);
    expect(h.io.send(a.conn, makePacket(32))).toBe(false);
    expect(h.io.send(b.conn, makePacket(32))).toBe(false);
  });

  it('reports EOF in the middle of a packet', async () => {
    const { client: c, conn } = await client();
    c.end(makePacket(200).subarray(0, 100));
    await h.waitFor('EOF', () => h.record(conn).closed.length > 0);
    expect(h.record(conn).closed).toEqual(['connection closed by peer in the middle of a packet']);
  });
});
