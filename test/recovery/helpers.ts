// Driving a cluster of real Debian ctdbds with our recovery pipeline: we keep the real
// recovery masters from recovering (DISABLE_RECOVERIES, as `ctdb reloadnodes` does) and act
// as the recovery helper ourselves over node 0's socket.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, RecMode } from '../../src/protocol';
import { recoverCluster, type ClusterRecoveryResult } from '../../src/recovery/cluster-recovery';
import { RecoveryPipeline, recoveryTasks, type RecoverDbTask, type RecoverOptions, type RecoveryPipelineOptions } from '../../src/recovery/pipeline';
import { isAlive } from '../../scripts/cluster/processes';
import type { TestCluster } from '../harness/cluster';
import { disableRecoveries } from './seed';

export { seedNode, seqnumRecord, type SeedRecord } from './seed';

export class RecoveryDriver {
  readonly stagingDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdb-recovery-staging-'));

  private constructor(
    readonly cluster: TestCluster,
    readonly client: CtdbClient,
    readonly pipeline: RecoveryPipeline,
    /** The node whose daemon we are a client of: the recovery master. */
    readonly via: number,
  ) {}

  /** Connects to node `via` and stops the real recovery masters from recovering for `seconds`. */
  static async start(cluster: TestCluster, options: RecoveryPipelineOptions & { via?: number } = {}, seconds = 600): Promise<RecoveryDriver> {
    const via = options.via ?? 0;
    const client = await CtdbClient.connect(cluster.node(via).socket);
    const driver = new RecoveryDriver(cluster, client, new RecoveryPipeline(options), via);
    await driver.setRealRecoveries(seconds);
    return driver;
  }

  /** Sends DISABLE_RECOVERIES (timeout 0 = enable again) to every running node's recovery daemon. */
  setRealRecoveries(disabledSeconds: number): Promise<void> {
    return disableRecoveries(this.client, runningNodes(this.cluster), disabledSeconds);
  }

  recover(options: RecoverOptions = {}, pipeline = this.pipeline): Promise<ClusterRecoveryResult> {
    return recoverCluster(this.client, pipeline, { ...options, socketPath: this.cluster.node(this.via).socket, stagingDir: this.stagingDir });
  }

  /**
   * Recovery tasks for the named databases (attached here if needed) on every running node, in
   * the cluster's current generation: for running the pipeline on chosen databases only.
   */
  async tasksFor(names: string[], timeoutMs: number): Promise<RecoverDbTask[]> {
    const { generation } = (await this.client.call(this.via, ControlCode.GETVNNMAP, undefined)).reply;
    const databases = [];
    for (const name of names) databases.push({ dbId: await this.attach(name), name, flags: 0, persistent: false, replicated: false, attachedOn: [] });
    return recoveryTasks(databases, {
      socketPath: this.cluster.node(this.via).socket,
      generation,
      activeNodes: runningNodes(this.cluster),
      recBufferSizeLimit: 1_000_000,
      timeoutMs,
      stagingDir: this.stagingDir,
    });
  }

  /** Attaches a database with the tool and returns its id. */
  async attach(name: string, kind: 'volatile' | 'persistent' = 'volatile'): Promise<number> {
    const { code, stderr } = await this.cluster.ctdb(this.via, kind === 'persistent' ? ['attach', name, 'persistent'] : ['attach', name]);
    if (code !== 0) throw new Error(`ctdb attach ${name} failed: ${stderr}`);
    const dbmap = await this.client.call(this.via, ControlCode.GET_DBMAP, undefined);
    for (const db of dbmap.reply) {
      if ((await this.client.call(this.via, ControlCode.GET_DBNAME, db.dbId)).reply === name) return db.dbId;
    }
    throw new Error(`database ${name} is missing after ctdb attach`);
  }

  async close(): Promise<void> {
    await this.pipeline.close();
    this.client.close();
    fs.rmSync(this.stagingDir, { recursive: true, force: true });
  }
}

export interface LocalRecord {
  rsn: bigint;
  dmaster: number;
  flags: number;
  value: string;
}

/** One node's local copy of a database, read with the real tool (`ctdb cattdb`). */
export async function localRecords(cluster: TestCluster, pnn: number, db: string): Promise<Map<string, LocalRecord>> {
  const { code, stdout, stderr } = await cluster.ctdb(pnn, ['cattdb', db], { timeoutMs: 120_000 });
  if (code !== 0) throw new Error(`ctdb cattdb ${db} on node ${pnn} failed: ${stderr}`);
  const records = new Map<string, LocalRecord>();
  const pattern = /key\(\d+\) = "(.*)"\ndmaster: (\d+)\nrsn: (\d+)\nflags: 0x([0-9a-f]+).*\ndata\(\d+\) = "(.*)"\n/g;
  for (const m of stdout.matchAll(pattern)) {
    records.set(m[1], { dmaster: Number(m[2]), rsn: BigInt(m[3]), flags: parseInt(m[4], 16), value: m[5] });
  }
  const dumped = /Dumped (\d+) record/.exec(stdout);
  if (dumped === null || Number(dumped[1]) !== records.size) throw new Error(`cannot parse ctdb cattdb ${db} on node ${pnn}: ${dumped?.[1]} dumped, ${records.size} parsed`);
  return records;
}

/** Recovery mode of every running node (or of `nodes`). */
export async function recoveryModes(cluster: TestCluster, nodes = runningNodes(cluster)): Promise<number[]> {
  const client = await CtdbClient.connect(cluster.node(0).socket);
  try {
    return await Promise.all(nodes.map(async (pnn) => (await client.control(pnn, ControlCode.GET_RECMODE, Buffer.alloc(0), { timeoutMs: 5000 })).status));
  } finally {
    client.close();
  }
}

export function runningNodes(cluster: TestCluster): number[] {
  return cluster.nodes.filter((n) => n.pid !== undefined && isAlive(n.pid)).map((n) => n.pnn);
}

export async function waitForNormal(cluster: TestCluster, timeoutMs = 60_000, nodes?: number[]): Promise<void> {
  await cluster.waitFor(async () => (await recoveryModes(cluster, nodes)).every((m) => m === RecMode.NORMAL), timeoutMs, 'recovery mode NORMAL on all nodes');
}

