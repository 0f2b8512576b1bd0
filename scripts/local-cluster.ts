// `npm run cluster`: a local test-mode cluster of our ctdbd (or Debian's, --real) on loopback
// addresses, in the foreground until Ctrl-C, which stops every node it started.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LocalCluster } from './cluster/local-cluster';
import { isAlive } from './cluster/processes';

const USAGE = `Usage: npm run cluster -- [--nodes N] [--real] [--dir DIR]

  --nodes N   number of nodes (default 3)
  --real      run Debian's /usr/sbin/ctdbd instead of ours
  --dir DIR   parent of the node.N base directories (default /tmp/ctdb-local-cluster)
`;

const WATCH_INTERVAL_MS = 2_000;

interface ClusterArgs {
  nodes: number;
  real: boolean;
  dir: string;
}

function parseClusterArgs(argv: string[]): ClusterArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '3' },
      real: { type: 'boolean', default: false },
      dir: { type: 'string', default: '/tmp/ctdb-local-cluster' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 254) throw new Error(`--nodes must be 1..254, not ${values.nodes}`);
  return { nodes, real: values.real, dir: path.resolve(values.dir) };
}

function describeNodes(cluster: LocalCluster): string {
  const lines = cluster.nodes.map((node) =>
    [
      `node ${node.pnn}: ${node.address}  pid ${node.pid}  log ${node.paths.log}`,
      `  CTDB_BASE=${node.base} CTDB_SOCKET=${node.socket} ctdb status`,
    ].join('\n'),
  );
  return `${lines.join('\n')}\n\nCtrl-C stops the cluster.\n`;
}

async function main(): Promise<void> {
  const args = parseClusterArgs(process.argv.slice(2));
  const impl = args.real ? 'real' : 'ours';
  console.log(`starting ${args.nodes} ${impl === 'real' ? "Debian ctdbd" : 'ctdbd (ours)'} node(s) under ${args.dir} ...`);
  const cluster = await LocalCluster.create({ nodes: args.nodes, impl, root: args.dir, preferredBlock: [127, 0, 10] });
  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${why}: stopping all nodes ...`);
    await cluster.stopAll();
    console.log('stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('exit', () => cluster.killAll());
  try {
    await cluster.startAll();
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${cluster.logTails(20)}`);
    await cluster.stopAll();
    process.exit(1);
  }
  process.stdout.write(describeNodes(cluster));
  const reported = new Set<number>();
  setInterval(() => {
    for (const node of cluster.nodes) {
      if (node.pid !== undefined && !isAlive(node.pid) && !reported.has(node.pnn)) {
        reported.add(node.pnn);
        console.log(`node ${node.pnn} (pid ${node.pid}) has exited; see ${node.paths.log}`);
      }
    }
  }, WATCH_INTERVAL_MS);
}

main().catch((err: unknown) => {
  console.error(`local-cluster: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
