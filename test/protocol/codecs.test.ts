// Every codec: value -> bytes -> value, size() agrees with push(), and no truncation ever decodes
// into garbage or escapes as anything but a ProtocolError.
import { describe, expect, it } from 'vitest';
import { ProtocolError, STATISTICS_SIZE, bool, encode, parseSockAddr, recDataCodec, sockAddrCodec, statisticsCodec, tunableListCodec, varListCodec } from '../../src/protocol';
import { CODEC_SAMPLES, noise } from './samples';

describe.each(CODEC_SAMPLES)('$name', ({ codec, samples, runsToEnd }) => {
  it.each(samples.map((v, i) => [i, v]))('round trips sample %i', (_, value) => {
    const size = codec.size(value);
    const buf = Buffer.alloc(size + 16, 0xee);
    expect(codec.push(value, buf, 8)).toBe(size);
    if (codec.fixedSize !== undefined) expect(size).toBe(codec.fixedSize);
    const pulled = codec.pull(buf, 8, 8 + size);
    expect(pulled.size).toBe(size);
    expect(pulled.value).toEqual(value);
  });

  it.each(samples.map((v, i) => [i, v]))('rejects every truncation of sample %i', (_, value) => {
    const bytes = encode(codec, value);
    for (let end = 0; end < bytes.length; end++) {
      // The bytes past `end` are still in the buffer: a codec that read past `end` would succeed here.
      let result: { size: number } | undefined;
      try {
        result = codec.pull(bytes, 0, end);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
        continue;
      }
      if (!runsToEnd) throw new Error(`decoded ${end} of ${bytes.length} bytes without an error`);
      expect(result.size).toBeLessThanOrEqual(end);
    }
  });

  it('throws only ProtocolError on random input', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const buf = noise(seed % 97, seed);
      try {
        const r = codec.pull(buf, 0, buf.length);
        expect(r.size).toBeLessThanOrEqual(buf.length);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
      }
    }
  });
});

describe('codec details', () => {
  it('statistics is 488 bytes and tunable_list 62 u32', () => {
    expect(statisticsCodec.fixedSize).toBe(STATISTICS_SIZE);
    expect(tunableListCodec.fixedSize).toBe(62 * 4);
  });

  it('rejects a bool that is neither 0 nor 1', () => {
    expect(() => bool.pull(Buffer.from([2]), 0, 1)).toThrow(ProtocolError);
  });

  it('writes the port of a sock_addr in network order and the family in host order', () => {
    const buf = encode(sockAddrCodec, { family: 'ipv4', address: '10.1.2.3', port: 0x1234 });
    expect([...buf.subarray(0, 8)]).toEqual([2, 0, 0x12, 0x34, 10, 1, 2, 3]);
    expect(buf.length).toBe(28);
  });

  it('ignores bytes after the family-relevant part of a sock_addr (smbd leaves garbage)', () => {
    const buf = encode(sockAddrCodec, { family: 'ipv4', address: '10.1.2.3', port: 1 });
    buf.fill(0xaa, 8);
    expect(sockAddrCodec.pull(buf, 0, 28).value).toEqual({ family: 'ipv4', address: '10.1.2.3', port: 1 });
  });

  it('rejects unknown address families and bad address text', () => {
    expect(() => sockAddrCodec.pull(Buffer.alloc(28), 0, 28)).toThrow(/bad address family 0/);
    expect(() => encode(sockAddrCodec, { family: 'ipv4', address: '1.2.3', port: 0 })).toThrow(ProtocolError);
    expect(() => encode(sockAddrCodec, { family: 'ipv6', address: '1::2::3', port: 0 })).toThrow(ProtocolError);
  });

  it('parses and normalises addresses', () => {
    expect(parseSockAddr('192.168.1.1', 445)).toEqual({ family: 'ipv4', address: '192.168.1.1', port: 445 });
    expect(parseSockAddr('FD00:0:0:0:0:0:0:1')).toEqual({ family: 'ipv6', address: 'fd00::1', port: 0 });
    expect(parseSockAddr('::ffff:10.0.0.1')?.address).toBe('::ffff:a00:1');
    expect(parseSockAddr('256.1.1.1')).toBeNull();
    expect(parseSockAddr('not an address')).toBeNull();
  });

  it('reads the daemon var_list format (leading colon) and writes it back the same way', () => {
    const text = ':MaxRedirectCount:SeqnumInterval';
    const buf = Buffer.alloc(4 + text.length + 1);
    buf.writeUInt32LE(text.length + 1, 0);
    buf.write(text, 4);
    expect(varListCodec.pull(buf, 0, buf.length).value).toEqual(['MaxRedirectCount', 'SeqnumInterval']);
    expect(encode(varListCodec, ['MaxRedirectCount', 'SeqnumInterval'])).toEqual(buf);
  });

  it('rejects a rec_data whose key and data overflow its length field', () => {
    const buf = encode(recDataCodec, { reqid: 1, key: Buffer.from('ab'), data: Buffer.from('cd') });
    buf.writeUInt32LE(17, 0);
    expect(() => recDataCodec.pull(buf, 0, buf.length)).toThrow(/overflow record length 17/);
    buf.writeUInt32LE(3, 0);
    expect(() => recDataCodec.pull(buf, 0, buf.length)).toThrow(/bad length 3/);
  });
});
