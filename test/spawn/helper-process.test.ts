import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HelperProcess, runningHelpers, type HelperExit } from '../../src/spawn';

const SH = '/bin/sh';

/** Descriptors the shell listed, without the ones dash opens for itself (10 and up). */
function descriptors(lsOutput: string): number[] {
  return lsOutput.trim().split(/\s+/).map(Number).filter((fd) => fd < 10).sort((a, b) => a - b);
}

interface Finished {
  output: string;
  exit: HelperExit;
}

function run(script: string, channelFd?: number | null, onStart?: (helper: HelperProcess) => void): Promise<Finished> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const helper = HelperProcess.spawn(SH, ['-c', script], {
      onData: (bytes) => chunks.push(bytes),
      onExit: (exit) => resolve({ output: Buffer.concat(chunks).toString(), exit }),
    }, { channelFd });
    onStart?.(helper);
  });
}

describe('HelperProcess (vfork+exec, pidfd reaping)', () => {
  it('delivers channel bytes before the exit status', async () => {
    const done = await run('printf locked >&3; exit 3');
    expect(done).toEqual({ output: 'locked', exit: { code: 3, signal: null } });
    expect(runningHelpers()).toBe(0);
  });

  it('leaves only stdio and the channel open in the child', async () => {
    const done = await run('ls /proc/$$/fd >&3');
    expect(descriptors(done.output)).toEqual([0, 1, 2, 3]);
  });

  it('installs the channel at the requested descriptor, or none', async () => {
    expect(descriptors((await run('ls /proc/$$/fd >&9', 9)).output)).toEqual([0, 1, 2, 9]);
    expect((await run('test ! -e /proc/$$/fd/3', null)).exit.code).toBe(0);
  });

  it('resets blocked and ignored signals (Node ignores SIGPIPE) and priority', async () => {
    const done = await run("grep -E '^(SigBlk|SigIgn)' /proc/self/status >&3; cut -d' ' -f19,41 /proc/self/stat >&3");
    expect(done.output).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n0 0\n');
  });

  it('gives a SCHED_FIFO daemon normal-priority children', async () => {
    const script = `
      const { HelperProcess } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/src/spawn'))});
      const chunks = [];
      HelperProcess.spawn('/bin/sh', ['-c', "cut -d' ' -f41 /proc/self/stat >&3; cut -d' ' -f41 /proc/$PPID/stat >&3"], {
        onData: (b) => chunks.push(b), onExit: () => process.stdout.write(Buffer.concat(chunks)),
      });`;
    const { stdout } = await promisify(execFile)('chrt', ['-f', '5', process.execPath, '-e', script]);
    // child SCHED_OTHER (0); the parent really was SCHED_FIFO (1)
    expect(stdout).toBe('0\n1\n');
  });

  it('reports an executable that cannot run as an error naming it', () => {
    expect(() => HelperProcess.spawn('/nonexistent/helper', [])).toThrow(/spawn \/nonexistent\/helper: execve: No such file/);
    expect(() => HelperProcess.spawn('relative', [])).toThrow(TypeError);
    expect(() => HelperProcess.spawn(SH, [], {}, { channelFd: 1 })).toThrow(RangeError);
  });

  it('release() closes the channel and kill() signals through the pidfd', async () => {
    const released = await run('cat <&3 >/dev/null; exit 7', 3, (helper) => setTimeout(() => helper.release(), 20));
    expect(released.exit).toEqual({ code: 7, signal: null });
    let helper: HelperProcess | undefined;
    const killed = await run('printf ready >&3; exec sleep 30', 3, (h) => {
      helper = h;
      setTimeout(() => h.kill('SIGTERM'), 20);
    });
    expect(killed).toEqual({ output: 'ready', exit: { code: null, signal: 'SIGTERM' } });
    expect(helper?.kill()).toBe(false);
    expect(helper?.exit).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('coexists with child_process reaping (no stolen exit statuses)', async () => {
    const ours = Array.from({ length: 20 }, (_, i) => run(`exit ${i}`));
    const theirs = Array.from({ length: 20 }, () => promisify(execFile)('/bin/true'));
    const [exits] = await Promise.all([Promise.all(ours), Promise.all(theirs)]);
    expect(exits.map((e) => e.exit.code)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});

describe('HelperProcess in a worker thread', () => {
  it('kills and reaps its helpers when the worker goes away', async () => {
    const { Worker } = await import('node:worker_threads');
    const script = `
      const { parentPort } = require('node:worker_threads');
      const { HelperProcess } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/src/spawn'))});
      const helper = HelperProcess.spawn('/bin/sleep', ['30']);
      parentPort.postMessage(helper.pid);`;
    const worker = new Worker(script, { eval: true });
    const pid = await new Promise<number>((resolve) => worker.once('message', resolve));
    expect(() => process.kill(pid, 0)).not.toThrow();
    await worker.terminate();
    // reaped by the worker's cleanup hook: the pid no longer exists, not even as a zombie
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });
});
