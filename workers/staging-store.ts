// Where one database's pulled records wait between DB_PULL and DB_PUSH (ctdb_recovery_helper
// uses a scratch tdb, recdb), merged by key as they arrive from all nodes at once.
// - In memory while the worker thread's budget allows: the pulled rec_buffers are kept as they
//   came (no copy, no per-record object), with a Map from each key to a slot that knows where
//   every node's copy lies and whose copy wins. Knowing each node's copy, the push can leave
//   out what a node already holds exactly as the push would store it (see plan()).
// - Beyond the budget the database moves to an LMDB environment in the staging directory:
//   memory-mapped and file-backed, so the worker's heap stays flat however large the database.
//   Only winners are kept there, and every node is wiped and given all of them, as in 4.17.
// Both hand out the winners' raw rec_data bytes, so nothing is re-encoded on the way out.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { LtdbFlag } from '../src/protocol';
import { forEachRecord, recordDmaster, recordKey, type HeaderRewrite } from '../src/protocol/rec-buffer';

/**
 * Bytes of pulled records one worker thread keeps in memory, over all the databases it recovers
 * at once. 64 MiB is about 400,000 records of 150 bytes (locking.tdb of a few thousand open
 * files is far below that) and, times the default 4 threads, stays a small share of a file
 * server's memory; what does not fit goes to LMDB at a few µs per record instead of 0.3.
 */
export const DEFAULT_MEMORY_BUDGET = 64 * 2 ** 20;
/** What the index costs per record besides its key: Map entry, winner, string header ... */
const INDEX_BYTES_PER_RECORD = 64;
/** ... and per node's copy of it: where it lies. */
const COPY_BYTES = 12;
/** The plan tracks nodes in a bit mask; larger clusters get 4.17's wipe-and-push-all. */
const MAX_PLANNED_NODES = 31;
/** The mask of a record every node needs. */
export const ALL_NODES = -1;

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

