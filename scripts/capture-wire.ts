// Records golden packets of the real Debian ctdb 4.17.12 binaries into test/fixtures/wire/.
//
// Phase 1 (tool <-> daemon): one /usr/sbin/ctdbd in test mode on a fresh loopback address, a recording
// unix-socket proxy in front of it, and a list of `ctdb` commands run through the proxy.
// Phase 2 (daemon <-> daemon): two ctdbds on loopback, the first one under `strace`, whose TCP reads
// and writes are reassembled into packets (keepalives, record migration, forwarded controls, ...).
// Every packet goes to its own .bin file; index.json names command, direction, operation and opcode.
// Daemons are stopped by pid at the end: `ctdb shutdown`, then SIGTERM, then SIGKILL.
//
//   npx tsc -p tsconfig.json && node dist/scripts/capture-wire.js [output dir]
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ControlCode, Operation, decodeHeader } from '../src/protocol';

const CTDBD = '/usr/sbin/ctdbd';
const CTDB = '/usr/bin/ctdb';
const STRACE = '/usr/bin/strace';
const TOOL_NODE = '127.0.77.1';
const CLUSTER_NODES = ['127.0.78.1', '127.0.78.2'];
/** Keeps fixtures small: at most this many packets of one (command, direction, operation, opcode). */
const MAX_SAME_KIND = 4;

/** Phase 1 commands; `{pid}` is the daemon's pid, `{base}` its CTDB_BASE. Disruptive ones come last. */
const TOOL_COMMANDS: string[][] = [
  ['status'],
  ['pnn'],
  ['listnodes'],
  ['ping'],
  ['uptime'],
  ['runstate'],
  ['getcapabilities'],
  ['getvar', 'RecoverInterval'],
  ['setvar', 'RecoverInterval', '1'],
  ['listvars'],
  ['statistics'],
  ['stats'],
  ['getdebug'],
  ['setdebug', 'NOTICE'],
  ['getpid'],
  ['getreclock'],
  ['ifaces'],
  ['ip'],
  ['getdbmap'],
  ['attach', 'test.tdb'],
  ['getdbstatus', 'test.tdb'],
  ['process-exists', '{pid}'],
  ['process-exists', '{pid}', '0xf101000000000000'],
  ['writekey', 'test.tdb', 'greeting', 'hello'],
  ['readkey', 'test.tdb', 'greeting'],
  ['catdb', 'test.tdb'],
  ['dbstatistics', 'test.tdb'],
  ['attach', 'persist.tdb', 'persistent'],
  ['getdbseqnum', 'persist.tdb'],
  ['pstore', 'persist.tdb', 'pkey', 'pvalue'],
  ['pfetch', 'persist.tdb', 'pkey'],
  ['backupdb', 'persist.tdb', '{base}/persist.backup'],
  ['restoredb', '{base}/persist.backup'],
  ['wipedb', 'persist.tdb'],
  ['statisticsreset'],
  ['dumpmemory'],
  ['leader'],
  ['nodestatus'],
  ['setlmasterrole', 'on'],
  ['setleaderrole', 'on'],
  ['setdbreadonly', 'test.tdb'],
  ['attach', 'sticky.tdb'],
  ['setdbsticky', 'sticky.tdb'],
  ['addip', '127.0.77.101/32', 'lo'],
  ['ipreallocate'],
  ['ip'],
  ['ipinfo', '127.0.77.101'],
  ['setifacelink', 'lo', 'up'],
  ['addtickle', '127.0.0.1:40000', '127.0.77.101:445'],
  ['gettickles', '127.0.77.101'],
  ['deltickle', '127.0.0.1:40000', '127.0.77.101:445'],
  ['delip', '127.0.77.101'],
  ['setvar', 'AllowClientDBAttach', '0'],
  ['detach', 'sticky.tdb'],
  ['disable'],
  ['enable'],
];

