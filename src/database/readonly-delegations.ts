// Read-only delegations (databases with the READONLY flag): the dmaster of a record may hand
// read-only copies to other nodes instead of migrating it, noting the holders in the database's
// ReadOnlyTracking. A write call then first revokes them all (UPDATE_RECORD to every holder);
// calls for the record wait here meanwhile.
import type { ClusterDatabase } from './database';

interface Waiting {
  readonly run: () => void;
  readonly readonly: boolean;
}

/** Calls waiting for read-only requests after a revoke, so writers get the record first. */
const READONLY_GRACE_MS = 1000;

export class ReadOnlyDelegations {
  readonly #revoking = new Map<ClusterDatabase, Map<string, Waiting[]>>();

  /** Marks a revoke of the record as running; calls for it then wait through defer(). */
  startRevoke(db: ClusterDatabase, key: Buffer): void {
    let byKey = this.#revoking.get(db);
    if (byKey === undefined) {
      byKey = new Map();
      this.#revoking.set(db, byKey);
    }
    byKey.set(key.toString('latin1'), byKey.get(key.toString('latin1')) ?? []);
  }

  /** Queues a call until the revoke of its record ends. */
  defer(db: ClusterDatabase, key: Buffer, run: () => void, readonly: boolean): void {
    const waiting = this.#revoking.get(db)?.get(key.toString('latin1'));
    if (waiting === undefined) setImmediate(run);
    else waiting.push({ run, readonly });
  }

  /**
   * The revoke ended. After a successful one, calls that want to write run at once and read-only
   * requests a second later; after a failure (a node went away: recovery comes) all wait a second.
   */
  endRevoke(db: ClusterDatabase, key: Buffer, ok: boolean): void {
    const byKey = this.#revoking.get(db);
    const id = key.toString('latin1');
    const waiting = byKey?.get(id) ?? [];
    byKey?.delete(id);
    for (const call of waiting) {
      if (ok && !call.readonly) setImmediate(call.run);
      else setTimeout(call.run, READONLY_GRACE_MS);
    }
  }

  /** A detached or closed database: calls waiting for a revoke run (and find it gone). */
  forget(db: ClusterDatabase): void {
    const byKey = this.#revoking.get(db);
    this.#revoking.delete(db);
    for (const waiting of byKey?.values() ?? []) for (const call of waiting) setImmediate(call.run);
  }
}
