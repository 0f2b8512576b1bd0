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
  /** Migrations this fetch needed. */
  readonly migrations: number;
  /** Stores a new value under the same header (as smbd does) and unlocks. */
  storeAndUnlock(data: Buffer): void;
  unlock(): void;
}

/**
 * Resolves with the record locked and owned by this node. The chain is taken without blocking
 * (the caller's event loop keeps running); the lock is held from the resolution until
 * storeAndUnlock()/unlock(), which the caller must reach without awaiting anything in between
 * when other fetchers in this process use the same file (an in-process chain lock nests).
 */
export async function fetchLocked(client: CtdbClient, file: TdbFile, dbId: number, key: Buffer): Promise<LockedRecord> {
  for (let migrations = 0; ; migrations++) {
    while (!file.chainLockNonblock(key)) await new Promise((resolve) => setTimeout(resolve, CHAIN_BUSY_RETRY_MS));
    const value = file.fetch(key);
    const record = value === undefined ? undefined : parseLtdbRecord(value);
    if (record !== undefined && record.header.dmaster === client.pnn) {
      const header = record.header;
      return {
        header,
        data: Buffer.from(record.data),
        migrations,
        storeAndUnlock(data) {
          try {
            storeLtdbRecord(file, key, header, data);
          } finally {
            file.chainUnlock(key);
          }
        },
        unlock: () => file.chainUnlock(key),
      };
    }
    file.chainUnlock(key);
    await client.recordCall({ dbId, callId: CallId.NULL_FUNC, key, flags: CallFlag.IMMEDIATE_MIGRATION });
  }
}
