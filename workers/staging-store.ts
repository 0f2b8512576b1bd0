// Where one database's pulled records wait between DB_PULL and DB_PUSH (ctdb_recovery_helper
// uses a scratch tdb, recdb). Both kinds live in files under the staging directory, so memory
// stays flat however large the database, and both hold the raw rec_data bytes as pulled, so
// nothing is re-encoded on the way out.
// - Volatile databases merge every node's copy by key: an LMDB environment. Memory-mapped and
//   file-backed, a synchronous write transaction per received rec_buffer makes the
//   read-compare-replace atomic, and it iterates in one snapshot for the push.
// - Persistent databases come whole from one node: no merge, so the buffers are appended to a
//   spool file and read back in order (several times faster than any keyed store).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { forEachRecord, recordDmaster, recordKey, recordRsn } from '../src/protocol/rec-buffer';

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

export interface RecordStage {
  /** Stages one pulled rec_buffer; returns how many records it held. Throws if it is malformed. */
  add(buffer: Buffer, dbId: number): number;
  /** Every staged record (raw rec_data). */
  records(): Iterable<Buffer>;
  /** Closes the stage and deletes its files. */
  destroy(): Promise<void>;
}

/** A fresh directory below stagingDir for one database's stage. */
function stageDir(stagingDir: string, label: string): string {
  fs.mkdirSync(stagingDir, { recursive: true });
  return fs.mkdtempSync(path.join(stagingDir, `recdb.${label.replace(/[^A-Za-z0-9_.-]/g, '_')}.`));
}

export class MergingStage implements RecordStage {
  readonly #dir: string;
  readonly #db: RootDatabase<Buffer, Buffer>;
  readonly #merge: MergeRule;
  #empty = true;

  private constructor(dir: string, db: RootDatabase<Buffer, Buffer>, merge: MergeRule) {
    this.#dir = dir;
    this.#db = db;
    this.#merge = merge;
  }

  static create(stagingDir: string, label: string, merge: MergeRule): MergingStage {
    const dir = stageDir(stagingDir, label);
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
      return new MergingStage(dir, db, merge);
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`cannot open staging store in ${dir}: ${(err as Error).message}`);
    }
  }

  /**
   * Until nextSource() the records come from one node, which has each key once: while the
   * stage was empty before that node, they are stored without looking anything up.
   */
  add(buffer: Buffer, dbId: number): number {
    const blind = this.#empty;
    return this.#db.transactionSync(() =>
      forEachRecord(buffer, dbId, (record) => {
        const key = stageKey(recordKey(record));
        // The fast variant reuses one buffer: fine, the merge only peeks at the header.
        const staged = blind ? undefined : this.#db.getBinaryFast(key);
        if (staged === undefined || this.#merge(record, staged)) this.#db.putSync(key, record);
      }),
    );
  }

  /** The following records come from another node. */
  nextSource(): void {
    this.#empty = false;
  }

  /** In one consistent snapshot. */
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

/** Length-prefixed pulled buffers appended to one file, read back in order. */
export class SpoolStage implements RecordStage {
  readonly #dir: string;
  readonly #file: string;
  readonly #fd: number;

  private constructor(dir: string) {
    this.#dir = dir;
    this.#file = path.join(dir, 'records.spool');
    this.#fd = fs.openSync(this.#file, 'w+');
  }

  static create(stagingDir: string, label: string): SpoolStage {
    return new SpoolStage(stageDir(stagingDir, label));
  }

  add(buffer: Buffer, dbId: number): number {
    const count = forEachRecord(buffer, dbId, () => undefined);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(buffer.length);
    fs.writevSync(this.#fd, [length, buffer]);
    return count;
  }

  *records(): Generator<Buffer> {
    const length = Buffer.alloc(4);
    for (let pos = 0; fs.readSync(this.#fd, length, 0, 4, pos) === 4; ) {
      const buffer = Buffer.allocUnsafe(length.readUInt32LE(0));
      if (fs.readSync(this.#fd, buffer, 0, buffer.length, pos + 4) !== buffer.length) throw new Error(`${this.#file} is truncated`);
      const records: Buffer[] = [];
      forEachRecord(buffer, buffer.readUInt32LE(0), (record) => records.push(record));
      yield* records;
      pos += 4 + buffer.length;
    }
  }

  async destroy(): Promise<void> {
    fs.closeSync(this.#fd);
    fs.rmSync(this.#dir, { recursive: true, force: true });
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
