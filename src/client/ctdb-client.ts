// A small asynchronous client of the ctdbd unix socket, speaking the same protocol as
// the ctdb tool's client library: used by tests, benchmarks and tools of this project.
import net from 'node:net';
import {
  ControlCode,
  ControlFlag,
  Operation,
  Pnn,
  decodeControlReply,
  decodePacket,
  encodeControlRequest,
  encodePacket,
  makeHeader,
} from '../protocol';
import type { ControlReplies, ControlRequests, ReplyCall, ReplyControl, ReplyError, ReqMessage } from '../protocol';
import { PacketStream } from '../transport/framer';

export interface RawReply {
  status: number;
  data: Buffer;
  errorMessage: string | null;
}

export type MessageHandler = (data: Buffer, srcnode: number, srvid: bigint) => void;

export interface ControlOptions {
  srvid?: bigint;
  flags?: number;
  /** Fail the control (status -1, "timed out") when no reply came within this many ms. */
  timeoutMs?: number;
}

export interface RecordCall {
  dbId: number;
  /** CallId.NULL_FUNC, FETCH_FUNC or FETCH_WITH_HEADER_FUNC. */
  callId: number;
  key: Buffer;
  /** CallFlag bits (IMMEDIATE_MIGRATION to migrate the record here). */
  flags?: number;
  callData?: Buffer;
}

export interface RecordCallReply {
  status: number;
  data: Buffer;
}

export class ControlError extends Error {
  constructor(
    readonly code: ControlCode,
    readonly status: number,
    readonly errorMessage: string | null,
  ) {
    super(`control ${ControlCode[code]} failed with status ${status}${errorMessage === null ? '' : `: ${errorMessage}`}`);
  }
}

