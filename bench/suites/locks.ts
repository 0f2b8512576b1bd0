// Lock scheduling at 1k..60k pending requests over 1k records in 10 databases, with contention:
// our LockScheduler against a naive single-list scheduler that scans its pending list on every
// event (what ctdbd's lock_pending lists amount to). The databases and helpers are simulated
// in-process, identically for both, so the CPU figures are scheduling cost, not process cost:
// a quarter of the daemon's non-blocking tries fail, and a "helper" then locks one loop turn later.
import type { LockDatabase, LockHelperEvents, LockHelperHandle, LockHelperLauncher } from '../../src/locks';
import { LockScheduler, type LockCallback } from '../../src/locks';
import { writeLineChart } from '../line-chart';
import type { BenchSuite, SuiteResult } from '../suite';

const DATABASES = 10;
const RECORDS = 1000;
const PENDING = [1_000, 5_000, 10_000, 20_000, 40_000, 60_000];
/** The naive scheduler is quadratic: 40k took 145 s here, so it stops at 20k (about 18 s). */
const NAIVE_MAX = 20_000;
const HELPERS_PER_DB = 200;
const CONTENDED_EVERY = 4;

interface Scheduler {
  lockRecord(database: LockDatabase, key: Buffer, callback: LockCallback): unknown;
}

/** Chain locks as a set; every CONTENDED_EVERY-th try of the daemon finds "smbd" holding it. */
class SimDatabase implements LockDatabase {
  readonly path: string;
  readonly tdbFlags = 0;
  readonly held = new Set<string>();
  #tries = 0;

  constructor(readonly name: string) {
    this.path = `/sim/${name}`;
  }

  take(key: Buffer): boolean {
    const id = key.toString('latin1');
    if (this.held.has(id)) return false;
    this.held.add(id);
    return true;
  }

  tryLockRecord(key: Buffer): boolean {
    if (++this.#tries % CONTENDED_EVERY === 0) return false;
    return this.take(key);
  }

  unlockRecord(key: Buffer): void {
    if (!this.held.delete(key.toString('latin1'))) throw new Error(`${this.name}: unlock of a chain not held`);
  }

  tryLockAll(): boolean {
    return false;
  }

  unlockAll(): void {}
}

class SimLauncher implements LockHelperLauncher {
  launch(database: LockDatabase, key: Buffer | undefined, events: LockHelperEvents): LockHelperHandle {
    const db = database as SimDatabase;
    let locked = false;
    setImmediate(() => {
      locked = db.take(key!);
      if (locked) events.locked();
      else setImmediate(() => events.exited('could not lock'));
    });
    const exit = (): void => {
      if (locked) db.unlockRecord(key!);
      locked = false;
      setImmediate(() => events.exited('released'));
    };
    return { pid: 0, release: exit, kill: exit };
  }
}

interface NaiveRequest {
  db: SimDatabase;
  key: Buffer;
  id: string;
  callback: LockCallback;
}

/**
 * One list of everything pending. Every event (new request, release, helper exit) walks the whole
 * list and starts each request whose record is idle and whose database has a free helper slot.
 */
class NaiveScheduler implements Scheduler {
  readonly #pending: NaiveRequest[] = [];
  readonly #busy = new Set<string>();
  readonly #helpers = new Map<SimDatabase, number>();
  readonly #launcher = new SimLauncher();

  lockRecord(database: LockDatabase, key: Buffer, callback: LockCallback): void {
    const db = database as SimDatabase;
    this.#pending.push({ db, key, id: `${db.name}/${key.toString('latin1')}`, callback });
    this.#schedule();
  }

  #schedule(): void {
    for (let i = 0; i < this.#pending.length; i++) {
      const request = this.#pending[i];
      if (this.#busy.has(request.id)) continue;
      if (request.db.tryLockRecord(request.key)) {
        this.#pending.splice(i--, 1);
        this.#grant(request, () => request.db.unlockRecord(request.key));
      } else if ((this.#helpers.get(request.db) ?? 0) < HELPERS_PER_DB) {
        this.#pending.splice(i--, 1);
        this.#startHelper(request);
      }
    }
  }

  #grant(request: NaiveRequest, unlock: () => void): void {
    this.#busy.add(request.id);
    queueMicrotask(() =>
      request.callback({
        database: request.db,
        key: request.key,
        holder: 'daemon',
        lost: false,
        onLost: undefined,
        release: () => {
          unlock();
          this.#busy.delete(request.id);
          this.#schedule();
        },
      }),
    );
  }

  #startHelper(request: NaiveRequest): void {
    this.#busy.add(request.id);
    this.#helpers.set(request.db, (this.#helpers.get(request.db) ?? 0) + 1);
    let granted = false;
    const handle = this.#launcher.launch(request.db, request.key, {
      locked: () => {
        granted = true;
        this.#grant(request, () => handle.release());
      },
      exited: () => {
        this.#helpers.set(request.db, (this.#helpers.get(request.db) ?? 1) - 1);
        if (!granted) {
          this.#busy.delete(request.id);
          this.#pending.push(request);
        }
        this.#schedule();
      },
    });
  }
}

