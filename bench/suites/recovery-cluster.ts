// `ctdb recover` on 3 nodes of OUR daemons and on 3 real Debian ctdbds, on the same data
// (100k volatile records spread over the nodes + a 100k-record persistent database on each):
// from the trigger until every node reports NORMAL in the new generation, with the leader's
// own recovery interval and each database's time read from the daemons' logs.
//
// The same log lines exist in both: the recovery daemon's "Recovery initiated" and "Recovery
// complete", the helper's (our pipeline's) "recover database 0x…" as a database starts, and each
// node's "Thaw db: NAME" as it ends there.
//
// RECOVERY_BENCH_IMPL=ours|real measures one kind only; RECOVERY_BENCH_CLUSTERS=N repeats it
// all on N fresh clusters.
import fs from 'node:fs';
import os from 'node:os';
import { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, RecMode } from '../../src/protocol';
import { LocalCluster } from '../../scripts/cluster/local-cluster';
import type { DaemonImpl } from '../../scripts/cluster/local-node';
import { pollUntil } from '../../scripts/cluster/processes';
import { BENCH_DATABASES, benchmarkSpread, seedBenchmarkDatabases, seedNode } from '../../test/recovery/seed';
import type { BenchSuite, SuiteResult } from '../suite';

const NODES = [0, 1, 2];
const RECORDS = 100_000;
const RUNS = 5;
const POLL_MS = 5;
/** The tool runs on this node: it sets recovery mode ACTIVE there, the leader notices. */
const TOOL_NODE = 0;

interface Run {
  impl: DaemonImpl;
  run: number;
  /** Trigger (tool started) → every node NORMAL in a new generation, polled every POLL_MS. */
  untilNormalS: number;
  /** The tool node's "Recovery mode set to ACTIVE" (the tool's request landed) → every node NORMAL. */
  activeToNormalS: number;
  /** Trigger → the leader's "Recovery initiated" log line. */
  startLatencyS: number;
  /** The leader's "Recovery initiated" → "Recovery complete". */
  leaderS: number;
  /** Per database: the helper's "recover database" → the last node's "Thaw db". */
  dbS: Record<string, number>;
  /** Until `ctdb recover` exits (it polls the generation once a second). */
  toolS: number;
  /** Ours: the pipeline's phases of each database in ms, from the leader's "Recovered database" lines. */
  phases: string;
}

interface LogLine {
  at: number;
  pnn: number;
  text: string;
}

function logLinesSince(cluster: LocalCluster, since: number): LogLine[] {
  const lines: LogLine[] = [];
  for (const node of cluster.nodes) {
    for (const text of fs.readFileSync(node.paths.log, 'utf8').split('\n')) {
      const at = Date.parse(text.slice(0, text.indexOf(' ')));
      if (at >= since) lines.push({ at, pnn: node.pnn, text });
    }
  }
  return lines.sort((a, b) => a.at - b.at);
}

function firstAt(lines: readonly LogLine[], pattern: RegExp, pnn?: number): number {
  const line = lines.find((l) => (pnn === undefined || l.pnn === pnn) && pattern.test(l.text));
  if (line === undefined) throw new Error(`no log line matches ${pattern}${pnn === undefined ? '' : ` on node ${pnn}`}`);
  return line.at;
}

function lastAt(lines: readonly LogLine[], pattern: RegExp): number {
  const matching = lines.filter((l) => pattern.test(l.text));
  if (matching.length === 0) throw new Error(`no log line matches ${pattern}`);
  return matching[matching.length - 1].at;
}

async function clusterView(client: CtdbClient): Promise<{ modes: number[]; generations: number[] }> {
  const opts = { timeoutMs: 5000 };
  const [modes, generations] = await Promise.all([
    Promise.all(NODES.map(async (pnn) => (await client.control(pnn, ControlCode.GET_RECMODE, Buffer.alloc(0), opts)).status)),
    Promise.all(NODES.map(async (pnn) => (await client.call(pnn, ControlCode.GETVNNMAP, undefined, opts)).reply.generation)),
  ]);
  return { modes, generations };
}

