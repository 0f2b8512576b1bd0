// Piscina task: recover ONE database with the result ctdb_recovery_helper (4.17) gives. The
// task is a client of the local ctdbd; every control goes through it, by pnn, to the active
// nodes: DB_FREEZE → DB_TRANSACTION_START(tid = generation) → records → DB_TRANSACTION_COMMIT →
// DB_THAW. Records come with DB_PULL (rec_buffers streamed to a private RECOVERY srvid) and
// go back with WIPE_DATABASE + DB_PUSH_START + rec_buffer messages + DB_PUSH_CONFIRM.
// Where 4.17 works one step at a time, this does not wait where the result cannot change:
// - volatile: every node is pulled at once and merged as the buffers arrive (staging-store.ts
//   makes the merge independent of arrival order), then the winners go to every node;
// - persistent: the copy with the highest seqnum wins whole, so its buffers are forwarded to
//   the other nodes while they are pulled, and the node it came from keeps its copy as it is
//   (wiping and rewriting it would store the same records again).
// Pulled rec_buffers never cross a thread boundary: socket → stage → socket, as raw bytes.
import v8 from 'node:v8';
import { CtdbClient } from '../src/client/ctdb-client';
import { ControlCode, INVALID_GENERATION, LMASTER_ANY, Srvid } from '../src/protocol';
import type { ControlReplies, ControlRequests } from '../src/protocol';
import { NodeControls, NodeFailure, settleInOrder } from '../src/recovery/node-controls';
import { RecBufferPacker, forEachRecord, isEmptyRecord } from '../src/protocol/rec-buffer';
import { DEFAULT_MEMORY_BUDGET, MergingStage, highestRsn, threadBudget } from './staging-store';
import { CANCEL_MESSAGE, type PhaseMessage, type RecoverDbResult, type RecoverDbTask, type RecoveryPhase } from './types';

// Private srvids: RECOVERY | db_id << 16 | stream. Unique per database, so any number of
// tasks can pull and push at once through the same daemon.
const PUSH_STREAM = 0xffffn;
function streamSrvid(dbId: number, stream: number | bigint): bigint {
  return Srvid.RECOVERY | (BigInt(dbId) << 16n) | BigInt(stream);
}

export default async function recoverDb(task: RecoverDbTask): Promise<RecoverDbResult> {
  validateTask(task);
  threadBudget.limit = task.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET;
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
  if (!Array.isArray(task.activeNodes) || task.activeNodes.length === 0 || task.activeNodes.length > 0xffff) problems.push('activeNodes');
  if (!Number.isInteger(task.generation) || task.generation === INVALID_GENERATION || task.generation < 0 || task.generation > 0xffffffff) problems.push('generation');
  if (!(task.recBufferSizeLimit > 0)) problems.push('recBufferSizeLimit');
  if (!(task.timeoutMs > 0)) problems.push('timeoutMs');
  if (typeof task.stagingDir !== 'string' || task.stagingDir === '') problems.push('stagingDir');
  if (task.memoryBudgetBytes !== undefined && !(task.memoryBudgetBytes >= 0)) problems.push('memoryBudgetBytes');
  if (problems.length > 0) throw new TypeError(`invalid recovery task for database ${String(task.name)}: bad ${problems.join(', ')}`);
}

interface Pushed {
  records: number;
  bytes: number;
}

class DatabaseRecovery {
  #controls: NodeControls | null = null;
  #stage: MergingStage | null = null;
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

