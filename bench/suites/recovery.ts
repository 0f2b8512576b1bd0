// Recovery of 100k volatile + 100k persistent records over 3 real Debian ctdbds: our pipeline
// acting as the recovery helper, against the real ctdb_recovery_helper (`ctdb recover`) on
// the same cluster and data in the same run.
//
// The data set is test/recovery/seed.ts seedBenchmarkDatabases, seeded through each daemon's
// own DB_PUSH path (ptrans would take over a minute for 100k records); the volatile spread is
// seeded again before every recovery, so that each one moves every volatile record.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, RecMode } from '../../src/protocol';
import { recoverCluster } from '../../src/recovery/cluster-recovery';
import { RecoveryPipeline } from '../../src/recovery/pipeline';
import { LocalCluster } from '../../scripts/cluster/local-cluster';
import { pollUntil } from '../../scripts/cluster/processes';
import { benchmarkSpread, disableRecoveries, seedBenchmarkDatabases, seedNode } from '../../test/recovery/seed';
import type { BenchSuite, SuiteResult } from '../suite';

const NODES = [0, 1, 2];
const RECORDS = 100_000;
const RUNS = 3;

interface Measurement {
  impl: string;
  run: number;
  /** ACTIVE → NORMAL/END_RECOVERY as the helper itself sees it. */
  recoveryS: number;
  /** From the trigger until every node reports NORMAL in the new generation. */
  untilNormalS: number;
  note: string;
}

async function clusterState(client: CtdbClient): Promise<{ modes: number[]; generations: number[] }> {
  const modes = await Promise.all(NODES.map(async (pnn) => (await client.control(pnn, ControlCode.GET_RECMODE, Buffer.alloc(0), { timeoutMs: 5000 })).status));
  const generations = await Promise.all(NODES.map(async (pnn) => (await client.call(pnn, ControlCode.GETVNNMAP, undefined, { timeoutMs: 5000 })).reply.generation));
  return { modes, generations };
}

async function waitForNewGeneration(client: CtdbClient, old: number): Promise<void> {
  const ok = await pollUntil(async () => {
    const s = await clusterState(client);
    return s.modes.every((m) => m === RecMode.NORMAL) && s.generations.every((g) => g !== old && g === s.generations[0]);
  }, 120_000, 20);
  if (!ok) throw new Error('the cluster did not return to NORMAL in a new generation');
}

/** The real helper's own view: "Set recovery mode to ACTIVE" … "recovered event finished". */
function helperLogInterval(logFile: string, after: number): number {
  const stamp = (line: string): number => Date.parse(line.slice(0, line.indexOf(' ')));
  const lines = fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('ctdb-recovery[') && stamp(l) >= after);
  const start = lines.find((l) => l.includes('Set recovery mode to ACTIVE'));
  const end = lines.find((l) => l.includes('recovered event finished'));
  if (start === undefined || end === undefined) return Number.NaN;
  return (stamp(end) - stamp(start)) / 1000;
}

