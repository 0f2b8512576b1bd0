// Piscina task: recover ONE database the way ctdb_recovery_helper (4.17) recovers each of its
// databases. The task is a client of the local ctdbd; every control goes through it, by pnn,
// to the active nodes:
//   DB_FREEZE → DB_TRANSACTION_START(tid = generation) → collect (DB_PULL streams rec_buffers
//   to a private RECOVERY srvid) → WIPE_DATABASE → DB_PUSH_START + rec_buffer messages +
//   DB_PUSH_CONFIRM → DB_TRANSACTION_COMMIT → DB_THAW.
// The worker talks to ctdbd itself, so pulled rec_buffers never cross a thread boundary:
// they go from the socket into the staging files and back out as raw bytes.
import v8 from 'node:v8';
import { CtdbClient } from '../src/client/ctdb-client';
import { ControlCode, INVALID_GENERATION, LMASTER_ANY, Srvid } from '../src/protocol';
import type { ControlReplies, ControlRequests } from '../src/protocol';
import { NodeControls, NodeFailure } from '../src/recovery/node-controls';
import { RecBufferPacker, isEmptyRecord } from '../src/protocol/rec-buffer';
import { MergingStage, SpoolStage, highestRsn, type RecordStage } from './staging-store';
import { CANCEL_MESSAGE, type PhaseMessage, type RecoverDbResult, type RecoverDbTask, type RecoveryPhase } from './types';

// Private srvids: RECOVERY | db_id << 16 | stream. Unique per database, so any number of
// tasks can pull and push at once through the same daemon.
const PUSH_STREAM = 0xffffn;
function streamSrvid(dbId: number, stream: bigint): bigint {
  return Srvid.RECOVERY | (BigInt(dbId) << 16n) | stream;
}

export default async function recoverDb(task: RecoverDbTask): Promise<RecoverDbResult> {
  validateTask(task);
  const recovery = new DatabaseRecovery(task);
  task.port?.on('message', (message) => message === CANCEL_MESSAGE && recovery.cancel());
  const started = performance.now();
  const base = { dbId: task.dbId, name: task.name };
  try {
    const pushed = await recovery.run();
    return { ...base, ok: true, ...pushed, durationMs: performance.now() - started, ...recovery.stats() };
  } catch (err) {
    const culprit = err instanceof NodeFailure ? { culprit: err.pnn } : {};
    const why = recovery.cancelled ? 'cancelled' : (err as Error).message;
    const error = `recovery of database ${task.name} (0x${task.dbId.toString(16)}) failed: ${why}`;
    return { ...base, ok: false, records: 0, bytes: 0, durationMs: performance.now() - started, error, ...culprit, ...recovery.stats() };
  } finally {
    task.port?.close();
    await recovery.dispose();
  }
}

/** A malformed task is a programming error: it rejects the task instead of blaming a node. */
function validateTask(task: RecoverDbTask): void {
  const problems: string[] = [];
  if (typeof task.socketPath !== 'string' || task.socketPath === '') problems.push('socketPath');
  if (!Number.isInteger(task.dbId) || task.dbId < 0 || task.dbId > 0xffffffff) problems.push('dbId');
  if (!Array.isArray(task.activeNodes) || task.activeNodes.length === 0) problems.push('activeNodes');
  if (!Number.isInteger(task.generation) || task.generation === INVALID_GENERATION || task.generation < 0 || task.generation > 0xffffffff) problems.push('generation');
  if (!(task.recBufferSizeLimit > 0)) problems.push('recBufferSizeLimit');
  if (!(task.timeoutMs > 0)) problems.push('timeoutMs');
  if (typeof task.stagingDir !== 'string' || task.stagingDir === '') problems.push('stagingDir');
  if (problems.length > 0) throw new TypeError(`invalid recovery task for database ${String(task.name)}: bad ${problems.join(', ')}`);
}

class DatabaseRecovery {
  #controls: NodeControls | null = null;
  #stage: RecordStage | null = null;
  readonly #phaseMs: Partial<Record<RecoveryPhase, number>> = {};
  #peakMemory = 0;
  #stagingMs = 0;
  #cancelled = false;

  constructor(private readonly task: RecoverDbTask) {}

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Ends the recovery at its next control: closing the connection fails everything pending. */
  cancel(): void {
    this.#cancelled = true;
    this.#controls?.client.close();
  }