  async run(): Promise<Pushed> {
    const t = this.task;
    this.#controls = new NodeControls(await CtdbClient.connect(t.socketPath), t.timeoutMs);
    if (this.#cancelled) this.#controls.client.close();
    const transdb = { dbId: t.dbId, tid: t.generation };
    await this.#phase('freeze', () => this.#onAll(ControlCode.DB_FREEZE, t.dbId));
    await this.#phase('transactionStart', () => this.#onAll(ControlCode.DB_TRANSACTION_START, transdb));
    const pushed = await (t.persistent || t.replicated === true ? this.#recoverPersistent() : this.#recoverVolatile());
    await this.#phase('commit', () => this.#onAll(ControlCode.DB_TRANSACTION_COMMIT, transdb));
    await this.#phase('thaw', () => this.#onAll(ControlCode.DB_THAW, t.dbId));
    return pushed;
  }

  stats(): Pick<RecoverDbResult, 'phaseMs' | 'stagingMs' | 'peakMemoryBytes' | 'spilled'> {
    return { phaseMs: this.#phaseMs, stagingMs: this.#stagingMs, peakMemoryBytes: this.#peakMemory, spilled: this.#stage?.spilled ?? false };
  }

  async dispose(): Promise<void> {
    this.#controls?.client.close();
    await this.#stage?.destroy();
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

  /** Every node's copy merged (collect), every node wiped and given the winners. */
  async #recoverVolatile(): Promise<Pushed> {
    const t = this.task;
    const stage = this.#newStage();
    await this.#phase('collect', () => settleInOrder(t.activeNodes.map((pnn, position) => this.#pull(pnn, position, (buffer) => stage.add(buffer, position)))));
    await this.#phase('wipe', () => this.#onAll(ControlCode.WIPE_DATABASE, { dbId: t.dbId, tid: t.generation }));
    return this.#phase('push', () => this.#push(t.activeNodes, stage, this.#connected().pnn));
  }

  /**
   * The node with the highest seqnum is the source (collect). The others are wiped (wipe) and
   * get its buffers as they arrive (push). Only an empty record on the source, which 4.17's push
   * would drop, makes the source itself wiped and rewritten from a staged copy.
   */
  async #recoverPersistent(): Promise<Pushed> {
    const t = this.task;
    const source = await this.#phase('collect', async () => {
      const seqnums = await this.#onAll(ControlCode.GET_DB_SEQNUM, t.dbId);
      let best = 0;
      seqnums.forEach((seqnum, i) => seqnum > seqnums[best] && (best = i));
      return t.activeNodes[best];
    });
    const others = t.activeNodes.filter((pnn) => pnn !== source);
    const srvid = streamSrvid(t.dbId, PUSH_STREAM);
    await this.#phase('wipe', async () => {
      await this.#on(others, ControlCode.WIPE_DATABASE, { dbId: t.dbId, tid: t.generation });
      await this.#on(others, ControlCode.DB_PUSH_START, { dbId: t.dbId, lmaster: 0, srvid });
    });
    return this.#phase('push', async () => {
      const forwarded: Pushed = { records: 0, bytes: 0 };
      const forward = (buffer: Buffer, records: number): void => {
        this.#send(others, srvid, buffer);
        forwarded.records += records;
        forwarded.bytes += buffer.length;
      };
      let sourceHasEmpty = false;
      await this.#pull(source, 0, (buffer) => {
        const records: Buffer[] = [];
        forEachRecord(buffer, t.dbId, (record) => records.push(record));
        const kept = records.filter((record) => !isEmptyRecord(record));
        // Unchanged buffers go out as they came; the rare one with an empty record is repacked.
        if (kept.length === records.length) forward(buffer, records.length);
        else {
          sourceHasEmpty = true;
          const packer = new RecBufferPacker(t.dbId, Infinity, null);
          for (const record of kept) packer.add(record);
          const repacked = packer.finish();
          if (repacked !== null) forward(repacked, kept.length);
        }
        return records.length;
      });
      await this.#confirm(others, forwarded.records);
      if (!sourceHasEmpty) return forwarded;
      const stage = this.#newStage();
      await this.#pull(source, 1, (buffer) => stage.add(buffer, 0));
      await this.#on([source], ControlCode.WIPE_DATABASE, { dbId: t.dbId, tid: t.generation });
      return this.#push([source], stage, null);
    });
  }

  #newStage(): MergingStage {
    const t = this.task;
    this.#stage = new MergingStage({ dbId: t.dbId, label: t.name, stagingDir: t.stagingDir, merge: highestRsn(this.#connected().pnn) });
    return this.#stage;
  }

  /**
   * DB_PULL from one node: its rec_buffers arrive as messages before the control's reply and go
   * to `take`, which returns how many records each held (and throws on a malformed one).
   */
  async #pull(pnn: number, stream: number, take: (buffer: Buffer) => number): Promise<void> {
    const client = this.#connected();
    const srvid = streamSrvid(this.task.dbId, stream);
    let received = 0;
    let broken: Error | null = null;
    await client.registerSrvid(srvid, (data) => {
      if (broken !== null) return;
      const started = performance.now();
      try {
        received += take(data);
      } catch (err) {
        broken = err as Error;
      }
      this.#stagingMs += performance.now() - started;
    });
    try {
      const [count] = await this.#on([pnn], ControlCode.DB_PULL, { dbId: this.task.dbId, lmaster: LMASTER_ANY, srvid });
      this.#sampleMemory();
      if (broken !== null) throw new NodeFailure(pnn, `DB_PULL from node ${pnn} sent bad records: ${(broken as Error).message}`);
      if (count !== received) throw new NodeFailure(pnn, `DB_PULL from node ${pnn} announced ${count} records but ${received} arrived`);
    } finally {
      await client.deregisterSrvid(srvid).catch(() => undefined);
    }
  }

  /** Wipe done: DB_PUSH_START, the staged winners (volatile ones now mastered by `dmaster`), DB_PUSH_CONFIRM. */
  async #push(targets: readonly number[], stage: MergingStage, dmaster: number | null): Promise<Pushed> {
    const t = this.task;
    const srvid = streamSrvid(t.dbId, PUSH_STREAM);
    const packer = new RecBufferPacker(t.dbId, t.recBufferSizeLimit, dmaster === null ? null : { dmaster });
    await this.#on(targets, ControlCode.DB_PUSH_START, { dbId: t.dbId, lmaster: 0, srvid });
    for (const [record] of stage.entries()) {
      // Deleted records won the merge (so no stale copy resurrects) and vanish here.
      if (isEmptyRecord(record)) continue;
      const buffer = packer.add(record);
      if (buffer === null) continue;
      // Bounded memory: never queue more than one buffer per node in our socket.
      if (!this.#send(targets, srvid, buffer)) await this.#connected().flush();
    }
    const last = packer.finish();
    if (last !== null) this.#send(targets, srvid, last);
    await this.#confirm(targets, packer.records);
    return { records: packer.records, bytes: packer.bytes };
  }

  /** Sends one rec_buffer to every target; false when our socket is backed up. */
  #send(targets: readonly number[], srvid: bigint, buffer: Buffer): boolean {
    const client = this.#connected();
    let drained = true;
    for (const pnn of targets) drained = client.sendMessage(pnn, srvid, buffer) && drained;
    this.#sampleMemory();
    return drained;
  }

  async #confirm(targets: readonly number[], expected: number): Promise<void> {
    const confirmed = await this.#on(targets, ControlCode.DB_PUSH_CONFIRM, this.task.dbId);
    confirmed.forEach((count, i) => {
      if (count !== expected) throw new NodeFailure(targets[i], `node ${targets[i]} stored ${count} of ${expected} pushed records`);
    });
  }

  #connected(): CtdbClient {
    if (this.#controls === null) throw new Error('not connected to ctdbd');
    return this.#controls.client;
  }

  #on<C extends ControlCode>(pnns: readonly number[], code: C, request: ControlRequests[C]): Promise<ControlReplies[C][]> {
    return (this.#controls as NodeControls).onEach(pnns, code, request);
  }

  #onAll<C extends ControlCode>(code: C, request: ControlRequests[C]): Promise<ControlReplies[C][]> {
    return this.#on(this.task.activeNodes, code, request);
  }
}
