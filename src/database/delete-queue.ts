// The records waiting for vacuuming, per volatile database (ctdbd's delete_queue and
// fetch_queue). The delete queue is fed by clients (SCHEDULE_FOR_DELETION after they emptied a
// record) and by the daemon's own stores (record-store.ts); the fetch queue by other nodes that
// ask this node, the lmaster, to take records back for deletion (VACUUM_FETCH). A vacuum run
// takes both queues whole and works on its copy, so anything queued meanwhile waits for the next
// run. Entries are keyed by the whole key (ctdbd keys by hash and drops colliding keys).
import type { LtdbHeader } from '../protocol';
import type { ClusterDatabase } from './database';
import type { DeletionQueue } from './record-store';

export interface QueuedDeletion {
  readonly key: Buffer;
  /** The header the record had when it was queued: a later store changes its rsn. */
  readonly header: LtdbHeader;
}

export interface VacuumQueues {
  readonly deletions: Map<string, QueuedDeletion>;
  /** Keys to migrate here (this node is their lmaster) so that they can be deleted. */
  readonly fetches: Map<string, Buffer>;
}

export function keyId(key: Buffer): string {
  return key.toString('latin1');
}

function emptyQueues(): VacuumQueues {
  return { deletions: new Map(), fetches: new Map() };
}

export class DeleteQueues implements DeletionQueue {
  readonly #byDb = new Map<ClusterDatabase, VacuumQueues>();

  /** Only volatile databases are vacuumed; what others schedule is dropped. */
  schedule(db: ClusterDatabase, key: Buffer, header: LtdbHeader): void {
    if (!db.volatile) return;
    this.#queues(db).deletions.set(keyId(key), { key: Buffer.from(key), header: { ...header } });
  }

  remove(db: ClusterDatabase, key: Buffer): void {
    const deletions = this.#byDb.get(db)?.deletions;
    // Every store asks: no key string when nothing is queued.
    if (deletions !== undefined && deletions.size > 0) deletions.delete(keyId(key));
  }

  queued(db: ClusterDatabase): boolean {
    return (this.#byDb.get(db)?.deletions.size ?? 0) > 0;
  }

  fetch(db: ClusterDatabase, key: Buffer): void {
    if (!db.volatile) return;
    this.#queues(db).fetches.set(keyId(key), Buffer.from(key));
  }

  /** Everything queued for `db`; the queues start again empty. */
  take(db: ClusterDatabase): VacuumQueues {
    const queues = this.#byDb.get(db) ?? emptyQueues();
    this.#byDb.delete(db);
    return queues;
  }

  /** A detached database's queues go. */
  forget(db: ClusterDatabase): void {
    this.#byDb.delete(db);
  }

  #queues(db: ClusterDatabase): VacuumQueues {
    let queues = this.#byDb.get(db);
    if (queues === undefined) {
      queues = emptyQueues();
      this.#byDb.set(db, queues);
    }
    return queues;
  }
}
