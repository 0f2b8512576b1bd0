// Parallel per-database recovery: every database of a recovery is a task in a piscina pool
// (workers/recover-db.ts), and all of them run at once. The leader calls recoverDatabases()
// between SETVNNMAP and SET_RECMODE NORMAL; the report names the node to blame if any
// database could not be recovered.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Piscina } from 'piscina';
import type { RecoverDbResult, RecoverDbTask } from '../../workers/types';
import type { RecoveryDatabase } from './databases';

export type { RecoverDbResult, RecoverDbTask } from '../../workers/types';

export interface RecoveryReport {
  ok: boolean;
  /** One result per task, in task order (the last attempt's). */
  results: RecoverDbResult[];
  durationMs: number;
  /** Failed attempts blamed on each node (the recovery helper's ban credits). */
  banCredits: Map<number, number>;
  /** The node with the most ban credits, when a database failed because of a node. */
  culprit?: number;
}

export interface RecoverOptions {
  /** Called as each database finishes (also for each failed attempt). */
  onProgress?: (result: RecoverDbResult, attempt: number) => void;
}

export interface RecoveryPipelineOptions {
  /** Worker threads (default: the CPU count, at most 4: the work is mostly waiting for daemons). */
  maxThreads?: number;
  /** Databases one worker recovers at once (default 8): tasks are I/O-bound and asynchronous. */
  concurrentTasksPerWorker?: number;
  /** Attempts per database before the recovery fails (ctdb_recovery_helper: 3). */
  attempts?: number;
  /** The compiled worker (default: dist/workers/recover-db.js of this package). */
  workerFile?: string;
}

/** Settings shared by the tasks of one recovery. */
export interface RecoveryRun {
  socketPath: string;
  generation: number;
  activeNodes: number[];
  recBufferSizeLimit: number;
  timeoutMs: number;
  stagingDir: string;
}

export function recoveryTasks(databases: readonly RecoveryDatabase[], run: RecoveryRun): RecoverDbTask[] {
  return databases.map((db) => ({ ...run, dbId: db.dbId, name: db.name, persistent: db.persistent, replicated: db.replicated }));
}

const MAX_DEFAULT_THREADS = 4;
const DEFAULT_TASKS_PER_WORKER = 8;
const DEFAULT_ATTEMPTS = 3;

/**
 * Piscina loads workers with plain node (no vitest transform), so it always needs the compiled
 * file: next to this module when it runs from dist/, under dist/ when it runs from the sources.
 */
function compiledWorker(): string {
  const candidates = [path.resolve(__dirname, '../../workers/recover-db.js'), path.resolve(__dirname, '../../dist/workers/recover-db.js')];
  const found = candidates.find((file) => fs.existsSync(file));
  if (found === undefined) throw new Error(`recovery worker not found (run npm run build): looked for ${candidates.join(', ')}`);
  return found;
}

export class RecoveryPipeline {
  readonly #pool: Piscina<RecoverDbTask, RecoverDbResult>;
  readonly #attempts: number;
  readonly #running = new Set<AbortController>();
  #closed = false;

  constructor(options: RecoveryPipelineOptions = {}) {
    this.#attempts = Math.max(1, options.attempts ?? DEFAULT_ATTEMPTS);
    const maxThreads = options.maxThreads ?? Math.min(MAX_DEFAULT_THREADS, os.availableParallelism());
    this.#pool = new Piscina<RecoverDbTask, RecoverDbResult>({
      filename: options.workerFile ?? compiledWorker(),
      minThreads: 1,
      maxThreads,
      concurrentTasksPerWorker: options.concurrentTasksPerWorker ?? DEFAULT_TASKS_PER_WORKER,
      // Recoveries are rare: let idle threads go, keep one warm.
      idleTimeout: 30_000,
    });
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  /** Recovers all databases in parallel; never rejects for a database's failure (see report.ok). */
  async recoverDatabases(tasks: readonly RecoverDbTask[], options: RecoverOptions = {}): Promise<RecoveryReport> {
    if (this.#closed) throw new Error('recovery pipeline is closed');
    const started = performance.now();
    const abort = new AbortController();
    this.#running.add(abort);
    const banCredits = new Map<number, number>();
    try {
      const results = await Promise.all(
        tasks.map(async (task) => {
          for (let attempt = 1; ; attempt++) {
            const result = await this.#runOnce(task, abort.signal);
            options.onProgress?.(result, attempt);
            if (result.culprit !== undefined) banCredits.set(result.culprit, (banCredits.get(result.culprit) ?? 0) + 1);
            if (result.ok || attempt >= this.#attempts || abort.signal.aborted) return result;
          }
        }),
      );
      const ok = results.every((r) => r.ok);
      const culprit = mostBlamed(banCredits);
      return { ok, results, durationMs: performance.now() - started, banCredits, ...(!ok && culprit !== undefined && { culprit }) };
    } finally {
      this.#running.delete(abort);
    }
  }

  /** Cancels running recoveries (their workers are terminated) and stops the pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const abort of this.#running) abort.abort();
    await this.#pool.destroy();
  }

  /** A task that throws or is cancelled becomes a failed result like any other. */
  async #runOnce(task: RecoverDbTask, signal: AbortSignal): Promise<RecoverDbResult> {
    const started = performance.now();
    try {
      return await this.#pool.run(task, { signal });
    } catch (err) {
      const message = signal.aborted ? 'cancelled' : (err as Error).message;
      return { dbId: task.dbId, name: task.name, ok: false, records: 0, bytes: 0, durationMs: performance.now() - started, error: `recovery of database ${task.name}: ${message}` };
    }
  }
}

function mostBlamed(credits: Map<number, number>): number | undefined {
  let culprit: number | undefined;
  let most = 0;
  for (const [pnn, count] of credits) {
    if (count > most) [culprit, most] = [pnn, count];
  }
  return culprit;
}