/** Phase 2 steps: [label, node to run `ctdb` on, arguments]; the node-to-node traffic they cause is recorded. */
const CLUSTER_STEPS: Array<[string, number, string[]]> = [
  ['attach', 0, ['attach', 'test.tdb']],
  ['attach persistent', 0, ['attach', 'persist.tdb', 'persistent']],
  ['writekey on node 0', 0, ['writekey', 'test.tdb', 'moving', 'record']],
  ['readkey on node 1 (migration)', 1, ['readkey', 'test.tdb', 'moving']],
  ['writekey on node 0 (migration back)', 0, ['writekey', 'test.tdb', 'moving', 'again']],
  ['catdb on node 1 (cluster traverse)', 1, ['catdb', 'test.tdb']],
  ['control forwarded to node 1', 0, ['-n', '1', 'uptime']],
  ['pstore on node 1', 1, ['pstore', 'persist.tdb', 'pkey', 'pvalue']],
];

export type Direction = 'tool-to-daemon' | 'daemon-to-tool' | 'node0-to-node1' | 'node1-to-node0';

const REVERSE: Record<Direction, Direction> = {
  'tool-to-daemon': 'daemon-to-tool',
  'daemon-to-tool': 'tool-to-daemon',
  'node0-to-node1': 'node1-to-node0',
  'node1-to-node0': 'node0-to-node1',
};

export interface WireRecord {
  file: string;
  command: string;
  direction: Direction;
  operation: string;
  /** Control name for REQ_CONTROL and (matched by reqid) REPLY_CONTROL. */
  opcode?: string;
}

/** Splits a byte stream into packets using the leading u32 length. */
class PacketSplitter {
  #pending = Buffer.alloc(0);

