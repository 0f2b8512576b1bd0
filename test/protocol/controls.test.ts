// The control table: complete, codecs round trip, and request sizes checked the way ctdbd checks them.
import { describe, expect, it } from 'vitest';
import {
  CONTROLS,
  type Codec,
  ControlCode,
  type ControlEntry,
  ProtocolError,
  controlName,
  decodeControlReply,
  decodeControlRequest,
  encodeControlReply,
  encodeControlRequest,
} from '../../src/protocol';
import { samplesEntryFor, samplesFor } from './samples';

const codes = Object.values(ControlCode).filter((v): v is ControlCode => typeof v === 'number');
const entries = codes.map((code) => CONTROLS[code] as ControlEntry);
const withPayload = (side: 'request' | 'reply'): ControlEntry[] => entries.filter((e) => e[side] !== null);

/** Opcodes protocol.h marks obsolete. */
const OBSOLETE = [10, 11, 13, 14, 19, 31, 32, 34, 37, 42, 43, 51, 54, 57, 58, 59, 60, 62, 65, 66, 75, 76, 79, 81, 82, 83, 84, 85, 86, 96, 100, 103, 107, 108, 111, 112, 113, 116, 117, 118, 130, 136];
/** Controls whose answer is the REPLY_CONTROL status. */
const STATUS_REPLIES = [ControlCode.PROCESS_EXISTS, ControlCode.PING, ControlCode.GET_RECMODE, ControlCode.GET_PID, ControlCode.GET_PNN, ControlCode.SET_TUNABLE, ControlCode.TRANS3_COMMIT, ControlCode.CHECK_PID_SRVID];

// The typed functions are exercised generically here; the cast is the test's business.
const encodeRequest = encodeControlRequest as (code: ControlCode, value: unknown) => Buffer;
const encodeReply = encodeControlReply as (code: ControlCode, value: unknown) => Buffer;

describe('CONTROLS', () => {
  it('has one entry per 4.17 opcode (and DB_DIGEST), named after it', () => {
    expect(codes).toHaveLength(entries.length);
    expect(Object.keys(CONTROLS)).toHaveLength(codes.length);
    for (const e of entries) {
      expect(ControlCode[e.code]).toBe(e.name);
      expect(controlName(e.code)).toBe(e.name);
    }
    expect(codes).toContain(158);
    expect(controlName(2)).toBe('UNKNOWN(2)');
  });

  it('marks exactly the obsolete opcodes, which carry no codecs', () => {
    expect(entries.filter((e) => e.obsolete).map((e) => e.code)).toEqual(OBSOLETE);
    for (const e of entries.filter((x) => x.obsolete)) expect([e.request, e.reply]).toEqual([null, null]);
  });

  it('marks the status-valued replies', () => {
    expect(entries.filter((e) => e.replyInStatus).map((e) => e.code)).toEqual([...STATUS_REPLIES].sort((a, b) => a - b));
    for (const code of STATUS_REPLIES) expect(CONTROLS[code].reply).toBeNull();
  });

  it('rejects unknown opcodes', () => {
    expect(() => decodeControlRequest(2 as ControlCode, Buffer.alloc(0))).toThrow(ProtocolError);
    expect(() => encodeRequest(200 as ControlCode, undefined)).toThrow('unknown control opcode 200');
  });
});

describe.each(withPayload('request').map((e) => [e.name, e] as const))('%s request', (_, e) => {
  it('round trips', () => {
    for (const v of samplesFor(e.request as Codec<unknown>)) expect(decodeControlRequest(e.code, encodeRequest(e.code, v))).toEqual(v);
  });
});

