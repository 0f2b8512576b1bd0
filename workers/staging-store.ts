// Where one database's pulled records wait between DB_PULL and DB_PUSH (ctdb_recovery_helper
// uses a scratch tdb, recdb), merged by key as they arrive from all nodes at once.
// - In memory while the recovery's memory budget allows: the pulled rec_buffers are kept as they
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
// From the defining modules: the index's re-exports are getters, a call per use in a record loop.
import { LtdbFlag } from '../src/protocol/constants';
import { LTDB_HEADER_SIZE } from '../src/protocol/types';
import { exactRecord, recordKey, recordOffsets, rewriteHeader, type HeaderRewrite, type RecordOffsets } from '../src/protocol/rec-buffer';

/**
 * Bytes of pulled records a recovery keeps in memory, over all its databases and threads. The
 * stage holds every node's copy, so 256 MiB is about 1.7 million records of 150 bytes across
 * the nodes: a 3-node cluster's 500,000-record locking.tdb plus the rest. That is a few percent
 * of a file server's memory for the seconds a recovery lasts; beyond it a database is merged
 * in LMDB at a few µs per record instead of 0.3-2 and the push is 4.17's full one.
 */
export const DEFAULT_MEMORY_BUDGET = 256 * 2 ** 20;
/** What the index costs per record besides its key: Map entry, winner, string header ... */
const INDEX_BYTES_PER_RECORD = 64;
/** ... and per node's copy of it: where it lies. */
const COPY_BYTES = 12;
/** The plan tracks nodes in a bit mask; larger clusters get 4.17's wipe-and-push-all. */
const MAX_PLANNED_NODES = 31;
/** The mask of a record every node needs. */
export const ALL_NODES = -1;

const RECORD_HEADER = 16;
/** Keys up to this long are compared in a loop; longer ones with one native compare. */
const SHORT_KEY = 32;
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
export type MergeRule = (incoming: Buffer, incomingOffset: number, incomingAt: number, staged: Buffer, stagedOffset: number, stagedAt: number) => boolean;

export function highestRsn(recoveryMaster: number): MergeRule {
  return (incoming, i, incomingAt, staged, s, stagedAt) => {
    const a = i + headerAt(incoming, i);
    const b = s + headerAt(staged, s);
    // rsn is a u64: high words first, then low words, without BigInts.
    const high = incoming.readUInt32LE(a + 4) - staged.readUInt32LE(b + 4);
    if (high !== 0) return high > 0;
    const low = incoming.readUInt32LE(a) - staged.readUInt32LE(b);
    if (low !== 0) return low > 0;
    const incomingOther = incoming.readUInt32LE(a + 8) !== recoveryMaster;
    const stagedOther = staged.readUInt32LE(b + 8) !== recoveryMaster;
    if (incomingOther !== stagedOther) return incomingOther;
    return incomingOther ? incomingAt < stagedAt : incomingAt > stagedAt;
  };
}

/** Persistent databases: the copy of the node with the highest seqnum, whatever the others hold. */
export function fromNode(source: number): MergeRule {
  return (_incoming, _i, incomingAt) => incomingAt === source;
}

/** Offset of the ltdb header in the rec_data at `offset`. */
function headerAt(buffer: Buffer, offset: number): number {
  return RECORD_HEADER + buffer.readUInt32LE(offset + 8);
}

function isEmptyAt(buffer: Buffer, offset: number): boolean {
  return buffer.readUInt32LE(offset + 12) <= LTDB_HEADER_SIZE;
}

/**
 * An allowance for records held in memory, counted in KiB in shared memory so that every
 * thread of a pipeline draws on the same one.
 */
export class MemoryBudget {
  readonly #used: Int32Array;

  constructor(
    readonly limit: number,
    counter: SharedArrayBuffer = new SharedArrayBuffer(4),
  ) {
    this.#used = new Int32Array(counter, 0, 1);
  }

