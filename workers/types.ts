// The contract between the recovery pipeline (src/recovery) and its piscina worker
// (workers/recover-db.ts). Plain data (and one transferred port): it crosses a thread boundary.
import type { MessagePort } from 'node:worker_threads';

export interface RecoverDbTask {
  /** Unix socket of the local ctdbd (the recovery master's own daemon). */
  socketPath: string;
  dbId: number;
  name: string;
  persistent: boolean;
  replicated?: boolean;
  /** The new vnn map generation: also the transaction id of DB_TRANSACTION_START/COMMIT. */
  generation: number;
  /** The nodes to recover, as the leader established them (each node's own view of its flags). */
  activeNodes: number[];
  /** RecBufferSizeLimit: a pushed rec_buffer is sent once it grows past this many bytes. */
  recBufferSizeLimit: number;
  /** Limit for each control (RecoverTimeout). */
  timeoutMs: number;
  /** Directory for the per-database staging store (removed again when the task ends). */
  stagingDir: string;
  /**
   * Bytes of pulled records merged in memory, over all databases that share memoryCounter; a
   * database that does not fit moves to LMDB under stagingDir (default: DEFAULT_MEMORY_BUDGET).
   */
  memoryBudgetBytes?: number;
  /** The memory budget's counter (MemoryBudget), shared by a pipeline's threads; default: the thread's own. */
  memoryCounter?: SharedArrayBuffer;
  /**
   * Optional channel to the pipeline (moved with the task): the worker posts a PhaseMessage as
   * each phase starts and gives up when it receives CANCEL_MESSAGE.
   */
  port?: MessagePort;
}

export interface PhaseMessage {
  dbId: number;
  phase: RecoveryPhase;
}
export const CANCEL_MESSAGE = 'cancel';

/**
 * The steps of one database's recovery, in the order they run. collect pulls and merges every
 * node's copy; wipe empties the nodes that hold a record that must go; push sends each node what
 * it lacks.
 */
export const RECOVERY_PHASES = ['freeze', 'transactionStart', 'collect', 'wipe', 'push', 'commit', 'thaw'] as const;
export type RecoveryPhase = (typeof RECOVERY_PHASES)[number];

export interface RecoverDbResult {
  dbId: number;
  name: string;
  ok: boolean;
  /** Records every node holds afterwards (deleted winners are dropped). */
  records: number;
  /** Bytes of rec_buffer payload pushed, all nodes together. */
  bytes: number;
  /** Records pushed, all nodes together: what the nodes did not hold already. */
  pushedRecords?: number;
  /** Nodes that were wiped and given every record. */
  wipedNodes?: number;
  /** Nodes whose records were pulled (of a persistent database, not those whose DB_DIGEST matched the source's). */
  pulledNodes?: number;
  durationMs: number;
  error?: string;
  /** The node blamed for the failure (the leader gives it ban credits). */
  culprit?: number;
  /** Milliseconds spent in each phase that ran. */
  phaseMs?: Partial<Record<RecoveryPhase, number>>;
  /** Of the collect phase, the time spent merging pulled buffers into the stage. */
  stagingMs?: number;
  /** Whether the records outgrew the memory budget and were merged in LMDB. */
  spilled?: boolean;
  /**
   * The largest memory use (JS heap + Buffers) of the worker thread seen during the task; it
   * includes the other databases that thread recovers at the same time.
   */
  peakMemoryBytes?: number;
}
