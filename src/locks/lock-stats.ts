// Lock wait statistics in the shape of `ctdb statistics` (struct ctdb_statistics.locks and the
// per-database ctdb_db_statistics.locks): counted for requests that had to wait, i.e. did not get
// the lock on the daemon's first non-blocking try, as ctdbd counts only its helper-based locks.
import type { LatencyCounter, LockStatistics } from '../protocol/types';

export const LOCK_LATENCY_BUCKETS = 16;

// Upper bounds (seconds) of ctdbd's lock latency buckets 0..9; longer waits land in bucket 10,
// and buckets 11..15 stay zero, as in CTDB 4.17.
const BUCKET_LIMITS = [0.001, 0.01, 0.1, 1, 2, 4, 8, 16, 32, 64];

export function lockLatencyBucket(seconds: number): number {
  const index = BUCKET_LIMITS.findIndex((limit) => seconds < limit);
  return index < 0 ? BUCKET_LIMITS.length : index;
}

export function emptyLockStatistics(): LockStatistics {
  return {
    numCalls: 0,
    numCurrent: 0,
    numPending: 0,
    numFailed: 0,
    latency: { num: 0, min: 0, max: 0, total: 0 },
    buckets: new Array<number>(LOCK_LATENCY_BUCKETS).fill(0),
  };
}

function recordLatency(counter: LatencyCounter, seconds: number): void {
  if (counter.num === 0 || seconds < counter.min) counter.min = seconds;
  if (seconds > counter.max) counter.max = seconds;
  counter.total += seconds;
  counter.num++;
}

/** Counters for the whole daemon and for one database, updated together. */
export class LockCounters {
  constructor(
    readonly daemon: LockStatistics,
    readonly database: LockStatistics,
  ) {}

  #both(update: (stats: LockStatistics) => void): void {
    update(this.daemon);
    update(this.database);
  }

  pendingDelta(delta: number): void {
    this.#both((s) => (s.numPending += delta));
  }

  currentDelta(delta: number): void {
    this.#both((s) => (s.numCurrent += delta));
  }

  locked(waitedSeconds: number): void {
    const bucket = lockLatencyBucket(waitedSeconds);
    this.#both((s) => {
      s.numCalls++;
      s.buckets[bucket]++;
      recordLatency(s.latency, waitedSeconds);
    });
  }

  failed(): void {
    this.#both((s) => {
      s.numCalls++;
      s.numFailed++;
    });
  }
}
