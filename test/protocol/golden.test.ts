// Packets captured from the real Debian ctdb 4.17.12 binaries (scripts/capture-wire.ts): the tool
// talking to one ctdbd (127.0.77.1), and two ctdbds talking to each other (127.0.78.1 and .2).
// Each packet must decode, make sense, and re-encode to exactly the captured bytes.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CTDB_MAGIC,
  ControlCode,
  KEEPALIVE_VERSION,
  type NodeMap,
  Operation,
  type Packet,
  Pnn,
  type ReplyControl,
  Srvid,
  decodeControlReply,
  decodeControlRequest,
  decodePacket,
  encodeControlReply,
  encodeControlRequest,
  encodePacket,
  isPacket,
  ltdbRecordCodec,
  recDataCodec,
} from '../../src/protocol';

type Direction = 'tool-to-daemon' | 'daemon-to-tool' | 'node0-to-node1' | 'node1-to-node0';

interface WireRecord {
  file: string;
  command: string;
  direction: Direction;
  operation: string;
  opcode?: string;
}

const REVERSE: Record<Direction, Direction> = {
  'tool-to-daemon': 'daemon-to-tool',
  'daemon-to-tool': 'tool-to-daemon',
  'node0-to-node1': 'node1-to-node0',
  'node1-to-node0': 'node0-to-node1',
};

const dir = path.join(__dirname, '..', 'fixtures', 'wire');
const records = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as WireRecord[];
const load = (r: WireRecord): Buffer => fs.readFileSync(path.join(dir, r.file));
const isCluster = (r: WireRecord): boolean => r.direction.startsWith('node');
// The typed functions are exercised generically here; the cast is the test's business.
const encodeRequest = encodeControlRequest as (code: ControlCode, value: unknown) => Buffer;
const encodeReply = encodeControlReply as (code: ControlCode, value: unknown) => Buffer;

/** What the capture setup guarantees about reply values: one node (tool phase) or two (cluster phase). */
function checkReply(code: ControlCode, value: unknown, reply: ReplyControl, r: WireRecord): void {
  const nodes = isCluster(r) ? ['127.0.78.1', '127.0.78.2'] : ['127.0.77.1'];
  switch (code) {
    case ControlCode.GET_PNN:
      expect(reply.status).toBe(0);
      break;
    case ControlCode.GET_NODEMAP:
      expect((value as NodeMap).map((n) => [n.pnn, n.addr.family, n.addr.address])).toEqual(nodes.map((a, pnn) => [pnn, 'ipv4', a]));
      break;
    case ControlCode.LIST_TUNABLES:
      expect(value).toContain('RecoverInterval');
      break;
    case ControlCode.GET_CAPABILITIES:
      expect(value).toBe(0x30003);
      break;
    case ControlCode.GETDBPATH:
      expect(value).toMatch(/\.tdb\.0$/);
      break;
    case ControlCode.GET_DBNAME:
      expect(value).toMatch(/\.tdb$/);
      break;
    case ControlCode.GET_RECLOCK_FILE:
    case ControlCode.DB_GET_HEALTH:
      expect(value).toBeNull();
      break;
    case ControlCode.GET_TUNABLE:
      if (r.command === 'getvar RecoverInterval') expect(value).toBe(1);
      break;
    case ControlCode.STATISTICS:
      expect((value as { statisticsStartTime: { sec: number } }).statisticsStartTime.sec).toBeGreaterThan(1_600_000_000);
      break;
    case ControlCode.UPTIME:
      expect((value as { ctdbdStartTime: { sec: number } }).ctdbdStartTime.sec).toBeGreaterThan(1_600_000_000);
      break;
    default:
  }
}

