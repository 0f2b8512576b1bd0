// Liveness and signalling of daemons we started but that are not our children any more
// (ctdbd daemonises, so waitpid is not available): everything goes through /proc by pid.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
}

/** undefined when the process does not exist. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses: the fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', ppid: Number(fields[1]), pgrp: Number(fields[2]) };
}

/** A zombie counts as gone: daemonised processes are reaped by whoever adopted them, maybe never. */
export function isAlive(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until the predicate holds; false on timeout. */
export async function pollUntil(predicate: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

export function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  return pollUntil(() => !isAlive(pid), timeoutMs);
}

/** Sends a signal if the process is still there; never throws for a process that is gone. */
export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * SIGKILLs a daemon and, when it leads a process group of its own (ctdbd daemonises into a new
 * session, or was launched detached), that whole group: its helpers die with it.
 */
export function killProcessTree(pid: number, groupLeaders: readonly number[]): void {
  const stat = readProcStat(pid);
  signalProcess(pid, 'SIGKILL');
  const ownGroup = readProcStat(process.pid)?.pgrp;
  if (stat && stat.pgrp !== ownGroup && groupLeaders.includes(stat.pgrp)) signalProcess(-stat.pgrp, 'SIGKILL');
}

export interface Lifeline {
  /** Give this to the daemon as stdin, then close it here. */
  readEnd: number;
  /** Held by us (close-on-exec): when we die, for any reason, the daemon sees its stdin close. */
  writeEnd: number;
}

/**
 * A pipe for a test-mode ctdbd's stdin. Both ctdbds shut down when a FIFO stdin closes, so
 * daemons never outlive the process that started them, even one that is SIGKILLed. A named
 * FIFO because ctdbd checks for S_ISFIFO and Node's 'pipe' stdio is a socket pair.
 */
export function openLifeline(dir: string): Lifeline {
  const fifo = path.join(dir, '.lifeline.fifo');
  fs.rmSync(fifo, { force: true });
  execFileSync('mkfifo', ['-m', '600', fifo]);
  try {
    // Non-blocking: opening a FIFO's read end otherwise waits for a writer.
    const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    return { readEnd, writeEnd: fs.openSync(fifo, 'w') };
  } finally {
    fs.rmSync(fifo, { force: true });
  }
}
