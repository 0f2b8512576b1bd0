// `ctdb statistics` and `ctdb stats`: running totals since the last reset, plus a
// history of per-interval snapshots (StatHistoryInterval seconds each, 100 kept) as
// ctdbd keeps them.
import type { LatencyCounter, Statistics } from '../protocol';
import { timevalNow as now } from '../common/time';

const HISTORY_LENGTH = 100;

function zeroLatency() {
  return { num: 0, min: 0, max: 0, total: 0 };
}

function zeroBuckets(): number[] {
  return new Array<number>(16).fill(0);
}

export function emptyStatistics(): Statistics {
  return {
    numClients: 0,
    frozen: 0,
    recovering: 0,
    clientPacketsSent: 0,
    clientPacketsRecv: 0,
    nodePacketsSent: 0,
    nodePacketsRecv: 0,
    keepalivePacketsSent: 0,
    keepalivePacketsRecv: 0,
    node: { reqCall: 0, replyCall: 0, reqDmaster: 0, replyDmaster: 0, replyError: 0, reqMessage: 0, reqControl: 0, replyControl: 0, reqTunnel: 0 },
    client: { reqCall: 0, reqMessage: 0, reqControl: 0, reqTunnel: 0 },
    timeouts: { call: 0, control: 0, traverse: 0 },
    reclock: { ctdbd: zeroLatency(), recd: zeroLatency() },
    locks: { numCalls: 0, numCurrent: 0, numPending: 0, numFailed: 0, latency: zeroLatency(), buckets: zeroBuckets() },
    totalCalls: 0,
    pendingCalls: 0,
    childwriteCalls: 0,
    pendingChildwriteCalls: 0,
    memoryUsed: 0,
    lastCounter: 0,
    maxHopCount: 0,
    hopCountBucket: zeroBuckets(),
    callLatency: zeroLatency(),
    childwriteLatency: zeroLatency(),
    numRecoveries: 0,
    statisticsStartTime: now(),
    statisticsCurrentTime: now(),
    totalRoDelegations: 0,
    totalRoRevokes: 0,
  };
}

/** Fields that are levels, not counts: an interval reports their current value. */
const GAUGES = new Set([
  'statisticsStartTime',
  'statisticsCurrentTime',
  'numClients',
  'frozen',
  'recovering',
  'memoryUsed',
  'numCurrent',
  'numPending',
  'pendingCalls',
  'pendingChildwriteCalls',
  'maxHopCount',
  'min',
  'max',
]);

/** a - b for every counter (recursively); gauges and latency extremes come from `a`. */
function subtract<T>(a: T, b: T): T {
  if (typeof a === 'number') return ((a as number) - (b as number)) as T;
  if (Array.isArray(a)) return a.map((v: number, i) => v - (b as number[])[i]) as T;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(a as Record<string, unknown>)) {
    out[key] = GAUGES.has(key) ? value : subtract(value, (b as Record<string, unknown>)[key]);
  }
  return out as T;
}

/** Adds one observation (seconds) to a latency counter. */
export function updateLatency(counter: LatencyCounter, seconds: number): void {
  if (counter.num === 0 || seconds < counter.min) counter.min = seconds;
  if (seconds > counter.max) counter.max = seconds;
  counter.total += seconds;
  counter.num++;
}

export interface LiveState {
  numClients: number;
  recovering: boolean;
  frozen: boolean;
}

export class StatisticsCollector {
  /** Counters since the last reset; hot paths increment these fields directly. */
  counters: Statistics = emptyStatistics();
  #intervalBase: Statistics = emptyStatistics();
  readonly #history: Statistics[] = [];

  reset(): void {
    this.counters = emptyStatistics();
    this.#intervalBase = emptyStatistics();
  }

  /** The totals as STATISTICS reports them, with the live gauges filled in. */
  snapshot(live: LiveState): Statistics {
    const s = structuredClone(this.counters);
    s.numClients = live.numClients;
    s.recovering = live.recovering ? 1 : 0;
    s.frozen = live.frozen ? 1 : 0;
    s.memoryUsed = Math.min(process.memoryUsage().rss, 0xffffffff);
    s.statisticsCurrentTime = now();
    return s;
  }

  /** Closes the current history interval (called every StatHistoryInterval seconds). */
  rotate(live: LiveState): void {
    const total = this.snapshot(live);
    const interval = subtract(total, this.#intervalBase);
    interval.statisticsStartTime = this.#intervalBase.statisticsCurrentTime;
    this.#history.unshift(interval);
    if (this.#history.length > HISTORY_LENGTH) this.#history.pop();
    this.#intervalBase = total;
  }

  /** GET_STAT_HISTORY: newest first. */
  history(): Statistics[] {
    return this.#history.map((s) => structuredClone(s));
  }
}
