// Node-to-node transport on TCP port 4379, CTDB style: each pair of nodes keeps two
// connections, the one we dial (bound to our node address, used only to send) and
// the one the peer dialled (used only to receive). Incoming connections are known
// only by their source address, which must be a node of the nodes file; there is no
// hello packet. Unreachable peers are redialled every second. A peer counts as
// connected only while both directions are up: the kernel completes our dial even to
// a stopped process, which alone must not make a stalled node look alive.
import type { NativeIo, TcpPeer } from '../transport/native-io';

export const CTDB_PORT = 4379;
const RECONNECT_MS = 1000;

export interface PeerEvents {
  /** The outgoing connection is up: the peer counts as connected. */
  peerUp(pnn: number): void;
  /** Either connection failed: the peer counts as disconnected. */
  peerDown(pnn: number, reason: string): void;
  packet(pnn: number, packet: Buffer): void;
  log(level: 'error' | 'warning' | 'notice' | 'info' | 'debug', msg: string): void;
}

export interface PeerAddress {
  pnn: number;
  address: string;
}

interface Peer {
  pnn: number;
  address: string;
  outConn: number | null;
  outReady: boolean;
  inConn: number | null;
  retry: NodeJS.Timeout | null;
  /** Packets received since the last keepalive tick. */
  rxCount: number;
  deadCount: number;
}

type ConnRole = { peer: Peer; direction: 'in' | 'out' };

export class PeerLinks {
  readonly #peers = new Map<number, Peer>();
  readonly #byAddress = new Map<string, Peer>();
  readonly #conns = new Map<number, ConnRole>();
  #listener: number | null = null;
  #stopped = false;

  constructor(
    private readonly io: NativeIo,
    private readonly ownAddress: string,
    peers: readonly PeerAddress[],
    private readonly events: PeerEvents,
    private readonly port: number = CTDB_PORT,
  ) {
    for (const p of peers) this.addPeer(p);
  }

