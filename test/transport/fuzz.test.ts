// Random byte streams, valid and not, against the native framer; the TS PacketStream
// says what should happen. Whatever arrives, the process must survive and agree.
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FramingMode } from '../../src/transport/framer';
import { PacketStream } from '../../src/transport/framer';
import { IoHarness, tempDir } from './io-harness';

const MAX_PACKET = 1 << 20;
const h = new IoHarness({ maxPacketSize: MAX_PACKET });
const socketPath = path.join(tempDir('ctdb-io-fuzz-'), 'ctdbd.socket');
const unixListener = h.io.listenUnix(socketPath, 0o700);
const tcpListener = h.io.listenTcp('127.0.0.9', 0);
const tcpPort = h.io.listenerPort(tcpListener);
afterAll(() => {
  h.io.closeListener(unixListener);
  h.io.closeListener(tcpListener);
});

/** xorshift32: reproducible streams (the seed is in the test name). */
function prng(seed: number): (n: number) => number {
  let x = seed || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

function randomStream(rand: (n: number) => number): Buffer {
  const parts: Buffer[] = [];
  const count = 1 + rand(20);
  for (let i = 0; i < count; i++) {
    const kind = rand(100);
    if (kind < 3) {
      parts.push(Buffer.from(Array.from({ length: 1 + rand(64) }, () => rand(256)))); // raw garbage
      continue;
    }
    let length = 32 + rand(3000);
    if (kind < 8) length = rand(32);
    else if (kind < 12) length = MAX_PACKET + rand(1000);
    else if (kind < 15) length = rand(2 ** 32);
    else if (kind < 20) length = (32 << 10) + rand(200_000); // read into memory of its own
    else if (kind < 60) length &= ~7; // padded, as daemons send
    // Most bodies are cut short, so the next length prefix lands inside a packet.
    const bodyLength = kind >= 15 && kind < 20 ? length : Math.max(4, Math.min(length, 4096));
    const body = Buffer.alloc(bodyLength, rand(256));
    body.writeUInt32LE(length >>> 0, 0);
    parts.push(body);
  }
  return Buffer.concat(parts);
}

function expected(bytes: Buffer, mode: FramingMode): { packets: Buffer[]; reason: string } {
  const packets: Buffer[] = [];
  const stream = new PacketStream((p) => packets.push(p), { mode, maxPacketSize: MAX_PACKET });
  try {
    stream.push(bytes);
  } catch (err) {
    return { packets, reason: (err as Error).message };
  }
  return { packets, reason: stream.buffered > 0 ? 'connection closed by peer in the middle of a packet' : 'connection closed by peer' };
}

async function runClient(bytes: Buffer, mode: FramingMode, rand: (n: number) => number): Promise<void> {
  const listener = mode === 'peer' ? tcpListener : unixListener;
  const before = h.accepted.length;
  const socket = mode === 'peer' ? net.createConnection({ host: '127.0.0.9', port: tcpPort }) : net.createConnection(socketPath);
  socket.on('error', () => undefined); // the daemon may close while we still write
  await new Promise((resolve) => socket.once('connect', resolve));
  for (let pos = 0; pos < bytes.length && !socket.destroyed; ) {
    const size = 1 + rand(700);
    socket.write(bytes.subarray(pos, pos + size));
    pos += size;
    if (rand(4) === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  socket.end();
  // Clients run in parallel: a connection is this client's when its packets and close match.
  await h.waitFor(`a connection that saw what the TS framer sees in ${bytes.length} ${mode} bytes`, () => {
    const found = h.accepted.slice(before).filter((c) => h.record(c).listener === listener && !claimed.has(c));
    return found.some((c) => h.record(c).closed.length > 0 && matches(c, bytes, mode));
  });
  socket.destroy();
}

const claimed = new Set<number>();
function matches(conn: number, bytes: Buffer, mode: FramingMode): boolean {
  const want = expected(bytes, mode);
  const rec = h.record(conn);
  const ok =
    rec.closed.length === 1 &&
    rec.closed[0] === want.reason &&
    rec.packets.length === want.packets.length &&
    rec.packets.every((p, i) => p.equals(want.packets[i]));
  if (ok) claimed.add(conn);
  return ok;
}

describe('fuzz', () => {
  for (const seed of [1, 7, 42, 1234, 99991]) {
    it(`random streams agree with the TS framer (seed ${seed})`, async () => {
      const rand = prng(seed);
      const runs: Array<Promise<void>> = [];
      for (let i = 0; i < 40; i++) {
        const mode: FramingMode = rand(3) === 0 ? 'peer' : 'client';
        runs.push(runClient(randomStream(rand), mode, prng(seed * 1000 + i)));
      }
      await Promise.all(runs);
      expect(h.accepted.filter((c) => h.record(c).closed.length !== 1)).toEqual([]);
      const reasons = new Set(h.accepted.map((c) => h.record(c).closed[0].replace(/[0-9]+/g, 'N')));
      expect(reasons.size).toBeGreaterThan(3);
    });
  }

  it('went through the large-packet path too', () => {
    expect(h.io.stats().largePackets).toBeGreaterThan(0);
  });
});
