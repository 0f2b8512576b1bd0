// One database's statistics, as `ctdb dbstatistics` shows them (GET_DB_STATISTICS):
// hop-count buckets of the calls this node served as dmaster, read-only delegations and
// revokes, vacuum latency, the ten hottest keys, and the lock scheduler's counters.
//
// Hot keys follow ctdbd 4.17: every migration of a record to this node counts for its key
// within a one-second window (the count restarts when the window has passed); a key enters
// the table when its count beats the smallest one there, and a key's entry only ever grows.
import type { DbStatistics, LatencyCounter, LockStatistics } from '../protocol';
import { emptyLockStatistics } from '../locks/lock-stats';
import { updateLatency } from '../daemon/statistics';

/** Slots of the wire struct's arrays (MAX_COUNT_BUCKETS, MAX_HOT_KEYS). */
export const HOP_COUNT_BUCKETS = 16;
export const HOT_KEY_SLOTS = 10;
/** How long migrations of one key add up before its count starts again. */
const MIGRATION_WINDOW_MS = 1000;
/** Keys not migrated for a window are forgotten this often, so the table stays small. */
const MIGRATION_EXPIRY_MS = 10_000;

/** Bucket of a hop count: 0 for 0, then one per power of two (1, 2-3, 4-7, ...), the last open-ended. */
export function hopCountBucket(hopcount: number): number {
  let bucket = 0;
  for (let n = hopcount >>> 0; n !== 0; n >>>= 1) bucket++;
  return Math.min(bucket, HOP_COUNT_BUCKETS - 1);
}

interface HotKey {
  readonly key: Buffer;
  count: number;
  /** The count last logged; the key is logged again once its count has doubled. */
  logged: number;
}

interface MigrationWindow {
  start: number;
  count: number;
}

export interface HotKeyLog {
  notice(message: string): void;
}

function emptyLatency(): LatencyCounter {
  return { num: 0, min: 0, max: 0, total: 0 };
}

export class DatabaseStatistics {
  roDelegations = 0;
  roRevokes = 0;
  readonly hopCounts = new Array<number>(HOP_COUNT_BUCKETS).fill(0);
  vacuumLatency = emptyLatency();
  /** Ascending by count (the first is the one a new key replaces), at most HOT_KEY_SLOTS. */
  readonly #hotKeys: HotKey[] = [];
  readonly #migrations = new Map<string, MigrationWindow>();
  #lastExpiry = 0;
  #locks: () => LockStatistics = emptyLockStatistics;

  constructor(readonly databaseName: string) {}

  /** Where the `locks` part comes from: the lock scheduler's counters for this database. */
  readLocksFrom(source: () => LockStatistics): void {
    this.#locks = source;
  }

  /** A call served here as dmaster after `hopcount` hops. */
  recordHop(hopcount: number): void {
    this.hopCounts[hopCountBucket(hopcount)]++;
  }

  recordVacuum(seconds: number): void {
    updateLatency(this.vacuumLatency, seconds);
  }

  /** A record of `key` migrated to this node (ctdbd counts it when it becomes dmaster). */
  recordMigration(key: Buffer, log: HotKeyLog, now = performance.now()): void {
    this.#expireMigrations(now);
    const id = key.toString('latin1');
    let window = this.#migrations.get(id);
    if (window === undefined || now - window.start >= MIGRATION_WINDOW_MS) {
      window = { start: now, count: 0 };
      this.#migrations.set(id, window);
    }
    window.count++;
    this.noteHotKey(key, window.count, log);
  }

  /** Offers `key` with its current migration count to the hot-key table. */
  noteHotKey(key: Buffer, count: number, log: HotKeyLog): void {
    const keys = this.#hotKeys;
    if (keys.length === HOT_KEY_SLOTS && count <= keys[0].count) return;
    const known = keys.find((k) => k.key.equals(key));
    if (known !== undefined) {
      if (count <= known.count) return;
      if (count >= 2 * known.logged) {
        log.notice(`Updated hot key database=${this.databaseName} key=${key.toString('hex')} count=${count}`);
        known.logged = count;
      }
      known.count = count;
    } else {
      const entry = { key: Buffer.from(key), count, logged: count };
      if (keys.length < HOT_KEY_SLOTS) keys.push(entry);
      else keys[0] = entry;
      log.notice(`Added hot key database=${this.databaseName} key=${key.toString('hex')} count=${count}`);
    }
    keys.sort((a, b) => a.count - b.count);
  }

  /** STATISTICS_RESET: everything this object counts (the lock scheduler keeps its own). */
  reset(): void {
    this.roDelegations = 0;
    this.roRevokes = 0;
    this.hopCounts.fill(0);
    this.vacuumLatency = emptyLatency();
    this.#hotKeys.length = 0;
    this.#migrations.clear();
  }

  /** The GET_DB_STATISTICS reply: every hot-key slot is sent, unused ones empty, as ctdbd does. */
  snapshot(): DbStatistics {
    const locks = this.#locks();
    const hotKeys = Array.from({ length: HOT_KEY_SLOTS }, (_, i) => {
      const k = this.#hotKeys[i];
      return { count: k?.count ?? 0, key: k?.key ?? Buffer.alloc(0), keyAddress: 0n };
    });
    return {
      locks: { ...locks, latency: { ...locks.latency }, buckets: [...locks.buckets] },
      vacuumLatency: { ...this.vacuumLatency },
      roDelegations: this.roDelegations,
      roRevokes: this.roRevokes,
      hopCountBucket: [...this.hopCounts],
      numHotKeys: HOT_KEY_SLOTS,
      hotKeys,
    };
  }

  #expireMigrations(now: number): void {
    if (now - this.#lastExpiry < MIGRATION_EXPIRY_MS) return;
    this.#lastExpiry = now;
    for (const [id, window] of this.#migrations) {
      if (now - window.start >= MIGRATION_WINDOW_MS) this.#migrations.delete(id);
    }
  }
}
