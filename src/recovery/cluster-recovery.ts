// A whole recovery driven from a client of the local ctdbd, in the order ctdb_recovery_helper
// runs it: active nodes (each node's own view of its flags), recovery mode ACTIVE, the
// database list, START_RECOVERY, the new vnn map, every database through the pipeline, then
// recovery mode NORMAL and END_RECOVERY. Tests and the benchmark use it to act as the
// recovery master of a cluster of real ctdbds.
import { randomInt } from 'node:crypto';
import type { CtdbClient } from '../client/ctdb-client';
import { Capability, ControlCode, INVALID_GENERATION, NodeFlag, RecMode } from '../protocol';
import { collectDatabases } from './databases';
import { NodeControls, NodeFailure } from './node-controls';
import { recoveryTasks, type RecoverOptions, type RecoveryPipeline, type RecoveryReport } from './pipeline';

export interface ClusterRecoveryOptions extends RecoverOptions {
  /** The local daemon's socket: the pipeline's workers open their own connections to it. */
  socketPath: string;
  stagingDir: string;
  /** Default: a random one, never INVALID_GENERATION. */
  generation?: number;
}

export interface ClusterRecoveryResult {
  ok: boolean;
  generation: number;
  activeNodes: number[];
  /** Absent when the recovery failed before the databases. */
  report?: RecoveryReport;
  error?: string;
  culprit?: number;
  durationMs: number;
}

export function newGeneration(): number {
  let generation: number;
  do generation = randomInt(0, 0x100000000);
  while (generation === INVALID_GENERATION);
  return generation;
}

export async function recoverCluster(client: CtdbClient, pipeline: RecoveryPipeline, options: ClusterRecoveryOptions): Promise<ClusterRecoveryResult> {
  const started = performance.now();
  const generation = options.generation ?? newGeneration();
  let activeNodes: number[] = [];
  const finish = (rest: Omit<ClusterRecoveryResult, 'generation' | 'activeNodes' | 'durationMs'>): ClusterRecoveryResult => ({
    generation,
    activeNodes,
    durationMs: performance.now() - started,
    ...rest,
  });
  try {
    const local = new NodeControls(client, 30_000);
    const tunables = await local.on(client.pnn, ControlCode.GET_ALL_TUNABLES, undefined);
    const controls = new NodeControls(client, tunables.recoverTimeout * 1000);
    activeNodes = await findActiveNodes(controls);
    const caps = await controls.onEach(activeNodes, ControlCode.GET_CAPABILITIES, undefined);
    await controls.onEach(activeNodes, ControlCode.SET_RECMODE, RecMode.ACTIVE);
    const databases = await collectDatabases(client, activeNodes, { timeoutMs: controls.timeoutMs });
    const lmasters = activeNodes.filter((_, i) => (caps[i] & Capability.LMASTER) !== 0);
    await controls.onEach(activeNodes, ControlCode.START_RECOVERY, undefined);
    await controls.onEach(activeNodes, ControlCode.SETVNNMAP, { generation, map: lmasters.length > 0 ? lmasters : [client.pnn] });
    const run = {
      socketPath: options.socketPath,
      generation,
      activeNodes,
      recBufferSizeLimit: tunables.recBufferSizeLimit,
      timeoutMs: controls.timeoutMs,
      stagingDir: options.stagingDir,
    };
    const report = await pipeline.recoverDatabases(recoveryTasks(databases, run), options);
    if (!report.ok) {
      const failed = report.results.filter((r) => !r.ok).map((r) => r.error);
      return finish({ ok: false, report, error: failed.join('; '), ...(report.culprit !== undefined && { culprit: report.culprit }) });
    }
    await controls.onEach(activeNodes, ControlCode.SET_RECMODE, RecMode.NORMAL);
    await controls.onEach(activeNodes, ControlCode.END_RECOVERY, undefined);
    return finish({ ok: true, report });
  } catch (err) {
    return finish({ ok: false, error: (err as Error).message, ...(err instanceof NodeFailure && { culprit: err.pnn }) });
  }
}

/** Connected nodes (local view) that do not call themselves inactive (their own view). */
async function findActiveNodes(controls: NodeControls): Promise<number[]> {
  const local = await controls.on(controls.client.pnn, ControlCode.GET_NODEMAP, undefined);
  const connected = local.filter((n) => (n.flags & NodeFlag.DISCONNECTED) === 0).map((n) => n.pnn);
  const views = await controls.onEach(connected, ControlCode.GET_NODEMAP, undefined);
  return connected.filter((pnn, i) => {
    const own = views[i].find((n) => n.pnn === pnn);
    return own !== undefined && (own.flags & NodeFlag.INACTIVE) === 0;
  });
}