async function run(): Promise<SuiteResult> {
  const cluster = await LocalCluster.create({ nodes: 3, impl: 'real', tunables: { RerecoveryTimeout: 0 } });
  const stagingDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-recovery-'));
  const pipeline = new RecoveryPipeline();
  let client: CtdbClient | undefined;
  try {
    await cluster.startAll();
    const first = await CtdbClient.connect(cluster.nodes[0].socket);
    const allNormal = async (): Promise<boolean> => (await clusterState(first)).modes.every((m) => m === RecMode.NORMAL);
    const healthy = await pollUntil(async () => (await cluster.nodes[0].ctdb(['nodestatus', 'all'])).code === 0 && (await allNormal().catch(() => false)), 60_000, 200);
    first.close();
    if (!healthy) throw new Error(`cluster not healthy\n${cluster.logTails(20)}`);
    // Recover through the real leader's daemon, so both make the same node dmaster.
    const leader = Number((await cluster.nodes[0].ctdb(['leader'])).stdout.trim());
    client = await CtdbClient.connect(cluster.nodes[leader].socket);
    const { volId } = await seedBenchmarkDatabases(client, leader, NODES, RECORDS, async (args) => {
      const r = await cluster.nodes[leader].ctdb(args);
      if (r.code !== 0) throw new Error(`ctdb ${args.join(' ')}: ${r.stderr}`);
    });
    // Each recovery starts from the spread: the one before gave every node every record.
    const spread = (c: CtdbClient): Promise<unknown> => Promise.all(NODES.map((pnn, n) => seedNode(c, pnn, volId, benchmarkSpread(n, NODES, RECORDS), { wipe: true })));

    const measurements: Measurement[] = [];
    for (let i = 1; i <= RUNS; i++) {
      await disableRecoveries(client, NODES, 600);
      if (i > 1) await spread(client);
      const ours = await recoverCluster(client, pipeline, { socketPath: cluster.nodes[leader].socket, stagingDir });
      if (!ours.ok) throw new Error(`our recovery failed: ${ours.error}`);
      const perDb = (ours.report?.results ?? []).filter((r) => r.name.startsWith('bench_'));
      const memory = Math.max(...perDb.map((r) => r.peakMemoryBytes ?? 0)) / 2 ** 20;
      const dbTimes = perDb.map((r) => `${r.name} ${(r.durationMs / 1000).toFixed(2)} s`).join(', ');
      measurements.push({ impl: 'ours (pipeline)', run: i, recoveryS: ours.durationMs / 1000, untilNormalS: ours.durationMs / 1000, note: `${dbTimes}; peak worker memory ${memory.toFixed(0)} MiB` });

      await spread(client);
      await disableRecoveries(client, NODES, 0);
      const before = (await clusterState(client)).generations[0];
      const triggered = Date.now();
      const started = performance.now();
      const tool = cluster.nodes[leader].ctdb(['recover'], 120_000);
      await waitForNewGeneration(client, before);
      const untilNormalS = (performance.now() - started) / 1000;
      await tool;
      const logS = helperLogInterval(cluster.nodes[leader].paths.log, triggered - 1000);
      measurements.push({ impl: 'real ctdb_recovery_helper', run: i, recoveryS: logS, untilNormalS, note: 'ACTIVE→recovered from its log; trigger includes recoverd polling (1 s loop)' });
    }
    const median = (impl: string, pick: (m: Measurement) => number): number => {
      const v = measurements.filter((m) => m.impl === impl).map(pick).sort((a, b) => a - b);
      return v[Math.floor(v.length / 2)];
    };
    const ratio = median('ours (pipeline)', (m) => m.recoveryS) / median('real ctdb_recovery_helper', (m) => m.recoveryS);
    return {
      suite: 'recovery',
      columns: ['implementation', 'run', 'recovery s', 'trigger→all NORMAL s', 'details'],
      rows: measurements.map((m) => [m.impl, m.run, m.recoveryS, m.untilNormalS, m.note]),
      notes: [
        `${RECORDS.toLocaleString('en-US')} volatile + ${RECORDS.toLocaleString('en-US')} persistent records, 3 real ctdbds on loopback, ${os.availableParallelism()} CPUs`,
        `median recovery time ours / real helper = ${ratio.toFixed(2)} (ours includes nodemaps, dbmaps, START/END_RECOVERY: the whole helper run)`,
      ],
    };
  } finally {
    if (client !== undefined) await disableRecoveries(client, NODES, 0).catch(() => undefined);
    client?.close();
    await pipeline.close();
    await cluster.stopAll();
    fs.rmSync(stagingDir, { recursive: true, force: true });
    fs.rmSync(cluster.root, { recursive: true, force: true });
  }
}

const suite: BenchSuite = {
  name: 'recovery',
  description: 'recovery of 100k volatile + 100k persistent records over 3 nodes: our pipeline vs ctdb_recovery_helper',
  run,
};
export default suite;
