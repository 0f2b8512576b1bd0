// Where one database's pulled records wait between DB_PULL and DB_PUSH (ctdb_recovery_helper
// uses a scratch tdb, recdb), merged by key as they arrive from all nodes at once.
// - In memory while the worker thread's budget allows: the pulled rec_buffers are kept as they
//   came (no copy, no per-record object) and a Map from each key to its winning copy's place.
//   At the default budget (see DEFAULT_MEMORY_BUDGET) that covers the volatile databases of a
//   busy Samba cluster; merging costs one Map lookup per record.
// - Beyond the budget the database moves to an LMDB environment in the staging directory:
//   memory-mapped and file-backed, so the worker's heap stays flat however large the database.
// Both hand out the winners' raw rec_data bytes, so nothing is re-encoded on the way out.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { forEachRecord, recordDmaster, recordKey } from '../src/protocol/rec-buffer';

/**
 * Bytes of pulled records one worker thread keeps in memory, over all the databases it recovers
 * at once. 64 MiB is about 400,000 records of 150 bytes (locking.tdb of a few thousand open
 * files is far below that) and, times the default 4 threads, stays a small share of a file
 * server's memory; what does not fit goes to LMDB at a few µs per record instead of 0.3.
 */
export const DEFAULT_MEMORY_BUDGET = 64 * 2 ** 20;
/** What the index costs per record besides its key: Map entry, slot arrays, string header. */
const INDEX_BYTES_PER_RECORD = 64;

const RECORD_HEADER = 16;
/** Large pages make the (tiny-keyed, mostly small) inserts cheaper and raise LMDB's key limit. */
const PAGE_SIZE = 16384;
const MAX_KEY_BYTES = 4026;
const HASHED_KEY_MARK = 0xff;
/** LMDB values start with the copy's position in the pull order (u16). */
const POSITION_BYTES = 2;

/**
 * Whether an incoming copy of a key beats the staged one. Each copy comes with its node's
 * position in the recovery's node list.
 *
 * 4.17 (recdb_add) pulls node after node in list order and replaces the staged copy when the
 * incoming one has a higher rsn, or the same rsn while the staged one names the recovery master
 * as dmaster (a leftover of an earlier recovery, while the other may be the real dmaster's).
 * Folded in list order that keeps, of the copies with the highest rsn, the first one naming
 * another dmaster, or the last one when all name the recovery master. Ranking copies by rsn,
 * then "names another dmaster", then position (lower first among those, higher among the rest)
 * picks that same copy in any arrival order, so all nodes are pulled at once.
 */
export type MergeRule = (incoming: Buffer, incomingAt: number, staged: Buffer, stagedAt: number) => boolean;

export function highestRsn(recoveryMaster: number): MergeRule {
  return (incoming, incomingAt, staged, stagedAt) => {
    const a = headerAt(incoming);
    const b = headerAt(staged);
    // rsn is a u64: high words first, then low words, without BigInts.
    const high = incoming.readUInt32LE(a + 4) - staged.readUInt32LE(b + 4);
    if (high !== 0) return high > 0;
    const low = incoming.readUInt32LE(a) - staged.readUInt32LE(b);
    if (low !== 0) return low > 0;
    const incomingOther = recordDmaster(incoming) !== recoveryMaster;
    const stagedOther = recordDmaster(staged) !== recoveryMaster;
    if (incomingOther !== stagedOther) return incomingOther;
    return incomingOther ? incomingAt < stagedAt : incomingAt > stagedAt;
  };
}

function headerAt(record: Buffer): number {
  return RECORD_HEADER + record.readUInt32LE(8);
}

/** A worker thread's allowance for records held in memory, shared by its databases. */
export class MemoryBudget {
  used = 0;

  constructor(public limit: number) {}

  reserve(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
  }
}

/** The budget of this thread (a worker module is loaded once per thread). */
export const threadBudget = new MemoryBudget(DEFAULT_MEMORY_BUDGET);

export interface RecordStage {
  /** Merges one pulled rec_buffer from the node at `position`; returns its record count. Throws if it is malformed. */
  add(buffer: Buffer, position: number): number;
  /** Every winning record (raw rec_data), with the position of the node it came from. */
  entries(): Iterable<[record: Buffer, position: number]>;
  /** Whether the records now live in files (the budget was exceeded). */
  readonly spilled: boolean;
  /** Releases memory and deletes files. */
  destroy(): Promise<void>;
}

/** Pulled rec_buffers kept whole, indexed by key. */
class MemoryStage {
  readonly #buffers: Buffer[] = [];
  readonly #index = new Map<string, number>();
  #buffer = new Uint32Array(1024);
  #offset = new Uint32Array(1024);
  #length = new Uint32Array(1024);
  #position = new Uint16Array(1024);
  #slots = 0;

  constructor(private readonly merge: MergeRule) {}

  /** Merges the records (views into `buffer`, already checked) of one pulled buffer. */
  add(buffer: Buffer, records: readonly Buffer[], position: number): void {
    const at = this.#buffers.push(buffer) - 1;
    for (const record of records) {
      // A record trimmed of its padding is a copy of its own: it is kept as a buffer too.
      const inside = record.buffer === buffer.buffer && record.byteOffset >= buffer.byteOffset && record.byteOffset < buffer.byteOffset + buffer.length;
      this.#merge(record, position, inside ? at : this.#buffers.push(record) - 1);
    }
  }

