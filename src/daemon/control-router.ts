// Every control — from a local client, from a peer, or from the daemon's own leader
// logic — travels through ControlRouter.send(): local destinations are dispatched in
// process, remote ones go over the node transport and wait for the REPLY_CONTROL by
// reqid, with ControlTimeout and immediate failure for disconnected nodes, as ctdbd.
import {
  ControlCode,
  ControlFlag,
  Operation,
  Pnn,
  controlName,
  decodeControlReply,
  encodeControlRequest,
  encodePacket,
  makeHeader,
} from '../protocol';
import type { ControlReplies, ControlRequests, ReplyControl } from '../protocol';

export interface ControlReply {
  status: number;
  data: Buffer;
  errorMessage: string | null;
}

export interface ControlRequest {
  opcode: number;
  srvid: bigint;
  flags: number;
  /** Per-connection id of the requesting client; 0 for controls from peers or the daemon. */
  clientId: number;
  srcnode: number;
  data: Buffer;
}

export interface RouterHost {
  readonly pnn: number;
  generation(): number;
  /** Destinations of a broadcast pseudo-pnn (may include this node). */
  broadcastTargets(destnode: number): number[];
  isConnected(pnn: number): boolean;
  isValidPnn(pnn: number): boolean;
  sendToPeer(pnn: number, packet: Buffer): boolean;
  dispatchLocal(req: ControlRequest): Promise<ControlReply>;
  controlTimeoutMs(): number;
}

interface Pending {
  pnn: number;
  resolve(reply: ControlReply): void;
  timer: NodeJS.Timeout | undefined;
}

const OK_EMPTY: ControlReply = Object.freeze({ status: 0, data: Buffer.alloc(0), errorMessage: null });

export function failure(message: string): ControlReply {
  return { status: -1, data: Buffer.alloc(0), errorMessage: message };
}

export class ControlRouter {
  readonly #pending = new Map<number, Pending>();
  #nextReqid = 1;

  constructor(private readonly host: RouterHost) {}

  /**
   * Sends a control to `destnode` (a pnn, CURRENT_NODE or a broadcast). Broadcasts
   * must be NOREPLY; NOREPLY sends resolve as soon as they are queued.
   */
  send(destnode: number, req: ControlRequest): Promise<ControlReply> {
    const noreply = (req.flags & ControlFlag.NOREPLY) !== 0;
    if (destnode === Pnn.CURRENT_NODE) destnode = this.host.pnn;
    if (isBroadcast(destnode)) {
      if (!noreply) return Promise.resolve(failure('Attempt to broadcast control without NOREPLY'));
      for (const pnn of this.host.broadcastTargets(destnode)) void this.send(pnn, req);
      return Promise.resolve(OK_EMPTY);
    }
    if (destnode === this.host.pnn) {
      const local = this.host.dispatchLocal(req);
      return noreply ? Promise.resolve(OK_EMPTY) : local;
    }
    if (!this.host.isValidPnn(destnode) || !this.host.isConnected(destnode)) {
      return Promise.resolve(noreply ? OK_EMPTY : failure('ctdb_control to disconnected node'));
    }
    const reqid = this.#allocReqid();
    const packet = encodePacket({
      header: this.#header(Operation.REQ_CONTROL, destnode, reqid),
      opcode: req.opcode,
      srvid: req.srvid,
      clientId: req.clientId,
      flags: req.flags,
      data: req.data,
    });
    if (!this.host.sendToPeer(destnode, packet)) {
      return Promise.resolve(noreply ? OK_EMPTY : failure('ctdb_control to disconnected node'));
    }
    if (noreply) return Promise.resolve(OK_EMPTY);
    return new Promise((resolve) => {
      const timeoutMs = this.host.controlTimeoutMs();
      const timer =
        timeoutMs > 0
          ? setTimeout(() => this.#settle(reqid, failure('ctdb_control timed out')), timeoutMs)
          : undefined;
      this.#pending.set(reqid, { pnn: destnode, resolve, timer });
    });
  }

  /** A REPLY_CONTROL from a peer; false when nobody waits for it (late or bogus). */
  handleReply(reply: ReplyControl): boolean {
    return this.#settle(reply.header.reqid, {
      status: reply.status,
      data: reply.data,
      errorMessage: reply.errorMessage,
    });
  }

  /** Fails every control still waiting on a node that has just gone away. */
  failPendingFor(pnn: number): void {
    for (const [reqid, p] of this.#pending) {
      if (p.pnn === pnn) this.#settle(reqid, failure('node is disconnected'));
    }
  }

  /** Typed convenience for the daemon's own controls: decoded reply, throws on failure. */
  async call<C extends ControlCode>(
    destnode: number,
    code: C,
    request: ControlRequests[C],
    options: { srvid?: bigint; flags?: number } = {},
  ): Promise<{ status: number; reply: ControlReplies[C] }> {
    const reply = await this.send(destnode, {
      opcode: code,
      srvid: options.srvid ?? 0n,
      flags: options.flags ?? 0,
      clientId: 0,
      srcnode: this.host.pnn,
      data: (encodeControlRequest as (c: ControlCode, v: unknown) => Buffer)(code, request),
    });
    if (reply.status < 0) {
      throw new Error(`control ${controlName(code)} to node ${destnode} failed: ${reply.errorMessage ?? 'status ' + reply.status}`);
    }
    return { status: reply.status, reply: decodeControlReply(code, reply.data) };
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  #settle(reqid: number, reply: ControlReply): boolean {
    const p = this.#pending.get(reqid);
    if (p === undefined) return false;
    this.#pending.delete(reqid);
    if (p.timer !== undefined) clearTimeout(p.timer);
    p.resolve(reply);
    return true;
  }

  #allocReqid(): number {
    // Skip ids still in flight after a wrap so replies are never mismatched.
    do {
      this.#nextReqid = this.#nextReqid >= 0xffffffff ? 1 : this.#nextReqid + 1;
    } while (this.#pending.has(this.#nextReqid));
    return this.#nextReqid;
  }

  #header<Op extends Operation>(operation: Op, destnode: number, reqid: number) {
    return makeHeader(operation, { destnode, srcnode: this.host.pnn, reqid, generation: this.host.generation() });
  }
}

export function isBroadcast(pnn: number): boolean {
  return pnn === Pnn.BROADCAST_ALL || pnn === Pnn.BROADCAST_ACTIVE || pnn === Pnn.BROADCAST_CONNECTED;
}
