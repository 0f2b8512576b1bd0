// ClusterMutex driving our ctdb_mutex_fcntl_helper and Debian's through `!helper file interval`:
// the same table of expectations runs against both, so they provably behave alike.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEBIAN_HELPER, FCNTL_HELPERS, OUR_HELPER, sleep, useMutexScratch, within } from './fixtures';

const RECHECK_SECONDS = 1;
/** Loss must be reported within one re-check interval, plus slack for a loaded 2-core machine. */
const LOSS_DEADLINE_MS = RECHECK_SECONDS * 1000 + 2500;

describe.each(FCNTL_HELPERS)('$name fcntl helper through ClusterMutex', ({ helper }) => {
  const scratch = useMutexScratch();
  const lockFile = (): string => path.join(scratch.dir(), 'reclock');
  const command = (...extra: string[]): string => `!${helper} ${lockFile()} ${RECHECK_SECONDS} ${extra.join(' ')}`;

  it('gives the lock to the first taker and contention to the second', async () => {
    const first = scratch.open({ lock: command() });
    const answer = await first.mutex.take();
    expect(answer.status).toBe('locked');
    expect(answer.latency).toBeGreaterThan(0);
    expect(answer.latency).toBeLessThan(5);
    expect(first.mutex.held).toBe(true);
    expect(fs.statSync(lockFile()).mode & 0o777).toBe(0o600);

    const second = scratch.open({ lock: command() });
    expect((await second.mutex.take()).status).toBe('contended');
    expect(second.mutex.held).toBe(false);
    expect(first.mutex.held).toBe(true);
  });

  it('lets the next taker in once the holder releases', async () => {
    const first = scratch.open({ lock: command() });
    expect((await first.mutex.take()).status).toBe('locked');
    await first.mutex.release();
    expect(first.mutex.held).toBe(false);
    const second = scratch.open({ lock: command() });
    expect((await second.mutex.take()).status).toBe('locked');
    // A released lock is not reported as lost.
    expect(await within(first.lost, 200)).toBe('pending');
  });

  it.each([
    ['deleted', (file: string) => fs.unlinkSync(file)],
    ['replaced by another file', (file: string) => {
      fs.writeFileSync(`${file}.new`, '');
      fs.renameSync(`${file}.new`, file);
    }],
  ])('reports loss within the re-check interval when the lock file is %s', async (_what, disturb) => {
    const holder = scratch.open({ lock: command() });
    expect((await holder.mutex.take()).status).toBe('locked');
    const disturbedAt = performance.now();
    disturb(lockFile());
    const lost = await within(holder.lost, LOSS_DEADLINE_MS);
    expect(lost).not.toBe('pending');
    expect(performance.now() - disturbedAt).toBeLessThan(LOSS_DEADLINE_MS);
    expect(holder.mutex.held).toBe(false);
    expect(holder.logger.lines.join('\n')).toContain(lockFile());
  });

  it('reports loss when the helper is killed, and the lock is free again', async () => {
    const holder = scratch.open({ lock: command() });
    expect((await holder.mutex.take()).status).toBe('locked');
    process.kill(holder.mutex.pid ?? -1, 'SIGKILL');
    const lost = await within(holder.lost, 3000);
    expect(lost).not.toBe('pending');
    expect(lost === 'pending' ? '' : lost.reason).toMatch(/SIGKILL|status pipe/);
    const next = scratch.open({ lock: command() });
    expect((await next.mutex.take()).status).toBe('locked');
  });

  it('answers error when the lock file cannot be created', async () => {
    const mutex = scratch.open({ lock: `!${helper} ${scratch.dir()}/no/such/dir/reclock` });
    expect((await mutex.mutex.take()).status).toBe('error');
    await mutex.mutex.release();
    expect(mutex.logger.lines.join('\n')).toContain('no/such/dir/reclock');
  });

  it('answers error on a bad command line', async () => {
    for (const lock of [`!${helper}`, `!${helper} ${lockFile()} -1`, `!${helper} ${lockFile()} x`, `!${helper} a 1 2 3`]) {
      expect((await scratch.open({ lock }).mutex.take()).status, lock).toBe('error');
    }
    expect(fs.existsSync(lockFile())).toBe(false);
  });

  it('gives up when a lock check hangs longer than the ping timeout', async () => {
    const holder = scratch.open({ lock: command('2') });
    expect((await holder.mutex.take()).status).toBe('locked');
    // Another process holding byte 1 makes the checker's blocking test lock hang, as a stuck
    // cluster filesystem would; its pings stop and the holder must let go.
    const blocker = spawn('/usr/bin/python3', ['-c', BYTE_ONE_BLOCKER, lockFile()], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve) => blocker.stdout.once('data', resolve));
      const lost = await within(holder.lost, RECHECK_SECONDS * 1000 + 2000 + 2500);
      expect(lost).not.toBe('pending');
    } finally {
      blocker.kill('SIGKILL');
    }
  });

  it('keeps the lock through a hung check when there is no ping timeout', async () => {
    const holder = scratch.open({ lock: command() });
    expect((await holder.mutex.take()).status).toBe('locked');
    const blocker = spawn('/usr/bin/python3', ['-c', BYTE_ONE_BLOCKER, lockFile()], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve) => blocker.stdout.once('data', resolve));
      expect(await within(holder.lost, 3000)).toBe('pending');
    } finally {
      blocker.kill('SIGKILL');
    }
  });

  it('lets go of the lock when its parent dies', async () => {
    // The helper's parent is a shell that exits at once; the helper must notice (every 5 s).
    const orphaner = spawn('/bin/sh', ['-c', '"$0" "$1" 1 & sleep 0.2', helper, lockFile()], { stdio: ['ignore', 'pipe', 'inherit'] });
    const status = await new Promise<string>((resolve) => orphaner.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString())));
    expect(status).toBe('0');
    const deadline = performance.now() + 8000;
    let answer = 'contended';
    while (answer !== 'locked' && performance.now() < deadline) {
      await sleep(250);
      answer = (await scratch.open({ lock: command() }).mutex.take()).status;
    }
    expect(answer).toBe('locked');
  });
});

