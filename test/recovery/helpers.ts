// Driving a cluster of real Debian ctdbds with our recovery pipeline: we keep the real
// recovery masters from recovering (DISABLE_RECOVERIES, as `ctdb reloadnodes` does) and act
// as the recovery helper ourselves over node 0's socket.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, LtdbFlag, RecMode, Srvid, encodeRecBuffer } from '../../src/protocol';
import { disableMessageCodec } from '../../src/protocol/types';
import { recoverCluster, type ClusterRecoveryResult } from '../../src/recovery/cluster-recovery';
import { NodeControls } from '../../src/recovery/node-controls';
import { RecoveryPipeline, type RecoverOptions, type RecoveryPipelineOptions } from '../../src/recovery/pipeline';
import { isAlive } from '../../scripts/cluster/processes';
import type { TestCluster } from '../harness/cluster';

const TOOL_TEST_SRVID = 0xae00000000000000n;

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
  async setRealRecoveries(disabledSeconds: number): Promise<void> {
    const nodes = runningNodes(this.cluster);
    const replySrvid = TOOL_TEST_SRVID | BigInt(process.pid & 0xffff) << 16n;
    const answered = new Set<number>();
    await this.client.registerSrvid(replySrvid, (data) => answered.add(data.readInt32LE(0)));
    try {
      const message = Buffer.alloc(disableMessageCodec.size({ pnn: 0, srvid: 0n, timeout: 0 }));
      disableMessageCodec.push({ pnn: this.client.pnn, srvid: replySrvid, timeout: disabledSeconds }, message, 0);
      for (const pnn of nodes) this.client.sendMessage(pnn, Srvid.DISABLE_RECOVERIES, message);
      await this.cluster.waitFor(() => nodes.every((pnn) => answered.has(pnn)), 10_000, 'DISABLE_RECOVERIES replies');
    } finally {
      await this.client.deregisterSrvid(replySrvid);
    }
  }

  recover(options: RecoverOptions = {}): Promise<ClusterRecoveryResult> {
    return recoverCluster(this.client, this.pipeline, { ...options, socketPath: this.cluster.node(this.via).socket, stagingDir: this.stagingDir });
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

export interface SeedRecord {
  key: string;
  rsn: bigint;
  dmaster: number;
  /** null = a deleted record (header only). */
  value: string | Buffer | null;
  flags?: number;
}

/**
 * Writes records with chosen headers into ONE node's copy of a database through that daemon's
 * own recovery write path (freeze, transaction, DB_PUSH, commit with the current generation,
 * thaw). Bulk fills with the tool (writekey, ptrans) would take minutes at these sizes.
 */
export async function seedNode(client: CtdbClient, pnn: number, dbId: number, records: readonly SeedRecord[]): Promise<void> {
  const controls = new NodeControls(client, 30_000);
  const { generation } = await controls.on(pnn, ControlCode.GETVNNMAP, undefined);
  const transdb = { dbId, tid: generation };
  const srvid = Srvid.RECOVERY | 0xfffe0000n | BigInt(pnn);
  await controls.on(pnn, ControlCode.DB_FREEZE, dbId);
  await controls.on(pnn, ControlCode.DB_TRANSACTION_START, transdb);
  await controls.on(pnn, ControlCode.DB_PUSH_START, { dbId, lmaster: 0, srvid });
  const CHUNK = 5000;
  for (let i = 0; i < records.length; i += CHUNK) {
    const chunk = records.slice(i, i + CHUNK).map((r) => ({ reqid: 0, key: Buffer.from(r.key), data: ltdbData(r) }));
    if (!client.sendMessage(pnn, srvid, encodeRecBuffer({ dbId, records: chunk }))) await client.flush();
  }
  const stored = await controls.on(pnn, ControlCode.DB_PUSH_CONFIRM, dbId);
  if (stored !== records.length) throw new Error(`seeding node ${pnn}: ${stored} of ${records.length} records stored`);
  await controls.on(pnn, ControlCode.DB_TRANSACTION_COMMIT, transdb);
  await controls.on(pnn, ControlCode.DB_THAW, dbId);
}

function ltdbData(r: SeedRecord): Buffer {
  const value = r.value === null ? Buffer.alloc(0) : Buffer.from(r.value);
  const data = Buffer.alloc(24 + value.length);
  data.writeBigUInt64LE(r.rsn, 0);
  data.writeUInt32LE(r.dmaster, 8);
  data.writeUInt32LE(r.flags ?? LtdbFlag.MIGRATED_WITH_DATA, 16);
  value.copy(data, 24);
  return data;
}

/** The persistent-database sequence number record (key includes its NUL). */
export function seqnumRecord(seqnum: bigint): SeedRecord {
  const value = Buffer.alloc(8);
  value.writeBigUInt64LE(seqnum);
  return { key: '__db_sequence_number__\0', rsn: 1n, dmaster: 0, value, flags: 0 };
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

/** Recovery mode of every running node, read with the tool. */
export async function recoveryModes(cluster: TestCluster): Promise<number[]> {
  const client = await CtdbClient.connect(cluster.node(0).socket);
  try {
    return await Promise.all(runningNodes(cluster).map(async (pnn) => (await client.control(pnn, ControlCode.GET_RECMODE, Buffer.alloc(0), { timeoutMs: 5000 })).status));
  } finally {
    client.close();
  }
}

export function runningNodes(cluster: TestCluster): number[] {
  return cluster.nodes.filter((n) => n.pid !== undefined && isAlive(n.pid)).map((n) => n.pnn);
}

export async function waitForNormal(cluster: TestCluster, timeoutMs = 60_000): Promise<void> {
  await cluster.waitFor(async () => (await recoveryModes(cluster)).every((m) => m === RecMode.NORMAL), timeoutMs, 'recovery mode NORMAL on all nodes');
}

