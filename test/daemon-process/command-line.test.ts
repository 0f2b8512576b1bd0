// ctdbd's command line: our parser's decisions, and our executable side by side with Debian's
// ctdbd for every argument list that ends in output instead of a daemon.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSeaBinary } from '../../scripts/build-sea';
import { REAL_CTDBD } from '../../scripts/cluster/local-node';
import { parseCommandLine } from '../../src/bin/command-line';

describe('parseCommandLine', () => {
  it.each([
    [[], false],
    [['-i'], true],
    [['--interactive'], true],
    [['-ii'], true],
    [['-i', '--interactive'], true],
    [['--'], false],
  ])('%j runs the daemon (interactive: %s)', (args, interactive) => {
    expect(parseCommandLine(args)).toEqual({ action: 'run', interactive });
  });

  it('stops at the first bad option, after acting on help options before it', () => {
    expect(parseCommandLine(['--help', '--bogus'])).toMatchObject({ stream: 'stdout', exitCode: 0 });
    expect(parseCommandLine(['--bogus', '--help'])).toMatchObject({ stream: 'stderr', text: 'Invalid option --bogus: unknown option\n', exitCode: 1 });
  });
});

const PRINTING_ARGUMENT_LISTS: string[][] = [
  ['--help'],
  ['-?'],
  ['-i?'],
  ['-?x'],
  ['--usage'],
  ['--usage', '--help'],
  ['--help', '--usage'],
  ['--help', '--bogus'],
  ['--bogus'],
  ['--bogus', '--help'],
  ['-h'],
  ['-x'],
  ['-ix'],
  ['-xi'],
  ['-I'],
  ['--HELP'],
  ['--inter'],
  ['---'],
  ['--=x'],
  ['--interactive=1'],
  ['--interactive='],
  ['-i=1'],
  ['extra'],
  ['-'],
  ['-i', 'extra'],
  ['x', '--bogus'],
  ['--', 'x'],
  ['-i', '--', '--bogus'],
];

describe('ctdbd command line, ours against Debian 4.17', () => {
  let ours: string;
  let scratch: string;
  beforeAll(() => {
    ours = ensureSeaBinary();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdbd-cmdline-'));
  });
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  // An empty test-mode CTDB_BASE: should an argument list start a daemon after all, it fails
  // at once for want of a nodes file instead of touching the system's /etc/ctdb.
  const run = (binary: string, args: string[]) => {
    const result = spawnSync(binary, args, {
      env: { PATH: process.env.PATH, CTDB_BASE: scratch, CTDB_TEST_MODE: 'yes' },
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 15_000,
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  };

  it.each(PRINTING_ARGUMENT_LISTS.map((args) => [args.join(' ') || '(none)', args]))('ctdbd %s', (_label, args) => {
    const real = run(REAL_CTDBD, args);
    expect(real.stdout + real.stderr).not.toBe(''); // the list really is one that only prints
    expect(run(ours, args)).toEqual(real);
  });
});
