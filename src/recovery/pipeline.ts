// Parallel per-database recovery: every database of a recovery is a task in a piscina pool
// (workers/recover-db.ts), and all of them run at once. The leader calls recoverDatabases()
// between SETVNNMAP and SET_RECMODE NORMAL; the report names the node to blame if any
// database could not be recovered.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { CANCEL_MESSAGE, type PhaseMessage, type RecoverDbResult, type RecoverDbTask } from '../../workers/types';
import type { RecoveryDatabase } from './databases';

export type { PhaseMessage, RecoverDbResult, RecoverDbTask, RecoveryPhase } from '../../workers/types';

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
  /** Called as a database enters each phase. */
  onPhase?: (message: PhaseMessage) => void;
}

export interface RecoveryPipelineOptions {
  /**
   * Worker threads (default: the CPU count, at most 4). They all start at once so that the
   * databases spread over them: merging is CPU work, the rest is waiting for daemons.
   */
  threads?: number;
  /** Databases one worker recovers at once (default 8); more wait in the queue. */
  concurrentTasksPerWorker?: number;
  /** Attempts per database before the recovery fails (ctdb_recovery_helper: 3). */
  attempts?: number;
  /** The compiled worker (default: dist/workers/recover-db.js of this package). */
  workerFile?: string;
  /** Bytes all databases of a recovery may merge in memory (RecoverDbTask.memoryBudgetBytes). */
  memoryBudgetBytes?: number;
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
  /** Started at the first recovery that has databases: a daemon without any needs no threads. */
  #pool: Piscina<RecoverDbTask, RecoverDbResult> | null = null;
  readonly #options: RecoveryPipelineOptions;
  readonly #attempts: number;
  /** What the threads' databases hold in memory (see MemoryBudget). */
  readonly #memoryCounter = new SharedArrayBuffer(4);
  /** Ports of the tasks in flight, for cancellation. */
  readonly #running = new Set<MessagePort>();
  #closed = false;

  constructor(options: RecoveryPipelineOptions = {}) {
    this.#options = options;
    this.#attempts = Math.max(1, options.attempts ?? DEFAULT_ATTEMPTS);
  }

  get threads(): number {
    return this.#pool?.threads.length ?? 0;
  }

  /** Starts the worker threads (they load the worker module) ahead of the first recovery. */
  start(): void {
    if (!this.#closed) this.#startedPool();
  }

  #startedPool(): Piscina<RecoverDbTask, RecoverDbResult> {
    if (this.#pool !== null) return this.#pool;
    const options = this.#options;
    const threads = Math.max(1, options.threads ?? Math.min(MAX_DEFAULT_THREADS, os.availableParallelism()));
    this.#pool = new Piscina<RecoverDbTask, RecoverDbResult>({
      filename: options.workerFile ?? compiledWorker(),
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: options.concurrentTasksPerWorker ?? DEFAULT_TASKS_PER_WORKER,
      // Recoveries are rare but must start fast once there are databases: keep the threads.
      idleTimeout: Infinity,
    });
    return this.#pool;
  }

  /** Recovers all databases in parallel; never rejects for a database's failure (see report.ok). */
  async recoverDatabases(tasks: readonly RecoverDbTask[], options: RecoverOptions = {}): Promise<RecoveryReport> {
    if (this.#closed) throw new Error('recovery pipeline is closed');
    const started = performance.now();
    const banCredits = new Map<number, number>();
    const results = await Promise.all(
      tasks.map(async (task) => {
        for (let attempt = 1; ; attempt++) {
          const result = await this.#runOnce(task, options);
          options.onProgress?.(result, attempt);
          if (result.culprit !== undefined) banCredits.set(result.culprit, (banCredits.get(result.culprit) ?? 0) + 1);
          if (result.ok || attempt >= this.#attempts || this.#closed) return result;
        }
      }),
    );
    const ok = results.every((r) => r.ok);
    const culprit = mostBlamed(banCredits);
    return { ok, results, durationMs: performance.now() - started, banCredits, ...(!ok && culprit !== undefined && { culprit }) };
  }

  /** Cancels the recoveries in flight (each stops at its next control) and stops the pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const port of this.#running) port.postMessage(CANCEL_MESSAGE);
    await this.#pool?.close();
  }

  /**
   * One attempt. Tasks are not abortable (that would terminate a thread other databases share):
   * the port cancels cooperatively. A task that throws becomes a failed result like any other.
   */
  async #runOnce(task: RecoverDbTask, options: RecoverOptions): Promise<RecoverDbResult> {
    const started = performance.now();
    const { port1: ours, port2: theirs } = new MessageChannel();
    ours.on('message', (message: PhaseMessage) => options.onPhase?.(message));
    this.#running.add(ours);
    try {
      const budget = this.#options.memoryBudgetBytes;
      const shared = { memoryCounter: this.#memoryCounter, ...(budget !== undefined && { memoryBudgetBytes: budget }) };
      return await this.#startedPool().run({ ...shared, ...task, port: theirs }, { transferList: [theirs] });
    } catch (err) {
      return { dbId: task.dbId, name: task.name, ok: false, records: 0, bytes: 0, durationMs: performance.now() - started, error: `recovery of database ${task.name}: ${(err as Error).message}` };
    } finally {
      this.#running.delete(ours);
      ours.close();
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
