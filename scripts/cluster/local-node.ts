// One daemon of a local test-mode cluster: started like CTDB's own harness starts it (no
// arguments, daemonising, only CTDB_BASE + CTDB_TEST_MODE + PATH in the environment, a pipe
// as stdin) and stopped by pid: `ctdb shutdown`, then SIGTERM, then SIGKILL.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import { runCtdb } from './ctdb-tool';
import type { ToolResult } from './ctdb-tool';
import type { NodeBasePaths } from './node-base';
import { isAlive, killProcessTree, openLifeline, pollUntil, signalProcess, waitForExit } from './processes';

export type DaemonImpl = 'ours' | 'real';

export const REAL_CTDBD = '/usr/sbin/ctdbd';

export interface LocalNodeOptions {
  pnn: number;
  address: string;
  paths: NodeBasePaths;
  binary: string;
  /** Added to the daemon's CTDB_BASE / CTDB_TEST_MODE / PATH environment. */
  env?: NodeJS.ProcessEnv;
}

/** Held (exclusively) by every `node-gyp rebuild` in this shared tree; see the developer guide. */
const NATIVE_BUILD_LOCK = '/tmp/ctdb-native-build.lock';

/** Our daemon loads the addon as it starts: not while a rebuild has removed it. */
export async function waitForNativeBuild(): Promise<void> {
  await promisify(execFile)('flock', ['--shared', NATIVE_BUILD_LOCK, 'true']);
}

const START_TIMEOUT_MS = 30_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
const SIGTERM_TIMEOUT_MS = 5_000;

export class LocalNode {
  readonly pnn: number;
  readonly address: string;
  readonly paths: NodeBasePaths;
  readonly binary: string;
  readonly #env: NodeJS.ProcessEnv;
  /** The daemon's pid (from its pid file) while it runs. */
  pid: number | undefined;
  /** Process groups this node's daemons were started in: SIGKILL takes the whole group. */
  readonly #groups: number[] = [];
  /** Write end of the daemon's stdin FIFO (see openLifeline). */
  #lifeline: number | undefined;

  constructor(options: LocalNodeOptions) {
    this.pnn = options.pnn;
    this.address = options.address;
    this.paths = options.paths;
    this.binary = options.binary;
    this.#env = options.env ?? {};
  }

  get base(): string {
    return this.paths.base;
  }

  get socket(): string {
    return this.paths.socket;
  }

  daemonEnv(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH, CTDB_BASE: this.base, CTDB_TEST_MODE: 'yes', ...this.#env };
  }

  /** Starts the daemon and waits until its pid file names a live process and its socket accepts. */
  async start(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    if (this.pid !== undefined && isAlive(this.pid)) throw new Error(`node ${this.pnn} is already running as pid ${this.pid}`);
    this.pid = undefined;
    this.#closeLifeline();
    if (this.binary !== REAL_CTDBD) await waitForNativeBuild();
    const output = fs.openSync(this.paths.output, 'a');
    const lifeline = openLifeline(this.base);
    this.#lifeline = lifeline.writeEnd;
    try {
      const launcher = spawn(this.binary, [], { cwd: this.base, env: this.daemonEnv(), stdio: [lifeline.readEnd, output, output], detached: true });
      if (launcher.pid !== undefined) this.#groups.push(launcher.pid);
      const code = await new Promise<number | string>((resolve, reject) => {
        launcher.once('error', (err) => reject(new Error(`cannot start ${this.binary} for node ${this.pnn}: ${err.message}`)));
        launcher.once('exit', (exitCode, signal) => resolve(exitCode ?? signal ?? 'unknown'));
      });
      if (code !== 0) throw new Error(`${this.binary} for node ${this.pnn} exited with ${code} while starting`);
      const up = await pollUntil(async () => this.#readLivePid() !== undefined && (await canConnect({ path: this.socket })), timeoutMs);
      if (!up) throw new Error(`node ${this.pnn} (${this.binary}) did not come up within ${timeoutMs} ms: no live pid in ${this.paths.pidFile} or no listener on ${this.socket}`);
      this.pid = this.#readLivePid();
      if (this.pid !== undefined) this.#groups.push(this.pid);
    } catch (err) {
      this.killNow();
      throw err;
    } finally {
      fs.closeSync(output);
      fs.closeSync(lifeline.readEnd);
    }
  }

  ctdb(args: readonly string[], timeoutMs?: number): Promise<ToolResult> {
    return runCtdb(this.paths, args, timeoutMs);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.pid === undefined) throw new Error(`node ${this.pnn} is not running`);
    signalProcess(this.pid, signal);
  }

  /** Graceful first (`ctdb shutdown`), then SIGTERM, then SIGKILL of the daemon and its group. */
  async stop(): Promise<void> {
    const pid = this.pid ?? this.#readLivePid();
    if (pid === undefined) return;
    if (isAlive(pid)) {
      await this.ctdb(['shutdown'], SHUTDOWN_TIMEOUT_MS).catch(() => undefined);
      if (!(await waitForExit(pid, SHUTDOWN_TIMEOUT_MS))) {
        signalProcess(pid, 'SIGTERM');
        if (!(await waitForExit(pid, SIGTERM_TIMEOUT_MS))) killProcessTree(pid, this.#groups);
      }
    }
    this.pid = undefined;
    this.#closeLifeline();
  }

  /** Synchronous last resort (process exit): SIGKILL whatever is still running. */
  killNow(): void {
    const pid = this.pid ?? this.#readLivePid();
    if (pid !== undefined) killProcessTree(pid, this.#groups);
    this.pid = undefined;
    this.#closeLifeline();
  }

  #closeLifeline(): void {
    if (this.#lifeline !== undefined) fs.closeSync(this.#lifeline);
    this.#lifeline = undefined;
  }

  /** The last lines of the daemon log and of the process output, for failure reports. */
  logTail(lines = 40): string {
    return [this.paths.log, this.paths.output]
      .map((file) => `--- node ${this.pnn} ${file}\n${tailOf(file, lines)}`)
      .join('\n');
  }

  #readLivePid(): number | undefined {
    let pid: number;
    try {
      pid = Number.parseInt(fs.readFileSync(this.paths.pidFile, 'utf8'), 10);
    } catch {
      return undefined;
    }
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  }
}

/** Whether something accepts connections there (a unix socket path, or a TCP host and port). */
export function canConnect(target: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(target);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The last lines of a log file, or "(missing)". */
export function tailOf(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(missing)';
  }
}