// Payloads that do not simply run to the end of the data (strings do) can detect every truncation.
const delimited = withPayload('request').filter((e) => !samplesEntryFor(e.request as Codec<unknown>).runsToEnd);
describe.each(delimited.map((e) => [e.name, e] as const))('%s request', (_, e) => {
  it('rejects every truncation, naming the control', () => {
    for (const v of samplesFor(e.request as Codec<unknown>)) {
      const data = encodeRequest(e.code, v);
      for (let len = 0; len < data.length; len++) {
        expect(() => decodeControlRequest(e.code, data.subarray(0, len))).toThrow(`${e.name} request`);
      }
    }
  });
});

describe.each(withPayload('reply').map((e) => [e.name, e] as const))('%s reply', (_, e) => {
  it('round trips', () => {
    for (const v of samplesFor(e.reply as Codec<unknown>)) expect(decodeControlReply(e.code, encodeReply(e.code, v))).toEqual(v);
  });
});

describe('request size checks follow ctdbd', () => {
  const exact = entries.filter((e) => e.exactRequest);

  it.each(exact.map((e) => [e.name, e] as const))('%s rejects an oversized payload', (_, e) => {
    const sample = e.request === null ? Buffer.alloc(0) : encodeRequest(e.code, samplesFor(e.request as Codec<unknown>)[0]);
    const oversized = Buffer.concat([sample, Buffer.alloc(1)]);
    expect(() => decodeControlRequest(e.code, oversized)).toThrow(ProtocolError);
    expect(() => decodeControlRequest(e.code, oversized)).toThrow(e.name);
  });

  it('uses the sizes ctdbd expects', () => {
    const size = (code: ControlCode): number | undefined => CONTROLS[code].request?.fixedSize;
    expect(size(ControlCode.PROCESS_EXISTS)).toBe(4);
    expect(size(ControlCode.GET_DB_SEQNUM)).toBe(8);
    expect(size(ControlCode.CHECK_PID_SRVID)).toBe(12);
    expect(size(ControlCode.DB_VACUUM)).toBe(5);
    expect(size(ControlCode.TRAVERSE_START_EXT)).toBe(24);
    expect(size(ControlCode.TCP_CLIENT)).toBe(56);
    expect(size(ControlCode.SET_IFACE_LINK_STATE)).toBe(24);
    expect(size(ControlCode.RELEASE_IP)).toBe(32);
    expect(encodeRequest(ControlCode.SCHEDULE_FOR_DELETION, samplesFor(CONTROLS[ControlCode.SCHEDULE_FOR_DELETION].request as Codec<unknown>)[0])).toHaveLength(36 + 3);
  });

  it('ignores payloads of controls ctdbd does not check', () => {
    expect(decodeControlRequest(ControlCode.GET_PNN, Buffer.alloc(4))).toBeUndefined();
    expect(decodeControlRequest(ControlCode.REGISTER_SRVID, Buffer.alloc(8))).toBeUndefined();
    expect(decodeControlRequest(ControlCode.DB_ATTACH, Buffer.from('a.tdb\0\0\0'))).toBe('a.tdb');
  });

  it('insists on an empty payload where ctdbd does', () => {
    expect(decodeControlRequest(ControlCode.STATISTICS, Buffer.alloc(0))).toBeUndefined();
    expect(() => decodeControlRequest(ControlCode.STATISTICS, Buffer.alloc(4))).toThrow('STATISTICS request: expected no data, got 4 bytes');
  });

  it('names the control and the sizes in the error', () => {
    expect(() => decodeControlRequest(ControlCode.GET_DB_SEQNUM, Buffer.alloc(4))).toThrow(/^GET_DB_SEQNUM request: .*truncated/);
    expect(() => decodeControlRequest(ControlCode.GET_DB_SEQNUM, Buffer.alloc(12))).toThrow('GET_DB_SEQNUM request: oversized: expected 8 bytes, got 12');
  });

  it('encodes no bytes for empty payloads', () => {
    expect(encodeControlRequest(ControlCode.GET_PNN)).toHaveLength(0);
    expect(encodeControlReply(ControlCode.GET_PNN)).toHaveLength(0);
  });
});
