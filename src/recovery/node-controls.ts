// Controls sent during a recovery, with the recovery helper's failure semantics: every control
// has a time limit, and a failed control blames the node it went to, so the leader can give
// that node ban credits.
import type { CtdbClient } from '../client/ctdb-client';
import { ControlCode, decodeControlReply, encodeControlRequest } from '../protocol';
import type { ControlReplies, ControlRequests } from '../protocol';

/** A failure some node is to blame for. */
export class NodeFailure extends Error {
  constructor(
    readonly pnn: number,
    message: string,
  ) {
    super(message);
  }
}

export class NodeControls {
  constructor(
    readonly client: CtdbClient,
    readonly timeoutMs: number,
  ) {}

  /** One control to one node; any failure blames that node. */
  async on<C extends ControlCode>(pnn: number, code: C, request: ControlRequests[C], flags = 0): Promise<ControlReplies[C]> {
    const data = (encodeControlRequest as (c: ControlCode, v: unknown) => Buffer)(code, request);
    const reply = await this.client.control(pnn, code, data, { flags, timeoutMs: this.timeoutMs });
    const lost = this.client.closedBy;
    // Without the local daemon nothing can be said about the other nodes.
    if (lost !== null) throw new Error(`${ControlCode[code]}: lost the connection to the local ctdbd: ${lost.message}`);
    if (reply.status !== 0) {
      const why = reply.errorMessage === null ? '' : `: ${reply.errorMessage}`;
      throw new NodeFailure(pnn, `${ControlCode[code]} failed on node ${pnn} (status ${reply.status}${why})`);
    }
    try {
      return decodeControlReply(code, reply.data);
    } catch (err) {
      throw new NodeFailure(pnn, `${ControlCode[code]} reply from node ${pnn} is malformed: ${(err as Error).message}`);
    }
  }

  /**
   * The same control to every listed node at once. Waits for all of them, then fails with the
   * first failing node in list order (as ctdb_client_control_multi_error picks it).
   */
  async onEach<C extends ControlCode>(pnns: readonly number[], code: C, request: ControlRequests[C], flags = 0): Promise<ControlReplies[C][]> {
    return settleInOrder(pnns.map((pnn) => this.on(pnn, code, request, flags)));
  }
}

/** Waits for every step, then fails with the first failure in list order (the node blamed). */
export async function settleInOrder<T>(steps: readonly Promise<T>[]): Promise<T[]> {
  const outcomes = await Promise.allSettled(steps);
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return outcomes.map((o) => (o as PromiseFulfilledResult<T>).value);
}