  #merge(record: Buffer, position: number, at: number): void {
    const key = record.toString('latin1', RECORD_HEADER, RECORD_HEADER + record.readUInt32LE(8));
    const slot = this.#index.get(key);
    if (slot === undefined) {
      this.#index.set(key, this.#store(this.#slots++, record, position, at));
    } else if (this.merge(record, position, this.#record(slot), this.#position[slot])) {
      this.#store(slot, record, position, at);
    }
  }

  #store(slot: number, record: Buffer, position: number, at: number): number {
    if (slot >= this.#buffer.length) this.#grow();
    this.#buffer[slot] = at;
    this.#offset[slot] = record.byteOffset - this.#buffers[at].byteOffset;
    this.#length[slot] = record.length;
    this.#position[slot] = position;
    return slot;
  }

  #grow(): void {
    const size = this.#buffer.length * 2;
    const grown = <T extends Uint32Array | Uint16Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old);
      return next;
    };
    this.#buffer = grown(this.#buffer, (n) => new Uint32Array(n));
    this.#offset = grown(this.#offset, (n) => new Uint32Array(n));
    this.#length = grown(this.#length, (n) => new Uint32Array(n));
    this.#position = grown(this.#position, (n) => new Uint16Array(n));
  }

  #record(slot: number): Buffer {
    const start = this.#offset[slot];
    return this.#buffers[this.#buffer[slot]].subarray(start, start + this.#length[slot]);
  }

  *entries(): Generator<[Buffer, number]> {
    for (let slot = 0; slot < this.#slots; slot++) yield [this.#record(slot), this.#position[slot]];
  }
}

/** The same merge in an LMDB environment of its own under the staging directory. */
class LmdbStage {
  readonly #dir: string;
  readonly #db: RootDatabase<Buffer, Buffer>;

  constructor(
    stagingDir: string,
    label: string,
    private readonly merge: MergeRule,
  ) {
    fs.mkdirSync(stagingDir, { recursive: true });
    this.#dir = fs.mkdtempSync(path.join(stagingDir, `recdb.${label.replace(/[^A-Za-z0-9_.-]/g, '_')}.`));
    try {
      this.#db = open<Buffer, Buffer>({
        // A name with a dot makes LMDB use a single file (and its -lock file) in our directory.
        path: path.join(this.#dir, 'records.mdb'),
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
    } catch (err) {
      fs.rmSync(this.#dir, { recursive: true, force: true });
      throw new Error(`cannot open staging store in ${this.#dir}: ${(err as Error).message}`);
    }
  }

  /** Merges records already walked (and checked) elsewhere, in one write transaction. */
  addRecords(records: Iterable<[Buffer, number]>): void {
    this.#db.transactionSync(() => {
      for (const [record, position] of records) {
        const key = stageKey(recordKey(record));
        // The fast variant reuses one buffer: fine, the merge only peeks at the header.
        const staged = this.#db.getBinaryFast(key);
        if (staged === undefined || this.merge(record, position, staged.subarray(POSITION_BYTES), staged.readUInt16LE(0))) {
          const value = Buffer.allocUnsafe(POSITION_BYTES + record.length);
          value.writeUInt16LE(position, 0);
          record.copy(value, POSITION_BYTES);
          this.#db.putSync(key, value);
        }
      }
    });
  }

  /** In one consistent snapshot. */
  *entries(): Generator<[Buffer, number]> {
    for (const { value } of this.#db.getRange({ snapshot: true })) yield [value.subarray(POSITION_BYTES), value.readUInt16LE(0)];
  }

  async destroy(): Promise<void> {
    try {
      await this.#db.close();
    } finally {
      fs.rmSync(this.#dir, { recursive: true, force: true });
    }
  }
}

export interface StageOptions {
  dbId: number;
  /** Database name, for the staging file's name. */
  label: string;
  stagingDir: string;
  merge: MergeRule;
  budget?: MemoryBudget;
}

/** Merges in memory until the thread's budget runs out, then moves everything to LMDB. */
export class MergingStage implements RecordStage {
  #memory: MemoryStage | null;
  #lmdb: LmdbStage | null = null;
  #reserved = 0;
  readonly #budget: MemoryBudget;

  constructor(private readonly options: StageOptions) {
    this.#memory = new MemoryStage(options.merge);
    this.#budget = options.budget ?? threadBudget;
  }

  get spilled(): boolean {
    return this.#lmdb !== null;
  }

  add(buffer: Buffer, position: number): number {
    const records: Buffer[] = [];
    forEachRecord(buffer, this.options.dbId, (record) => records.push(record));
    if (this.#memory !== null) {
      const cost = buffer.length + records.length * INDEX_BYTES_PER_RECORD;
      if (this.#budget.reserve(cost)) {
        this.#reserved += cost;
        this.#memory.add(buffer, records, position);
        return records.length;
      }
      this.#spill();
    }
    (this.#lmdb as LmdbStage).addRecords(records.map((record) => [record, position]));
    return records.length;
  }

  #spill(): void {
    const lmdb = new LmdbStage(this.options.stagingDir, this.options.label, this.options.merge);
    lmdb.addRecords((this.#memory as MemoryStage).entries());
    this.#lmdb = lmdb;
    this.#memory = null;
    this.#release();
  }

  entries(): Iterable<[Buffer, number]> {
    return this.#memory?.entries() ?? (this.#lmdb as LmdbStage).entries();
  }

  #release(): void {
    this.#budget.release(this.#reserved);
    this.#reserved = 0;
  }

  async destroy(): Promise<void> {
    this.#memory = null;
    this.#release();
    await this.#lmdb?.destroy();
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
