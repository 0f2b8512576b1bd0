// ClusterMutex with arbitrary `!command` helpers: argument splitting, every status character,
// helpers that misbehave (missing, silent, mute, chatty), cancellation, and what the helper
// process inherits (descriptors, signals, scheduling).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterMutexArgv, FCNTL_HELPER_NAME } from '../../src/cluster/cluster-mutex';
import { OUR_HELPER_DIR, sleep, useMutexScratch, within } from './fixtures';

describe('clusterMutexArgv', () => {
  it.each([
    ['/cluster/reclock', ['/helpers/ctdb_mutex_fcntl_helper', '/cluster/reclock']],
    ['/cluster/the lock', ['/helpers/ctdb_mutex_fcntl_helper', '/cluster/the lock']],
    ['!/bin/helper a b', ['/bin/helper', 'a', 'b']],
    ['!  /bin/helper \t a\t\tb  ', ['/bin/helper', 'a', 'b']],
    ['!/bin/helper "a b"', ['/bin/helper', '"a', 'b"']],
    ['!', []],
    ['! \t ', []],
  ])('%j -> %j', (lock, argv) => {
    expect(clusterMutexArgv(lock, '/helpers', {})).toEqual(argv);
  });

  it('CTDB_CLUSTER_MUTEX_HELPER replaces the fcntl helper for plain paths only', () => {
    const env = { CTDB_CLUSTER_MUTEX_HELPER: '/other/helper' };
    expect(clusterMutexArgv('/cluster/reclock', '/helpers', env)).toEqual(['/other/helper', '/cluster/reclock']);
    expect(clusterMutexArgv('!/bin/helper x', '/helpers', env)).toEqual(['/bin/helper', 'x']);
    expect(FCNTL_HELPER_NAME).toBe('ctdb_mutex_fcntl_helper');
    expect(fs.existsSync(path.join(OUR_HELPER_DIR, FCNTL_HELPER_NAME))).toBe(true);
  });
});

