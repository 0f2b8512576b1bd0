// The 32-byte header and the ten packet kinds (ctdb/protocol/protocol_{header,call,message,control,
// keepalive,tunnel}.c). Bodies are fixed fields, then u32 lengths, then the variable parts in that order.
import { type Codec, type FieldList, fixedStruct, i32, pad, restBytes, text, u32, u64 } from './codec';
import { CTDB_DS_ALIGNMENT, CTDB_MAGIC, CTDB_PROTOCOL, HEADER_SIZE, Operation } from './constants';
import { ProtocolError } from './errors';

export interface Header {
  /** Total packet size including the header (encodePacket writes the padded size). */
  length: number;
  magic: number;
  version: number;
  /** Sender's vnnmap generation (clients send 0). */
  generation: number;
  operation: Operation;
  destnode: number;
  srcnode: number;
  reqid: number;
}

interface Body<Op extends Operation> {
  header: Header & { operation: Op };
}

export interface ReqCall extends Body<Operation.REQ_CALL> {
  flags: number;
  dbId: number;
  callId: number;
  hopcount: number;
  key: Buffer;
  callData: Buffer;
}

export interface ReplyCall extends Body<Operation.REPLY_CALL> {
  status: number;
  data: Buffer;
}

export interface ReqDmaster extends Body<Operation.REQ_DMASTER> {
  dbId: number;
  rsn: bigint;
  dmaster: number;
  key: Buffer;
  data: Buffer;
  /** ltdb record flags, sent after the data and not counted in its length. */
  recordFlags: number;
}

export interface ReplyDmaster extends Body<Operation.REPLY_DMASTER> {
  dbId: number;
  rsn: bigint;
  key: Buffer;
  data: Buffer;
  recordFlags: number;
}

export interface ReplyError extends Body<Operation.REPLY_ERROR> {
  status: number;
  msg: Buffer;
}

export interface ReqMessage extends Body<Operation.REQ_MESSAGE> {
  srvid: bigint;
  data: Buffer;
}

export interface ReqControl extends Body<Operation.REQ_CONTROL> {
  opcode: number;
  srvid: bigint;
  clientId: number;
  flags: number;
  data: Buffer;
}

export interface ReplyControl extends Body<Operation.REPLY_CONTROL> {
  status: number;
  data: Buffer;
  /** Sent without a terminating NUL; a trailing NUL (client library style) is dropped on decode. */
  errorMessage: string | null;
}

export interface ReqKeepalive extends Body<Operation.REQ_KEEPALIVE> {
  version: number;
  /** Seconds since the sender started. */
  uptime: number;
  /** The pre-4.x keepalive: a bare 32-byte header (version and uptime read as 0). */
  headerOnly?: true;
}

export interface ReqTunnel extends Body<Operation.REQ_TUNNEL> {
  tunnelId: bigint;
  flags: number;
  data: Buffer;
}

export type Packet = ReqCall | ReplyCall | ReqDmaster | ReplyDmaster | ReplyError | ReqMessage | ReqControl | ReplyControl | ReqKeepalive | ReqTunnel;

export type PacketOf<Op extends Operation> = Extract<Packet, { header: { operation: Op } }>;

/** Narrows a Packet by its operation (TypeScript does not narrow on the nested header.operation). */
export function isPacket<Op extends Operation>(p: Packet, operation: Op): p is PacketOf<Op> {
  return p.header.operation === operation;
}

/** A packet without its header: what the body codecs read and write. */
type BodyOf<P extends Packet> = Omit<P, 'header'>;

const headerCodec = fixedStruct<Header>('ctdb_req_header', [
  ['length', u32],
  ['magic', u32],
  ['version', u32],
  ['generation', u32],
  ['operation', u32],
  ['destnode', u32],
  ['srcnode', u32],
  ['reqid', u32],
]);

/** The variable parts of a body: raw bytes, or text (REPLY_CONTROL's error string, sent without a NUL). */
type VarParts<T> = ReadonlyArray<{ [K in keyof T]-?: readonly [K, Codec<T[K]>] }[keyof T]>;

/** Bodies always follow the 32-byte header: sizes in errors are whole-packet sizes. */
function truncated(name: string, bodyNeeded: number, bodyHave: number): ProtocolError {
  return new ProtocolError(`truncated ${name}: need ${HEADER_SIZE + bodyNeeded} bytes, have ${HEADER_SIZE + bodyHave}`);
}

/**
 * A packet body: fixed fields, a u32 length per variable part, the variable parts, then fixed trailer
 * fields (REQ/REPLY_DMASTER put the record flags after the data).
 */