  start(): void {
    this.#listener = this.io.listenTcp(this.ownAddress, this.port);
    for (const peer of this.#peers.values()) this.#dial(peer);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#listener !== null) this.io.closeListener(this.#listener);
    this.#listener = null;
    for (const peer of this.#peers.values()) this.#drop(peer, null);
  }

  addPeer(p: PeerAddress): void {
    const peer: Peer = { ...p, outConn: null, outReady: false, inConn: null, retry: null, rxCount: 0, deadCount: 0 };
    this.#peers.set(p.pnn, peer);
    this.#byAddress.set(normalise(p.address), peer);
    if (this.#listener !== null) this.#dial(peer);
  }

  removePeer(pnn: number): void {
    const peer = this.#peers.get(pnn);
    if (peer === undefined) return;
    this.#drop(peer, null);
    this.#peers.delete(pnn);
    this.#byAddress.delete(normalise(peer.address));
  }

  isListener(id: number): boolean {
    return id === this.#listener;
  }

  owns(conn: number): boolean {
    return this.#conns.has(conn);
  }

  /** Queues a packet on the outgoing connection; false when the peer is not connected. */
  send(pnn: number, packet: Buffer): boolean {
    const peer = this.#peers.get(pnn);
    if (peer === undefined || !peer.outReady || peer.outConn === null) return false;
    return this.io.send(peer.outConn, packet);
  }

  accepted(conn: number, remote: TcpPeer): void {
    const peer = this.#byAddress.get(normalise(remote.address));
    if (peer === undefined) {
      this.events.log('error', `Incoming connection from ${remote.address} rejected: not a node of the nodes file`);
      this.io.close(conn);
      return;
    }
    if (peer.inConn !== null) {
      // A restarted peer dials again before we noticed the old connection die.
      this.events.log('notice', `Replacing incoming connection from node ${peer.pnn} (${remote.address})`);
      this.#forget(peer.inConn);
    }
    peer.inConn = conn;
    this.#conns.set(conn, { peer, direction: 'in' });
    this.#maybeUp(peer);
  }

  connected(conn: number, error: Error | null): void {
    const role = this.#conns.get(conn);
    if (role === undefined) return;
    const { peer } = role;
    if (error !== null) {
      this.#forget(conn);
      peer.outConn = null;
      this.#scheduleDial(peer);
      return;
    }
    peer.outReady = true;
    peer.deadCount = 0;
    this.events.log('notice', `Connected to node ${peer.pnn} (${peer.address})`);
    this.#maybeUp(peer);
  }

  #isUp(peer: Peer): boolean {
    return peer.outReady && peer.inConn !== null;
  }

  #maybeUp(peer: Peer): void {
    if (this.#isUp(peer)) this.events.peerUp(peer.pnn);
  }

  packets(conn: number, packet: Buffer): void {
    const role = this.#conns.get(conn);
    if (role === undefined) return;
    if (role.direction === 'out') {
      // Peers never send on the connection we dialled; data there means a broken peer.
      this.#drop(role.peer, 'unexpected data on outgoing connection');
      return;
    }
    role.peer.rxCount++;
    this.events.packet(role.peer.pnn, packet);
  }

  closed(conn: number, reason: string): void {
    const role = this.#conns.get(conn);
    if (role === undefined) return;
    this.#conns.delete(conn);
    const { peer } = role;
    const wasUp = this.#isUp(peer);
    if (role.direction === 'in') {
      peer.inConn = null;
      this.events.log('notice', `Incoming connection from node ${peer.pnn} closed: ${reason}`);
    } else {
      peer.outConn = null;
      peer.outReady = false;
      this.#scheduleDial(peer);
    }
    if (wasUp) this.events.peerDown(peer.pnn, reason);
  }

  /**
   * Keepalive bookkeeping for one tick: returns the peers that stayed silent for
   * `limit` consecutive ticks (they are dropped and redialled).
   */
  tick(limit: number): number[] {
    const dead: number[] = [];
    for (const peer of this.#peers.values()) {
      if (!this.#isUp(peer)) continue;
      if (peer.rxCount === 0) peer.deadCount++;
      else peer.deadCount = 0;
      peer.rxCount = 0;
      if (peer.deadCount >= limit) {
        dead.push(peer.pnn);
        this.#drop(peer, `no packets for ${limit} keepalive intervals`);
      }
    }
    return dead;
  }

  connectedPnns(): number[] {
    return [...this.#peers.values()].filter((p) => this.#isUp(p)).map((p) => p.pnn);
  }

  #dial(peer: Peer): void {
    if (this.#stopped || peer.outConn !== null) return;
    peer.retry = null;
    try {
      const conn = this.io.connectTcp(this.ownAddress, peer.address, this.port);
      peer.outConn = conn;
      this.#conns.set(conn, { peer, direction: 'out' });
    } catch (err) {
      this.events.log('debug', `Connect to node ${peer.pnn} failed: ${(err as Error).message}`);
      this.#scheduleDial(peer);
    }
  }

  #scheduleDial(peer: Peer): void {
    if (this.#stopped || peer.retry !== null || !this.#peers.has(peer.pnn)) return;
    peer.retry = setTimeout(() => this.#dial(peer), RECONNECT_MS);
  }

  #forget(conn: number): void {
    this.#conns.delete(conn);
    this.io.close(conn);
  }

  /** Tears both connections down; with a reason the peer is reported down and redialled. */
  #drop(peer: Peer, reason: string | null): void {
    if (peer.retry !== null) clearTimeout(peer.retry);
    peer.retry = null;
    const wasUp = this.#isUp(peer);
    if (peer.inConn !== null) this.#forget(peer.inConn);
    peer.inConn = null;
    if (peer.outConn !== null) this.#forget(peer.outConn);
    peer.outConn = null;
    peer.outReady = false;
    peer.deadCount = 0;
    if (reason !== null) {
      if (wasUp) this.events.peerDown(peer.pnn, reason);
      this.#scheduleDial(peer);
    }
  }
}

/** IPv4-mapped IPv6 source addresses compare equal to their IPv4 form. */
function normalise(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address.toLowerCase();
}
