// The record streams of a recovery: DB_PULL sends a frozen database's records out as
// rec_buffer messages, DB_PUSH stores incoming rec_buffer messages into it.
import { LtdbFlag } from '../protocol';
import { RecBufferPacker, forEachRecord, recordKey } from '../../workers/rec-buffer';
import type { ClusterDatabase } from './database';

const REC_DATA_FIXED = 16;
const HEADER_FLAGS_AT = 16;

/** One rec_data (reqid 0) holding key and value as stored. */
function recData(key: Buffer, value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(REC_DATA_FIXED + key.length + value.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt32LE(0, 4);
  out.writeUInt32LE(key.length, 8);
  out.writeUInt32LE(value.length, 12);
  key.copy(out, REC_DATA_FIXED);
  value.copy(out, REC_DATA_FIXED + key.length);
  return out;
}

/**
 * Streams every record (tombstones included) in rec_buffers that are closed once they reach
 * `limit` bytes, as ctdbd's pull does. Returns the number of records sent.
 */
export function pullRecords(db: ClusterDatabase, limit: number, send: (buffer: Buffer) => void): number {
  db.requireFrozen('pull records');
  const packer = new RecBufferPacker(db.id, Math.max(0, limit - 1), null);
  db.file.traverseRead((key, value) => {
    const full = packer.add(recData(key, value));
    if (full !== null) send(full);
  });
  const last = packer.finish();
  if (last !== null) send(last);
  return packer.records;
}

/** A DB_PUSH in progress: counts what it stored; the first bad buffer fails it for good. */
export class PushSession {
  records = 0;
  failure: Error | null = null;

  constructor(
    readonly db: ClusterDatabase,
    readonly srvid: bigint,
  ) {}

  /** Stores one rec_buffer message. Read-only delegations never survive a recovery. */
  apply(buffer: Buffer): void {
    if (this.failure !== null) return;
    try {
      const db = this.db;
      db.requireFrozen('push records');
      this.records += forEachRecord(buffer, db.id, (record) => {
        const key = recordKey(record);
        const value = Buffer.from(record.subarray(REC_DATA_FIXED + key.length));
        const flags = value.readUInt32LE(HEADER_FLAGS_AT);
        value.writeUInt32LE((flags & ~LtdbFlag.RO_FLAGS) >>> 0, HEADER_FLAGS_AT);
        db.file.store(key, value);
      });
    } catch (err) {
      this.failure = err as Error;
    }
  }
}
