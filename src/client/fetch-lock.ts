// The client side of a record migration, as smbd and the ctdb tool do it: lock the record's chain
// in the node's own database file; if this node is not the record's dmaster, unlock, ask the
// daemon to migrate the record here (REQ_CALL, IMMEDIATE_MIGRATION) and look again.
import { CallFlag, CallId } from '../protocol';
import type { LtdbHeader } from '../protocol';
import { parseLtdbRecord, storeLtdbRecord } from '../store';
import type { TdbFile } from '../store';
import type { CtdbClient } from './ctdb-client';

/** How long to wait before trying a chain another process holds again. */
const CHAIN_BUSY_RETRY_MS = 1;

export interface LockedRecord {
  readonly header: LtdbHeader;
  /** The value after the header (empty for a record that does not exist). */
  readonly data: Buffer;
}

/**
 * Locks the record once this node is its dmaster and calls `update` with it, synchronously under
 * the chain lock: a Buffer it returns is stored under the same header (as smbd does), undefined
 * leaves the record alone. The chain is taken without blocking, so the caller's event loop keeps
 * running; and because nothing is awaited while it is held, many fetchers in one process can
 * share one open file (an in-process chain lock would nest, not exclude).
 * Resolves with the record as `update` saw it and the number of migrations it took.
 */
export async function updateRecord(
  client: CtdbClient,
  file: TdbFile,
  dbId: number,
  key: Buffer,
  update: (record: LockedRecord) => Buffer | undefined,
): Promise<LockedRecord & { migrations: number }> {
  for (let migrations = 0; ; migrations++) {
    while (!file.chainLockNonblock(key)) await new Promise((resolve) => setTimeout(resolve, CHAIN_BUSY_RETRY_MS));
    try {
      const value = file.fetch(key);
      const record = value === undefined ? undefined : parseLtdbRecord(value);
      if (record !== undefined && record.header.dmaster === client.pnn) {
        const locked = { header: record.header, data: Buffer.from(record.data) };
        const data = update(locked);
        if (data !== undefined) storeLtdbRecord(file, key, record.header, data);
        return { ...locked, migrations };
      }
    } finally {
      file.chainUnlock(key);
    }
    await client.recordCall({ dbId, callId: CallId.NULL_FUNC, key, flags: CallFlag.IMMEDIATE_MIGRATION });
  }
}

/** The record, read under its lock once this node is its dmaster. */
export function fetchRecordHere(client: CtdbClient, file: TdbFile, dbId: number, key: Buffer): Promise<LockedRecord & { migrations: number }> {
  return updateRecord(client, file, dbId, key, () => undefined);
}