/** Persistent databases: the copy of the node with the highest seqnum, whatever the others hold. */
export function fromNode(source: number): MergeRule {
  return (_incoming, incomingAt) => incomingAt === source;
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

/** Which winners survive the recovery: not deleted ones, and for persistent ones only the source's. */
export type Keep = (record: Buffer, position: number) => boolean;

/**
 * What a push must do so that every node ends up with exactly the surviving winners as DB_PUSH
 * stores them: `wipe[p]` when node p holds a record that must go (or its pull cannot be taken as
 * all it holds: it sent nothing, or a key twice); `deliver` visits each survivor with the mask of
 * the nodes (bit = position) that do not already hold it in that form (a wiped node needs them
 * all), or ALL_NODES.
 */
export interface PushPlan {
  wipe: boolean[];
  deliveries(): Generator<[record: Buffer, nodes: number]>;
  /** How many records every node holds afterwards (known once deliveries() is done). */
  survivors(): number;
}

/** Pulled rec_buffers kept whole; per key a slot with every node's copy and the winner. */
class MemoryStage {
  readonly #buffers: Buffer[] = [];
  readonly #index = new Map<string, number>();
  /** Per node: buffer index + 1 (0: no copy), offset and length of its copy, by slot. */
  #in: Uint32Array[];
  #offset: Uint32Array[];
  #length: Uint32Array[];
  #winner = new Uint16Array(1024);
  #slots = 0;
  readonly #received: boolean[];
  readonly #repeated: boolean[];

  constructor(
    private readonly merge: MergeRule,
    private readonly nodes: number,
  ) {
    this.#in = Array.from({ length: nodes }, () => new Uint32Array(1024));
    this.#offset = Array.from({ length: nodes }, () => new Uint32Array(1024));
    this.#length = Array.from({ length: nodes }, () => new Uint32Array(1024));
    this.#received = new Array<boolean>(nodes).fill(false);
    this.#repeated = new Array<boolean>(nodes).fill(false);
  }

  /** Merges the records (views into `buffer`, already checked) of one pulled buffer. */
  add(buffer: Buffer, records: readonly Buffer[], position: number): void {
    const at = this.#buffers.push(buffer);
    this.#received[position] ||= records.length > 0;
    for (const record of records) {
      // A record trimmed of its padding is a copy of its own: it is kept as a buffer too.
      const inside = record.buffer === buffer.buffer && record.byteOffset >= buffer.byteOffset && record.byteOffset < buffer.byteOffset + buffer.length;
      this.#merge(record, position, inside ? at : this.#buffers.push(record));
    }
  }

  #merge(record: Buffer, position: number, at: number): void {
    const key = record.toString('latin1', RECORD_HEADER, RECORD_HEADER + record.readUInt32LE(8));
    let slot = this.#index.get(key);
    if (slot === undefined) {
      slot = this.#slots++;
      if (slot >= this.#winner.length) this.#grow();
      this.#index.set(key, slot);
      this.#winner[slot] = position;
    } else if (this.#in[position][slot] !== 0) {
      // A node that sends a key twice is not taken at its word: it will be wiped.
      this.#repeated[position] = true;
      return;
    } else if (this.merge(record, position, this.#record(slot, this.#winner[slot]), this.#winner[slot])) {
      this.#winner[slot] = position;
    }
    this.#in[position][slot] = at;
    this.#offset[position][slot] = record.byteOffset - this.#buffers[at - 1].byteOffset;
    this.#length[position][slot] = record.length;
  }

  #grow(): void {
    const size = this.#winner.length * 2;
    const grown = <T extends Uint32Array | Uint16Array>(old: T, next: T): T => {
      next.set(old);
      return next;
    };
    this.#winner = grown(this.#winner, new Uint16Array(size));
    this.#in = this.#in.map((old) => grown(old, new Uint32Array(size)));
    this.#offset = this.#offset.map((old) => grown(old, new Uint32Array(size)));
    this.#length = this.#length.map((old) => grown(old, new Uint32Array(size)));
  }

  #record(slot: number, position: number): Buffer {
    const buffer = this.#buffers[this.#in[position][slot] - 1];
    const start = this.#offset[position][slot];
    return buffer.subarray(start, start + this.#length[position][slot]);
  }

  *entries(): Generator<[Buffer, number]> {
    for (let slot = 0; slot < this.#slots; slot++) yield [this.#record(slot, this.#winner[slot]), this.#winner[slot]];
  }

  plan(keep: Keep, rewrite: HeaderRewrite | null): PushPlan {
    const nodes = this.nodes;
    const wipe = this.#repeated.map((repeated, p) => repeated || !this.#received[p]);
    const kept = new Uint8Array(this.#slots);
    let survivors = 0;
    for (let slot = 0; slot < this.#slots; slot++) {
      const winner = this.#winner[slot];
      if (keep(this.#record(slot, winner), winner)) {
        kept[slot] = 1;
        survivors++;
      } else for (let p = 0; p < nodes; p++) if (this.#in[p][slot] !== 0) wipe[p] = true;
    }
    const wiped = wipe.reduce((mask, w, p) => (w ? mask | (1 << p) : mask), 0);
    const stage = this;
    return {
      wipe,
      *deliveries() {
        for (let slot = 0; slot < stage.#slots; slot++) {
          if (kept[slot] === 0) continue;
          const record = stage.#record(slot, stage.#winner[slot]);
          let mask = wiped;
          for (let p = 0; p < nodes; p++) if ((mask & (1 << p)) === 0 && !stage.#holds(slot, p, record, rewrite)) mask |= 1 << p;
          if (mask !== 0) yield [record, mask];
        }
      },
      survivors: () => survivors,
    };
  }

  /** Whether node p's copy is byte for byte what DB_PUSH would store for `record`. */
  #holds(slot: number, p: number, record: Buffer, rewrite: HeaderRewrite | null): boolean {
    if (this.#in[p][slot] === 0 || this.#length[p][slot] !== record.length) return false;
    const copy = this.#record(slot, p);
    const header = headerAt(record);
    if (rewrite === null && copy.readUInt32LE(header + 16) !== ((record.readUInt32LE(header + 16) & ~LtdbFlag.RO_FLAGS) >>> 0)) return false;
    if (rewrite !== null) {
      if (copy.readUInt32LE(header + 8) !== rewrite.dmaster) return false;
      const flags = ((record.readUInt32LE(header + 16) | LtdbFlag.MIGRATED_WITH_DATA) & ~LtdbFlag.RO_FLAGS) >>> 0;
      if (copy.readUInt32LE(header + 16) !== flags) return false;
    }
    // rsn and reserved field, then key and value (the rec_data head only holds the lengths).
    return (
      copy.compare(record, header, header + 8, header, header + 8) === 0 &&
      copy.compare(record, header + 12, header + 16, header + 12, header + 16) === 0 &&
      copy.compare(record, header + 20, record.length, header + 20, record.length) === 0 &&
      copy.compare(record, RECORD_HEADER, header, RECORD_HEADER, header) === 0
    );
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
  /** How many nodes are pulled (positions 0 .. nodes - 1). */
  nodes: number;
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
    this.#memory = new MemoryStage(options.merge, options.nodes);
    this.#budget = options.budget ?? threadBudget;
  }

  get spilled(): boolean {
    return this.#lmdb !== null;
  }

  add(buffer: Buffer, position: number): number {
    const records: Buffer[] = [];
    forEachRecord(buffer, this.options.dbId, (record) => records.push(record));
    if (this.#memory !== null) {
      const cost = buffer.length + records.length * (INDEX_BYTES_PER_RECORD + COPY_BYTES * this.options.nodes);
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

  /**
   * The push that gives every node the surviving winners, stored with `rewrite` (volatile
   * records: the recovery master becomes dmaster). From memory it leaves out what a node
   * already holds; from LMDB (or for more nodes than a mask holds) every node is wiped and
   * gets everything, as in 4.17.
   */
  plan(keep: Keep, rewrite: HeaderRewrite | null): PushPlan {
    if (this.#memory !== null && this.options.nodes <= MAX_PLANNED_NODES) return this.#memory.plan(keep, rewrite);
    let survivors = 0;
    const stage = this;
    return {
      wipe: new Array<boolean>(this.options.nodes).fill(true),
      *deliveries() {
        for (const [record, position] of stage.entries()) {
          if (!keep(record, position)) continue;
          survivors++;
          yield [record, ALL_NODES];
        }
      },
      survivors: () => survivors,
    };
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