/** Checks of the packet kinds that only travel between daemons. */
function checkNodePacket(packet: Packet): void {
  if (isPacket(packet, Operation.REQ_KEEPALIVE)) {
    expect(packet.header.length).toBe(40);
    expect(packet.version).toBe(KEEPALIVE_VERSION);
  }
  // Records migrate for writekey/readkey ('moving') and for pstore's g_lock ('transaction_db_0x…').
  const migratedKey = /^(moving|transaction_db_0x[0-9a-f]{8}\0)$/;
  if (isPacket(packet, Operation.REQ_DMASTER) || isPacket(packet, Operation.REPLY_DMASTER)) {
    expect(packet.key.toString()).toMatch(migratedKey);
    expect(packet.rsn).toBeGreaterThan(0n);
  }
  if (isPacket(packet, Operation.REQ_CALL)) expect(packet.key.toString()).toMatch(migratedKey);
  expect([0, 1, Pnn.BROADCAST_ALL, Pnn.BROADCAST_ACTIVE, Pnn.BROADCAST_CONNECTED]).toContain(packet.header.destnode);
}

describe('golden packets from the real ctdb tool and ctdbd 4.17.12', () => {
  it('covers the tool and the node-to-node traffic in both directions', () => {
    expect(new Set(records.map((r) => r.direction)).size).toBe(4);
    const operations = new Set(records.map((r) => r.operation));
    for (const op of ['REQ_CALL', 'REPLY_CALL', 'REQ_DMASTER', 'REPLY_DMASTER', 'REQ_MESSAGE', 'REQ_CONTROL', 'REPLY_CONTROL', 'REQ_KEEPALIVE']) {
      expect(operations).toContain(op);
    }
    expect(new Set(records.map((r) => r.command))).toContain('status');
  });

  const opcodes = new Map<string, ControlCode>();
  for (const r of records) {
    it(`${r.file} (${r.command})`, () => {
      const bytes = load(r);
      const packet = decodePacket(bytes);
      expect(packet.header.magic).toBe(CTDB_MAGIC);
      expect(Operation[packet.header.operation]).toBe(r.operation);
      expect(packet.header.length).toBe(bytes.length);
      expect(bytes.length % 8).toBe(0);
      expect(encodePacket(packet)).toEqual(bytes);
      if (isCluster(r)) checkNodePacket(packet);

      if (isPacket(packet, Operation.REQ_CONTROL)) {
        expect(ControlCode[packet.opcode]).toBe(r.opcode);
        opcodes.set(`${r.direction}:${packet.header.reqid}`, packet.opcode);
        const value = decodeControlRequest(packet.opcode, packet.data);
        expect(encodeRequest(packet.opcode, value)).toEqual(packet.data);
      }
      if (isPacket(packet, Operation.REPLY_CONTROL)) {
        const code = opcodes.get(`${REVERSE[r.direction]}:${packet.header.reqid}`);
        expect(code).toBeDefined();
        expect(ControlCode[code as ControlCode]).toBe(r.opcode);
        if (packet.status === 0 || packet.data.length > 0) {
          const value = decodeControlReply(code as ControlCode, packet.data);
          expect(encodeReply(code as ControlCode, value)).toEqual(packet.data);
          checkReply(code as ControlCode, value, packet, r);
        }
      }
      if (isPacket(packet, Operation.REQ_MESSAGE) && packet.srvid === Srvid.LEADER) {
        expect([0, 1, Pnn.UNKNOWN]).toContain(packet.data.readUInt32LE(0));
      }
      if (r.direction === 'tool-to-daemon' && r.opcode === 'GET_PNN') {
        expect(packet.header.destnode).toBe(Pnn.CURRENT_NODE);
      }
    });
  }

  it('traverse records carry an ltdb header and end with an empty record', () => {
    const messages = records.filter((r) => r.command.startsWith('catdb') && r.direction === 'daemon-to-tool' && r.operation === 'REQ_MESSAGE');
    const recs = messages.map((r) => {
      const packet = decodePacket(load(r));
      if (!isPacket(packet, Operation.REQ_MESSAGE)) throw new Error(`${r.file} is not a message`);
      return recDataCodec.pull(packet.data, 0, packet.data.length).value;
    });
    expect(recs.length).toBeGreaterThanOrEqual(2);
    const last = recs[recs.length - 1];
    expect(last.key.length + last.data.length).toBe(0);
    const first = ltdbRecordCodec.pull(recs[0].data, 0, recs[0].data.length).value;
    expect(recs[0].key.toString()).toBe('greeting');
    expect(first.value.toString()).toBe('hello');
    expect(first.header.dmaster).toBe(0);
  });
});
