// Typed facade over the native `io` module (native/io/): sockets, packet framing and
// writes run in C++ on Node's own libuv loop; JS gets whole packets in batches.
import { nativeModule } from '../native';
import { HEADER_SIZE } from '../protocol/constants';
import { DEFAULT_MAX_PACKET_SIZE } from './framer';

/** CTDB's MaxQueueDropMsg: a client this far behind is dropped. */
export const DEFAULT_MAX_QUEUE_PACKETS = 1_000_000;

/** A process on the unix socket (SO_PEERCRED). */
export interface UnixPeer {
  pid: number;
  uid: number;
  gid: number;
}

/** A daemon (or anything) connected over TCP. */
export interface TcpPeer {
  address: string;
  port: number;
}

export interface IoHandlers {
  /**
   * Every packet read in one loop iteration, from all connections: packets[i] came
   * from conns[i], in order per connection. Packets are views of shared 256 KiB slabs
   * and stay valid (and unchanged) for as long as JS keeps them; a packet kept for
   * long keeps its slab's memory too, so copy what is held for minutes.
   */
  packets(conns: Uint32Array, packets: Buffer[]): void;
  accepted(listener: number, conn: number, peer: UnixPeer | TcpPeer): void;
  /** An outgoing connection is up (error null) or failed; a failed one is gone and gets no `closed`. */
  connected(conn: number, error: Error | null): void;
  /** The connection ended by itself (EOF, error, bad framing, queue overflow); never after close(). */
  closed(conn: number, reason: string): void;
}

export interface IoOptions {
  /** Longer packets drop the connection (CTDB has no limit; 64 MiB by default). */
  maxPacketSize?: number;
  /** Packets waiting for a slow reader before it is dropped (CTDB's MaxQueueDropMsg, 1,000,000). */
  maxQueuePackets?: number;
}

export interface IoStats {
  reads: number;
  bytesRead: number;
  packets: number;
  /** Packets too big for the shared batch block, read into memory of their own. */
  largePackets: number;
  /** packets() calls: packets / batches is the batching factor. */
  batches: number;
  writes: number;
  bytesWritten: number;
  /** Sends that found the socket full and had to wait for writability. */
  eagainWaits: number;
  accepts: number;
  connects: number;
  closes: number;
}

/** Only primitives come from C++ (see IoContext::Deliver); objects are built here. */
interface NativeCallbacks {
  /** table: count connection ids, then count (block, offset, length) triples into `blocks`. */
  packets(blocks: ArrayBuffer[], table: Uint32Array): void;
  /** Unix peers: pid, uid, gid. TCP peers: address, port. */
  accepted(listener: number, conn: number, pidOrAddress: number | string, uidOrPort: number, gid?: number): void;
  /** Success: only conn. Failure: "<operation>: <strerror>", the errno name and number. */
  connected(conn: number, message?: string, code?: string, errno?: number): void;
  closed(conn: number, reason: string): void;
}

/** Shaped like the addon's synchronous errors (ctdb::ErrnoError): message, code, errno. */
export interface IoErrnoError extends Error {
  code: string;
  errno: number;
}

interface IoModule {
  init(callbacks: NativeCallbacks, options: IoOptions): void;
  listenUnix(path: string, mode: number): number;
  listenTcp(address: string, port: number): number;
  connectTcp(local: string | null, address: string, port: number): number;
  send(conn: number, packet: Uint8Array): boolean;
  sendMany(conns: Uint32Array | number[], packet: Uint8Array): number;
  close(conn: number): void;
  closeAfterFlush(conn: number): void;
  closeListener(listener: number): boolean;
  listenerPort(listener: number): number;
  stats(): IoStats;
}

export function isUnixPeer(peer: UnixPeer | TcpPeer): peer is UnixPeer {
  return 'pid' in peer;
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`${what}: port ${port} is not 0..65535`);
}