  /** Bytes reserved by everyone sharing the counter. */
  get used(): number {
    return Atomics.load(this.#used, 0) * 1024;
  }

  reserve(bytes: number): boolean {
    const kib = Math.ceil(bytes / 1024);
    if ((Atomics.add(this.#used, 0, kib) + kib) * 1024 <= this.limit) return true;
    Atomics.sub(this.#used, 0, kib);
    return false;
  }

  release(bytes: number): void {
    Atomics.sub(this.#used, 0, Math.ceil(bytes / 1024));
  }
}

/**
 * What the recovery leaves on every node: the winners that are not deleted, for persistent
 * databases only those the source node had, stored with `rewrite` (volatile databases: the
 * recovery master becomes dmaster).
 */
export interface Outcome {
  source: number | null;
  rewrite: HeaderRewrite | null;
}

/**
 * What a push must do so that every node ends up with exactly the surviving winners as DB_PUSH
 * stores them: `wipe[p]` when node p holds a record that must go (or its pull cannot be taken as
 * all it holds: it sent nothing, or a key twice); `deliveries` gives each survivor with the mask
 * of the nodes (bit = position) that do not already hold it in that form (a wiped node needs
 * them all), or ALL_NODES.
 */
export interface PushPlan {
  wipe: boolean[];
  /**
   * Yields, per survivor some node lacks, the mask of those nodes; `record` then locates it,
   * with the outcome's header rewrite done (in the staged bytes: once per plan).
   */
  deliveries(): Generator<number>;
  /** The current survivor's rec_data: `length` bytes at `offset` of `buffer` (reused between steps). */
  readonly record: RecordRef;
  /** How many records every node holds afterwards (known once deliveries() is done). */
  survivors(): number;
}

export interface RecordRef {
  buffer: Buffer;
  offset: number;
  length: number;
}

/**
 * Pulled rec_buffers kept whole; per key a slot with every node's copy and the winner. Keys are
 * found through an open-addressing table of FNV-1a hashes and compared where they lie in the
 * buffers: a Map would need a string per record and costs several times more.
 */
class MemoryStage {
  readonly #buffers: Buffer[] = [];
  /** Slot + 1 per entry (0: free); twice as many entries as slots at least. */
  #table = new Int32Array(2048);
  /** The key hash of each slot, for probing and for growing the table. */
  #hashes = new Int32Array(1024);
  /** Per node: buffer index + 1 (0: no copy), offset and length of its copy, by slot. */
  #in: Uint32Array[];
  #offset: Uint32Array[];
  #length: Uint32Array[];
  #winner = new Uint16Array(1024);
  #slots = 0;
  readonly #received: boolean[];
  readonly #repeated: boolean[];
  /** Per node: the node whose copies stand for its own (itself, or a source it mirrors). */
  readonly #copiesOf: number[];
  /** Buffers held back, per node, until settle() knows whether they mirror the source's. */
  readonly #held: { buffer: Buffer; records: RecordOffsets }[][];
  readonly #sourceBuffers: Buffer[] = [];

  constructor(
    private readonly merge: MergeRule,
    private readonly nodes: number,
    /** The node whose copy is taken whole (persistent databases), if any. */
    private readonly source: number | null,
  ) {
    this.#in = Array.from({ length: nodes }, () => new Uint32Array(1024));
    this.#offset = Array.from({ length: nodes }, () => new Uint32Array(1024));
    this.#length = Array.from({ length: nodes }, () => new Uint32Array(1024));
    this.#received = new Array<boolean>(nodes).fill(false);
    this.#repeated = new Array<boolean>(nodes).fill(false);
    this.#copiesOf = Array.from({ length: nodes }, (_, p) => p);
    this.#held = Array.from({ length: nodes }, () => []);
  }

  /**
   * Merges the records of one pulled buffer (already checked: `records` says where they lie).
   * With a source, other nodes' buffers wait for settle(): a database kept in step by
   * transactions pulls the same bytes from every node, and then they need no merging at all.
   */
  add(buffer: Buffer, records: RecordOffsets, position: number): void {
    if (this.source !== null) {
      if (position !== this.source) {
        this.#received[position] ||= records.starts.length > 0;
        this.#held[position].push({ buffer, records });
        return;
      }
      this.#sourceBuffers.push(buffer);
    }
    this.#index(buffer, records, position);
  }

  /**
   * Once every pull is in: a node whose buffers are byte for byte the source's holds exactly its
   * records (same keys, headers and values), so it is planned as the source is; the others are
   * merged now.
   */
  settle(): void {
    for (let p = 0; p < this.nodes; p++) {
      const held = this.#held[p];
      if (p === this.source || held.length === 0) continue;
      this.#held[p] = [];
      if (held.length === this.#sourceBuffers.length && held.every(({ buffer }, i) => buffer.equals(this.#sourceBuffers[i]))) this.#copiesOf[p] = this.source as number;
      else for (const { buffer, records } of held) this.#index(buffer, records, p);
    }
  }

  /** A node known (by its digest) to hold the source's very records, not pulled: planned as the source. */
  mirror(position: number): void {
    this.#copiesOf[position] = this.source as number;
    this.#received[position] = true;
  }

  #index(buffer: Buffer, records: RecordOffsets, position: number): void {
    const at = this.#buffers.push(buffer);
    const { starts, sizes } = records;
    this.#received[position] ||= starts.length > 0;
    for (let i = 0; i < starts.length; i++) {
      if (buffer.readUInt32LE(starts[i]) === sizes[i]) this.#merge(buffer, starts[i], position, at);
      else {
        // A record padded on the wire: trimmed into a copy of its own, kept as a buffer too.
        const trimmed = exactRecord(buffer, starts[i], sizes[i]);
        this.#merge(trimmed, 0, position, this.#buffers.push(trimmed));
      }
    }
  }

  #merge(buffer: Buffer, offset: number, position: number, at: number): void {
    const keyLength = buffer.readUInt32LE(offset + 8);
    const hash = keyHash(buffer, offset, keyLength);
    const mask = this.#table.length - 1;
    let entry = hash & mask;
    let slot = -1;
    for (; this.#table[entry] !== 0; entry = (entry + 1) & mask) {
      const candidate = this.#table[entry] - 1;
      if (this.#hashes[candidate] === hash && this.#sameKey(candidate, buffer, offset, keyLength)) {
        slot = candidate;
        break;
      }
    }
    if (slot < 0) {
      slot = this.#slots++;
      if (slot >= this.#winner.length) this.#grow();
      this.#hashes[slot] = hash;
      this.#winner[slot] = position;
      this.#table[entry] = slot + 1;
      if (this.#slots * 2 > this.#table.length) this.#rehash();
    } else if (this.#in[position][slot] !== 0) {
      // A node that sends a key twice is not taken at its word: it will be wiped.
      this.#repeated[position] = true;
      return;
    } else {
      const w = this.#winner[slot];
      if (this.merge(buffer, offset, position, this.#buffers[this.#in[w][slot] - 1], this.#offset[w][slot], w)) this.#winner[slot] = position;
    }
    this.#in[position][slot] = at;
    this.#offset[position][slot] = offset;
    this.#length[position][slot] = buffer.readUInt32LE(offset);
  }

  /** Whether the slot's key (in its winner's copy) is the one at `offset`. */
  #sameKey(slot: number, buffer: Buffer, offset: number, keyLength: number): boolean {
    const w = this.#winner[slot];
    const copy = this.#buffers[this.#in[w][slot] - 1];
    const at = this.#offset[w][slot];
    if (copy.readUInt32LE(at + 8) !== keyLength) return false;
    const key = offset + RECORD_HEADER;
    const staged = at + RECORD_HEADER;
    if (keyLength > SHORT_KEY) return copy.compare(buffer, key, key + keyLength, staged, staged + keyLength) === 0;
    for (let i = 0; i < keyLength; i++) if (copy[staged + i] !== buffer[key + i]) return false;
    return true;
  }

  #rehash(): void {
    const table = new Int32Array(this.#table.length * 2);
    const mask = table.length - 1;
    for (let slot = 0; slot < this.#slots; slot++) {
      let entry = this.#hashes[slot] & mask;
      while (table[entry] !== 0) entry = (entry + 1) & mask;
      table[entry] = slot + 1;
    }
    this.#table = table;
  }

  #grow(): void {
    const size = this.#winner.length * 2;
    const grown = <T extends Uint32Array | Uint16Array | Int32Array>(old: T, next: T): T => {
      next.set(old);
      return next;
    };
    this.#hashes = grown(this.#hashes, new Int32Array(size));
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

  plan(outcome: Outcome): PushPlan {
    const nodes = this.nodes;
    const wipe = this.#repeated.map((repeated, p) => repeated || !this.#received[p]);
    const kept = new Uint8Array(this.#slots);
    let survivors = 0;
    for (let slot = 0; slot < this.#slots; slot++) {
      const w = this.#winner[slot];
      if ((outcome.source === null || w === outcome.source) && !isEmptyAt(this.#buffers[this.#in[w][slot] - 1], this.#offset[w][slot])) {
        kept[slot] = 1;
        survivors++;
      } else for (let p = 0; p < nodes; p++) if (this.#in[p][slot] !== 0) wipe[p] = true;
    }
    // A mirror is wiped when its source is (a record that goes, a key sent twice).
    for (let p = 0; p < nodes; p++) wipe[p] ||= wipe[this.#copiesOf[p]];
    const wiped = wipe.reduce((mask, w, p) => (w ? mask | (1 << p) : mask), 0);
    const stage = this;
    const record: RecordRef = { buffer: Buffer.alloc(0), offset: 0, length: 0 };
    return {
      wipe,
      record,
      *deliveries() {
        for (let slot = 0; slot < stage.#slots; slot++) {
          if (kept[slot] === 0) continue;
          let mask = wiped;
          for (let p = 0; p < nodes; p++) if ((mask & (1 << p)) === 0 && !stage.#holds(slot, stage.#copiesOf[p], outcome.rewrite)) mask |= 1 << p;
          if (mask === 0) continue;
          const w = stage.#winner[slot];
          record.buffer = stage.#buffers[stage.#in[w][slot] - 1];
          record.offset = stage.#offset[w][slot];
          record.length = stage.#length[w][slot];
          // Once for all nodes, in the staged bytes: nothing reads this slot's winner again.
          if (outcome.rewrite !== null) rewriteHeader(record.buffer, record.offset, outcome.rewrite);
          yield mask;
        }
      },
      survivors: () => survivors,
    };
  }

  /** Whether node p's copy of the slot is byte for byte what DB_PUSH stores for its winner. */
  #holds(slot: number, p: number, rewrite: HeaderRewrite | null): boolean {
    const w = this.#winner[slot];
    const length = this.#length[w][slot];
    if (this.#in[p][slot] === 0 || this.#length[p][slot] !== length) return false;
    const winner = this.#buffers[this.#in[w][slot] - 1];
    const from = this.#offset[w][slot];
    const copy = this.#buffers[this.#in[p][slot] - 1];
    const at = this.#offset[p][slot];
    const header = headerAt(winner, from);
    const flags = winner.readUInt32LE(from + header + 16);
    const storedFlags = rewrite === null ? (flags & ~LtdbFlag.RO_FLAGS) >>> 0 : ((flags | LtdbFlag.MIGRATED_WITH_DATA) & ~LtdbFlag.RO_FLAGS) >>> 0;
    const storedDmaster = rewrite === null ? winner.readUInt32LE(from + header + 8) : rewrite.dmaster;
    if (copy.readUInt32LE(at + header + 16) !== storedFlags || copy.readUInt32LE(at + header + 8) !== storedDmaster) return false;
    // The winner's own copy: the same bytes apart from the fields just checked.
    if (p === w) return true;
    // A winner stored as it is: one comparison from the lengths to the end.
    if (storedFlags === flags && storedDmaster === winner.readUInt32LE(from + header + 8)) return copy.compare(winner, from + 8, from + length, at + 8, at + length) === 0;
    // Lengths, key and rsn; the reserved field; the value.
    return (
      copy.compare(winner, from + 8, from + header + 8, at + 8, at + header + 8) === 0 &&
      copy.readUInt32LE(at + header + 12) === winner.readUInt32LE(from + header + 12) &&
      copy.compare(winner, from + header + 20, from + length, at + header + 20, at + length) === 0
    );
  }
}

/** FNV-1a over the key of the rec_data at `offset`. */
function keyHash(buffer: Buffer, offset: number, keyLength: number): number {
  let hash = 0x811c9dc5;
  for (let i = offset + RECORD_HEADER, end = i + keyLength; i < end; i++) hash = Math.imul(hash ^ buffer[i], 0x01000193);
  return hash | 0;
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
        if (staged === undefined || this.merge(record, 0, position, staged, POSITION_BYTES, staged.readUInt16LE(0))) {
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
  /** The node whose copy is taken whole (persistent databases), if any. */
  source: number | null;
  budget: MemoryBudget;
}

/** Merges in memory until the budget runs out, then moves everything to LMDB. */
export class MergingStage {
  #memory: MemoryStage | null;
  #lmdb: LmdbStage | null = null;
  #reserved = 0;
  readonly #budget: MemoryBudget;

  constructor(private readonly options: StageOptions) {
    this.#memory = new MemoryStage(options.merge, options.nodes, options.source);
    this.#budget = options.budget;
  }

  get spilled(): boolean {
    return this.#lmdb !== null;
  }

  add(buffer: Buffer, position: number): number {
    const records = recordOffsets(buffer, this.options.dbId);
    const count = records.starts.length;
    if (this.#memory !== null) {
      // Whole KiB, as the budget counts them, so that releasing the sum is exact.
      const cost = Math.ceil((buffer.length + count * (INDEX_BYTES_PER_RECORD + COPY_BYTES * this.options.nodes)) / 1024) * 1024;
      if (this.#budget.reserve(cost)) {
        this.#reserved += cost;
        this.#memory.add(buffer, records, position);
        return count;
      }
      this.#spill();
    }
    const { starts, sizes } = records;
    (this.#lmdb as LmdbStage).addRecords(Array.from(starts, (start, i): [Buffer, number] => [exactRecord(buffer, start, sizes[i]), position]));
    return count;
  }

  /** See MemoryStage.mirror; from LMDB every node is wiped and given everything anyway. */
  mirror(position: number): void {
    if (this.options.source === null || position === this.options.source) throw new Error(`node position ${position} cannot mirror source ${this.options.source}`);
    this.#memory?.mirror(position);
  }

  /** Every pull is in. */
  settle(): void {
    this.#memory?.settle();
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
   * The push that gives every node the outcome's records. From memory it leaves out what a
   * node already holds; from LMDB (or for more nodes than a mask holds) every node is wiped
   * and gets everything, as in 4.17.
   */
  plan(outcome: Outcome): PushPlan {
    if (this.#memory !== null && this.options.nodes <= MAX_PLANNED_NODES) return this.#memory.plan(outcome);
    let survivors = 0;
    const stage = this;
    const record: RecordRef = { buffer: Buffer.alloc(0), offset: 0, length: 0 };
    return {
      wipe: new Array<boolean>(this.options.nodes).fill(true),
      record,
      *deliveries() {
        for (const [winner, position] of stage.entries()) {
          if ((outcome.source !== null && position !== outcome.source) || isEmptyAt(winner, 0)) continue;
          survivors++;
          // Each winner comes once, as LMDB's copy or the staged bytes: rewritten where it lies.
          if (outcome.rewrite !== null) rewriteHeader(winner, 0, outcome.rewrite);
          record.buffer = winner;
          record.length = winner.length;
          yield ALL_NODES;
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
