// Packets captured between the real ctdb tool and the real ctdbd 4.17.12 (scripts/capture-wire.ts):
// each must decode, make sense, and re-encode to exactly the captured bytes.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CTDB_MAGIC,
  ControlCode,
  type NodeMap,
  Operation,
  Pnn,
  type ReplyControl,
  decodeControlReply,
  decodeControlRequest,
  decodePacket,
  encodeControlReply,
  encodeControlRequest,
  encodePacket,
  isPacket,
  recDataCodec,
  ltdbRecordCodec,
  Srvid,
} from '../../src/protocol';

interface WireRecord {
  file: string;
  command: string;
  direction: 'tool-to-daemon' | 'daemon-to-tool';
  operation: string;
  opcode?: string;
}

const dir = path.join(__dirname, '..', 'fixtures', 'wire');
const records = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as WireRecord[];
// The typed functions are exercised generically here; the cast is the test's business.
const encodeRequest = encodeControlRequest as (code: ControlCode, value: unknown) => Buffer;
const encodeReply = encodeControlReply as (code: ControlCode, value: unknown) => Buffer;
const load = (r: WireRecord): Buffer => fs.readFileSync(path.join(dir, r.file));

/** Value checks for replies whose content we know from the capture setup (one node at 127.0.77.1). */
const replyChecks: Partial<Record<ControlCode, (value: unknown, reply: ReplyControl) => void>> = {
  [ControlCode.GET_PNN]: (_, reply) => expect(reply.status).toBe(0),
  [ControlCode.GET_NODEMAP]: (value) => {
    const map = value as NodeMap;
    expect(map).toHaveLength(1);
    expect(map[0]).toMatchObject({ pnn: 0, addr: { family: 'ipv4', address: '127.0.77.1' } });
  },
  [ControlCode.GET_RUNSTATE]: (value) => expect(value).toBe(5),
  [ControlCode.LIST_TUNABLES]: (value) => expect(value).toContain('RecoverInterval'),
  [ControlCode.GET_CAPABILITIES]: (value) => expect(value).toBe(0x30003),
  [ControlCode.GETDBPATH]: (value) => expect(value).toMatch(/\.tdb\.0$/),
  [ControlCode.GET_DBNAME]: (value) => expect(value).toMatch(/\.tdb$/),
  [ControlCode.GET_RECLOCK_FILE]: (value) => expect(value).toBeNull(),
  [ControlCode.DB_GET_HEALTH]: (value) => expect(value).toBeNull(),
  [ControlCode.STATISTICS]: (value) => expect((value as { statisticsStartTime: { sec: number } }).statisticsStartTime.sec).toBeGreaterThan(1_600_000_000),
  [ControlCode.UPTIME]: (value) => expect((value as { ctdbdStartTime: { sec: number } }).ctdbdStartTime.sec).toBeGreaterThan(1_600_000_000),
};

describe('golden packets from the real ctdb tool and ctdbd 4.17.12', () => {
  it('covers both directions and the commands of the capture', () => {
    expect(records.length).toBeGreaterThan(100);
    expect(new Set(records.map((r) => r.direction)).size).toBe(2);
    expect(new Set(records.map((r) => r.command))).toContain('status');
  });

  const opcodeByReqid = new Map<number, ControlCode>();
  for (const r of records) {
    it(`${r.file} (${r.command})`, () => {
      const bytes = load(r);
      const packet = decodePacket(bytes);
      expect(packet.header.magic).toBe(CTDB_MAGIC);
      expect(Operation[packet.header.operation]).toBe(r.operation);
      expect(packet.header.length).toBe(bytes.length);
      expect(bytes.length % 8).toBe(0);
      expect(encodePacket(packet)).toEqual(bytes);

      if (isPacket(packet, Operation.REQ_CONTROL)) {
        const req = packet;
        expect(ControlCode[req.opcode]).toBe(r.opcode);
        opcodeByReqid.set(packet.header.reqid, req.opcode);
        const value = decodeControlRequest(req.opcode, req.data);
        expect(encodeRequest(req.opcode, value)).toEqual(req.data);
      }
      if (isPacket(packet, Operation.REPLY_CONTROL)) {
        const reply = packet;
        const opcode = opcodeByReqid.get(packet.header.reqid);
        expect(opcode).toBeDefined();
        const code = opcode as ControlCode;
        expect(ControlCode[code]).toBe(r.opcode);
        if (reply.status === 0 || reply.data.length > 0) {
          const value = decodeControlReply(code, reply.data);
          expect(encodeReply(code, value)).toEqual(reply.data);
          replyChecks[code]?.(value, reply);
          if (code === ControlCode.GET_TUNABLE && r.command.startsWith('getvar RecoverInterval')) expect(value).toBe(1);
        }
      }
      if (isPacket(packet, Operation.REQ_MESSAGE) && packet.srvid === Srvid.LEADER) {
        expect([0, Pnn.UNKNOWN]).toContain(packet.data.readUInt32LE(0));
      }
      if (r.direction === 'tool-to-daemon' && r.operation === 'REQ_CONTROL' && r.opcode === 'GET_PNN') {
        expect(packet.header.destnode).toBe(Pnn.CURRENT_NODE);
      }
    });
  }

  it('traverse records carry an ltdb header and end with an empty record', () => {
    const messages = records.filter((r) => r.command.startsWith('catdb') && r.operation === 'REQ_MESSAGE').map((r) => decodePacket(load(r)));
    expect(messages.length).toBeGreaterThanOrEqual(2);
    const recs = messages.map((m) => recDataCodec.pull((m as { data: Buffer }).data, 0, (m as { data: Buffer }).data.length).value);
    const last = recs[recs.length - 1];
    expect(last.key.length + last.data.length).toBe(0);
    const first = ltdbRecordCodec.pull(recs[0].data, 0, recs[0].data.length).value;
    expect(recs[0].key.toString()).toBe('greeting');
    expect(first.value.toString()).toBe('hello');
    expect(first.header.dmaster).toBe(0);
  });
});