/** One per process: the native side owns every socket and calls back into these handlers. */
export class NativeIo {
  readonly #io: IoModule;

  constructor(handlers: IoHandlers, options: IoOptions = {}) {
    const maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
    const maxQueuePackets = options.maxQueuePackets ?? DEFAULT_MAX_QUEUE_PACKETS;
    if (!Number.isInteger(maxPacketSize) || maxPacketSize < HEADER_SIZE || maxPacketSize > 0xffffffff) {
      throw new RangeError(`maxPacketSize ${maxPacketSize} is not an integer from ${HEADER_SIZE} to 4294967295`);
    }
    if (!Number.isInteger(maxQueuePackets) || maxQueuePackets < 1 || maxQueuePackets > 0xffffffff) {
      throw new RangeError(`maxQueuePackets ${maxQueuePackets} is not a positive integer`);
    }
    this.#io = nativeModule<IoModule>('io');
    this.#io.init(
      {
        packets: (blocks, table) => handlers.packets(...unpackBatch(blocks, table)),
        accepted: (listener, conn, pidOrAddress, uidOrPort, gid) =>
          handlers.accepted(
            listener,
            conn,
            typeof pidOrAddress === 'string' ? { address: pidOrAddress, port: uidOrPort } : { pid: pidOrAddress, uid: uidOrPort, gid: gid as number },
          ),
        connected: (conn, message, code, errno) =>
          handlers.connected(conn, message === undefined ? null : Object.assign(new Error(message), { code, errno }) as IoErrnoError),
        closed: (conn, reason) => handlers.closed(conn, reason),
      },
      { maxPacketSize, maxQueuePackets },
    );
  }

  /** Replaces a stale socket file (not a live daemon's), binds, chmods to `mode`, listens. Returns a listener id. */
  listenUnix(path: string, mode: number): number {
    return this.#io.listenUnix(path, mode);
  }

  /** Listens on a numeric IPv4/IPv6 address; port 0 picks one (see listenerPort). Peer framing. */
  listenTcp(address: string, port: number): number {
    checkPort(port, `listenTcp(${address})`);
    return this.#io.listenTcp(address, port);
  }

  /** Starts a non-blocking connect, from `local` (port 0) when given; `connected` reports the outcome. */
  connectTcp(local: string | null, address: string, port: number): number {
    checkPort(port, `connectTcp(${address})`);
    return this.#io.connectTcp(local, address, port);
  }

  /** Writes now or queues (in order); false when the connection is gone. The buffer may be reused at once. */
  send(conn: number, packet: Buffer): boolean {
    return this.#io.send(conn, packet);
  }

  /** send() to many connections in one native call; returns how many took the packet. */
  sendMany(conns: ArrayLike<number>, packet: Buffer): number {
    return this.#io.sendMany(conns instanceof Uint32Array ? conns : Array.from(conns), packet);
  }

  /** Closes at once, dropping queued writes; no `closed` callback follows. */
  close(conn: number): void {
    this.#io.close(conn);
  }

  /** Stops reading, closes once queued writes are out; no `closed` callback follows. */
  closeAfterFlush(conn: number): void {
    this.#io.closeAfterFlush(conn);
  }

  closeListener(listener: number): void {
    this.#io.closeListener(listener);
  }

  /** The bound port of a TCP listener (-1 for unknown ids and unix listeners). */
  listenerPort(listener: number): number {
    return this.#io.listenerPort(listener);
  }

  stats(): IoStats {
    return this.#io.stats();
  }
}

/** Turns one native batch into per-connection packet views of its blocks. */
function unpackBatch(blocks: ArrayBuffer[], table: Uint32Array): [Uint32Array, Buffer[]] {
  const count = table.length / 4;
  const packets = new Array<Buffer>(count);
  for (let i = 0, t = count; i < count; i++, t += 3) packets[i] = Buffer.from(blocks[table[t]], table[t + 1], table[t + 2]);
  return [table.subarray(0, count), packets];
}