function bodyCodec<T>(name: string, head: FieldList<T>, parts: VarParts<T>, tail: FieldList<T> = []): Codec<T> {
  const headCodec = fixedStruct<T>(name, head);
  const tailCodec = tail.length > 0 ? fixedStruct<T>(name, tail) : null;
  const tailSize = tailCodec?.fixedSize ?? 0;
  const lengthsAt = headCodec.fixedSize;
  const fixedLen = lengthsAt + 4 * parts.length + tailSize;
  const varSize = (v: T): number => {
    let n = 0;
    for (const [k, p] of parts) n += p.size(v[k]);
    return n;
  };
  return {
    size: (v) => fixedLen + varSize(v),
    push(v, buf, off) {
      headCodec.write(v, buf, off);
      let at = off + lengthsAt + 4 * parts.length;
      for (let i = 0; i < parts.length; i++) {
        const [key, codec] = parts[i];
        const len = codec.push(v[key], buf, at);
        buf.writeUInt32LE(len, off + lengthsAt + 4 * i);
        at += len;
      }
      tailCodec?.write(v, buf, at);
      return at + tailSize - off;
    },
    pull(buf, off, end) {
      if (end - off < fixedLen) throw truncated(name, fixedLen, end - off);
      const out = headCodec.read(buf, off) as Record<keyof T, unknown>;
      let total = 0;
      for (let i = 0; i < parts.length; i++) total += buf.readUInt32LE(off + lengthsAt + 4 * i);
      if (total > end - off - fixedLen) throw truncated(name, fixedLen + total, end - off);
      let at = off + lengthsAt + 4 * parts.length;
      for (let i = 0; i < parts.length; i++) {
        const [key, codec] = parts[i];
        const len = buf.readUInt32LE(off + lengthsAt + 4 * i);
        out[key] = codec.pull(buf, at, at + len).value;
        at += len;
      }
      if (tailCodec) Object.assign(out, tailCodec.read(buf, at));
      return { value: out as T, size: at + tailSize - off };
    },
  };
}

const bodyCodecs: { [Op in Operation]: Codec<BodyOf<PacketOf<Op>>> } = {
  [Operation.REQ_CALL]: bodyCodec<BodyOf<ReqCall>>(
    'REQ_CALL',
    [['flags', u32], ['dbId', u32], ['callId', u32], ['hopcount', u32]],
    [['key', restBytes], ['callData', restBytes]],
  ),
  [Operation.REPLY_CALL]: bodyCodec<BodyOf<ReplyCall>>('REPLY_CALL', [['status', i32]], [['data', restBytes]]),
  [Operation.REQ_DMASTER]: bodyCodec<BodyOf<ReqDmaster>>(
    'REQ_DMASTER',
    [['dbId', u32], pad(4), ['rsn', u64], ['dmaster', u32]],
    [['key', restBytes], ['data', restBytes]],
    [['recordFlags', u32]],
  ),
  [Operation.REPLY_DMASTER]: bodyCodec<BodyOf<ReplyDmaster>>(
    'REPLY_DMASTER',
    [['dbId', u32], pad(4), ['rsn', u64]],
    [['key', restBytes], ['data', restBytes]],
    [['recordFlags', u32]],
  ),
  [Operation.REPLY_ERROR]: bodyCodec<BodyOf<ReplyError>>('REPLY_ERROR', [['status', i32]], [['msg', restBytes]]),
  [Operation.REQ_MESSAGE]: bodyCodec<BodyOf<ReqMessage>>('REQ_MESSAGE', [['srvid', u64]], [['data', restBytes]]),
  [Operation.REQ_CONTROL]: bodyCodec<BodyOf<ReqControl>>(
    'REQ_CONTROL',
    [['opcode', u32], pad(4), ['srvid', u64], ['clientId', u32], ['flags', u32]],
    [['data', restBytes]],
  ),
  [Operation.REPLY_CONTROL]: bodyCodec<BodyOf<ReplyControl>>(
    'REPLY_CONTROL',
    [['status', i32]],
    [['data', restBytes], ['errorMessage', text]],
  ),
  [Operation.REQ_KEEPALIVE]: bodyCodec<BodyOf<ReqKeepalive>>('REQ_KEEPALIVE', [['version', u32], ['uptime', u32]], []),
  [Operation.REQ_TUNNEL]: bodyCodec<BodyOf<ReqTunnel>>('REQ_TUNNEL', [['tunnelId', u64], ['flags', u32]], [['data', restBytes]]),
};

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** Reads the header fields without validating them (needs 32 bytes). */
export function decodeHeader(buf: Buffer): Header {
  if (buf.length < HEADER_SIZE) {
    throw new ProtocolError(`truncated header: need ${HEADER_SIZE} bytes, have ${buf.length}`);
  }
  return headerCodec.read(buf, 0);
}

/** A header with the constant fields filled in (length is computed by encodePacket). */
export function makeHeader<Op extends Operation>(
  operation: Op,
  fields: Partial<Omit<Header, 'operation'>> & Pick<Header, 'destnode' | 'srcnode' | 'reqid'>,
): Header & { operation: Op } {
  return { length: 0, magic: CTDB_MAGIC, version: CTDB_PROTOCOL, generation: 0, ...fields, operation };
}

/**
 * Decodes one packet. The length field may exceed the body (padding is ignored) but not the buffer;
 * smbd sends unpadded packets, so any length >= 32 is accepted.
 */
