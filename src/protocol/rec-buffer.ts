// Raw ctdb_rec_buffer handling (recovery, DB_PULL/DB_PUSH): records are walked and re-assembled as byte
// ranges, never decoded into objects, so a 1 MB DB_PULL message costs one pass and the
// staged bytes go back out on DB_PUSH as they came in (only the header is patched).
//
// rec_buffer = u32 db_id, u32 count, then `count` rec_data:
//   u32 length, u32 reqid, u32 keylen, u32 datalen, key, data (24-byte ltdb header + value).
import { LtdbFlag } from './constants';
import { LTDB_HEADER_SIZE } from './types';

const BUFFER_HEADER = 8;
/** The fixed part of a rec_data, before its key: length, reqid, keylen, datalen. */
export const REC_DATA_FIXED = 16;

export class RecBufferError extends Error {}

/** Offset of the ltdb header inside a staged rec_data. */
function headerOffset(record: Buffer): number {
  return REC_DATA_FIXED + record.readUInt32LE(8);
}
export function recordRsn(record: Buffer): bigint {
  return record.readBigUInt64LE(headerOffset(record));
}
export function recordDmaster(record: Buffer): number {
  return record.readUInt32LE(headerOffset(record) + 8);
}
/** True when the record carries no value: a deleted record (tombstone) or a bare header. */
export function isEmptyRecord(record: Buffer): boolean {
  return record.readUInt32LE(12) <= LTDB_HEADER_SIZE;
}
export function recordKey(record: Buffer): Buffer {
  return record.subarray(REC_DATA_FIXED, REC_DATA_FIXED + record.readUInt32LE(8));
}

/** Where each record of a rec_buffer starts, and its exact size (a sender may pad records). */
export interface RecordOffsets {
  starts: Uint32Array;
  sizes: Uint32Array;
}

/**
 * Checks that the buffer belongs to dbId (any database when null) and is well formed, and says
 * where its records lie, without making an object per record. Every record must carry an ltdb
 * header, as DB_PULL always sends one.
 */
export function recordOffsets(buf: Buffer, dbId: number | null): RecordOffsets {
  if (buf.length < BUFFER_HEADER) throw new RecBufferError(`rec_buffer of ${buf.length} bytes is shorter than its header`);
  const bufferDb = buf.readUInt32LE(0);
  if (dbId !== null && bufferDb !== dbId) throw new RecBufferError(`rec_buffer for db 0x${bufferDb.toString(16)} where 0x${dbId.toString(16)} was expected`);
  const count = buf.readUInt32LE(4);
  // Checked before the offset arrays are sized by it.
  if (count > (buf.length - BUFFER_HEADER) / REC_DATA_FIXED) throw new RecBufferError(`rec_buffer of ${buf.length} bytes cannot hold ${count} records`);
  const starts = new Uint32Array(count);
  const sizes = new Uint32Array(count);
  let off = BUFFER_HEADER;
  for (let i = 0; i < count; i++) {
    if (off + REC_DATA_FIXED > buf.length) throw new RecBufferError(`rec_buffer ends inside record ${i} of ${count}`);
    const length = buf.readUInt32LE(off);
    const keylen = buf.readUInt32LE(off + 8);
    const datalen = buf.readUInt32LE(off + 12);
    const size = REC_DATA_FIXED + keylen + datalen;
    if (length < size || off + length > buf.length) throw new RecBufferError(`record ${i}: length ${length} does not hold key ${keylen} + data ${datalen}`);
    if (datalen < LTDB_HEADER_SIZE) throw new RecBufferError(`record ${i}: ${datalen} bytes of data cannot hold an ltdb header`);
    starts[i] = off;
    sizes[i] = size;
    off += length;
  }
  return { starts, sizes };
}

/**
 * Checks the buffer (recordOffsets), then hands each record (the exact rec_data bytes, a view
 * into buf) to visit. A malformed buffer throws before any record is visited.
 */
export function forEachRecord(buf: Buffer, dbId: number | null, visit: (record: Buffer) => void): number {
  const { starts, sizes } = recordOffsets(buf, dbId);
  for (let i = 0; i < starts.length; i++) visit(exactRecord(buf, starts[i], sizes[i]));
  return starts.length;
}

/** A sender may pad a record; the staged copy is trimmed so its length field is exact. */
export function exactRecord(buf: Buffer, start: number, size: number): Buffer {
  const record = buf.subarray(start, start + size);
  if (record.readUInt32LE(0) === size) return record;
  const trimmed = Buffer.from(record);
  trimmed.writeUInt32LE(size, 0);
  return trimmed;
}

/** What DB_PUSH does to each volatile record's header: the recovery master becomes dmaster. */
export interface HeaderRewrite {
  dmaster: number;
}