/** Holds a write lock on byte 1 of argv[1] until killed; prints a line once it has it. */
const BYTE_ONE_BLOCKER = `
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 1, 1)
print('held', flush=True)
time.sleep(60)
`;

describe('our and Debian fcntl helpers together', () => {
  const scratch = useMutexScratch();

  it.each([
    ['ours holds, Debian contends', OUR_HELPER, DEBIAN_HELPER],
    ['Debian holds, ours contends', DEBIAN_HELPER, OUR_HELPER],
  ])('exclude each other (%s)', async (_case, holderHelper, contenderHelper) => {
    const file = path.join(scratch.dir(), 'reclock');
    expect((await scratch.open({ lock: `!${holderHelper} ${file}` }).mutex.take()).status).toBe('locked');
    expect((await scratch.open({ lock: `!${contenderHelper} ${file}` }).mutex.take()).status).toBe('contended');
  });

  it('a plain lock path runs our helper, or the one CTDB_CLUSTER_MUTEX_HELPER names', async () => {
    const file = path.join(scratch.dir(), 'reclock');
    const ours = scratch.open({ lock: file });
    expect((await ours.mutex.take()).status).toBe('locked');
    expect(fs.readlinkSync(`/proc/${ours.mutex.pid}/exe`)).toBe(OUR_HELPER);
    await ours.mutex.release();

    const debians = scratch.open({ lock: file, env: { ...process.env, CTDB_CLUSTER_MUTEX_HELPER: DEBIAN_HELPER } });
    expect((await debians.mutex.take()).status).toBe('locked');
    expect(fs.readlinkSync(`/proc/${debians.mutex.pid}/exe`)).toBe(DEBIAN_HELPER);
    expect((await scratch.open({ lock: file }).mutex.take()).status).toBe('contended');
  });

  it('a lock path with spaces stays one argument', async () => {
    const file = path.join(scratch.dir(), 'the cluster lock');
    expect((await scratch.open({ lock: file }).mutex.take()).status).toBe('locked');
    expect(fs.existsSync(file)).toBe(true);
  });
});
