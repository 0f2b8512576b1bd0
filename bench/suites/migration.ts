// Hot records under many clients: 1000 clients spread over 3 nodes increment 10 shared counter
// records through the migration path (fetch_lock as smbd does it: chain lock in the node's file,
// REQ_CALL IMMEDIATE_MIGRATION when another node holds the record). Run against our daemon and
// Debian's ctdbd in the same run. Besides throughput and fetch latency it measures whether the
// daemon itself stalls: a probe process sends each node a control every 10 ms and records the
// longest answer time.
import { CtdbClient } from '../../src/client/ctdb-client';
import { fetchRecordHere, updateRecord } from '../../src/client/fetch-lock';
import { startLatencyProbe } from '../latency-probe';
import { ControlCode, Pnn } from '../../src/protocol';
import { TdbFile } from '../../src/store';
import { LocalCluster } from '../../scripts/cluster/local-cluster';
import type { DaemonImpl } from '../../scripts/cluster/local-node';
import { pollUntil } from '../../scripts/cluster/processes';
import type { BenchSuite, SuiteResult } from '../suite';

const NODES = 3;
const CLIENTS = Number(process.env.MIGRATION_BENCH_CLIENTS ?? 1000);
const HOT_KEYS = 10;
const DURATION_MS = Number(process.env.MIGRATION_BENCH_SECONDS ?? 10) * 1000;

interface Outcome {
  impl: DaemonImpl;
  increments: number;
  migrations: number;
  fetchP50: number;
  fetchP99: number;
  fetchMax: number;
  probeMax: number;
  sumOk: boolean;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function measure(impl: DaemonImpl): Promise<Outcome> {
  const cluster = await LocalCluster.create({ nodes: NODES, impl });
  const clients: CtdbClient[] = [];
  const files: TdbFile[] = [];
  try {
    await cluster.startAll();
    const healthy = await pollUntil(async () => (await cluster.nodes[0].ctdb(['nodestatus', 'all'])).code === 0, 60_000, 200);
    if (!healthy) throw new Error(`${impl} cluster not healthy\n${cluster.logTails(20)}`);
    let dbId = 0;
    for (const node of cluster.nodes) {
      const client = await CtdbClient.connect(node.socket);
      clients.push(client);
      dbId = (await client.call(Pnn.CURRENT_NODE, ControlCode.DB_ATTACH, 'hot.tdb')).reply;
      const path = (await client.call(Pnn.CURRENT_NODE, ControlCode.GETDBPATH, dbId)).reply;
      const flags = (await client.call(Pnn.CURRENT_NODE, ControlCode.DB_OPEN_FLAGS, dbId)).reply;
      if (path === null) throw new Error(`${impl}: no path for hot.tdb`);
      files.push(TdbFile.open(path, { flags, access: 'rw' }));
    }
    const workers: { client: CtdbClient; node: number }[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const node = i % NODES;
      const client = await CtdbClient.connect(cluster.nodes[node].socket);
      clients.push(client);
      workers.push({ client, node });
    }
    const keys = Array.from({ length: HOT_KEYS }, (_, i) => Buffer.from(`hot-key-${i}`));
    const latencies: number[] = [];
    let increments = 0;
    let migrations = 0;
    let running = true;
    const probe = await startLatencyProbe(cluster.nodes.map((n) => n.socket));
    const loops = workers.map(async ({ client, node }, i) => {
      let k = i % HOT_KEYS;
      while (running) {
        const t0 = performance.now();
        const seen = await updateRecord(client, files[node], dbId, keys[k], ({ data }) => {
          const next = Buffer.alloc(8);
          next.writeBigUInt64LE((data.length === 8 ? data.readBigUInt64LE(0) : 0n) + 1n);
          return next;
        });
        latencies.push(performance.now() - t0);
        migrations += seen.migrations;
        increments++;
        k = (k + 1) % HOT_KEYS;
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, DURATION_MS));
    running = false;
    await Promise.all(loops);
    const probeMax = await probe.stop();
    let total = 0n;
    for (const key of keys) {
      const { data } = await fetchRecordHere(clients[0], files[0], dbId, key);
      total += data.length === 8 ? data.readBigUInt64LE(0) : 0n;
    }
    latencies.sort((a, b) => a - b);
    return {
      impl,
      increments,
      migrations,
      fetchP50: percentile(latencies, 0.5),
      fetchP99: percentile(latencies, 0.99),
      fetchMax: latencies[latencies.length - 1] ?? Number.NaN,
      probeMax,
      sumOk: total === BigInt(increments),
    };
  } finally {
    for (const c of clients) c.close();
    for (const f of files) f.close();
    await cluster.stopAll();
  }
}

async function run(): Promise<SuiteResult> {
  const outcomes = [await measure('ours'), await measure('real')];
  const [ours, real] = outcomes;
  const seconds = DURATION_MS / 1000;
  return {
    suite: 'migration',
    columns: ['daemon', 'increments/s', 'migrations/s', 'fetch p50 ms', 'fetch p99 ms', 'fetch max ms', 'daemon probe max ms', 'no lost update'],
    rows: outcomes.map((o) => [o.impl, o.increments / seconds, o.migrations / seconds, o.fetchP50, o.fetchP99, o.fetchMax, o.probeMax, o.sumOk ? 'yes' : 'NO']),
    notes: [
      `${CLIENTS} clients over ${NODES} nodes, ${HOT_KEYS} hot records, ${seconds} s each; clients run in this one process`,
      `throughput ours / real = ${(ours.increments / real.increments).toFixed(2)}; daemon probe max ours ${ours.probeMax.toFixed(1)} ms vs real ${real.probeMax.toFixed(1)} ms (target: ours never stalls > 100 ms)`,
    ],
  };
}

const suite: BenchSuite = {
  name: 'migration',
  description: 'hot records under 1000 clients on 3 nodes, ours vs Debian ctdbd',
  run,
};
export default suite;