describe('ClusterMutex', () => {
  const scratch = useMutexScratch();
  /** A `!` lock value running a shell script with the given body. */
  const scriptHelper = (body: string): string => {
    const file = path.join(scratch.dir(), `helper-${Math.random().toString(36).slice(2)}.sh`);
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return `!${file}`;
  };

  it('without a cluster lock always holds it and runs nothing', async () => {
    const { mutex } = scratch.open({ lock: null });
    expect(await mutex.take()).toEqual({ status: 'locked', latency: 0 });
    expect(mutex.held).toBe(true);
    expect(mutex.pid).toBeUndefined();
    await mutex.release();
    expect(mutex.held).toBe(false);
  });

  it.each([
    ['0', 'locked'],
    ['1', 'contended'],
    ['2', 'timeout'],
    ['3', 'error'],
    ['x', 'error'],
  ])('maps the answer %j to %s', async (answer, status) => {
    const { mutex } = scratch.open({ lock: scriptHelper(`printf '${answer}'; exec sleep 30`) });
    expect((await mutex.take()).status).toBe(status);
    expect(mutex.held).toBe(status === 'locked');
  });

  it('answers error when the helper exits without a word', async () => {
    const { mutex } = scratch.open({ lock: '!/bin/true' });
    expect((await mutex.take()).status).toBe('error');
  });

  it.each([
    ['a missing helper', () => '!/nonexistent/helper arg', 'ENOENT'],
    ['a helper that is not executable', () => {
      fs.writeFileSync(path.join(scratch.dir(), 'plain'), '#!/bin/sh\nprintf 0\n', { mode: 0o644 });
      return `!${scratch.dir()}/plain`;
    }, 'EACCES'],
    // Like execv in 4.17: a bare name is not looked up in PATH.
    ['a bare command name', () => '!sleep 30', 'ENOENT'],
    ['a missing fcntl helper', () => path.join(scratch.dir(), 'reclock'), 'ENOENT'],
    ['an empty command', () => '!  ', 'empty'],
  ])('answers error for %s, and says so', async (_case, lock, logged) => {
    const { mutex, logger } = scratch.open({ lock: lock(), env: { ...process.env, CTDB_CLUSTER_MUTEX_HELPER: '/nonexistent/fcntl-helper' } });
    expect((await mutex.take()).status).toBe('error');
    expect(logger.lines.join('\n')).toContain(logged);
  });

  it('times out a helper that never answers, and stops it', async () => {
    const { mutex } = scratch.open({ lock: '!/bin/sleep 30', timeoutSeconds: 1 });
    const taking = mutex.take();
    await sleep(100);
    const pid = mutex.pid;
    expect(pid).toBeGreaterThan(0);
    const answer = await taking;
    expect(answer.status).toBe('timeout');
    expect(answer.latency).toBeGreaterThanOrEqual(0.99);
    expect(answer.latency).toBeLessThan(3);
    await within(mutex.release(), 2000);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('cancels a take in progress on release()', async () => {
    const { mutex, logger } = scratch.open({ lock: '!/bin/sleep 30', timeoutSeconds: 0 });
    const taking = mutex.take();
    await sleep(100);
    expect(await within(mutex.release(), 2000)).not.toBe('pending');
    expect((await taking).status).toBe('error');
    expect(logger.lines).toContain('Cancelling cluster lock');
  });

  it('take() works once per ClusterMutex', async () => {
    const { mutex } = scratch.open({ lock: null });
    await mutex.take();
    await expect(mutex.take()).rejects.toThrow(/already/);
  });

  it('ignores output after the answer (the etcd helper repeats 0) and logs stderr lines', async () => {
    const { mutex, logger, lost } = scratch.open({
      lock: scriptHelper(`printf 0; while :; do sleep 0.1; printf 0; echo 'helper says hi' >&2; done`),
    });
    expect((await mutex.take()).status).toBe('locked');
    expect(await within(lost, 500)).toBe('pending');
    expect(mutex.held).toBe(true);
    await mutex.release();
    expect(logger.lines).toContain('helper says hi');
  });

  it('reports loss once when a holding helper exits', async () => {
    let reports = 0;
    const { mutex, lost } = scratch.open({ lock: scriptHelper('printf 0; sleep 0.2; exit 7') });
    void lost.then(() => reports++);
    expect((await mutex.take()).status).toBe('locked');
    const report = await within(lost, 2000);
    expect(report === 'pending' ? report : report.reason).toMatch(/status 7|status pipe/);
    await sleep(100);
    expect(reports).toBe(1);
    expect(mutex.held).toBe(false);
  });
});

describe("Debian's other mutex helpers (no Ceph or etcd cluster here)", () => {
  const scratch = useMutexScratch();

  it.each([
    ['Ceph RADOS', '!/usr/libexec/ctdb/ctdb_mutex_ceph_rados_helper ceph client.admin pool ctdb_reclock', 'Ceph cluster config'],
    ['etcd', '!/usr/libexec/ctdb/ctdb_etcd_lock -v', 'etcd'],
  ])('the %s helper runs and its failure is an error with its reason logged', async (_name, lock, logged) => {
    const { mutex, logger } = scratch.open({ lock });
    expect((await mutex.take()).status).toBe('error');
    await mutex.release();
    expect(logger.lines.join('\n')).toContain(logged);
  });
});

describe('what a helper process inherits', () => {
  const scratch = useMutexScratch();

  /** Starts `/bin/sleep` as a helper (it never answers) and reads its /proc entries. */
  async function inspectHelper(): Promise<{ fds: string[]; stdin: string; status: string; policy: number; ppid: number }> {
    const { mutex } = scratch.open({ lock: '!/bin/sleep 30', timeoutSeconds: 0 });
    void mutex.take();
    const pid = mutex.pid ?? -1;
    // Wait for the exec to complete (with chrt in between, there are two) and for sleep to be
    // asleep: its own start-up (the loader, locale files) holds a file open for a moment.
    const asleep = (): boolean => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep' && fs.readFileSync(`/proc/${pid}/wchan`, 'utf8').includes('nanosleep');
    for (let tries = 0; !asleep(); tries++) {
      if (tries > 100) throw new Error('helper never went to sleep');
      await sleep(20);
    }
    const fds = fs.readdirSync(`/proc/${pid}/fd`).sort();
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const info = { fds, stdin: fs.readlinkSync(`/proc/${pid}/fd/0`), status, policy: Number(fields[41 - 3]), ppid: Number(fields[4 - 3]) };
    await mutex.release();
    return info;
  }

  it('only stdin, stdout and stderr; stdin is /dev/null; no blocked or ignored signals', async () => {
    // Node itself ignores SIGPIPE: the helper must not inherit that.
    expect(fs.readFileSync('/proc/self/status', 'utf8')).toMatch(/^SigIgn:\s*0*[1-9a-f]/m);
    const { fds, stdin, status, ppid } = await inspectHelper();
    expect(fds).toEqual(['0', '1', '2']);
    expect(stdin).toBe('/dev/null');
    expect(status).toMatch(/^SigBlk:\s*0+$/m);
    expect(status).toMatch(/^SigIgn:\s*0+$/m);
    expect(ppid).toBe(process.pid);
  });

  it('never runs at real-time priority, even when the daemon does', async () => {
    execFileSync('chrt', ['--fifo', '-p', '1', String(process.pid)]);
    try {
      expect(execFileSync('chrt', ['-p', String(process.pid)], { encoding: 'utf8' })).toContain('SCHED_FIFO');
      const { policy, ppid } = await inspectHelper();
      expect(policy).toBe(0);
      expect(ppid).toBe(process.pid);
    } finally {
      execFileSync('chrt', ['--other', '-p', '0', String(process.pid)]);
    }
  });
});