interface RunResult {
  cpuUsPerRequest: number;
  wallMs: number;
  p50: number;
  p99: number;
  max: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Submits `pending` requests at once; each grant is released on the next microtask. */
async function runWorkload(scheduler: Scheduler, databases: SimDatabase[], pending: number): Promise<RunResult> {
  const keys = Array.from({ length: RECORDS }, (_, i) => Buffer.from(`record-${i}`));
  const latencies = new Float64Array(pending);
  let remaining = pending;
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  await new Promise<void>((resolve) => {
    for (let i = 0; i < pending; i++) {
      const record = (i * 7919) % RECORDS;
      const submitted = performance.now();
      scheduler.lockRecord(databases[record % DATABASES], keys[record], (result) => {
        if (result instanceof Error) throw result;
        latencies[i] = performance.now() - submitted;
        queueMicrotask(() => result.release());
        if (--remaining === 0) resolve();
      });
    }
  });
  const wallMs = performance.now() - wallStart;
  const cpu = process.cpuUsage(cpuStart);
  latencies.sort();
  return {
    cpuUsPerRequest: (cpu.user + cpu.system) / pending,
    wallMs,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies[latencies.length - 1],
  };
}

// Runs of a few hundred ms are repeated (median kept) to damp the shared box's noise; the naive
// scheduler's runs are long enough on their own.
const IMPLEMENTATIONS: Array<{ name: string; create(): Scheduler; max: number; repeats: number }> = [
  { name: 'LockScheduler', create: () => new LockScheduler({ launcher: new SimLauncher(), helpersPerDatabase: HELPERS_PER_DB }), max: Infinity, repeats: 5 },
  { name: 'naive single list', create: () => new NaiveScheduler(), max: NAIVE_MAX, repeats: 1 },
];

const suite: BenchSuite = {
  name: 'locks',
  description: `lock scheduling: 1k..60k pending requests over ${RECORDS} records in ${DATABASES} databases, 1 in ${CONTENDED_EVERY} tries contended`,
  async run(): Promise<SuiteResult> {
    const rows: SuiteResult['rows'] = [];
    const perRequest = new Map<string, Array<[number, number]>>(IMPLEMENTATIONS.map((impl) => [impl.name, []]));
    // Warm-up (JIT), ours last so the first measured run does not pay for the naive run's garbage.
    for (const impl of [...IMPLEMENTATIONS].reverse()) {
      await runWorkload(impl.create(), Array.from({ length: DATABASES }, (_, i) => new SimDatabase(`warmup-${i}`)), 5_000);
    }
    for (const pending of PENDING) {
      for (const impl of IMPLEMENTATIONS) {
        if (pending > impl.max) continue;
        const runs: RunResult[] = [];
        for (let r = 0; r < impl.repeats; r++) {
          const databases = Array.from({ length: DATABASES }, (_, i) => new SimDatabase(`db${i}.tdb`));
          runs.push(await runWorkload(impl.create(), databases, pending));
        }
        const result = runs.sort((a, b) => a.cpuUsPerRequest - b.cpuUsPerRequest)[Math.floor(runs.length / 2)];
        perRequest.get(impl.name)!.push([pending, result.cpuUsPerRequest]);
        rows.push([impl.name, pending, result.cpuUsPerRequest, result.wallMs, result.p50, result.p99, result.max]);
      }
    }
    const ours = perRequest.get(IMPLEMENTATIONS[0].name)!;
    const naive = perRequest.get(IMPLEMENTATIONS[1].name)!;
    const flatness = ours[ours.length - 1][1] / ours[0][1];
    const naiveGrowth = naive[naive.length - 1][1] / naive[0][1];
    const svg = writeLineChart('locks', {
      title: 'Lock scheduling cost per request against pending requests',
      xLabel: 'pending requests',
      yLabel: 'CPU µs per request (log)',
      xLog: true,
      yLog: true,
      series: [...perRequest].map(([name, points]) => ({ name, points })),
    });
    return {
      suite: 'locks',
      columns: ['scheduler', 'pending', 'CPU µs/request', 'wall ms', 'p50 ms', 'p99 ms', 'max ms'],
      rows,
      notes: [
        `LockScheduler CPU per request at ${PENDING[PENDING.length - 1]} vs ${PENDING[0]}: ${flatness.toFixed(2)}× (target ≤ 2×): ${flatness <= 2 ? 'PASS' : 'FAIL'}`,
        `naive single list at ${naive[naive.length - 1][0]} vs ${naive[0][0]}: ${naiveGrowth.toFixed(1)}× (grows with the queue); not run above ${NAIVE_MAX} (quadratic)`,
        'latency is submit → grant; with every request submitted at once it is mostly queueing (pending / 1000 per record)',
        `plot: ${svg}`,
      ],
    };
  },
};

export default suite;
