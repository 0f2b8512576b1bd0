// Piscina task: recover ONE database with the result ctdb_recovery_helper (4.17) gives. The
// task is a client of the local ctdbd; every control goes through it, by pnn, to the active
// nodes: DB_FREEZE → DB_TRANSACTION_START(tid = generation) → records → DB_TRANSACTION_COMMIT →
// DB_THAW. Records come with DB_PULL (rec_buffers streamed to a private RECOVERY srvid) and go
// back with WIPE_DATABASE + DB_PUSH_START + rec_buffer messages + DB_PUSH_CONFIRM.
// Every node ends up with what 4.17 leaves (volatile: the merged winners, the recovery master
// their dmaster; persistent: the copy of the node with the highest seqnum; deleted records
// gone), but with less work on the way:
// - all nodes are pulled at once and merged as the buffers arrive (staging-store.ts makes the
//   merge independent of arrival order); of a persistent database, a node whose DB_DIGEST (our
//   own control) equals the source's is not pulled at all, and one that sent the very bytes the
//   source node sent is not merged;
// - a node is only wiped when it holds a record that must go, and only given the records it
//   does not already hold exactly as the push would store them. A node that missed nothing
//   (a persistent database kept in step by transactions, a second recovery) gets nothing to
//   store and commits an empty transaction; when no node missed anything there is no push.
// Pulled rec_buffers never cross a thread boundary: socket → stage → socket, as raw bytes.
import v8 from 'node:v8';
import { CtdbClient } from '../src/client/ctdb-client';
import { ControlCode, INVALID_GENERATION, LMASTER_ANY, MESSAGE_HEADROOM, PACKET_TAILROOM, Srvid, frameMessage } from '../src/protocol';
import type { ControlReplies, ControlRequests, RecordsDigest } from '../src/protocol';
import { NodeControls, NodeFailure, settleInOrder } from '../src/recovery/node-controls';
import { RecBufferPacker } from '../src/protocol/rec-buffer';
import { ALL_NODES, DEFAULT_MEMORY_BUDGET, MemoryBudget, MergingStage, fromNode, highestRsn, type MergeRule, type Outcome, type PushPlan } from './staging-store';
import { CANCEL_MESSAGE, type PhaseMessage, type RecoverDbResult, type RecoverDbTask, type RecoveryPhase } from './types';

// Private srvids: RECOVERY | db_id << 16 | stream. Unique per database, so any number of
// tasks can pull and push at once through the same daemon.
const PUSH_STREAM = 0xffffn;
/** Bytes of rec_buffers a push sends before it waits for them to leave (see #push). */
const PUSH_WINDOW = 8 * 2 ** 20;
function streamSrvid(dbId: number, stream: number | bigint): bigint {
  return Srvid.RECOVERY | (BigInt(dbId) << 16n) | BigInt(stream);
}

/** For tasks that come without a pipeline's shared counter: the databases of this thread. */
const threadCounter = new SharedArrayBuffer(4);

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
  if (!Array.isArray(task.activeNodes) || task.activeNodes.length === 0 || task.activeNodes.length > 0xffff) problems.push('activeNodes');
  if (!Number.isInteger(task.generation) || task.generation === INVALID_GENERATION || task.generation < 0 || task.generation > 0xffffffff) problems.push('generation');
  if (!(task.recBufferSizeLimit > 0)) problems.push('recBufferSizeLimit');
  if (!(task.timeoutMs > 0)) problems.push('timeoutMs');
  if (typeof task.stagingDir !== 'string' || task.stagingDir === '') problems.push('stagingDir');
  if (task.memoryBudgetBytes !== undefined && !(task.memoryBudgetBytes >= 0)) problems.push('memoryBudgetBytes');
  if (problems.length > 0) throw new TypeError(`invalid recovery task for database ${String(task.name)}: bad ${problems.join(', ')}`);
}

interface Pushed {
  pulledNodes: number;
  records: number;
  bytes: number;
  pushedRecords: number;
  wipedNodes: number;
}

interface PullStream {
  pnn: number;
  srvid: bigint;
  received: number;
  broken: Error | null;
  deliver: (data: Buffer) => void;
}

/** How a kind of database is merged, and what every node keeps of it. */
interface Recipe {
  merge: MergeRule;
  outcome: Outcome;
}