export class CtdbClient {
  /** Own pnn as learnt from GET_PNN (UNKNOWN until connected). */
  pnn: number = Pnn.UNKNOWN;
  readonly #socket: net.Socket;
  readonly #pending = new Map<number, (reply: RawReply) => void>();
  readonly #calls = new Map<number, { resolve: (reply: RecordCallReply) => void; reject: (err: Error) => void }>();
  readonly #handlers = new Map<bigint, MessageHandler>();
  #nextReqid = 1;
  #closed: Error | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    const stream = new PacketStream((packet) => this.#onPacket(packet));
    socket.on('data', (chunk) => stream.push(chunk));
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('connection to ctdbd closed')));
  }

  static async connect(path: string): Promise<CtdbClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay?.(true);
    const client = new CtdbClient(socket);
    client.pnn = (await client.control(Pnn.CURRENT_NODE, ControlCode.GET_PNN, Buffer.alloc(0))).status;
    return client;
  }

  control(destnode: number, opcode: ControlCode, data: Buffer, options: ControlOptions = {}): Promise<RawReply> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    const reqid = this.#allocReqid();
    const flags = options.flags ?? 0;
    this.#socket.write(
      encodePacket({
        header: makeHeader(Operation.REQ_CONTROL, { destnode, srcnode: this.pnn, reqid }),
        opcode,
        srvid: options.srvid ?? 0n,
        clientId: 0,
        flags,
        data,
      }),
    );
    if ((flags & ControlFlag.NOREPLY) !== 0) return Promise.resolve({ status: 0, data: Buffer.alloc(0), errorMessage: null });
    const reply = new Promise<RawReply>((resolve) => this.#pending.set(reqid, resolve));
    const timeoutMs = options.timeoutMs;
    if (timeoutMs === undefined) return reply;
    let timer: NodeJS.Timeout | undefined;
    const expiry = new Promise<RawReply>((resolve) => {
      timer = setTimeout(() => {
        // A late reply then finds no pending entry and is dropped.
        this.#pending.delete(reqid);
        resolve({ status: -1, data: Buffer.alloc(0), errorMessage: `control ${ControlCode[opcode]} to node ${destnode} timed out after ${timeoutMs} ms` });
      }, timeoutMs);
    });
    return Promise.race([reply, expiry]).finally(() => clearTimeout(timer));
  }

  /** Typed control: decoded reply and status; throws ControlError when status < 0. */
  async call<C extends ControlCode>(
    destnode: number,
    code: C,
    request: ControlRequests[C],
    options: ControlOptions = {},
  ): Promise<{ status: number; reply: ControlReplies[C] }> {
    const data = (encodeControlRequest as (c: ControlCode, v: unknown) => Buffer)(code, request);
    const r = await this.control(destnode, code, data, options);
    if (r.status < 0) throw new ControlError(code, r.status, r.errorMessage);
    return { status: r.status, reply: decodeControlReply(code, r.data) };
  }

  /** A REQ_CALL on a record: resolves with REPLY_CALL's status and data, rejects on REPLY_ERROR. */
  recordCall(call: RecordCall): Promise<RecordCallReply> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    const reqid = this.#allocReqid();
    this.#socket.write(
      encodePacket({
        header: makeHeader(Operation.REQ_CALL, { destnode: Pnn.CURRENT_NODE, srcnode: this.pnn, reqid }),
        flags: call.flags ?? 0,
        dbId: call.dbId,
        callId: call.callId,
        hopcount: 0,
        key: call.key,
        callData: call.callData ?? Buffer.alloc(0),
      }),
    );
    return new Promise((resolve, reject) => this.#calls.set(reqid, { resolve, reject }));
  }

  async registerSrvid(srvid: bigint, handler: MessageHandler): Promise<void> {
    this.#handlers.set(srvid, handler);
    await this.call(Pnn.CURRENT_NODE, ControlCode.REGISTER_SRVID, undefined, { srvid });
  }

  async deregisterSrvid(srvid: bigint): Promise<void> {
    this.#handlers.delete(srvid);
    await this.call(Pnn.CURRENT_NODE, ControlCode.DEREGISTER_SRVID, undefined, { srvid });
  }

  /** Returns false when the socket's write buffer is full: wait for flush() before sending more. */
  sendMessage(destnode: number, srvid: bigint, data: Buffer): boolean {
    return this.#socket.write(encodePacket({ header: this.messageHeader(destnode), srvid, data }));
  }

  /** The header of this client's messages to `destnode`, for framing one in place (frameMessage). */
  messageHeader(destnode: number): ReqMessage['header'] {
    return makeHeader(Operation.REQ_MESSAGE, { destnode, srcnode: this.pnn, reqid: 0 });
  }

  /** A message framed in place with messageHeader; like sendMessage otherwise. The packet must stay as it is until flush(). */
  sendFramedMessage(packet: Buffer): boolean {
    return this.#socket.write(packet);
  }

  /** Resolves once everything written so far has reached the kernel. */
  flush(): Promise<void> {
    return new Promise((resolve) => this.#socket.write(Buffer.alloc(0), () => resolve()));
  }

  close(): void {
    this.#socket.destroy();
  }

  /** Why the connection ended (null while it is up). */
  get closedBy(): Error | null {
    return this.#closed;
  }

  #allocReqid(): number {
    this.#nextReqid = this.#nextReqid >= 0x7fffffff ? 1 : this.#nextReqid + 1;
    return this.#nextReqid;
  }

  #onPacket(buf: Buffer): void {
    const packet = decodePacket(buf);
    if (packet.header.operation === Operation.REPLY_CONTROL) {
      const reply = packet as ReplyControl;
      const resolve = this.#pending.get(reply.header.reqid);
      if (resolve === undefined) return;
      this.#pending.delete(reply.header.reqid);
      resolve({ status: reply.status, data: reply.data, errorMessage: reply.errorMessage });
    } else if (packet.header.operation === Operation.REPLY_CALL || packet.header.operation === Operation.REPLY_ERROR) {
      const call = this.#calls.get(packet.header.reqid);
      if (call === undefined) return;
      this.#calls.delete(packet.header.reqid);
      if (packet.header.operation === Operation.REPLY_CALL) call.resolve({ status: (packet as ReplyCall).status, data: (packet as ReplyCall).data });
      else call.reject(new Error(`call failed: ${(packet as ReplyError).msg.toString('utf8').replace(/\0+$/, '')}`));
    } else if (packet.header.operation === Operation.REQ_MESSAGE) {
      const msg = packet as ReqMessage;
      this.#handlers.get(msg.srvid)?.(msg.data, msg.header.srcnode, msg.srvid);
    }
  }

  #fail(err: Error): void {
    if (this.#closed !== null) return;
    this.#closed = err;
    const failed: RawReply = { status: -1, data: Buffer.alloc(0), errorMessage: err.message };
    for (const resolve of this.#pending.values()) resolve(failed);
    this.#pending.clear();
    for (const call of this.#calls.values()) call.reject(err);
    this.#calls.clear();
  }
}
