// Runs the Debian `ctdb` tool against one node of a local cluster, the way onnode does in
// CTDB's own harness: CTDB_BASE of that node, its socket, test mode.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export const CTDB_TOOL = '/usr/bin/ctdb';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface NodeToolEnv {
  base: string;
  socket: string;
}

export function nodeToolEnv(node: NodeToolEnv, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, CTDB_BASE: node.base, CTDB_SOCKET: node.socket, CTDB_TEST_MODE: 'yes', ...extra };
}

/** Rejects (after killing the tool) when it runs longer than timeoutMs. */
export function runCtdb(node: NodeToolEnv, args: readonly string[], timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(CTDB_TOOL, args, { env: nodeToolEnv(node, env), stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ctdb ${args.join(' ')} (CTDB_BASE=${node.base}) timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${CTDB_TOOL}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? 128 + (signal ? constants.signals[signal] : 0),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
  });
}

