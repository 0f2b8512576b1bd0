// Message registrations: srvid → subscribers. A hash table keyed by srvid so that
// delivery and registration stay O(1) with thousands of smbd processes registered.
// A subscriber that registered the same srvid twice receives each message twice,
// as with ctdbd.

export interface Subscriber {
  /** Called with the whole REQ_MESSAGE packet (header intact) and its payload. */
  deliver(srvid: bigint, packet: Buffer, data: Buffer, srcnode: number): void;
}

export class SrvidTable {
  readonly #bySrvid = new Map<bigint, Subscriber[]>();

  register(srvid: bigint, sub: Subscriber): void {
    const list = this.#bySrvid.get(srvid);
    if (list === undefined) this.#bySrvid.set(srvid, [sub]);
    else list.push(sub);
  }

  /** Removes one registration; false when the subscriber had none for that srvid. */
  deregister(srvid: bigint, sub: Subscriber): boolean {
    const list = this.#bySrvid.get(srvid);
    if (list === undefined) return false;
    const i = list.indexOf(sub);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.#bySrvid.delete(srvid);
    return true;
  }

  /** Removes every registration of the subscriber for the given srvids (client disconnect). */
  deregisterAll(srvids: Iterable<bigint>, sub: Subscriber): void {
    for (const srvid of srvids) while (this.deregister(srvid, sub));
  }

  has(srvid: bigint): boolean {
    return this.#bySrvid.has(srvid);
  }

  isRegisteredBy(srvid: bigint, sub: Subscriber): boolean {
    return this.#bySrvid.get(srvid)?.includes(sub) ?? false;
  }

  subscribers(srvid: bigint): readonly Subscriber[] {
    return this.#bySrvid.get(srvid) ?? [];
  }
}
