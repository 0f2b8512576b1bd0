// Daemonising without fork(): the launching process re-runs this program detached with a
// readiness pipe as fd 3 and exits only once the daemon reports that it serves its socket
// (so systemd's Type=forking and CTDB's test harness find the pid file and socket in place),
// or with the daemon's error when it could not start.
import { spawn } from 'node:child_process';
import type { StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import type { Readable } from 'node:stream';

/** Names the readiness fd in the daemon's environment; removed there before anything else runs. */
const READY_FD_ENV = 'CTDBD_READY_FD';
const READY_FD = 3;
const READY_LINE = 'ready';
const ERROR_PREFIX = 'error ';

export type LaunchOutcome = { ready: true; pid: number } | { ready: false; message: string };

/**
 * Starts `command` as the background daemon and waits for its verdict. Like ctdbd, test mode
 * keeps the session and stdin/stdout (CTDB's harness watches stdin), otherwise the daemon gets
 * a new session and /dev/null for stdin and stdout. stderr stays: crashes must go somewhere.
 */
export function launchDaemon(command: readonly string[], env: NodeJS.ProcessEnv, testMode: boolean): Promise<LaunchOutcome> {
  const stdio: StdioOptions = testMode ? ['inherit', 'inherit', 'inherit', 'pipe'] : ['ignore', 'ignore', 'inherit', 'pipe'];
  const child = spawn(command[0], command.slice(1), { env: { ...env, [READY_FD_ENV]: String(READY_FD) }, stdio, detached: !testMode });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', forward).on('SIGTERM', forward);
  return new Promise<LaunchOutcome>((resolve) => {
    let report = '';
    const pipe = child.stdio[READY_FD] as Readable;
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      report += chunk;
      if (report.startsWith(`${READY_LINE}\n`) && child.pid !== undefined) resolve({ ready: true, pid: child.pid });
    });
    pipe.on('error', () => undefined); // a daemon dying mid-report shows up as its exit below
    child.once('error', (err) => resolve({ ready: false, message: `cannot start ${command[0]}: ${err.message}` }));
    // 'close' comes after both the exit and the end of the readiness pipe, so the report is complete.
    child.once('close', (code, signal) => resolve({ ready: false, message: failureMessage(report, code, signal) }));
  }).finally(() => {
    process.removeListener('SIGINT', forward).removeListener('SIGTERM', forward);
    (child.stdio[READY_FD] as Readable).destroy();
    child.unref();
  });
}

function failureMessage(report: string, code: number | null, signal: NodeJS.Signals | null): string {
  if (report.startsWith(ERROR_PREFIX)) return report.slice(ERROR_PREFIX.length).trimEnd();
  const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
  return `the daemon ${how} before it was ready (see its log)`;
}

/** The daemon's side of the readiness pipe. */
export class ReadinessPipe {
  readonly #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Present only in a daemon started by launchDaemon; takes the marker out of env. */
  static take(env: NodeJS.ProcessEnv): ReadinessPipe | undefined {
    const value = env[READY_FD_ENV];
    if (value === undefined) return undefined;
    delete env[READY_FD_ENV];
    const fd = Number(value);
    if (!Number.isInteger(fd) || fd < 0) throw new Error(`${READY_FD_ENV}=${value} is not a file descriptor`);
    return new ReadinessPipe(fd);
  }

  /** Keeps helpers the daemon spawns from holding the launcher's pipe open. */
  closeOnExec(): void {
    // Required here, not at the top: the launching process never needs the addon.
    const { setCloseOnExec } = require('../daemon/process-native') as typeof import('../daemon/process-native');
    setCloseOnExec(this.#fd);
  }

  ready(): void {
    this.#send(`${READY_LINE}\n`);
  }

  failed(message: string): void {
    this.#send(`${ERROR_PREFIX}${message.replace(/\n/g, ' ')}\n`);
  }

  #send(line: string): void {
    try {
      fs.writeSync(this.#fd, line);
    } catch {
      // The launcher is gone (killed): nobody is waiting for the verdict any more.
    }
    fs.closeSync(this.#fd);
  }
}