  async run(): Promise<{ records: number; bytes: number }> {
    const t = this.task;
    this.#controls = new NodeControls(await CtdbClient.connect(t.socketPath), t.timeoutMs);
    if (this.#cancelled) this.#controls.client.close();
    const transdb = { dbId: t.dbId, tid: t.generation };
    await this.#phase('freeze', () => this.#onAll(ControlCode.DB_FREEZE, t.dbId));
    await this.#phase('transactionStart', () => this.#onAll(ControlCode.DB_TRANSACTION_START, transdb));
    await this.#phase('collect', () => this.#collect());
    await this.#phase('wipe', () => this.#onAll(ControlCode.WIPE_DATABASE, transdb));
    const pushed = await this.#phase('push', () => this.#push());
    await this.#phase('commit', () => this.#onAll(ControlCode.DB_TRANSACTION_COMMIT, transdb));
    await this.#phase('thaw', () => this.#onAll(ControlCode.DB_THAW, t.dbId));
    return pushed;
  }

  stats(): Pick<RecoverDbResult, 'phaseMs' | 'stagingMs' | 'peakMemoryBytes'> {
    return { phaseMs: this.#phaseMs, stagingMs: this.#stagingMs, peakMemoryBytes: this.#peakMemory };
  }

  async dispose(): Promise<void> {
    this.#controls?.client.close();
    await this.#stage?.destroy();
  }

  get #isPersistentKind(): boolean {
    return this.task.persistent || this.task.replicated === true;
  }

  async #phase<T>(phase: RecoveryPhase, step: () => Promise<T>): Promise<T> {
    if (this.#cancelled) throw new Error('cancelled');
    const started = performance.now();
    this.task.port?.postMessage({ dbId: this.task.dbId, phase } satisfies PhaseMessage);
    try {
      return await step();
    } finally {
      this.#phaseMs[phase] = performance.now() - started;
      this.#sampleMemory();
    }
  }

  #sampleMemory(): void {
    const { used_heap_size: heap, external_memory: buffers } = v8.getHeapStatistics();
    this.#peakMemory = Math.max(this.#peakMemory, heap + buffers);
  }

  async #collect(): Promise<void> {
    const t = this.task;
    if (this.#isPersistentKind) {
      // Persistent and replicated databases: the copy with the highest sequence number wins whole.
      const seqnums = await this.#onAll(ControlCode.GET_DB_SEQNUM, t.dbId);
      let source = t.activeNodes[0];
      let highest = -1n;
      t.activeNodes.forEach((pnn, i) => {
        if (seqnums[i] > highest) [source, highest] = [pnn, seqnums[i]];
      });
      this.#stage = SpoolStage.create(t.stagingDir, t.name);
      await this.#pull(source, 0n, this.#stage);
    } else {
      // Volatile: merge every node's copy, one node after the other (as 4.17 does).
      const stage = MergingStage.create(t.stagingDir, t.name, highestRsn(this.#connected().pnn));
      this.#stage = stage;
      for (const [i, pnn] of t.activeNodes.entries()) {
        await this.#pull(pnn, BigInt(i), stage);
        stage.nextSource();
      }
    }
  }

  /** DB_PULL from one node: its rec_buffers arrive as messages before the control's reply. */
  async #pull(pnn: number, stream: bigint, stage: RecordStage): Promise<void> {
    const client = this.#connected();
    const srvid = streamSrvid(this.task.dbId, stream);
    let received = 0;
    let broken: Error | null = null;
    await client.registerSrvid(srvid, (data) => {
      if (broken !== null) return;
      const started = performance.now();
      try {
        received += stage.add(data, this.task.dbId);
        this.#stagingMs += performance.now() - started;
        this.#sampleMemory();
      } catch (err) {
        broken = err as Error;
      }
    });
    try {
      const count = await this.#on(pnn, ControlCode.DB_PULL, { dbId: this.task.dbId, lmaster: LMASTER_ANY, srvid });
      if (broken !== null) throw new NodeFailure(pnn, `DB_PULL from node ${pnn} sent bad records: ${(broken as Error).message}`);
      if (count !== received) throw new NodeFailure(pnn, `DB_PULL from node ${pnn} announced ${count} records but ${received} arrived`);
    } finally {
      await client.deregisterSrvid(srvid).catch(() => undefined);
    }
  }

  async #push(): Promise<{ records: number; bytes: number }> {
    const client = this.#connected();
    const t = this.task;
    const srvid = streamSrvid(t.dbId, PUSH_STREAM);
    // Persistent records keep their headers; volatile ones all move to the recovery master.
    const packer = new RecBufferPacker(t.dbId, t.recBufferSizeLimit, t.persistent ? null : { dmaster: client.pnn });
    await this.#onAll(ControlCode.DB_PUSH_START, { dbId: t.dbId, lmaster: 0, srvid });
    const send = async (buffer: Buffer | null): Promise<void> => {
      if (buffer === null) return;
      let drained = true;
      for (const pnn of t.activeNodes) drained = client.sendMessage(pnn, srvid, buffer) && drained;
      this.#sampleMemory();
      // Bounded memory: never queue more than one buffer per node in our socket.
      if (!drained) await client.flush();
    };
    for (const record of (this.#stage as RecordStage).records()) {
      // Deleted records won the merge (so no stale copy resurrects) and vanish here.
      if (!isEmptyRecord(record)) await send(packer.add(record));
    }
    await send(packer.finish());
    const confirmed = await this.#onAll(ControlCode.DB_PUSH_CONFIRM, t.dbId);
    confirmed.forEach((count, i) => {
      if (count !== packer.records) {
        throw new NodeFailure(t.activeNodes[i], `node ${t.activeNodes[i]} stored ${count} of ${packer.records} pushed records`);
      }
    });
    return { records: packer.records, bytes: packer.bytes };
  }

  #connected(): CtdbClient {
    if (this.#controls === null) throw new Error('not connected to ctdbd');
    return this.#controls.client;
  }

  #on<C extends ControlCode>(pnn: number, code: C, request: ControlRequests[C]): Promise<ControlReplies[C]> {
    return (this.#controls as NodeControls).on(pnn, code, request);
  }

  #onAll<C extends ControlCode>(code: C, request: ControlRequests[C]): Promise<ControlReplies[C][]> {
    return (this.#controls as NodeControls).onEach(this.task.activeNodes, code, request);
  }
}
