// How the daemon reads and writes records of a clustered database: a missing record gets the
// initial header (owned by its lmaster), and every store follows ctdbd's rules for which empty
// records to keep, when the rsn moves on and which flags never reach the file.
import type { LtdbHeader, VnnMap } from '../protocol';
// From the defining modules: the index's re-exports are getters, a call per use in a record loop.
import { LtdbFlag } from '../protocol/constants';
import { LTDB_DMASTER_OFFSET, LTDB_FLAGS_OFFSET, LTDB_HEADER_SIZE } from '../protocol/types';
import { REC_DATA_FIXED } from '../protocol/rec-buffer';
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
  /** Whether anything of `db` waits: a push then need not name each key it stores. */
  queued(db: ClusterDatabase): boolean;
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
 * Stores the records of one rec_buffer a recovery push brought (`starts` and `sizes` locate
 * them) by storeRecord's rules, rewriting their headers in place in `buffer`. Read-only
 * delegations never survive a recovery. A volatile record with data, where there is an
 * lmaster, is always kept: those (the bulk of a push) and all persistent records, which are
 * stored as they come, need neither a parse nor a copy and go to the file in one call; the
 * rest take storeRecord.
 */
export function storePushedRecords(ctx: RecordContext, db: ClusterDatabase, buffer: Buffer, starts: Uint32Array, sizes: Uint32Array): void {
  const spans = new Uint32Array(starts.length * 4);
  let batched = 0;
  const flush = (): void => {
    if (batched > 0) db.file.storeMany(buffer, spans.subarray(0, batched * 4));
    batched = 0;
  };
  const volatile = db.volatile;
  const generalRules = volatile && ctx.vnnMap.map.length === 0;
  for (let i = 0; i < starts.length; i++) {
    const keyAt = starts[i] + REC_DATA_FIXED;
    const valueAt = keyAt + buffer.readUInt32LE(starts[i] + 8);
    const valueLength = starts[i] + sizes[i] - valueAt;
    const flagsAt = valueAt + LTDB_FLAGS_OFFSET;
    const received = buffer.readUInt32LE(flagsAt);
    let flags = (received & ~LtdbFlag.RO_FLAGS) >>> 0;
    if (volatile) {
      if (generalRules || valueLength <= LTDB_HEADER_SIZE) {
        buffer.writeUInt32LE(flags, flagsAt);
        flush();
        const { header, data } = parseLtdbRecord(buffer.subarray(valueAt, valueAt + valueLength));
        storeRecord(ctx, db, buffer.subarray(keyAt, valueAt), header, data);
        continue;
      }
      if (buffer.readUInt32LE(valueAt + LTDB_DMASTER_OFFSET) === ctx.pnn) nextRsn(buffer, valueAt);
      flags = (flags & ~(LtdbFlag.VACUUM_MIGRATED | LtdbFlag.AUTOMATIC)) >>> 0;
      // Asked per record: a record taking storeRecord's path may have queued something.
      if (ctx.deletions?.queued(db)) ctx.deletions.remove(db, buffer.subarray(keyAt, valueAt));
    }
    // Mostly as received: a write costs its argument checks.
    if (flags !== received) buffer.writeUInt32LE(flags, flagsAt);
    const at = batched++ * 4;
    spans[at] = keyAt;
    spans[at + 1] = valueAt - keyAt;
    spans[at + 2] = valueAt;
    spans[at + 3] = valueLength;
  }
  flush();
}

/** rsn + 1 in place (a u64 at the start of the header at `at`), without a BigInt. */
function nextRsn(buffer: Buffer, at: number): void {
  const low = buffer.readUInt32LE(at);
  if (low !== 0xffffffff) {
    buffer.writeUInt32LE(low + 1, at);
    return;
  }
  buffer.writeUInt32LE(0, at);
  buffer.writeUInt32LE((buffer.readUInt32LE(at + 4) + 1) >>> 0, at + 4);
}