export function decodePacket(buf: Buffer): Packet {
  const header = decodeHeader(buf);
  if (header.length < HEADER_SIZE) throw new ProtocolError(`bad length ${header.length}: shorter than the header`);
  if (header.length > buf.length) throw new ProtocolError(`truncated packet: length field says ${header.length} bytes, have ${buf.length}`);
  if (header.magic !== CTDB_MAGIC) throw new ProtocolError(`bad magic ${hex(header.magic)}`);
  if (header.version !== CTDB_PROTOCOL) throw new ProtocolError(`bad protocol version ${header.version}`);
  const codec = bodyCodecs[header.operation as Operation] as Codec<BodyOf<Packet>> | undefined;
  if (codec === undefined) throw new ProtocolError(`unknown operation ${header.operation}`);
  if (header.operation === Operation.REQ_KEEPALIVE && header.length === HEADER_SIZE) {
    return { header: header as ReqKeepalive['header'], version: 0, uptime: 0, headerOnly: true };
  }
  const packet = codec.pull(buf, HEADER_SIZE, header.length).value as Packet;
  packet.header = header;
  return packet;
}

/**
 * sizeof() of ctdbd's C struct per operation. ctdbd allocates at least that much (the structs end in
 * a 1-byte data[] placeholder plus alignment), so e.g. an empty REPLY_CALL goes out as 48 bytes, not 40.
 */
const DAEMON_MIN_SIZE: Record<Operation, number> = {
  [Operation.REQ_CALL]: 60,
  [Operation.REPLY_CALL]: 44,
  [Operation.REQ_DMASTER]: 64,
  [Operation.REPLY_DMASTER]: 64,
  [Operation.REPLY_ERROR]: 44,
  [Operation.REQ_MESSAGE]: 48,
  [Operation.REQ_CONTROL]: 64,
  [Operation.REPLY_CONTROL]: 48,
  [Operation.REQ_KEEPALIVE]: 40,
  [Operation.REQ_TUNNEL]: 56,
};

/** Encodes a packet zero-padded (like ctdbd) to CTDB_DS_ALIGNMENT, with the padded size in the length field. */
export function encodePacket(p: Packet): Buffer {
  return writePacket(p, null);
}

/**
 * Bytes of a REQ_MESSAGE in front of its data. A sender that builds large data at this offset
 * of a buffer of its own, with PACKET_TAILROOM bytes to spare after it, frames it there
 * (frameMessage) instead of having encodePacket copy it into a new packet.
 */
export const MESSAGE_HEADROOM = HEADER_SIZE + bodyCodecs[Operation.REQ_MESSAGE].size({ srvid: 0n, data: Buffer.alloc(0) });
/** Room for the zero padding after a packet's last field. */
export const PACKET_TAILROOM = CTDB_DS_ALIGNMENT - 1;

/**
 * Frames the `dataLength` bytes at MESSAGE_HEADROOM of `room` as a REQ_MESSAGE, in place: the
 * packet is the start of `room`.
 */
export function frameMessage(room: Buffer, dataLength: number, header: ReqMessage['header'], srvid: bigint): Buffer {
  return writePacket({ header, srvid, data: room.subarray(MESSAGE_HEADROOM, MESSAGE_HEADROOM + dataLength) }, room);
}

/** Into `room` (whose fields already in place are written over themselves) or a new buffer. */
function writePacket(p: Packet, room: Buffer | null): Buffer {
  const op = p.header.operation;
  const headerOnly = op === Operation.REQ_KEEPALIVE && (p as ReqKeepalive).headerOnly === true;
  const codec = bodyCodecs[op] as Codec<Packet>;
  const end = headerOnly ? HEADER_SIZE : HEADER_SIZE + codec.size(p);
  const padded = Math.ceil(Math.max(end, headerOnly ? 0 : DAEMON_MIN_SIZE[op]) / CTDB_DS_ALIGNMENT) * CTDB_DS_ALIGNMENT;
  if (room !== null && room.length < padded) throw new ProtocolError(`${padded}-byte packet framed in ${room.length} bytes`);
  // Every byte up to `end` is written by the codecs (padding fields included); the rest is zeroed here.
  const buf = room === null ? Buffer.allocUnsafe(padded) : room.subarray(0, padded);
  headerCodec.write(p.header, buf, 0);
  buf.writeUInt32LE(padded, 0);
  if (!headerOnly) codec.push(p, buf, HEADER_SIZE);
  buf.fill(0, end, padded);
  return buf;
}

export interface HeaderRewrite {
  destnode?: number;
  srcnode?: number;
  generation?: number;
  reqid?: number;
}

const HEADER_FIELD_OFFSETS: ReadonlyArray<readonly [keyof HeaderRewrite, number]> = [
  ['generation', 12],
  ['destnode', 20],
  ['srcnode', 24],
  ['reqid', 28],
];

/** Rewrites header fields of an encoded packet in place (forwarding without re-encoding). */
export function writeHeaderFields(buf: Buffer, fields: HeaderRewrite): void {
  if (buf.length < HEADER_SIZE) throw new ProtocolError(`truncated header: need ${HEADER_SIZE} bytes, have ${buf.length}`);
  for (const [name, offset] of HEADER_FIELD_OFFSETS) {
    const value = fields[name];
    if (value !== undefined) buf.writeUInt32LE(value, offset);
  }
}
