// Every packet kind: encode -> decode round trip, padding, length-field validation and truncation.
import { describe, expect, it } from 'vitest';
import {
  CTDB_MAGIC,
  CallFlag,
  CallId,
  ControlCode,
  ControlFlag,
  KEEPALIVE_VERSION,
  Operation,
  type Packet,
  Pnn,
  ProtocolError,
  Srvid,
  TunnelFlag,
  decodeHeader,
  decodePacket,
  encodePacket,
  makeHeader,
  writeHeaderFields,
} from '../../src/protocol';
import { noise } from './samples';

const route = { destnode: 1, srcnode: 0, reqid: 77, generation: 412131831 };
const bytes = (s: string): Buffer => Buffer.from(s);

const PACKETS: Array<{ name: string; packet: Packet }> = [
  {
    name: 'REQ_CALL',
    packet: {
      header: makeHeader(Operation.REQ_CALL, route),
      flags: CallFlag.IMMEDIATE_MIGRATION,
      dbId: 0xc445c6ab,
      callId: CallId.NULL_FUNC,
      hopcount: 2,
      key: bytes('greeting'),
      callData: bytes('x'),
    },
  },
  { name: 'REPLY_CALL', packet: { header: makeHeader(Operation.REPLY_CALL, route), status: -1, data: bytes('value') } },
  {
    name: 'REQ_DMASTER',
    packet: { header: makeHeader(Operation.REQ_DMASTER, route), dbId: 1, rsn: 0x100000001n, dmaster: 2, key: bytes('k'), data: bytes('data'), recordFlags: 0x10000 },
  },
  {
    name: 'REPLY_DMASTER',
    packet: { header: makeHeader(Operation.REPLY_DMASTER, route), dbId: 1, rsn: 5n, key: bytes('key'), data: Buffer.alloc(0), recordFlags: 0 },
  },
  { name: 'REPLY_ERROR', packet: { header: makeHeader(Operation.REPLY_ERROR, route), status: -1, msg: bytes('Unknown database in request') } },
  { name: 'REQ_MESSAGE', packet: { header: makeHeader(Operation.REQ_MESSAGE, { ...route, destnode: Pnn.BROADCAST_CONNECTED }), srvid: Srvid.LEADER, data: bytes('\0\0\0\0') } },
  {
    name: 'REQ_CONTROL',
    packet: {
      header: makeHeader(Operation.REQ_CONTROL, { ...route, destnode: Pnn.CURRENT_NODE, srcnode: Pnn.UNKNOWN }),
      opcode: ControlCode.DB_ATTACH,
      srvid: 0n,
      clientId: 0,
      flags: ControlFlag.ATTACH_RECOVERY,
      data: bytes('test.tdb\0'),
    },
  },
  { name: 'REPLY_CONTROL ok', packet: { header: makeHeader(Operation.REPLY_CONTROL, route), status: 0, data: bytes('\x01\0\0\0'), errorMessage: null } },
  { name: 'REPLY_CONTROL error', packet: { header: makeHeader(Operation.REPLY_CONTROL, route), status: -1, data: Buffer.alloc(0), errorMessage: 'ctdb_control timed out' } },
  { name: 'REQ_KEEPALIVE', packet: { header: makeHeader(Operation.REQ_KEEPALIVE, route), version: KEEPALIVE_VERSION, uptime: 3600 } },
  { name: 'REQ_KEEPALIVE old form', packet: { header: makeHeader(Operation.REQ_KEEPALIVE, route), version: 0, uptime: 0, headerOnly: true } },
  {
    name: 'REQ_TUNNEL',
    packet: { header: makeHeader(Operation.REQ_TUNNEL, route), tunnelId: 0xffffffff00000000n, flags: TunnelFlag.REQUEST, data: bytes('tunnel') },
  },
];

/** What decoding the encoded packet should give: the header carries the padded length. */
const expected = (p: Packet, buf: Buffer): Packet => ({ ...p, header: { ...p.header, length: buf.length } }) as Packet;

