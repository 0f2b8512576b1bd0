// CTDB keeps a 24-byte struct ctdb_ltdb_header (rsn, dmaster, reserved1, flags, padding) in
// front of every value in its databases. These helpers split and build such values.
import { encode } from '../protocol/codec';
import { LTDB_HEADER_SIZE, ltdbHeaderCodec, type LtdbHeader } from '../protocol/types';
import type { TdbFile, TdbKey } from './tdb-file';

export { LTDB_HEADER_SIZE, type LtdbHeader };

export interface LtdbRecord {
  header: LtdbHeader;
  /** The value after the header (a view into the input buffer). */
  data: Buffer;
}

/** Splits a stored value into header and data; throws if it is shorter than the header. */
export function parseLtdbRecord(value: Buffer): LtdbRecord {
  if (value.length < LTDB_HEADER_SIZE) {
    throw new RangeError(`value of ${value.length} bytes is too short for the ${LTDB_HEADER_SIZE}-byte ctdb record header`);
  }
  const { value: header } = ltdbHeaderCodec.pull(value, 0, LTDB_HEADER_SIZE);
  return { header, data: value.subarray(LTDB_HEADER_SIZE) };
}

/** Header followed by data, ready to store. */
export function buildLtdbRecord(header: LtdbHeader, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([encode(ltdbHeaderCodec, header), data]);
}

/** True when a value is a bare header: CTDB's way of marking a deleted record. */
export function isEmptyLtdbRecord(value: Buffer): boolean {
  return value.length === LTDB_HEADER_SIZE;
}

/** The record under `key` split into ctdb header and data, or undefined if absent. */
export function fetchLtdbRecord(db: TdbFile, key: TdbKey): LtdbRecord | undefined {
  const value = db.fetch(key);
  return value === undefined ? undefined : parseLtdbRecord(value);
}

/** Stores `data` under `key` behind the ctdb header. */
export function storeLtdbRecord(db: TdbFile, key: TdbKey, header: LtdbHeader, data?: Buffer): void {
  db.store(key, buildLtdbRecord(header, data));
}
