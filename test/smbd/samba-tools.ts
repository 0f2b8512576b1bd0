// Runs Samba's command-line programs (smbclient, smbpasswd, pdbedit, net, smbstatus,
// smbtorture) as children of the test, each in a process group of its own: a program that
// outlives its timeout, or a long-lived one (an open smbclient session, a `net g_lock do`
// holder) being stopped, goes together with whatever it started (the shell of `net g_lock do`).
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants } from 'node:os';
import { signalProcess } from '../../scripts/cluster/processes';

export interface ToolRun {
  command: string;
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** Written to the program's stdin, which is then closed. */
  input?: string;
  timeoutMs?: number;
  cwd?: string;
}

/** A running program whose output is collected; await `done` for its result. */
export class RunningTool {
  readonly command: string;
  readonly child: ChildProcessWithoutNullStreams;
  readonly done: Promise<ToolRun>;
  #stdout = '';
  #stderr = '';
  /** Resolves when the program itself has exited (its stdout may stay open in a grandchild). */
  readonly #exited: Promise<void>;

  constructor(program: string, args: readonly string[], options: RunOptions = {}) {
    this.command = [program, ...args].join(' ');
    const started = performance.now();
    this.child = spawn(program, args, { cwd: options.cwd, env: { PATH: process.env.PATH, LANG: 'C' }, detached: true });
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.#exited = exited;
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => (this.#stdout += chunk));
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.#stderr += chunk));
    const timeoutMs = options.timeoutMs ?? 30_000;
    this.done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#signalGroup('SIGKILL');
        reject(new Error(`${this.command} timed out after ${timeoutMs} ms\nstdout: ${this.#stdout}\nstderr: ${this.#stderr}`));
      }, timeoutMs);
      this.child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${program}: ${err.message}`));
      });
      this.child.once('close', (code, signal) => {
        clearTimeout(timer);
        const exitCode = code ?? 128 + (signal ? constants.signals[signal] : 0);
        resolve({ command: this.command, code: exitCode, stdout: this.#stdout, stderr: this.#stderr, ms: Math.round(performance.now() - started) });
      });
    });
    if (options.input !== undefined) this.child.stdin.end(options.input);
  }

  get stdout(): string {
    return this.#stdout;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Sends a line to the program's stdin (an interactive smbclient, say). */
  write(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** Stops its process group: SIGTERM, SIGKILL when the program has not exited within 5 s. */
  async stop(): Promise<void> {
    this.#signalGroup('SIGTERM');
    const killTimer = setTimeout(() => this.#signalGroup('SIGKILL'), 5_000);
    await this.#exited;
    clearTimeout(killTimer);
    this.#signalGroup('SIGKILL');
    await this.done.catch(() => undefined);
  }

  #signalGroup(signal: NodeJS.Signals): void {
    if (this.child.pid !== undefined) signalProcess(-this.child.pid, signal);
  }
}

export function runTool(program: string, args: readonly string[], options: RunOptions = {}): Promise<ToolRun> {
  return new RunningTool(program, args, options).done;
}

/** Throws with everything the program printed unless it exited 0. */
export async function runToolOk(program: string, args: readonly string[], options: RunOptions = {}): Promise<ToolRun> {
  const run = await runTool(program, args, options);
  if (run.code !== 0) throw new Error(describeRun(run));
  return run;
}

export function describeRun(run: ToolRun): string {
  return `${run.command} exited ${run.code} after ${run.ms} ms\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}
