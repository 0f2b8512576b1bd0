#!/usr/bin/env node
// The ctdbd executable: 4.17's command line, daemonising (or -i: foreground, logging to
// stderr), signals, and the exit status. Everything a daemon does lives in src/daemon/.
import fs from 'node:fs';
import type { RunningDaemon } from '../daemon/daemon';
import { parseCommandLine } from './command-line';
import { ReadinessPipe, launchDaemon } from './daemonize';

/** ctdbd's compiled default, exported to everything it runs unless already set. */
const DEFAULT_CTDB_BASE = '/etc/ctdb';

/**
 * Runs ctdbd with `args` (argv after the program) and resolves with the exit status.
 * `self` is the command that runs this program again (SEA binary, or node + script).
 */
export async function main(args: readonly string[], self: readonly string[]): Promise<number> {
  const commandLine = parseCommandLine(args);
  if (commandLine.action === 'print') {
    process[commandLine.stream].write(commandLine.text);
    return commandLine.exitCode;
  }
  const env = process.env;
  env.CTDB_BASE ??= DEFAULT_CTDB_BASE;
  const readiness = ReadinessPipe.take(env);
  if (!commandLine.interactive && readiness === undefined) {
    const outcome = await launchDaemon([...self, ...args], env, env.CTDB_TEST_MODE !== undefined);
    if (outcome.ready) return 0;
    process.stderr.write(`ctdbd: ${outcome.message}\n`);
    return 1;
  }
  return serve(commandLine.interactive, readiness);
}

async function serve(interactive: boolean, readiness: ReadinessPipe | undefined): Promise<number> {
  const env = process.env;
  if (interactive) env.CTDB_INTERACTIVE = 'true';
  let daemon: RunningDaemon;
  try {
    readiness?.closeOnExec();
    // Loaded here, not at the top: --help and the launching process never need the daemon.
    const { startDaemon } = require('../daemon/daemon') as typeof import('../daemon/daemon');
    daemon = await startDaemon({ interactive, env });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (readiness) readiness.failed(message);
    else process.stderr.write(`ctdbd: ${message}\n`);
    return 1;
  }
  readiness?.ready();
  const stop = (reason: string): void => daemon.shutdown(reason);
  process.on('SIGTERM', () => stop('received SIGTERM'));
  process.on('SIGINT', () => stop('received SIGINT'));
  // Like ctdbd: SIGHUP reopens the log (logrotate), it never stops the daemon.
  process.on('SIGHUP', () => daemon.reopenLogs());
  if (env.CTDB_TEST_MODE !== undefined) stopWhenStdinCloses(() => stop('stdin closed'));
  return daemon.stopped;
}

/**
 * Test mode, as in ctdbd: when stdin is a pipe, its closing means the harness that started us
 * is gone, so shut down rather than linger.
 */
function stopWhenStdinCloses(stop: () => void): void {
  let isPipe = false;
  try {
    isPipe = fs.fstatSync(0).isFIFO();
  } catch {
    return; // no usable stdin: nothing to watch
  }
  if (!isPipe) return;
  process.stdin.on('data', () => undefined).once('end', stop).once('error', stop);
}

/** Entry for `node dist/src/bin/ctdbd.js` and the SEA main: run, then exit with the status. */
export function run(args: readonly string[], self: readonly string[]): void {
  main(args, self).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`ctdbd: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) run(process.argv.slice(2), [process.execPath, ...process.execArgv, __filename]);
