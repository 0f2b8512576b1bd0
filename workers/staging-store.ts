// Where one database's pulled records meet before they are pushed back: ctdb_recovery_helper
// uses a scratch tdb (recdb); we use an LMDB environment in the staging directory. Why LMDB:
// memory-mapped and file-backed, so a database larger than RAM only costs page cache; a
// synchronous write transaction per received rec_buffer makes the read-compare-replace of
// the merge atomic and cheap; and it iterates in one snapshot for the push. Values are the
// raw rec_data bytes as pulled, so nothing is re-encoded on the way out.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { forEachRecord, recordDmaster, recordKey, recordRsn } from './rec-buffer';

/** Large pages make the (tiny-keyed, mostly small) inserts cheaper and raise LMDB's key limit. */
const PAGE_SIZE = 16384;
const MAX_KEY_BYTES = 4026;
const HASHED_KEY_MARK = 0xff;

/** Decides whether an incoming record replaces the staged one. */
export type MergeRule = (incoming: Buffer, staged: Buffer) => boolean;

/**
 * Volatile databases (recdb_add in 4.17): the higher RSN wins; on a tie the incoming copy wins
 * only when the staged one names the recovery master as dmaster (that copy is a leftover of
 * an earlier recovery, while the other node's copy may be the real dmaster's).
 */
export function highestRsn(recoveryMaster: number): MergeRule {
  return (incoming, staged) => {
    const a = recordRsn(incoming);
    const b = recordRsn(staged);
    return a > b || (a === b && recordDmaster(staged) === recoveryMaster);
  };
}

/** Persistent databases come from one node only: its records are taken as they are. */
export const takeAll: MergeRule = () => true;

export class StagingStore {
  readonly #dir: string;
  readonly #db: RootDatabase<Buffer, Buffer>;

  private constructor(dir: string, db: RootDatabase<Buffer, Buffer>) {
    this.#dir = dir;
    this.#db = db;
  }

  /** A fresh store in a new directory below stagingDir. */
  static create(stagingDir: string, label: string): StagingStore {
    fs.mkdirSync(stagingDir, { recursive: true });
    const dir = fs.mkdtempSync(path.join(stagingDir, `recdb.${label.replace(/[^A-Za-z0-9_.-]/g, '_')}.`));
    try {
      const db = open<Buffer, Buffer>({
        // A name with a dot makes LMDB use a single file (and its -lock file) in our directory.
        path: path.join(dir, 'records.mdb'),
        encoding: 'binary',
        keyEncoding: 'binary',
        // Scratch data: losing it in a crash only means the next recovery pulls again.
        noSync: true,
        pageSize: PAGE_SIZE,
        noMetaSync: true,
        useWritemap: true,
        compression: false,
        cache: false,
      });
      return new StagingStore(dir, db);
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`cannot open staging store in ${dir}: ${(err as Error).message}`);
    }
  }

  /** Merges one pulled rec_buffer; returns how many records it held. Throws if it is malformed. */
  add(buffer: Buffer, dbId: number, merge: MergeRule): number {
    return this.#db.transactionSync(() =>
      forEachRecord(buffer, dbId, (record) => {
        const key = stageKey(recordKey(record));
        // The fast variant reuses one buffer: fine, merge() only peeks at the header.
        const staged = this.#db.getBinaryFast(key);
        if (staged === undefined || merge(record, staged)) this.#db.putSync(key, record);
      }),
    );
  }

  /** Every staged record (raw rec_data), in one consistent snapshot. */
  *records(): Generator<Buffer> {
    for (const { value } of this.#db.getRange({ snapshot: true })) yield value;
  }

  /** Closes the store and deletes its files. */
  async destroy(): Promise<void> {
    try {
      await this.#db.close();
    } finally {
      fs.rmSync(this.#dir, { recursive: true, force: true });
    }
  }
}

/**
 * tdb keys have no size limit and may be empty; LMDB keys must be 1..4026 bytes. Those that do
 * not fit are replaced by a mark byte and their SHA-256 (the record keeps the real key);
 * a real key equal to that would need a SHA-256 preimage.
 */
function stageKey(key: Buffer): Buffer {
  if (key.length > 0 && key.length <= MAX_KEY_BYTES) return key;
  return Buffer.concat([Buffer.of(HASHED_KEY_MARK), crypto.createHash('sha256').update(key).digest()]);
}
