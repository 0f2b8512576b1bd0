// How the daemon reads and writes records of a clustered database: a missing record gets the
// initial header (owned by its lmaster), and every store follows ctdbd's rules for which empty
// records to keep, when the rsn moves on and which flags never reach the file.
import { LTDB_DMASTER_OFFSET, LTDB_FLAGS_OFFSET, LTDB_HEADER_SIZE, LtdbFlag } from '../protocol';
import type { LtdbHeader, VnnMap } from '../protocol';
import { buildLtdbRecord, parseLtdbRecord } from '../store';
import type { ClusterDatabase } from './database';
import { lmasterOf } from './lmaster';

export interface LocalRecord {
  header: LtdbHeader;
  data: Buffer;
}

/** Where a record emptied by the daemon while it is dmaster goes to be vacuumed. */
export interface DeletionQueue {
  schedule(db: ClusterDatabase, key: Buffer, header: LtdbHeader): void;
  remove(db: ClusterDatabase, key: Buffer): void;
}

export interface RecordContext {
  readonly pnn: number;
  readonly vnnMap: VnnMap;
  readonly deletions?: DeletionQueue;
}

/**
 * The record as this node has it. A record that is not there gets the header of a record nobody
 * has touched yet (rsn 0, dmaster = its lmaster), stored at once when this node is that lmaster or
 * the database is persistent, so that the lmaster always has a copy to redirect from.
 */
export function fetchRecord(ctx: RecordContext, db: ClusterDatabase, key: Buffer): LocalRecord {
  const value = db.file.fetch(key);
  if (value !== undefined) {
    const { header, data } = parseLtdbRecord(value);
    return { header, data: Buffer.from(data) };
  }
  const dmaster = lmasterOf(ctx.vnnMap, key) ?? ctx.pnn;
  const record = { header: { rsn: 0n, dmaster, reserved1: 0, flags: LtdbFlag.AUTOMATIC }, data: Buffer.alloc(0) };
  // Stored through the same header object: the caller sees the rsn and flags that were stored.
  if (db.persistent || dmaster === ctx.pnn) storeRecord(ctx, db, key, record.header, record.data);
  return record;
}

/**
 * Stores a record the way ctdbd's server-side store does (volatile databases). `header` is updated in place (a volatile
 * record this node is dmaster of gets the next rsn), so callers that go on to send it send the
 * stored rsn. An empty record is deleted instead when nothing requires keeping it: it was never
 * migrated with data, this node is neither its lmaster nor its dmaster.
 */
export function storeRecord(ctx: RecordContext, db: ClusterDatabase, key: Buffer, header: LtdbHeader, data: Buffer): void {
  // Only volatile databases have these rules; other records are stored exactly as given.
  if (!db.volatile) {
    db.file.store(key, buildLtdbRecord(header, data));
    return;
  }
  const lmaster = lmasterOf(ctx.vnnMap, key);
  let keep = lmaster === undefined || data.length > 0;
  let scheduleDeletion = false;
  if (!keep) {
    const flags = header.flags;
    if ((flags & LtdbFlag.RO_FLAGS) !== 0 || (flags & LtdbFlag.MIGRATED_WITH_DATA) !== 0) keep = true;
    else if ((flags & LtdbFlag.AUTOMATIC) !== 0) {
      keep = true;
      scheduleDeletion = true;
    } else if (ctx.pnn === lmaster) {
      // An empty record the lmaster got back through vacuuming and that never had data goes.
      keep = (flags & LtdbFlag.VACUUM_MIGRATED) === 0 || header.dmaster !== ctx.pnn;
    } else keep = header.dmaster === ctx.pnn;
  }
  if (keep && lmaster !== undefined && db.volatile && header.dmaster === ctx.pnn && (header.flags & LtdbFlag.RO_FLAGS) === 0) {
    header.rsn++;
    if (data.length === 0) scheduleDeletion = true;
  }
  header.flags &= ~(LtdbFlag.VACUUM_MIGRATED | LtdbFlag.AUTOMATIC);
  if (keep) db.file.store(key, buildLtdbRecord(header, data));
  else {
    db.file.delete(key);
    return;
  }
  if (ctx.deletions === undefined || lmaster === undefined) return;
  if (scheduleDeletion) ctx.deletions.schedule(db, key, header);
  else ctx.deletions.remove(db, key);
}

/**
 * storeRecord for a whole stored value (header and data) the caller owns, as a recovery push
 * brings them: the header is rewritten in place. A record with data, where there is an lmaster,
 * is always kept and needs neither a parse nor a copy (the bulk of a push); the rest take the
 * general path.
 */
export function storePushedRecord(ctx: RecordContext, db: ClusterDatabase, key: Buffer, value: Buffer): void {
  if (!db.volatile || value.length <= LTDB_HEADER_SIZE || ctx.vnnMap.map.length === 0) {
    const { header, data } = parseLtdbRecord(value);
    storeRecord(ctx, db, key, header, data);
    return;
  }
  const flags = value.readUInt32LE(LTDB_FLAGS_OFFSET);
  if (value.readUInt32LE(LTDB_DMASTER_OFFSET) === ctx.pnn && (flags & LtdbFlag.RO_FLAGS) === 0) nextRsn(value);
  value.writeUInt32LE((flags & ~(LtdbFlag.VACUUM_MIGRATED | LtdbFlag.AUTOMATIC)) >>> 0, LTDB_FLAGS_OFFSET);
  db.file.store(key, value);
  ctx.deletions?.remove(db, key);
}

/** rsn + 1 in place (a u64 at the start of the header), without a BigInt. */
function nextRsn(value: Buffer): void {
  const low = value.readUInt32LE(0);
  if (low !== 0xffffffff) {
    value.writeUInt32LE(low + 1, 0);
    return;
  }
  value.writeUInt32LE(0, 0);
  value.writeUInt32LE((value.readUInt32LE(4) + 1) >>> 0, 4);
}
