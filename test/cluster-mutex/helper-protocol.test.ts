// Our ctdb_mutex_fcntl_helper and Debian's, run directly side by side: the same command lines
// must give the same status bytes and exit codes.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEBIAN_HELPER, OUR_HELPER, useMutexScratch, within } from './fixtures';

interface RawRun {
  stdout: string;
  /** Exit status, or the signal that ended it (a holder is stopped with SIGTERM once it answers '0'). */
  ending: string;
}

/** Runs a helper with a pipe on stdout; once it answers '0' it is sent SIGTERM. */
function runHelper(helper: string, args: readonly string[]): Promise<RawRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(helper, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (text: string) => {
      stdout += text;
      if (stdout === '0') child.kill('SIGTERM');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ stdout, ending: signal ?? `status ${code}` }));
  });
}

describe('fcntl helper command line and status bytes, ours against Debian', () => {
  const scratch = useMutexScratch();
  const file = (): string => path.join(scratch.dir(), 'reclock');

  it.each([
    ['no arguments', () => []],
    ['too many arguments', () => [file(), '1', '2', '3']],
    ['a negative interval', () => [file(), '-1']],
    ['a non-numeric interval', () => [file(), 'soon']],
    ['a non-numeric ping timeout', () => [file(), '1', 'x']],
    ['an overflowing interval', () => [file(), '99999999999999999999999']],
    ['trailing text after the interval', () => [file(), '5s']],
    ['blanks before the interval', () => [file(), ' 7']],
    ['no re-checks', () => [file(), '0']],
    ['a ping timeout', () => [file(), '1', '3']],
    ['the defaults', () => [file()]],
    ['a lock file that cannot be created', () => [path.join(scratch.dir(), 'missing', 'reclock')]],
    ['a directory as lock file', () => [scratch.dir()]],
  ])('%s', async (_case, args) => {
    const ours = await runHelper(OUR_HELPER, args());
    const debians = await runHelper(DEBIAN_HELPER, args());
    expect(ours).toEqual(debians);
  });

  it('contention', async () => {
    const holder = scratch.open({ lock: `!${DEBIAN_HELPER} ${file()}` });
    expect((await holder.mutex.take()).status).toBe('locked');
    const ours = await runHelper(OUR_HELPER, [file()]);
    expect(ours).toEqual(await runHelper(DEBIAN_HELPER, [file()]));
    expect(ours).toEqual({ stdout: '1', ending: 'status 0' });
  });
});

describe('our fcntl helper', () => {
  const scratch = useMutexScratch();

  it('lets go at once when the reader of its status pipe goes away', async () => {
    // Debian's helper only notices through its 5-second parent poll; ours also watches the pipe.
    const file = path.join(scratch.dir(), 'reclock');
    const child = spawn(OUR_HELPER, [file], { stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = new Promise((resolve) => child.on('close', resolve));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    child.stdout.destroy();
    expect(await within(exited, 1000)).not.toBe('pending');
    expect((await scratch.open({ lock: file }).mutex.take()).status).toBe('locked');
  });
});
