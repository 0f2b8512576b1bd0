// A connection on the unix socket (smbd, the ctdb tool, helpers): its identity,
// its srvid registrations, and the way packets reach it.
import type { Subscriber } from './srvid-table';

export interface PacketSink {
  send(conn: number, packet: Buffer): boolean;
}

export class Client implements Subscriber {
  /** Every srvid this client registered, with repeats, so disconnect can undo them. */
  readonly srvids: bigint[] = [];

  constructor(
    /** Daemon-assigned id put into forwarded controls (never 0: 0 marks controls from peers). */
    readonly id: number,
    readonly conn: number,
    /** Peer pid from SO_PEERCRED. */
    readonly pid: number,
    private readonly sink: PacketSink,
  ) {}

  send(packet: Buffer): void {
    this.sink.send(this.conn, packet);
  }

  deliver(_srvid: bigint, packet: Buffer): void {
    this.sink.send(this.conn, packet);
  }
}

/** Clients by connection id and by pid (PROCESS_EXISTS answers only for connected clients). */
export class ClientTable {
  readonly #byConn = new Map<number, Client>();
  readonly #byId = new Map<number, Client>();
  readonly #byPid = new Map<number, Set<Client>>();
  #nextId = 1;

  add(conn: number, pid: number, sink: PacketSink): Client {
    const client = new Client(this.#nextId, conn, pid, sink);
    this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1;
    this.#byConn.set(conn, client);
    this.#byId.set(client.id, client);
    let set = this.#byPid.get(pid);
    if (set === undefined) this.#byPid.set(pid, (set = new Set()));
    set.add(client);
    return client;
  }

  remove(client: Client): void {
    this.#byConn.delete(client.conn);
    this.#byId.delete(client.id);
    const set = this.#byPid.get(client.pid);
    set?.delete(client);
    if (set?.size === 0) this.#byPid.delete(client.pid);
  }

  byConn(conn: number): Client | undefined {
    return this.#byConn.get(conn);
  }

  byId(id: number): Client | undefined {
    return this.#byId.get(id);
  }

  byPid(pid: number): ReadonlySet<Client> | undefined {
    return this.#byPid.get(pid);
  }

  get size(): number {
    return this.#byConn.size;
  }

  all(): IterableIterator<Client> {
    return this.#byConn.values();
  }
}