  push(chunk: Buffer, onPacket: (packet: Buffer) => void): void {
    this.#pending = Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= 4) {
      const length = this.#pending.readUInt32LE(0);
      if (length < 4 || this.#pending.length < length) return;
      onPacket(Buffer.from(this.#pending.subarray(0, length)));
      this.#pending = this.#pending.subarray(length);
    }
  }
}

class Recorder {
  readonly records: WireRecord[] = [];
  #counts = new Map<string, number>();
  /** Opcode of each request, keyed by direction and reqid; the reply travels the other way. */
  #opcodes = new Map<string, string>();

  constructor(private readonly outDir: string) {}

  record(packet: Buffer, direction: Direction, command: string): void {
    const header = decodeHeader(packet);
    const operation = Operation[header.operation] ?? `OP${header.operation}`;
    let opcode: string | undefined;
    if (header.operation === Operation.REQ_CONTROL) {
      opcode = ControlCode[packet.readUInt32LE(32)] ?? `CONTROL${packet.readUInt32LE(32)}`;
      this.#opcodes.set(`${direction}:${header.reqid}`, opcode);
    } else if (header.operation === Operation.REPLY_CONTROL) {
      opcode = this.#opcodes.get(`${REVERSE[direction]}:${header.reqid}`);
    }
    const kind = [command, direction, operation, opcode ?? ''].join('|');
    const seen = this.#counts.get(kind) ?? 0;
    this.#counts.set(kind, seen + 1);
    if (seen >= MAX_SAME_KIND) return;
    const slug = command.replace(/[^a-z0-9]+/gi, '_');
    const file = `${String(this.records.length).padStart(3, '0')}-${slug}-${direction}-${opcode ?? operation}.bin`;
    fs.writeFileSync(path.join(this.outDir, file), packet);
    this.records.push({ file, command, direction, operation, ...(opcode !== undefined && { opcode }) });
  }
}

function startProxy(listenPath: string, daemonPath: string, recorder: Recorder, command: () => string): net.Server {
  const server = net.createServer((tool) => {
    const daemon = net.createConnection(daemonPath);
    const fromTool = new PacketSplitter();
    const fromDaemon = new PacketSplitter();
    tool.on('data', (chunk) =>
      fromTool.push(chunk, (p) => {
        recorder.record(p, 'tool-to-daemon', command());
        daemon.write(p);
      }),
    );
    daemon.on('data', (chunk) =>
      fromDaemon.push(chunk, (p) => {
        recorder.record(p, 'daemon-to-tool', command());
        tool.write(p);
      }),
    );
    tool.on('close', () => daemon.destroy());
    daemon.on('close', () => tool.destroy());
    tool.on('error', () => daemon.destroy());
    daemon.on('error', () => tool.destroy());
  });
  server.listen(listenPath);
  return server;
}

interface Node {
  base: string;
  socket: string;
  env: NodeJS.ProcessEnv;
  process: ChildProcess;
}

function runCtdb(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(CTDB, args, { env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Polls `ctdb status` until every node is OK with a valid generation and a known leader. */
async function waitHealthy(node: Node, nodeCount: number): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (node.process.exitCode !== null) throw new Error(`ctdbd exited with ${node.process.exitCode}; see ${node.base}/ctdbd.stderr`);
    const r = await runCtdb(['status'], node.env);
    const healthy = (r.stdout.match(/^pnn:\d+ \S+\s+OK/gm) ?? []).length === nodeCount;
    if (r.code === 0 && healthy && /Leader:\d/.test(r.stdout) && !/Generation:INVALID/.test(r.stdout)) return;
    await sleep(250);
  }
  throw new Error(`timed out waiting for a healthy cluster; see ${node.base}/ctdbd.stderr`);
}

/** ctdb shutdown, then SIGTERM, then SIGKILL — always by the process's own pid. */
async function stopNode(node: Node): Promise<void> {
  if (await exited(node.process, 0)) return;
  await runCtdb(['shutdown'], node.env);
  if (await exited(node.process, 10_000)) return;
  node.process.kill('SIGTERM');
  if (await exited(node.process, 5_000)) return;
  node.process.kill('SIGKILL');
  await exited(node.process, 5_000);
}

/** A test-mode node directory: every path lives under CTDB_BASE; ctdbd does not create run/ itself. */
function writeConfig(base: string, address: string, nodes: string[]): void {
  for (const dir of [['events', 'legacy'], ['run'], ['var'], ['db', 'volatile'], ['db', 'persistent'], ['db', 'state']]) {
    fs.mkdirSync(path.join(base, ...dir), { recursive: true });
  }
  fs.writeFileSync(path.join(base, 'nodes'), `${nodes.join('\n')}\n`);
  fs.writeFileSync(
    path.join(base, 'ctdb.conf'),
    [
      '[logging]',
      `\tlocation = file:${path.join(base, 'log.ctdb')}`,
      '\tlog level = NOTICE',
      '[cluster]',
      `\tnode address = ${address}`,
      '[database]',
      ...['volatile', 'persistent', 'state'].map((kind) => `\t${kind} database directory = ${path.join(base, 'db', kind)}`),
      '',
    ].join('\n'),
  );
}

/** Starts ctdbd -i (foreground, so we own its pid; it logs to stderr), optionally under a wrapper. */
function startNode(base: string, address: string, nodes: string[], wrapper: string[] = []): Node {
  writeConfig(base, address, nodes);
  const socket = path.join(base, 'ctdbd.socket');
  const env = { ...process.env, CTDB_TEST_MODE: 'yes', CTDB_BASE: base, CTDB_SOCKET: socket };
  const log = fs.openSync(path.join(base, 'ctdbd.stderr'), 'a');
  const argv = [...wrapper, CTDBD, '-i'];
  const child = spawn(argv[0], argv.slice(1), { env, cwd: base, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return { base, socket, env, process: child };
}

async function captureToolTraffic(root: string, recorder: Recorder): Promise<void> {
  const node = startNode(path.join(root, 'tool'), TOOL_NODE, [TOOL_NODE]);
  let command = 'setup';
  let proxy: net.Server | undefined;
  try {
    await waitHealthy(node, 1);
    const proxySocket = path.join(node.base, 'proxy.socket');
    proxy = startProxy(proxySocket, node.socket, recorder, () => command);
    for (const args of TOOL_COMMANDS) {
      command = args.join(' ');
      const real = args.map((a) => a.replace('{pid}', String(node.process.pid)).replace('{base}', node.base));
      const r = await runCtdb(real, { ...node.env, CTDB_SOCKET: proxySocket });
      await sleep(100); // let the proxy flush the last packets of this command
      console.log(`ctdb ${command} -> exit ${r.code}${r.stderr ? ` (${r.stderr.trim().split('\n')[0]})` : ''}`);
    }
  } finally {
    proxy?.close();
    await stopNode(node);
  }
}

/** One TCP read or write of node 0 as strace printed it. */
interface TcpChunk {
  time: number;
  /** "local:port->remote:port" of node 0's socket. */
  socket: string;
  direction: Direction;
  data: Buffer;
}

/**
 * Parses `strace -f -ttt -yy -xx` output for reads and writes on TCP sockets. A call that strace split
 * into "<unfinished ...>" and "<... resumed>" lines is joined by pid.
 */
function parseTrace(text: string): TcpChunk[] {
  const pending = new Map<string, string>();
  const chunks: TcpChunk[] = [];
  for (const rawLine of text.split('\n')) {
    const resumed = /^(\d+)\s+[\d.]+ <\.\.\. (?:read|write) resumed>(.*)$/.exec(rawLine);
    let line = rawLine;
    if (resumed) {
      const start = pending.get(resumed[1]);
      if (start === undefined) continue;
      pending.delete(resumed[1]);
      line = `${start} ${resumed[2]}`;
    } else if (rawLine.endsWith('<unfinished ...>')) {
      const pid = /^(\d+)/.exec(rawLine)?.[1];
      if (pid !== undefined) pending.set(pid, rawLine.replace(/\s*<unfinished \.\.\.>$/, ''));
      continue;
    }
    const m = /^\d+\s+([\d.]+) (read|write)\(\d+<TCP:\[([^\]]+)\]>,\s*"((?:\\x[0-9a-f]{2})*)"(?:\.\.\.)?,\s*\d+\s*\) = (\d+)$/.exec(line);
    if (!m) continue;
    const count = Number(m[5]);
    if (count === 0) continue;
    const data = Buffer.from(m[4].replace(/\\x/g, ''), 'hex').subarray(0, count);
    chunks.push({ time: Number(m[1]) * 1000, socket: m[3], direction: m[2] === 'write' ? 'node0-to-node1' : 'node1-to-node0', data });
  }
  return chunks;
}

async function captureClusterTraffic(root: string, recorder: Recorder): Promise<void> {
  const trace = path.join(root, 'node0.strace');
  const straceArgs = [STRACE, '-f', '-ttt', '-yy', '-xx', '-s', '4194304', '-e', 'trace=read,write', '-o', trace];
  const nodes = CLUSTER_NODES.map((address, pnn) => startNode(path.join(root, `node${pnn}`), address, CLUSTER_NODES, pnn === 0 ? straceArgs : []));
  const steps: Array<{ label: string; start: number }> = [{ label: 'cluster startup', start: 0 }];
  try {
    await waitHealthy(nodes[0], nodes.length);
    for (const [label, pnn, args] of CLUSTER_STEPS) {
      steps.push({ label: `cluster ${label}`, start: Date.now() });
      const r = await runCtdb(args, nodes[pnn].env);
      await sleep(300);
      console.log(`node ${pnn}: ctdb ${args.join(' ')} -> exit ${r.code}${r.stderr ? ` (${r.stderr.trim().split('\n')[0]})` : ''}`);
    }
    steps.push({ label: 'cluster idle (keepalives)', start: Date.now() });
    await sleep(6_000);
    steps.push({ label: 'cluster shutdown', start: Date.now() });
  } finally {
    for (const node of [...nodes].reverse()) await stopNode(node);
  }
  const streams = new Map<string, PacketSplitter>();
  for (const chunk of parseTrace(fs.readFileSync(trace, 'utf8'))) {
    const label = [...steps].reverse().find((s) => s.start <= chunk.time)?.label ?? 'cluster startup';
    const key = `${chunk.socket}|${chunk.direction}`;
    const splitter = streams.get(key) ?? new PacketSplitter();
    streams.set(key, splitter);
    splitter.push(chunk.data, (p) => recorder.record(p, chunk.direction, label));
  }
}

async function main(): Promise<void> {
  const outDir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..', 'test', 'fixtures', 'wire'));
  fs.mkdirSync(outDir, { recursive: true });
  for (const f of fs.readdirSync(outDir)) if (f.endsWith('.bin') || f === 'index.json') fs.rmSync(path.join(outDir, f));

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdb-capture-'));
  const recorder = new Recorder(outDir);
  await captureToolTraffic(root, recorder);
  await captureClusterTraffic(root, recorder);
  fs.writeFileSync(path.join(outDir, 'index.json'), `${JSON.stringify(recorder.records, null, 1)}\n`);
  fs.rmSync(root, { recursive: true, force: true });
  console.log(`${recorder.records.length} packets written to ${outDir}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
