// The record streams of a recovery: DB_PULL sends a frozen database's records out as
// rec_buffer messages, DB_PUSH stores incoming rec_buffer messages into it.
import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { LtdbFlag, type RecordsDigest } from '../protocol';
import { recordOffsets } from '../protocol/rec-buffer';
import { LTDB_HEADER_SIZE } from '../protocol/types';
import type { ClusterDatabase } from './database';
import { storePushedRecords } from './record-store';
import type { RecordContext } from './record-store';

/**
 * Volatile databases whose records this node stopped vouching for when it went inactive, with
 * the generation they had then. Such a node missed what the others did meanwhile: a record it
 * still holds may have been deleted there, and its old copy must not come back in the recovery
 * that takes it in again (Samba bug 14294). Its records count again once a recovery transaction
 * has committed new contents (the database's generation moved on).
 */
const invalidated = new WeakMap<ClusterDatabase, number>();

/** 4.17 marks every volatile database so as its node goes inactive (the FREEZE of all databases). */
export function invalidateRecords(db: ClusterDatabase): void {
  if (db.volatile) invalidated.set(db, db.generation);
}

function recordsInvalid(db: ClusterDatabase): boolean {
  const since = invalidated.get(db);
  if (since === undefined) return false;
  if (since === db.generation) return true;
  invalidated.delete(db);
  return false;
}

/**
 * Streams every record (tombstones included) in rec_buffers that are closed once they reach
 * `limit` bytes, as ctdbd's pull does; nothing while the records are invalid. The store lays
 * the records out as they go on the wire; `send` gets each buffer to keep. Returns the number
 * of records sent.
 */
export function pullRecords(db: ClusterDatabase, limit: number, send: (buffer: Buffer) => void): number {
  db.requireFrozen('pull records');
  if (recordsInvalid(db)) return 0;
  return db.file.traverseRecBuffers(limit, (buffer, records) => {
    buffer.writeUInt32LE(db.id, 0);
    buffer.writeUInt32LE(records, 4);
    send(buffer);
  });
}

/**
 * DB_DIGEST: what pullRecords would send, hashed instead of sent (TdbFile.digestRecData): two
 * nodes with the same digest would send the very same records. `unusual` counts the records a
 * recovery of a persistent database does not leave as they are (tombstones go, read-only flags
 * are cleared): only when there are none may a recovery skip the pull of a copy that every node
 * holds alike.
 */
export async function digestRecords(db: ClusterDatabase): Promise<RecordsDigest> {
  db.requireFrozen('digest records');
  if (recordsInvalid(db)) return { records: 0, unusual: 0, digest: EMPTY_DIGEST };
  // In slices: 100k records take tens of milliseconds, which the daemon would otherwise deny
  // everyone else (other databases' recoveries wait there for their freeze and their pulls).
  const transaction = db.transactionId;
  const digest = db.file.recDataDigest(LTDB_HEADER_SIZE, LtdbFlag.RO_FLAGS);
  while (!digest.step(DIGEST_SLICE_BYTES)) {
    await nextTurn();
    // Only a recovery writes to a frozen database, and this one not before it has the digest.
    db.requireFrozen('digest records');
    if (db.transactionId !== transaction) throw new Error(`database ${db.name}: its recovery transaction changed during the digest`);
  }
  return digest.result();
}

/** Bytes of records DB_DIGEST hashes between turns of the event loop: about a millisecond's worth. */
const DIGEST_SLICE_BYTES = 256 * 1024;

const EMPTY_DIGEST = createHash('sha256').digest();

/** A DB_PUSH in progress: counts what it stored; the first bad buffer fails it for good. */
export class PushSession {
  records = 0;
  failure: Error | null = null;

  constructor(
    readonly db: ClusterDatabase,
    readonly srvid: bigint,
    /** This node's view for the store rules (volatile records go through them, as in ctdbd). */
    private readonly context: () => RecordContext,
  ) {}

  /**
   * Stores one rec_buffer message. Read-only delegations never survive a recovery. The
   * buffer's db_id is not checked, as ctdbd does not: `ctdb backupdb` files carry an
   * uninitialised one, and `ctdb restoredb` pushes them as they are. The message is this
   * session's own: headers are rewritten in place and records stored straight from it.
   */
  apply(buffer: Buffer): void {
    if (this.failure !== null) return;
    try {
      const db = this.db;
      db.requireFrozen('push records');
      const { starts, sizes } = recordOffsets(buffer, null);
      storePushedRecords(this.context(), db, buffer, starts, sizes);
      this.records += starts.length;
    } catch (err) {
      this.failure = err as Error;
    }
  }
}
