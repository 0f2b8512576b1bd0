// Records golden packets between the real Debian `ctdb` tool and the real `ctdbd` (4.17.12).
//
// Starts /usr/sbin/ctdbd in test mode on one fresh loopback address, puts a recording unix-socket
// proxy in front of it, runs a list of `ctdb` commands through the proxy and writes every packet in
// both directions to test/fixtures/wire/*.bin plus index.json. Stops the daemon by pid at the end.
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
const NODE_ADDRESS = '127.0.77.1';
/** Keeps fixtures small: at most this many packets of one (command, direction, operation, opcode). */
const MAX_SAME_KIND = 4;

/** The commands to record; `{pid}` is the daemon's pid, `{base}` its CTDB_BASE. Disruptive ones come last. */
const COMMANDS: string[][] = [
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

export type Direction = 'tool-to-daemon' | 'daemon-to-tool';

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
  command = 'setup';
  #counts = new Map<string, number>();
  #opcodeByReqid = new Map<number, string>();

  constructor(private readonly outDir: string) {}

  record(packet: Buffer, direction: Direction): void {
    const header = decodeHeader(packet);
    const operation = Operation[header.operation] ?? `OP${header.operation}`;
    let opcode: string | undefined;
    if (header.operation === Operation.REQ_CONTROL) {
      opcode = ControlCode[packet.readUInt32LE(32)] ?? `CONTROL${packet.readUInt32LE(32)}`;
      this.#opcodeByReqid.set(header.reqid, opcode);
    } else if (header.operation === Operation.REPLY_CONTROL) {
      opcode = this.#opcodeByReqid.get(header.reqid);
    }
    const kind = [this.command, direction, operation, opcode ?? ''].join('|');
    const seen = this.#counts.get(kind) ?? 0;
    this.#counts.set(kind, seen + 1);
    if (seen >= MAX_SAME_KIND) return;
    const slug = this.command.replace(/[^a-z0-9]+/gi, '_');
    const file = `${String(this.records.length).padStart(3, '0')}-${slug}-${direction === 'tool-to-daemon' ? 'req' : 'rep'}-${opcode ?? operation}.bin`;
    fs.writeFileSync(path.join(this.outDir, file), packet);
    this.records.push({ file, command: this.command, direction, operation, ...(opcode !== undefined && { opcode }) });
  }
}

function startProxy(listenPath: string, daemonPath: string, recorder: Recorder): net.Server {
  const server = net.createServer((tool) => {
    const daemon = net.createConnection(daemonPath);
    const fromTool = new PacketSplitter();
    const fromDaemon = new PacketSplitter();
    tool.on('data', (chunk) =>
      fromTool.push(chunk, (p) => {
        recorder.record(p, 'tool-to-daemon');
        daemon.write(p);
      }),
    );
    daemon.on('data', (chunk) =>
      fromDaemon.push(chunk, (p) => {
        recorder.record(p, 'daemon-to-tool');
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

function runCtdb(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(CTDB, args, { env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

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

/** ctdb shutdown, then SIGTERM, then SIGKILL — always by the daemon's own pid. */
async function stopDaemon(daemon: ChildProcess, env: NodeJS.ProcessEnv): Promise<void> {
  if (await exited(daemon, 0)) return;
  await runCtdb(['shutdown'], env);
  if (await exited(daemon, 10_000)) return;
  daemon.kill('SIGTERM');
  if (await exited(daemon, 5_000)) return;
  daemon.kill('SIGKILL');
  await exited(daemon, 5_000);
}

function writeConfig(base: string): void {
  // In test mode every directory lives under CTDB_BASE; ctdbd does not create run/ itself.
  for (const dir of [['events', 'legacy'], ['run'], ['var']]) fs.mkdirSync(path.join(base, ...dir), { recursive: true });
  for (const dir of ['volatile', 'persistent', 'state']) fs.mkdirSync(path.join(base, 'db', dir), { recursive: true });
  fs.writeFileSync(path.join(base, 'nodes'), `${NODE_ADDRESS}\n`);
  fs.writeFileSync(
    path.join(base, 'ctdb.conf'),
    [
      '[logging]',
      `\tlocation = file:${path.join(base, 'log.ctdb')}`,
      '\tlog level = NOTICE',
      '[cluster]',
      `\tnode address = ${NODE_ADDRESS}`,
      '[database]',
      `\tvolatile database directory = ${path.join(base, 'db', 'volatile')}`,
      `\tpersistent database directory = ${path.join(base, 'db', 'persistent')}`,
      `\tstate database directory = ${path.join(base, 'db', 'state')}`,
      '',
    ].join('\n'),
  );
}

async function main(): Promise<void> {
  const outDir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..', 'test', 'fixtures', 'wire'));
  fs.mkdirSync(outDir, { recursive: true });
  for (const f of fs.readdirSync(outDir)) if (f.endsWith('.bin') || f === 'index.json') fs.rmSync(path.join(outDir, f));

  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdb-capture-'));
  writeConfig(base);
  const daemonSocket = path.join(base, 'ctdbd.socket');
  const proxySocket = path.join(base, 'proxy.socket');
  const daemonEnv = { ...process.env, CTDB_TEST_MODE: 'yes', CTDB_BASE: base, CTDB_SOCKET: daemonSocket };
  const toolEnv = { ...daemonEnv, CTDB_SOCKET: proxySocket };

  // -i keeps ctdbd in the foreground (we own its pid) and logs to stderr.
  const log = fs.openSync(path.join(base, 'ctdbd.stderr'), 'a');
  const daemon = spawn(CTDBD, ['-i'], { env: daemonEnv, cwd: base, stdio: ['ignore', log, log] });
  const recorder = new Recorder(outDir);
  let proxy: net.Server | undefined;
  try {
    await waitFor('ctdbd to reach RUNNING with a leader', 60_000, async () => {
      if (daemon.exitCode !== null) throw new Error(`ctdbd exited with ${daemon.exitCode}; see ${base}/ctdbd.stderr`);
      const r = await runCtdb(['status'], daemonEnv);
      return r.code === 0 && /Leader:\d/.test(r.stdout) && !/Generation:INVALID/.test(r.stdout);
    });
    proxy = startProxy(proxySocket, daemonSocket, recorder);
    for (const args of COMMANDS) {
      const real = args.map((a) => a.replace('{pid}', String(daemon.pid)).replace('{base}', base));
      recorder.command = args.join(' ');
      const r = await runCtdb(real, toolEnv);
      await sleep(100); // let the proxy flush the last packets of this command
      console.log(`ctdb ${recorder.command} -> exit ${r.code}${r.stderr ? ` (${r.stderr.trim().split('\n')[0]})` : ''}`);
    }
  } finally {
    proxy?.close();
    await stopDaemon(daemon, daemonEnv);
    fs.closeSync(log);
  }
  fs.writeFileSync(path.join(outDir, 'index.json'), `${JSON.stringify(recorder.records, null, 1)}\n`);
  fs.rmSync(base, { recursive: true, force: true });
  console.log(`${recorder.records.length} packets written to ${outDir}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