/**
 * Where a packer puts each rec_buffer: `headroom` bytes into a buffer of its own with
 * `tailroom` bytes to spare after it, which `frame` turns into what finish() returns (a
 * packet around the rec_buffer, in place).
 */
export interface PackerFraming {
  headroom: number;
  tailroom: number;
  frame(room: Buffer, length: number): Buffer;
}

const UNFRAMED: PackerFraming = { headroom: 0, tailroom: 0, frame: (room, length) => room.subarray(0, length) };

/**
 * Packs staged records into rec_buffers of at most about `limit` bytes (a buffer is closed
 * once it passes the limit, as ctdb_recovery_helper does, so one record may overshoot it).
 * Records go in as they are (a push plan has rewritten their headers already); those that
 * follow each other in their source are copied in one piece.
 */
export class RecBufferPacker {
  #out: Buffer | null = null;
  #size = BUFFER_HEADER;
  #count = 0;
  /** Records added but not copied yet: [runStart, runEnd) of runSource. */
  #runSource: Buffer | null = null;
  #runStart = 0;
  #runEnd = 0;
  /** Buffers handed back (recycle) for the next rec_buffers: fresh memory costs a page fault per page. */
  readonly #spare: Buffer[] = [];
  records = 0;
  bytes = 0;

  constructor(
    private readonly dbId: number,
    private readonly limit: number,
    private readonly framing: PackerFraming = UNFRAMED,
  ) {}

  /** Adds the rec_data at `offset` of `source`; returns a finished buffer when this one filled it. */
  add(source: Buffer, offset = 0, length = source.length - offset): Buffer | null {
    if (source !== this.#runSource || offset !== this.#runEnd) {
      this.#copyRun();
      this.#runSource = source;
      this.#runStart = offset;
    }
    this.#runEnd = offset + length;
    this.#count++;
    return this.#size + (this.#runEnd - this.#runStart) > this.limit ? this.finish() : null;
  }

  /** The pending buffer, or null when nothing is pending. */
  finish(): Buffer | null {
    this.#copyRun();
    if (this.#count === 0 || this.#out === null) return null;
    const { headroom } = this.framing;
    this.#out.writeUInt32LE(this.dbId, headroom);
    this.#out.writeUInt32LE(this.#count, headroom + 4);
    const out = this.framing.frame(this.#out, this.#size);
    this.records += this.#count;
    this.bytes += this.#size;
    this.#out = null;
    this.#size = BUFFER_HEADER;
    this.#count = 0;
    return out;
  }

  /** A buffer finish() returned, no longer needed by whoever took it: its memory is reused. */
  recycle(finished: Buffer): void {
    const whole = Buffer.from(finished.buffer, finished.byteOffset, finished.buffer.byteLength - finished.byteOffset);
    if (whole.length === this.#standardSize()) this.#spare.push(whole);
  }

  #copyRun(): void {
    const source = this.#runSource;
    if (source === null) return;
    const length = this.#runEnd - this.#runStart;
    const out = this.#room(length);
    const start = this.framing.headroom + this.#size;
    source.copy(out, start, this.#runStart, this.#runEnd);
    this.#size += length;
    this.#runSource = null;
  }

  /** Sized for a whole rec_buffer at once when the limit is sane. */
  #standardSize(): number {
    return this.framing.headroom + Math.min(this.limit, MAX_PREALLOCATED) + PACK_SLACK + this.framing.tailroom;
  }

  /** The buffer being filled, with room for `length` more bytes. */
  #room(length: number): Buffer {
    const { headroom, tailroom } = this.framing;
    const needed = headroom + this.#size + length + tailroom;
    if (this.#out !== null && needed <= this.#out.length) return this.#out;
    // Grown for an outsized run.
    const size = Math.max(needed, this.#standardSize());
    const grown = (size === this.#standardSize() ? this.#spare.pop() : undefined) ?? Buffer.allocUnsafe(size);
    this.#out?.copy(grown, 0, 0, headroom + this.#size);
    this.#out = grown;
    return grown;
  }
}

/** A rec_buffer's room is allocated up front up to this much, beyond that it grows. */
const MAX_PREALLOCATED = 16 * 2 ** 20;
const PACK_SLACK = 64 * 1024;

/** The rec_data at `recordAt` as DB_PUSH sends it. Read-only delegation flags are left alone: the receiving daemon strips them. */
export function rewriteHeader(buf: Buffer, recordAt: number, rewrite: HeaderRewrite): void {
  const header = recordAt + REC_DATA_FIXED + buf.readUInt32LE(recordAt + 8);
  buf.writeUInt32LE(rewrite.dmaster, header + 8);
  buf.writeUInt32LE((buf.readUInt32LE(header + 16) | LtdbFlag.MIGRATED_WITH_DATA) >>> 0, header + 16);
}