/** What collect leaves: the merged pulls, or (inStep) the records every node already holds alike. */
type Collected = { inStep: number } | { inStep: null; recipe: Recipe; stage: MergingStage; pulledNodes: number };

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
    const collected = await this.#phase('collect', () => this.#collect());
    if (collected.inStep !== null) {
      // Every node holds the source's copy as the push would leave it: nothing to pull or push.
      await this.#phase('commit', () => this.#onAll(ControlCode.DB_TRANSACTION_COMMIT, transdb));
      await this.#phase('thaw', () => this.#onAll(ControlCode.DB_THAW, t.dbId));
      return { records: collected.inStep, bytes: 0, pushedRecords: 0, wipedNodes: 0, pulledNodes: 0 };
    }
    const { recipe, stage, pulledNodes } = collected;
    const plan = stage.plan(recipe.outcome);
    const wiped = t.activeNodes.filter((_, p) => plan.wipe[p]);
    await this.#phase('wipe', () => this.#on(wiped, ControlCode.WIPE_DATABASE, transdb));
    const pushed = await this.#phase('push', () => this.#push(plan));
    await this.#phase('commit', () => this.#onAll(ControlCode.DB_TRANSACTION_COMMIT, transdb));
    await this.#phase('thaw', () => this.#onAll(ControlCode.DB_THAW, t.dbId));
    return { ...pushed, wipedNodes: wiped.length, pulledNodes };
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

  /**
   * Every node's copy, merged. Volatile: the highest rsn wins, deleted winners go, the recovery
   * master becomes dmaster. Persistent and replicated: the copy of the (first) node with the
   * highest seqnum is taken whole, headers unchanged; nodes whose DB_DIGEST equals the source's
   * are not pulled (they hold its very records), nor is the source when all of them do and no
   * record of it would change on the way (`inStep`: how many records every node holds then).
   */
  async #collect(): Promise<Collected> {
    const t = this.task;
    const recoveryMaster = this.#connected().pnn;
    let recipe: Recipe;
    let mirrors: boolean[] = t.activeNodes.map(() => false);
    if (t.persistent || t.replicated === true) {
      const [seqnums, digests] = await Promise.all([this.#onAll(ControlCode.GET_DB_SEQNUM, t.dbId), this.#digests()]);
      let source = 0;
      seqnums.forEach((seqnum, i) => seqnum > seqnums[source] && (source = i));
      recipe = { merge: fromNode(source), outcome: { source, rewrite: null } };
      const own = digests[source];
      mirrors = digests.map((d, p) => p !== source && own !== null && d !== null && d.digest.equals(own.digest));
      if (own !== null && own.unusual === 0 && mirrors.every((mirror, p) => mirror || p === source)) {
        return { inStep: own.records };
      }
    } else {
      recipe = { merge: highestRsn(recoveryMaster), outcome: { source: null, rewrite: { dmaster: recoveryMaster } } };
    }
    const budget = new MemoryBudget(t.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET, t.memoryCounter ?? threadCounter);
    const stage = new MergingStage({ dbId: t.dbId, nodes: t.activeNodes.length, label: t.name, stagingDir: t.stagingDir, merge: recipe.merge, source: recipe.outcome.source, budget });
    this.#stage = stage;
    mirrors.forEach((mirror, p) => mirror && stage.mirror(p));
    const client = this.#connected();
    const pulled = t.activeNodes.flatMap((pnn, position) => (mirrors[position] ? [] : [{ pnn, position }]));
    const streams = pulled.map(({ pnn, position }) => this.#stream(pnn, position, (buffer) => stage.add(buffer, position)));
    try {
      // Every stream listens before any pull starts: a daemon busy sending one database must
      // not hold up the registration that another pull waits for.
      await Promise.all(streams.map((stream) => client.registerSrvid(stream.srvid, stream.deliver)));
      await settleInOrder(streams.map((stream) => this.#pull(stream)));
    } finally {
      await Promise.all(streams.map((stream) => client.deregisterSrvid(stream.srvid).catch(() => undefined)));
    }
    stage.settle();
    return { recipe, stage, inStep: null, pulledNodes: pulled.length };
  }

  /** Each node's DB_DIGEST, or null from a node that has none (a real ctdbd): that one is pulled. */
  #digests(): Promise<(RecordsDigest | null)[]> {
    const controls = this.#controls as NodeControls;
    return Promise.all(
      this.task.activeNodes.map((pnn) =>
        controls.on(pnn, ControlCode.DB_DIGEST, this.task.dbId).catch((err: unknown) => {
          if (err instanceof NodeFailure) return null;
          throw err;
        }),
      ),
    );
  }

  /**
   * Where node `pnn`'s DB_PULL sends its rec_buffers: each goes to `take`, which returns how
   * many records it held (and throws on a malformed one).
   */
  #stream(pnn: number, stream: number, take: (buffer: Buffer) => number): PullStream {
    const pull: PullStream = {
      pnn,
      srvid: streamSrvid(this.task.dbId, stream),
      received: 0,
      broken: null,
      deliver: (data) => {
        if (pull.broken !== null) return;
        const started = performance.now();
        try {
          pull.received += take(data);
        } catch (err) {
          pull.broken = err as Error;
        }
        this.#stagingMs += performance.now() - started;
      },
    };
    return pull;
  }

  /** DB_PULL: the node's rec_buffers arrive on the stream as messages before the control's reply. */
  async #pull(stream: PullStream): Promise<void> {
    const { pnn } = stream;
    const [count] = await this.#on([pnn], ControlCode.DB_PULL, { dbId: this.task.dbId, lmaster: LMASTER_ANY, srvid: stream.srvid });
    this.#sampleMemory();
    if (stream.broken !== null) throw new NodeFailure(pnn, `DB_PULL from node ${pnn} sent bad records: ${stream.broken.message}`);
    if (count !== stream.received) throw new NodeFailure(pnn, `DB_PULL from node ${pnn} announced ${count} records but ${stream.received} arrived`);
  }

  /** DB_PUSH_START everywhere, each node's records as the plan says, DB_PUSH_CONFIRM of each node's count. */
  async #push(plan: PushPlan): Promise<Omit<Pushed, 'wipedNodes' | 'pulledNodes'>> {
    const t = this.task;
    const client = this.#connected();
    const srvid = streamSrvid(t.dbId, PUSH_STREAM);
    // Each rec_buffer is packed where its message's packet will carry it, in buffers reused
    // once the socket has taken what they held.
    const packers = t.activeNodes.map((pnn) => {
      const header = client.messageHeader(pnn);
      const framing = { headroom: MESSAGE_HEADROOM, tailroom: PACKET_TAILROOM, frame: (room: Buffer, length: number) => frameMessage(room, length, header, srvid) };
      return new RecBufferPacker(t.dbId, t.recBufferSizeLimit, framing);
    });
    const sent: [RecBufferPacker, Buffer][] = [];
    const deliveries = plan.deliveries();
    let next = deliveries.next();
    // Every node holds exactly what it should (typical of a persistent database): a push of
    // nothing would change nothing, and would only queue behind the other databases' pushes.
    if (next.done === true) return { records: plan.survivors(), bytes: 0, pushedRecords: 0 };
    await this.#onAll(ControlCode.DB_PUSH_START, { dbId: t.dbId, lmaster: 0, srvid });
    // Up to PUSH_WINDOW bytes go out before we wait for our socket to take them: enough to keep
    // the daemons busy while we pack, and a bound on what waits in memory.
    let unflushed = 0;
    const send = async (p: number, packet: Buffer | null): Promise<void> => {
      if (packet === null) return;
      client.sendFramedMessage(packet);
      sent.push([packers[p], packet]);
      unflushed += packet.length;
      if (unflushed < PUSH_WINDOW) return;
      unflushed = 0;
      await client.flush();
      for (const [packer, done] of sent.splice(0)) packer.recycle(done);
    };
    const { record } = plan;
    for (; next.done !== true; next = deliveries.next()) {
      const nodes = next.value;
      for (let p = 0; p < packers.length; p++) {
        if (nodes !== ALL_NODES && (nodes & (1 << p)) === 0) continue;
        const full = packers[p].add(record.buffer, record.offset, record.length);
        if (full !== null) await send(p, full);
      }
    }
    for (let p = 0; p < packers.length; p++) await send(p, packers[p].finish());
    this.#sampleMemory();
    const confirmed = await this.#onAll(ControlCode.DB_PUSH_CONFIRM, t.dbId);
    confirmed.forEach((count, p) => {
      if (count !== packers[p].records) throw new NodeFailure(t.activeNodes[p], `node ${t.activeNodes[p]} stored ${count} of ${packers[p].records} pushed records`);
    });
    const sum = (pick: (packer: RecBufferPacker) => number): number => packers.reduce((total, packer) => total + pick(packer), 0);
    return { records: plan.survivors(), bytes: sum((packer) => packer.bytes), pushedRecords: sum((packer) => packer.records) };
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
