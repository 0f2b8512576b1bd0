// One node's CTDB_BASE directory for a test-mode cluster, laid out the way CTDB's own
// local_daemons.sh does it: in test mode every path (run/, var/, config, nodes file) is
// relative to CTDB_BASE, so one directory per node is all a daemon needs.
import fs from 'node:fs';
import path from 'node:path';

export interface NodeBaseOptions {
  /** The node's CTDB_BASE; created (and emptied first if it exists). */
  base: string;
  /** Every node's address, in PNN order: becomes the nodes file. */
  addresses: readonly string[];
  /** This node's PNN (index into addresses). */
  pnn: number;
  /** Extra ctdb.conf text appended after the generated sections. */
  config?: string;
  tunables?: Readonly<Record<string, number>>;
  /** Content of the public_addresses file ("IP/bits iface" lines); no file when absent. */
  publicAddresses?: string;
}

export interface NodeBasePaths {
  base: string;
  socket: string;
  pidFile: string;
  /** The daemon's own log (ctdb.conf [logging] location). */
  log: string;
  /** stdout/stderr of the ctdbd process as started (startup errors, crashes). */
  output: string;
}

export function nodeBasePaths(base: string): NodeBasePaths {
  return {
    base,
    socket: path.join(base, 'run', 'ctdbd.socket'),
    pidFile: path.join(base, 'run', 'ctdbd.pid'),
    log: path.join(base, 'log.ctdb'),
    output: path.join(base, 'ctdbd.out'),
  };
}

export function writeNodeBase(options: NodeBaseOptions): NodeBasePaths {
  const { base, addresses, pnn } = options;
  const address = addresses[pnn];
  if (address === undefined) throw new RangeError(`pnn ${pnn} is not in the ${addresses.length}-node address list`);
  const paths = nodeBasePaths(base);
  fs.rmSync(base, { recursive: true, force: true });
  const dbDir = path.join(base, 'db');
  for (const dir of ['run', 'var', path.join('events', 'legacy'), path.join('db', 'volatile'), path.join('db', 'persistent'), path.join('db', 'state')]) {
    fs.mkdirSync(path.join(base, dir), { recursive: true });
  }
  fs.writeFileSync(path.join(base, 'nodes'), addresses.map((a) => `${a}\n`).join(''));
  fs.writeFileSync(path.join(base, 'ctdb.conf'), ctdbConf(paths.log, address, dbDir) + (options.config ? `\n${options.config}\n` : ''));
  if (options.publicAddresses !== undefined) fs.writeFileSync(path.join(base, 'public_addresses'), options.publicAddresses);
  if (options.tunables) {
    const lines = Object.entries(options.tunables).map(([name, value]) => `${name}=${value}\n`);
    fs.writeFileSync(path.join(base, 'ctdb.tunables'), lines.join(''));
  }
  return paths;
}

function ctdbConf(logFile: string, address: string, dbDir: string): string {
  return [
    '[logging]',
    `\tlocation = file:${logFile}`,
    '\tlog level = INFO',
    '',
    '[cluster]',
    `\tnode address = ${address}`,
    '',
    '[database]',
    `\tvolatile database directory = ${path.join(dbDir, 'volatile')}`,
    `\tpersistent database directory = ${path.join(dbDir, 'persistent')}`,
    `\tstate database directory = ${path.join(dbDir, 'state')}`,
    '',
  ].join('\n');
}
