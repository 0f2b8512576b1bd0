// Database traverses as CTDB 4.17 runs them (ctdb_traverse.c), in both of their roles:
//
// - Originating node: a local client sends TRAVERSE_START[_EXT]. The nodes that hold the
//   authoritative copies are asked to walk their local files with TRAVERSE_ALL[_EXT]: every
//   active node for a volatile database, a single node (this one when it is in the vnn map)
//   for persistent and replicated ones. Their records come back as TRAVERSE_DATA controls, one
//   rec_data each and an empty one at the end. Each record goes on to the client's srvid as one
//   message (the client's reqid in it); once every node has ended, or TraverseTimeout has passed,
//   the client gets the 16-byte end marker. A client that goes away, and a timeout, make every
//   node drop its walk (TRAVERSE_KILL).
// - Serving node: walks its file and streams the records to the originator. A volatile
//   database gives only the records this node is dmaster of, and only non-empty ones unless
//   the client asked for empty records too.
//
// Where the walk runs. ctdbd forks a child for it; a Node daemon cannot. A second open of the
// file (a worker thread, or anything in this process) would drop the daemon's own fcntl locks
// on that file when closed, and the native handle is not shared across threads, so the walk
// uses the daemon's handle on the event loop, in slices: each turn either copies the next
// ~256 KiB of chains out (chain locks are taken only inside native code while a chain's records
// are copied, so smbd waits at most for one chain copy) or sends one small chunk of them, one
// packet per record. Pings, smbd's record calls and other nodes' packets are served in between,
// whatever the size of the database. Like ctdbd's child, the walk sees each record at most once
// but not one moment of the whole file.
import { ControlCode, Pnn, encode, recDataCodec, traverseAllCodec, traverseAllExtCodec, traverseStartCodec, LTDB_DMASTER_OFFSET, LTDB_HEADER_SIZE } from '../protocol';
import type { RecData, TraverseAll, TraverseStartExt } from '../protocol';
import type { Logger } from '../common/logging';
import type { TdbFile } from '../store';

/** What a traverse needs of an attached database. */
export interface TraversedDatabase {
  readonly id: number;
  readonly name: string;
  /** Volatile databases are traversed on every active node, each giving its own records. */
  readonly volatile: boolean;
  readonly file: TdbFile;
}

/** What the engine needs of the daemon. */
export interface TraverseHost {
  readonly pnn: number;
  readonly logger: Logger;
  /** The nodes of BROADCAST_ACTIVE (this one included while it is active). */
  activeNodes(): number[];
  isActive(pnn: number): boolean;
  isConnected(pnn: number): boolean;
  vnnMap(): readonly number[];
  /** A NOREPLY control to a node or a broadcast pnn, this node included. */
  sendControl(destnode: number, opcode: ControlCode, data: Buffer): void;
  /** One message to whoever registered srvid on this node. */
  deliver(srvid: bigint, data: Buffer): void;
  traverseTimeoutMs(): number;
  /** Counts a traverse that ended by timeout (statistics timeouts.traverse). */
  countTimeout(): void;
}

/** What the serving nodes are told: TRAVERSE_ALL plus the client's choice about empty records. */
export type TraverseAllRequest = TraverseAll & { withEmptyRecords: boolean };

/**
 * The unit of work per event-loop turn, in rec_data bytes: what a walk sends, what goes on to a
 * client. Incoming TRAVERSE_DATA arrive thousands per native batch; only queueing them happens
 * in that turn.
 */
const BATCH_BYTES = 16 * 1024;
/** How often a running traverse checks that its client and its nodes are still there. */
const LIVENESS_POLL_MS = 1000;
const EMPTY = Buffer.alloc(0);

/** A traverse this node started for one of its clients. */
interface ClusterTraverse {
  readonly reqid: number;
  readonly db: TraversedDatabase;
  readonly request: TraverseStartExt;
  readonly clientAlive: () => boolean;
  /** Nodes whose end marker has not arrived yet. */
  readonly pending: Set<number>;
  /** Records received, not yet delivered to the client (from index `head` on). */
  readonly queue: RecData[];
  head: number;
  deliveryScheduled: boolean;
  /** No more records will come: the end marker follows the queue. */
  complete: boolean;
  /** The client is gone: nothing more is delivered. */
  dropped: boolean;
  records: number;
  readonly timeout: NodeJS.Timeout;
  readonly poll: NodeJS.Timeout;
}

/** A walk of the local file for some node's traverse. */
interface LocalWalk {
  readonly db: TraversedDatabase;
  readonly request: TraverseAllRequest;
  killed: boolean;
  /** The hash chain the next slice of the walk starts at; null once the file was walked. */
  nextChain: number | null;
  /** Selected records of the last slice, not sent yet (from index `sent` on). */
  chunks: Buffer[];
  sent: number;
}

export class TraverseEngine {
  readonly #sessions = new Map<number, ClusterTraverse>();
  readonly #walks = new Set<LocalWalk>();
  #lastReqid = 0;

  constructor(private readonly host: TraverseHost) {}