describe.each(PACKETS)('$name', ({ packet }) => {
  const buf = encodePacket(packet);

  it('round trips, padded to 8 with the padded size in the length field', () => {
    expect(buf.length % 8).toBe(0);
    expect(buf.readUInt32LE(0)).toBe(buf.length);
    expect(buf.readUInt32LE(4)).toBe(CTDB_MAGIC);
    expect(decodePacket(buf)).toEqual(expected(packet, buf));
    expect(decodeHeader(buf)).toEqual(expected(packet, buf).header);
  });

  it('ignores the header length given on input', () => {
    expect(encodePacket({ ...packet, header: { ...packet.header, length: 12345 } } as Packet)).toEqual(buf);
  });

  it('accepts an unpadded length (smbd) and rejects a length that cuts into the body', () => {
    // Shrink the length field byte by byte: once it cuts into the body, decoding must fail cleanly.
    let bodyCut = false;
    for (let len = buf.length; len >= 32; len--) {
      const copy = Buffer.from(buf.subarray(0, len));
      copy.writeUInt32LE(len, 0);
      const oldKeepalive = len === 32 && packet.header.operation === Operation.REQ_KEEPALIVE;
      if (bodyCut && !oldKeepalive) {
        expect(() => decodePacket(copy)).toThrow(ProtocolError);
        continue;
      }
      try {
        const decoded = decodePacket(copy);
        if (!oldKeepalive) expect(decoded).toEqual({ ...expected(packet, buf), header: { ...expected(packet, buf).header, length: len } });
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
        expect((err as ProtocolError).reason).toMatch(/^truncated/);
        bodyCut = true;
      }
    }
  });

  it('rejects a buffer shorter than its length field', () => {
    for (let len = 0; len < buf.length; len++) {
      expect(() => decodePacket(buf.subarray(0, len))).toThrow(ProtocolError);
    }
  });
});

describe('packet validation', () => {
  const ping = encodePacket({
    header: makeHeader(Operation.REQ_CONTROL, { destnode: Pnn.CURRENT_NODE, srcnode: 0, reqid: 1 }),
    opcode: ControlCode.PING,
    srvid: 0n,
    clientId: 0,
    flags: 0,
    data: Buffer.alloc(0),
  });

  // [what, bytes to keep, u32 field offset, value to write there, expected error]
  const corruptions: Array<[string, number, number, number, string]> = [
    ['magic', 64, 4, 0x12345678, 'bad magic 0x12345678'],
    ['version', 64, 8, 2, 'bad protocol version 2'],
    ['operation', 64, 16, 6, 'unknown operation 6'],
    ['length below the header', 64, 0, 16, 'bad length 16'],
    ['length beyond the buffer', 64, 0, 72, 'truncated packet: length field says 72 bytes, have 64'],
    ['cut fixed part', 44, 0, 44, 'truncated REQ_CONTROL: need 60 bytes, have 44'],
    ['datalen beyond the packet', 64, 56, 100, 'truncated REQ_CONTROL: need 160 bytes, have 64'],
  ];
  it.each(corruptions)('names a bad %s', (_, keep, offset, value, message) => {
    const bad = Buffer.from(ping.subarray(0, keep));
    bad.writeUInt32LE(value, offset);
    expect(() => decodePacket(bad)).toThrow(message);
  });

  it('pads an empty REPLY_CALL to the size ctdbd allocates (48, not 40)', () => {
    const buf = encodePacket({ header: makeHeader(Operation.REPLY_CALL, route), status: 0, data: Buffer.alloc(0) });
    expect(buf.length).toBe(48);
  });

  it('keeps the error string of REPLY_CONTROL without a NUL and drops one on decode', () => {
    const buf = encodePacket({ header: makeHeader(Operation.REPLY_CONTROL, route), status: -1, data: Buffer.alloc(0), errorMessage: 'no' });
    expect(buf.readUInt32LE(40)).toBe(2);
    buf.writeUInt32LE(3, 40); // client-library style: length includes the NUL
    expect(decodePacket(buf)).toMatchObject({ errorMessage: 'no' });
  });

  it('rewrites header fields in place', () => {
    const copy = Buffer.from(ping);
    writeHeaderFields(copy, { destnode: 3, srcnode: 4, generation: 5, reqid: 6 });
    expect(decodeHeader(copy)).toMatchObject({ destnode: 3, srcnode: 4, generation: 5, reqid: 6, operation: Operation.REQ_CONTROL });
    writeHeaderFields(copy, { reqid: 9 });
    expect(decodeHeader(copy)).toMatchObject({ destnode: 3, reqid: 9 });
    expect(() => writeHeaderFields(Buffer.alloc(8), { reqid: 1 })).toThrow(ProtocolError);
  });

  it('throws only ProtocolError on random input with a valid-looking header', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const buf = noise(32 + (seed % 80), seed);
      buf.writeUInt32LE(buf.length - (seed % 5), 0);
      buf.writeUInt32LE(CTDB_MAGIC, 4);
      buf.writeUInt32LE(1, 8);
      buf.writeUInt32LE(seed % 12, 16);
      try {
        decodePacket(buf);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
      }
    }
  });
});