async function measureImpl(impl: DaemonImpl): Promise<Run[]> {
  const cluster = await LocalCluster.create({ nodes: NODES.length, impl, tunables: { RerecoveryTimeout: 0 } });
  let client: CtdbClient | undefined;
  try {
    await cluster.startAll();
    const first = await CtdbClient.connect(cluster.nodes[TOOL_NODE].socket);
    const settled = async (): Promise<boolean> => (await cluster.nodes[0].ctdb(['nodestatus', 'all'])).code === 0 && (await clusterView(first)).modes.every((m) => m === RecMode.NORMAL);
    const healthy = await pollUntil(() => settled().catch(() => false), 90_000, 200);
    first.close();
    if (!healthy) throw new Error(`${impl} cluster not healthy\n${cluster.logTails(20)}`);
    const leader = Number((await cluster.nodes[0].ctdb(['leader'])).stdout.trim());
    client = await CtdbClient.connect(cluster.nodes[TOOL_NODE].socket);
    const ids = await seedBenchmarkDatabases(client, leader, NODES, RECORDS, async (args) => {
      const r = await cluster.nodes[leader].ctdb(args);
      if (r.code !== 0) throw new Error(`ctdb ${args.join(' ')}: ${r.stderr}`);
    });
    const databases = [
      { name: BENCH_DATABASES.volatile, id: ids.volId },
      { name: BENCH_DATABASES.persistent, id: ids.persId },
    ];
    const runs: Run[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const view = client;
      // Every run starts from the spread: the previous recovery gave every node every record.
      if (run > 1) await Promise.all(NODES.map((pnn, n) => seedNode(view, pnn, ids.volId, benchmarkSpread(n, NODES, RECORDS), { wipe: true })));
      const before = (await clusterView(view)).generations[0];
      const triggered = Date.now();
      const started = performance.now();
      const tool = cluster.nodes[TOOL_NODE].ctdb(['recover'], 120_000).then((r) => ({ ...r, s: (performance.now() - started) / 1000 }));
      const normal = await pollUntil(async () => {
        const s = await clusterView(view);
        return s.modes.every((m) => m === RecMode.NORMAL) && s.generations.every((g) => g !== before && g === s.generations[0]);
      }, 120_000, POLL_MS);
      const untilNormalS = (performance.now() - started) / 1000;
      if (!normal) throw new Error(`${impl}: no new generation with every node NORMAL\n${cluster.logTails(30)}`);
      const exited = await tool;
      if (exited.code !== 0) throw new Error(`${impl}: ctdb recover failed: ${exited.stderr}`);
      // The last node's thaw may be logged a moment after its NORMAL was seen.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const lines = logLinesSince(cluster, triggered - 1);
      const activated = firstAt(lines, /Recovery mode set to ACTIVE/, TOOL_NODE);
      const initiated = firstAt(lines, /Recovery initiated/, leader);
      const complete = firstAt(lines, /Recovery complete/, leader);
      const dbS: Record<string, number> = {};
      for (const db of databases) {
        const hex = db.id.toString(16).padStart(8, '0');
        dbS[db.name] = (lastAt(lines, new RegExp(`Thaw db: ${db.name.replace('.', '\\.')} `)) - firstAt(lines, new RegExp(`recover database 0x${hex}`), leader)) / 1000;
      }
      const phases = lines
        .filter((l) => l.pnn === leader)
        .map((l) => /Recovered database (\S+): .*\((freeze .*)\)$/.exec(l.text))
        .flatMap((m) => (m === null ? [] : [`${m[1]}: ${m[2]}`]))
        .join('; ');
      runs.push({ impl, run, untilNormalS, activeToNormalS: (triggered + untilNormalS * 1000 - activated) / 1000, startLatencyS: (initiated - triggered) / 1000, leaderS: (complete - initiated) / 1000, dbS, toolS: exited.s, phases });
    }
    return runs;
  } finally {
    client?.close();
    await cluster.stopAll();
    fs.rmSync(cluster.root, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}

async function run(): Promise<SuiteResult> {
  const only = process.env.RECOVERY_BENCH_IMPL as DaemonImpl | undefined;
  const impls: DaemonImpl[] = only === undefined ? ['real', 'ours'] : [only];
  // Run 1 of a cluster is its first recovery (files grow, threads are cold): more fresh
  // clusters give its spread on a noisy machine.
  const clusters = Math.max(1, Number(process.env.RECOVERY_BENCH_CLUSTERS ?? 1));
  const runs: Run[] = [];
  for (let c = 0; c < clusters; c++) for (const impl of impls) runs.push(...(await measureImpl(impl)));
  const medianOf = (impl: DaemonImpl, pick: (r: Run) => number, which: (r: Run) => boolean = () => true): number =>
    median(runs.filter((r) => r.impl === impl && which(r)).map(pick));
  const notes = [
    `${RECORDS.toLocaleString('en-US')} volatile (key i on node i % 3) + ${RECORDS.toLocaleString('en-US')} persistent records (same on every node), 3 nodes on loopback, ${os.availableParallelism()} CPUs; \`ctdb recover\` on node ${TOOL_NODE}, RerecoveryTimeout 0`,
    'trigger = `ctdb recover` started (it first waits for a leader broadcast: up to 1 s from ctdbd; ours broadcasts every 50 ms and its leader answers the registration at once); ACTIVE = its SET_RECMODE landed on node 0 (log); start = trigger → leader logs "Recovery initiated"; leader = "Recovery initiated" → "Recovery complete"; db = "recover database 0x…" → last node\'s "Thaw db"',
    'before runs 2+ the volatile database is wiped and re-seeded with the spread on every node (so each run moves every volatile record); the persistent one stays identical on all nodes',
  ];
  if (impls.length === 2) {
    for (const [label, pick] of [
      ['trigger→all NORMAL', (r: Run) => r.untilNormalS],
      ['ACTIVE→all NORMAL', (r: Run) => r.activeToNormalS],
      ['leader recovery', (r: Run) => r.leaderS],
    ] as const) {
      notes.push(`median ${label}: ours ${medianOf('ours', pick).toFixed(3)} s, real ${medianOf('real', pick).toFixed(3)} s, ours/real = ${(medianOf('ours', pick) / medianOf('real', pick)).toFixed(2)}`);
    }
  }
  if (clusters > 1) {
    const first = (r: Run): boolean => r.run === 1;
    for (const impl of impls) notes.push(`${impl}, first recovery of ${clusters} fresh clusters: trigger→all NORMAL ${runs.filter((r) => r.impl === impl && first(r)).map((r) => r.untilNormalS.toFixed(2)).join(', ')} s (median ${medianOf(impl, (r) => r.untilNormalS, first).toFixed(3)} s)`);
  }
  return {
    suite: 'recovery-cluster',
    columns: ['daemons', 'run', 'trigger→all NORMAL s', 'ACTIVE→all NORMAL s', 'start s', 'leader s', `${BENCH_DATABASES.volatile} s`, `${BENCH_DATABASES.persistent} s`, 'tool exits s', 'pipeline phases ms'],
    rows: runs.map((r) => [r.impl, r.run, r.untilNormalS, r.activeToNormalS, r.startLatencyS, r.leaderS, r.dbS[BENCH_DATABASES.volatile], r.dbS[BENCH_DATABASES.persistent], r.toolS, r.phases]),
    notes,
  };
}

const suite: BenchSuite = {
  name: 'recovery-cluster',
  description: '`ctdb recover` of 100k volatile + 100k persistent records on 3 nodes: our daemons vs real ctdbds',
  run,
};
export default suite;