  /**
   * TRAVERSE_START[_EXT] from a local client; `clientAlive` tells whether it is still connected.
   * Nothing reaches the client before the control's reply: records and the end marker are
   * delivered from later event-loop turns only.
   */
  start(db: TraversedDatabase, request: TraverseStartExt, clientAlive: () => boolean): void {
    const nodes = db.volatile ? this.host.activeNodes() : [this.#persistentNode()];
    const reqid = this.#allocReqid();
    const session: ClusterTraverse = {
      reqid,
      db,
      request,
      clientAlive,
      pending: new Set(nodes),
      queue: [],
      head: 0,
      deliveryScheduled: false,
      complete: false,
      dropped: false,
      records: 0,
      timeout: setTimeout(() => this.#timedOut(session), Math.max(0, this.host.traverseTimeoutMs())).unref(),
      poll: setInterval(() => this.#checkLiveness(session), LIVENESS_POLL_MS).unref(),
    };
    this.#sessions.set(reqid, session);
    this.host.logger.notice(`Starting traverse on DB ${db.name} (id ${reqid})`);
    const all = { dbId: db.id, reqid, pnn: this.host.pnn, clientReqid: request.reqid, srvid: request.srvid };
    // As ctdbd: the extended form only when it carries something the plain one cannot.
    const [opcode, data] = request.withEmptyRecords
      ? [ControlCode.TRAVERSE_ALL_EXT, encode(traverseAllExtCodec, { ...all, withEmptyRecords: true })]
      : [ControlCode.TRAVERSE_ALL, encode(traverseAllCodec, all)];
    for (const pnn of nodes) this.host.sendControl(pnn, opcode, data);
    if (nodes.length === 0) this.#finish(session);
  }

  /** TRAVERSE_ALL[_EXT]: walk the local file and stream its records to the originating node. */
  serve(db: TraversedDatabase, request: TraverseAllRequest): void {
    const walk: LocalWalk = { db, request, killed: false, nextChain: 0, chunks: [], sent: 0 };
    this.#walks.add(walk);
    setImmediate(() => this.#step(walk));
  }

  /**
   * TRAVERSE_DATA from node `srcnode` (or from a walk of this node): one record, or the end
   * marker of that node. False when no traverse of this node has that reqid (it ended).
   */
  data(srcnode: number, record: RecData): boolean {
    const session = this.#sessions.get(record.reqid);
    if (session === undefined) return false;
    if (record.key.length === 0 && record.data.length === 0) {
      session.pending.delete(srcnode);
      if (session.pending.size === 0) this.#finish(session);
      return true;
    }
    session.queue.push(record);
    this.#scheduleDelivery(session);
    return true;
  }

  /** TRAVERSE_KILL: stop the walks feeding the traverse with that client reqid and srvid. */
  kill(dbId: number, clientReqid: number, srvid: bigint): void {
    for (const walk of this.#walks) {
      if (walk.db.id === dbId && walk.request.clientReqid === clientReqid && walk.request.srvid === srvid) {
        walk.killed = true;
        this.#walks.delete(walk);
      }
    }
  }

  // Persistent and replicated databases are the same everywhere: one node is enough.
  #persistentNode(): number {
    const map = this.host.vnnMap();
    if (map.includes(this.host.pnn) || map.length === 0) return this.host.pnn;
    return map[0];
  }

  #allocReqid(): number {
    do {
      this.#lastReqid = this.#lastReqid >= 0x7fffffff ? 1 : this.#lastReqid + 1;
    } while (this.#sessions.has(this.#lastReqid));
    return this.#lastReqid;
  }

  #end(session: ClusterTraverse): boolean {
    if (this.#sessions.get(session.reqid) !== session) return false;
    this.#sessions.delete(session.reqid);
    clearTimeout(session.timeout);
    clearInterval(session.poll);
    return true;
  }

  /** No more records: the client gets the end marker once the queue is delivered. */
  #finish(session: ClusterTraverse): void {
    if (!this.#end(session)) return;
    session.complete = true;
    this.#scheduleDelivery(session);
  }

  /** The client is gone: deliver nothing more, and stop the nodes still walking. */
  #cancel(session: ClusterTraverse): void {
    session.dropped = true;
    session.queue.length = 0;
    if (!this.#end(session)) return;
    this.host.logger.error(`Traverse cancelled by client disconnect for database:0x${session.db.id.toString(16).padStart(8, '0')}`);
    this.#broadcastKill(session);
  }

  #scheduleDelivery(session: ClusterTraverse): void {
    if (session.deliveryScheduled || session.dropped) return;
    session.deliveryScheduled = true;
    setImmediate(() => this.#deliver(session));
  }

  /** One batch of queued records to the client's srvid; the end marker after the last. */
  #deliver(session: ClusterTraverse): void {
    session.deliveryScheduled = false;
    if (session.dropped) return;
    if (!session.clientAlive()) {
      this.#cancel(session);
      return;
    }
    const { srvid, reqid } = session.request;
    let budget = BATCH_BYTES;
    while (session.head < session.queue.length && budget > 0) {
      const { key, data } = session.queue[session.head++];
      budget -= key.length + data.length;
      this.host.deliver(srvid, encode(recDataCodec, { reqid, key, data }));
      session.records++;
    }
    if (session.head < session.queue.length) {
      this.#scheduleDelivery(session);
      return;
    }
    session.queue.length = 0;
    session.head = 0;
    if (!session.complete) return;
    this.host.deliver(srvid, encode(recDataCodec, { reqid, key: EMPTY, data: EMPTY }));
    this.host.logger.notice(`Ending traverse on DB ${session.db.name} (id ${session.reqid}), records ${session.records}`);
  }

  #broadcastKill(session: ClusterTraverse): void {
    const { reqid, srvid } = session.request;
    const kill = encode(traverseStartCodec, { dbId: session.db.id, reqid, srvid });
    this.host.sendControl(Pnn.BROADCAST_CONNECTED, ControlCode.TRAVERSE_KILL, kill);
  }

  // The client gets what arrived and the end marker; the nodes still walking are stopped.
  #timedOut(session: ClusterTraverse): void {
    this.host.logger.error(`Traverse all timeout on database:${session.db.name}`);
    this.host.countTimeout();
    this.#finish(session);
    this.#broadcastKill(session);
  }

