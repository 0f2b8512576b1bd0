// Shared pieces of the store tests: temp files, seeded random records, and the libtdb
// oracles (python3-tdb / libtdb via oracle.py, Debian's tdbdump and tdbtool).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TdbFile, type CheckReport } from '../../src/store';

export const execFileAsync = promisify(execFile);
export const PYTHON = '/usr/bin/python3'; // the Debian interpreter that has python3-tdb
export const ORACLE = path.join(__dirname, 'fixtures', 'oracle.py');
export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST_TOOLS = path.join(ROOT, 'dist', 'src', 'tools');

/** Test sizes: full counts by default, smaller with TDB_TEST_SCALE=0.1 etc. */
export function scaled(n: number): number {
  const scale = Number(process.env.TDB_TEST_SCALE ?? '1');
  return Math.max(1, Math.round(n * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

export function makeTempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type RecordMap = Map<string, Buffer>; // hex key -> value

/** n unique random keys (the empty key included) with random values, some empty. */
export function randomRecords(n: number, seed: number): RecordMap {
  const rand = prng(seed);
  const bytes = (len: number): Buffer => Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
  const records: RecordMap = new Map([['', Buffer.from('value of the empty key')]]);
  while (records.size < n) {
    const key = bytes(1 + Math.floor(rand() * 32));
    records.set(key.toString('hex'), bytes(Math.floor(rand() * 3) === 0 ? 0 : Math.floor(rand() * 200)));
  }
  return records;
}

export function writeRecordsFile(file: string, records: RecordMap): void {
  const parts: Buffer[] = [];
  for (const [hexKey, value] of records) {
    const key = Buffer.from(hexKey, 'hex');
    const lens = Buffer.alloc(8);
    lens.writeUInt32LE(key.length, 0);
    lens.writeUInt32LE(value.length, 4);
    parts.push(lens, key, value);
  }
  fs.writeFileSync(file, Buffer.concat(parts));
}

export function parseHexDump(text: string): RecordMap {
  const map: RecordMap = new Map();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [k, v] = line.split(' ');
    map.set(k, Buffer.from(v ?? '', 'hex'));
  }
  return map;
}

/** The header's recovery area offset, and whether a live recovery record waits there (a commit died in it). */
export function recoveryArea(file: string): { head: number; pending: boolean } {
  const buf = fs.readFileSync(file);
  const hdrOfs = buf.readUInt32LE(64); // the header's mutex_size: the logical file starts after the mutexes
  const head = buf.readUInt32LE(hdrOfs + 44);
  return { head, pending: head !== 0 && buf.readUInt32LE(hdrOfs + head + 20) === 0xf53bc0e7 };
}

/**
 * libtdb and our store each open (and so recover) a copy of a crashed file: the records each
 * then sees (key and value as strings), our check of our copy, and where the copies are.
 */
export async function recoverBoth(file: string, flags: number): Promise<{ libtdbView: Map<string, string>; ourView: Map<string, string>; check: CheckReport; forLibtdb: string; forUs: string }> {
  const forLibtdb = `${file}.libtdb`;
  const forUs = `${file}.ours`;
  fs.copyFileSync(file, forLibtdb);
  fs.copyFileSync(file, forUs);
  const libtdbView = new Map([...parseHexDump(await oracle(['dump', forLibtdb, String(flags)]))].map(([k, v]) => [Buffer.from(k, 'hex').toString(), v.toString()]));
  const ours = TdbFile.open(forUs, { flags, access: 'rw' });
  try {
    const ourView = new Map<string, string>();
    ours.traverseRead((k, v) => {
      ourView.set(k.toString(), v.toString());
    });
    return { libtdbView, ourView, check: ours.check(), forLibtdb, forUs };
  } finally {
    ours.close();
  }
}

export async function oracle(args: string[], timeout = 120_000): Promise<string> {
  const { stdout } = await execFileAsync(PYTHON, [ORACLE, ...args], { maxBuffer: 1 << 30, timeout });
  return stdout;
}

/** Runs a command and returns stdout, whatever the exit code. */
export async function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await execFileAsync(cmd, args, { maxBuffer: 1 << 30, timeout: 120_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : -1 };
  }
}

/** The CLIs are tested as built: compile if dist is missing or older than the sources. */
export function ensureToolsBuilt(): void {
  const built = path.join(DIST_TOOLS, 'tdbdump.js');
  const newest = Math.max(
    ...['src/store', 'src/tools'].flatMap((d) => fs.readdirSync(path.join(ROOT, d)).map((f) => fs.statSync(path.join(ROOT, d, f)).mtimeMs)),
  );
  if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < newest) {
    try {
      require('node:child_process').execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    } catch {
      // Type errors elsewhere in the tree do not stop tsc from emitting our files.
    }
  }
  if (!fs.existsSync(built)) throw new Error(`${built} missing: run npm run build`);
}

/** Spawns a child and resolves with its first stdout line. */
export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before writing a line: ${buf}`)));
    child.on('error', reject);
  });
}

/** Kills every child still running: tests stop what they start, also on failure. */
export class Children {
  readonly #all: ChildProcess[] = [];
  spawn(cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    this.#all.push(child);
    return child;
  }
  killAll(): void {
    for (const c of this.#all) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** Runs `body` with a fresh Children set and kills whatever it left running. */
export async function withChildren<T>(body: (children: Children) => Promise<T>): Promise<T> {
  const children = new Children();
  try {
    return await body(children);
  } finally {
    children.killAll();
  }
}
