import { describe, expect, it } from 'vitest';
import { FramingError, PacketStream, packetLengthError } from '../../src/transport/framer';
import type { FramingMode } from '../../src/transport/framer';
import { makePacket } from './io-harness';

function frame(chunks: Buffer[], mode: FramingMode = 'client', maxPacketSize?: number): { packets: Buffer[]; error: string | null } {
  const packets: Buffer[] = [];
  const stream = new PacketStream((p) => packets.push(p), { mode, maxPacketSize });
  try {
    for (const chunk of chunks) stream.push(chunk);
    return { packets, error: null };
  } catch (err) {
    expect(err).toBeInstanceOf(FramingError);
    return { packets, error: (err as FramingError).reason };
  }
}

const sample = [makePacket(32), makePacket(48), makePacket(33), makePacket(71), makePacket(100)];
const stream = Buffer.concat(sample);

describe('PacketStream', () => {
  it('splits packets cut at every byte boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const { packets } = frame([stream.subarray(0, cut), stream.subarray(cut)]);
      expect(packets).toEqual(sample);
    }
  });

  it('splits many packets from one chunk and a one-byte dribble', () => {
    expect(frame([stream]).packets).toEqual(sample);
    const bytes = [...stream].map((b) => Buffer.from([b]));
    expect(frame(bytes).packets).toEqual(sample);
  });

  it('keeps earlier packets intact while later chunks arrive', () => {
    const chunk = Buffer.concat([makePacket(40, 1), makePacket(40, 2).subarray(0, 10)]);
    const packets: Buffer[] = [];
    const s = new PacketStream((p) => packets.push(p));
    s.push(chunk);
    s.push(makePacket(40, 2).subarray(10));
    expect(packets).toEqual([makePacket(40, 1), makePacket(40, 2)]);
    expect(s.buffered).toBe(0);
  });

  it('applies the length rules of each mode', () => {
    expect(frame([makePacket(44)], 'peer').error).toBe('packet length 44 not a multiple of 8 on a peer connection');
    expect(frame([makePacket(44)], 'client').packets).toHaveLength(1);
    const short = Buffer.alloc(12);
    short.writeUInt32LE(12, 0);
    expect(frame([short]).error).toBe('packet length 12 below header size 32');
    const huge = Buffer.alloc(4);
    huge.writeUInt32LE(1 << 20, 0);
    expect(frame([huge], 'client', 1 << 16).error).toBe('packet length 1048576 above maximum 65536');
  });

  it('reports a bad length split inside the prefix, and keeps failing', () => {
    const short = Buffer.alloc(8);
    short.writeUInt32LE(8, 0);
    const s = new PacketStream(() => undefined);
    s.push(short.subarray(0, 2));
    expect(() => s.push(short.subarray(2))).toThrow('packet length 8 below header size 32');
    expect(() => s.push(makePacket(32))).toThrow(FramingError);
  });

  it('packetLengthError accepts the boundaries', () => {
    expect(packetLengthError(32, 'peer', 64)).toBeNull();
    expect(packetLengthError(64, 'peer', 64)).toBeNull();
    expect(packetLengthError(72, 'peer', 64)).toBe('packet length 72 above maximum 64');
    expect(packetLengthError(31, 'client', 64)).toBe('packet length 31 below header size 32');
  });
});