  // A node that left the cluster will never send its end marker: stop waiting for it, rather
  // than for TraverseTimeout as ctdbd does when the other nodes had already finished.
  #checkLiveness(session: ClusterTraverse): void {
    if (!session.clientAlive()) {
      this.#cancel(session);
      return;
    }
    for (const pnn of session.pending) {
      if (!this.host.isActive(pnn)) session.pending.delete(pnn);
    }
    if (session.pending.size === 0) this.#finish(session);
  }

  /**
   * One event-loop turn of a walk: one chunk of records to the originator, or the next slice of
   * the file copied (and filtered) into chunks, or the end marker.
   */
  #step(walk: LocalWalk): void {
    const origin = walk.request.pnn;
    if (walk.killed || (origin !== this.host.pnn && !this.host.isConnected(origin))) {
      this.#walks.delete(walk);
      return;
    }
    if (walk.sent < walk.chunks.length) this.#sendChunk(origin, walk.chunks[walk.sent++]);
    else if (walk.nextChain !== null) this.#walkSlice(walk, walk.nextChain);
    else {
      this.#walks.delete(walk);
      this.#emit(origin, encode(recDataCodec, { reqid: walk.request.reqid, key: EMPTY, data: EMPTY }));
      return;
    }
    setImmediate(() => this.#step(walk));
  }

  #walkSlice(walk: LocalWalk, fromChain: number): void {
    const { db, request } = walk;
    const spool = new RecDataSpool(request.reqid);
    const dmaster = this.host.pnn;
    try {
      walk.nextChain = db.file.traverseReadSlice(fromChain, (key, data) => {
        if (!db.volatile || isAuthoritative(data, dmaster, request.withEmptyRecords)) spool.add(key, data);
      });
    } catch (err) {
      // As ctdbd: a failed walk still ends, with what it had, so the originator is not kept waiting.
      this.host.logger.error(`Local traverse failed db:${db.name} reqid:${request.reqid}: ${(err as Error).message}`);
      walk.nextChain = null;
    }
    walk.chunks = spool.finish();
    walk.sent = 0;
  }

  #sendChunk(origin: number, chunk: Buffer): void {
    for (let off = 0; off < chunk.length; ) {
      const length = chunk.readUInt32LE(off);
      this.#emit(origin, chunk.subarray(off, off + length));
      off += length;
    }
  }

  // Records for this node's own traverses skip the trip through the control path.
  #emit(origin: number, record: Buffer): void {
    if (origin === this.host.pnn) this.data(origin, recDataCodec.pull(record, 0, record.length).value);
    else this.host.sendControl(origin, ControlCode.TRAVERSE_DATA, record);
  }
}

/** A volatile record this node is dmaster of; a bare header (deleted record) only on request. */
function isAuthoritative(data: Buffer, pnn: number, withEmptyRecords: boolean): boolean {
  if (data.length < LTDB_HEADER_SIZE) return false;
  if (data.length === LTDB_HEADER_SIZE && !withEmptyRecords) return false;
  return data.readUInt32LE(LTDB_DMASTER_OFFSET) === pnn;
}

/** Records marshalled back to back as rec_data, in chunks of about BATCH_BYTES. */
class RecDataSpool {
  readonly #chunks: Buffer[] = [];
  #chunk = EMPTY;
  #used = 0;

  constructor(private readonly reqid: number) {}

  add(key: Buffer, data: Buffer): void {
    const record = { reqid: this.reqid, key, data };
    const size = recDataCodec.size(record);
    if (this.#used + size > this.#chunk.length) {
      this.#seal();
      this.#chunk = Buffer.allocUnsafe(Math.max(BATCH_BYTES, size));
    }
    this.#used += recDataCodec.push(record, this.#chunk, this.#used);
  }

  finish(): Buffer[] {
    this.#seal();
    return this.#chunks;
  }

  #seal(): void {
    if (this.#used > 0) this.#chunks.push(this.#chunk.subarray(0, this.#used));
    this.#chunk = EMPTY;
    this.#used = 0;
  }
}
