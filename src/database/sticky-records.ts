// Sticky records (databases with the STICKY flag): a record that needed many hops to reach its
// dmaster is hot. For StickyDuration it is remembered, and each time this node becomes its
// dmaster it stays pinned here for StickyPindown ms: calls from other nodes wait out the pin
// instead of bouncing the record around the cluster.
import type { ClusterDatabase } from './database';

interface StickyRecord {
  readonly expiry: NodeJS.Timeout;
  /** Set while the record is pinned: the calls waiting for the pin to end. */
  pinned: { timer: NodeJS.Timeout; waiting: (() => void)[] } | undefined;
}

export interface StickyTunables {
  /** StickyDuration, seconds. */
  durationS: number;
  /** StickyPindown, ms. */
  pindownMs: number;
}

export class StickyRecords {
  readonly #byDb = new Map<ClusterDatabase, Map<string, StickyRecord>>();

  constructor(
    private readonly tunables: () => StickyTunables,
    private readonly log: (message: string) => void,
  ) {}

  /** Remembers a hot record of `db` for StickyDuration seconds (again only once that has passed). */
  makeSticky(db: ClusterDatabase, key: Buffer): void {
    let records = this.#byDb.get(db);
    if (records === undefined) {
      records = new Map();
      this.#byDb.set(db, records);
    }
    const id = key.toString('latin1');
    if (records.has(id)) return;
    const { durationS } = this.tunables();
    this.log(`Make record sticky for ${durationS} seconds in db ${db.name}`);
    const expiry = setTimeout(() => {
      const record = records.get(id);
      records.delete(id);
      if (record?.pinned !== undefined) this.#unpin(record);
    }, durationS * 1000);
    expiry.unref();
    records.set(id, { expiry, pinned: undefined });
  }

  /** This node just became dmaster of a record: a sticky one is pinned here for a while. */
  pinDown(db: ClusterDatabase, key: Buffer): void {
    const record = this.#byDb.get(db)?.get(key.toString('latin1'));
    if (record === undefined || record.pinned !== undefined) return;
    const { pindownMs } = this.tunables();
    this.log(`Pinning down record in ${db.name} for ${pindownMs} ms`);
    record.pinned = { timer: setTimeout(() => this.#unpin(record), pindownMs), waiting: [] };
  }

  /** Queues `run` until the pin ends if the record is pinned; false when it is not. */
  deferIfPinned(db: ClusterDatabase, key: Buffer, run: () => void): boolean {
    const pinned = this.#byDb.get(db)?.get(key.toString('latin1'))?.pinned;
    if (pinned === undefined) return false;
    pinned.waiting.push(run);
    return true;
  }

  /** A database going away: its timers stop and waiting calls run (and find it gone). */
  forget(db: ClusterDatabase): void {
    const records = this.#byDb.get(db);
    this.#byDb.delete(db);
    for (const record of records?.values() ?? []) {
      clearTimeout(record.expiry);
      if (record.pinned !== undefined) this.#unpin(record);
    }
  }

  #unpin(record: StickyRecord): void {
    const pinned = record.pinned;
    if (pinned === undefined) return;
    record.pinned = undefined;
    clearTimeout(pinned.timer);
    for (const run of pinned.waiting) setImmediate(run);
  }
}
