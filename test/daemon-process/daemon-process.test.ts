// The ctdbd executable as a process: daemonising, pid file, identity, signals, foreground mode,
// startup failures and test mode's stdin watch. Each test uses its own test-mode CTDB_BASE.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureSeaBinary } from '../../scripts/build-sea';
import { packageRoot } from '../../scripts/package-root';
import { allocateAddressBlock } from '../../scripts/cluster/addresses';
import type { AddressBlock } from '../../scripts/cluster/addresses';
import { runCtdb } from '../../scripts/cluster/ctdb-tool';
import { waitForNativeBuild } from '../../scripts/cluster/local-node';
import { writeNodeBase } from '../../scripts/cluster/node-base';
import type { NodeBasePaths } from '../../scripts/cluster/node-base';
import { isAlive, killProcessTree, pollUntil, waitForExit } from '../../scripts/cluster/processes';

let ctdbd: string;
let block: AddressBlock;
let node: NodeBasePaths;
const started: number[] = [];

beforeAll(() => {
  ctdbd = ensureSeaBinary();
});

beforeEach(async () => {
  await waitForNativeBuild();
  block = await allocateAddressBlock(1);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdbd-process-'));
  node = writeNodeBase({ base, addresses: block.addresses, pnn: 0 });
});

afterEach(async () => {
  for (const pid of started.splice(0)) if (isAlive(pid)) killProcessTree(pid, [pid]);
  block.release();
  fs.rmSync(node.base, { recursive: true, force: true });
});

function launch(args: string[] = [], stdio: StdioOptions = ['ignore', 'pipe', 'pipe'], binary = ctdbd): ChildProcess & { output: () => string } {
  const child = spawn(binary, args, { env: { PATH: process.env.PATH, CTDB_BASE: node.base, CTDB_TEST_MODE: 'yes' }, stdio });
  if (child.pid !== undefined) started.push(child.pid);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return Object.assign(child, { output: () => output });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function readPidFile(): number {
  const text = fs.readFileSync(node.pidFile, 'utf8');
  expect(text).toMatch(/^\d+\n$/);
  return Number(text);
}

/** Starts a daemon the way systemd and CTDB's harness do; returns its pid. */
async function startDaemonised(binary = ctdbd): Promise<number> {
  const launcher = launch([], undefined, binary);
  expect(await exitOf(launcher), launcher.output()).toBe(0);
  // Ready means ready: no polling for the pid file or the socket.
  const pid = readPidFile();
  started.push(pid);
  expect(pid).not.toBe(launcher.pid);
  expect((await runCtdb(node, ['ping'], 10_000)).code).toBe(0);
  return pid;
}

describe('ctdbd process', () => {
  it('daemonises: the launcher exits 0 once the daemon serves, and the daemon is ctdbd', async () => {
    const pid = await startDaemonised();
    expect(path.basename(fs.readlinkSync(`/proc/${pid}/exe`))).toBe('ctdbd');
    expect(fs.readFileSync(`/proc/${pid}/comm`, 'utf8')).toBe('ctdbd\n');
    expect(execFileSync('pidof', ['ctdbd'], { encoding: 'utf8' }).trim().split(' ')).toContain(String(pid));
  });

  it('runs through a symlink, as scripts/install-system.sh installs /usr/sbin/ctdbd', async () => {
    const sbindir = path.join(node.base, 'sbin');
    execFileSync(path.join(packageRoot, 'scripts', 'install-system.sh'), ['--sbindir', sbindir], { stdio: 'ignore' });
    const linked = path.join(sbindir, 'ctdbd');
    expect(fs.readlinkSync(linked)).toBe(ctdbd);
    const pid = await startDaemonised(linked);
    expect(fs.readlinkSync(`/proc/${pid}/exe`)).toBe(ctdbd);
    execFileSync(path.join(packageRoot, 'scripts', 'install-system.sh'), ['--sbindir', sbindir, '--uninstall'], { stdio: 'ignore' });
    expect(fs.existsSync(linked)).toBe(false);
  });

  it('refuses a second daemon with the same pid file, naming the running one', async () => {
    const pid = await startDaemonised();
    const second = launch();
    expect(await exitOf(second)).toBe(1);
    expect(second.output()).toContain(`ctdbd is already running as process ${pid}`);
    expect(isAlive(pid)).toBe(true);
    expect(readPidFile()).toBe(pid);
  });

  it('stops on SIGTERM and removes its pid file', async () => {
    const pid = await startDaemonised();
    process.kill(pid, 'SIGTERM');
    expect(await waitForExit(pid, 10_000)).toBe(true);
    expect(fs.existsSync(node.pidFile)).toBe(false);
  });

  it('takes over a stale pid file left by a crash', async () => {
    fs.writeFileSync(node.pidFile, '999999\n');
    const pid = await startDaemonised();
    expect(pid).not.toBe(999999);
  });

  it('-i stays in the foreground, logs to stderr and exits 0 on SIGTERM', async () => {
    const daemon = launch(['-i']);
    const exited = exitOf(daemon);
    expect(await pollUntil(() => fs.existsSync(node.pidFile) && fs.readFileSync(node.pidFile, 'utf8') !== '', 15_000)).toBe(true);
    expect(readPidFile()).toBe(daemon.pid);
    expect(await pollUntil(async () => (await runCtdb(node, ['ping'], 5_000)).code === 0, 15_000)).toBe(true);
    expect(daemon.output()).toMatch(/ctdbd/);
    daemon.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(fs.existsSync(node.pidFile)).toBe(false);
  });

  it('reports a daemon that cannot start through the launcher, with status 1', async () => {
    fs.rmSync(path.join(node.base, 'nodes'));
    const launcher = launch();
    expect(await exitOf(launcher)).toBe(1);
    expect(launcher.output()).toMatch(/^ctdbd: .*nodes/m);
    expect(fs.existsSync(node.pidFile)).toBe(false);
  });

  it('in test mode shuts down when its stdin, a pipe, closes', async () => {
    // A real FIFO, as the shell gives CTDB's harness (Node's own 'pipe' stdio is a socket).
    const fifo = path.join(node.base, 'stdin.fifo');
    execFileSync('mkfifo', [fifo]);
    const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const writeEnd = fs.openSync(fifo, 'w');
    const launcher = launch([], [readEnd, 'ignore', 'ignore']);
    fs.closeSync(readEnd);
    expect(await exitOf(launcher)).toBe(0);
    const pid = readPidFile();
    started.push(pid);
    fs.writeSync(writeEnd, 'x'); // input is read and ignored
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(isAlive(pid)).toBe(true);
    fs.closeSync(writeEnd);
    expect(await waitForExit(pid, 10_000)).toBe(true);
    expect(fs.existsSync(node.pidFile)).toBe(false);
  });
});
