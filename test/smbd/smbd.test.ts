// Acceptance: two real smbd (clustering = yes) over a two-node ctdb cluster behave as one SMB
// server. The same checks run over Debian's ctdbd (which validates the harness) and over ours.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pollUntil, sleep } from '../../scripts/cluster/processes';
import { describeRun } from './samba-tools';
import type { RunningTool, ToolRun } from './samba-tools';
import { SMB_PASSWORD, SMB_USER, useSmbCluster } from './smb-cluster';
import type { SmbCluster } from './smb-cluster';

/** smbclient `ls` lines: two spaces, the name, spaces, attribute letters, the size. */
function listedNames(ls: ToolRun): string[] {
  return [...ls.stdout.matchAll(/^ {2}(\S.*?)\s+[ADHNRS]*\s+\d+\s+\w{3} \w{3}/gm)].map((m) => m[1] ?? '').filter((name) => name !== '.' && name !== '..');
}

/**
 * The lock names `net g_lock locks` prints, each as a hex dump (`[0000] 6C 6F ...  lo`) of the
 * NUL-terminated name: decoded from the hex columns, since the text column wraps every 8 bytes.
 */
function gLockNames(locks: ToolRun): string[] {
  const names: number[][] = [];
  for (const line of locks.stdout.split('\n')) {
    const offset = /^\[([0-9A-F]{4})\] /.exec(line);
    if (offset === null) continue;
    if (offset[1] === '0000') names.push([]);
    const hexColumns = line.slice(offset[0].length, offset[0].length + 50);
    names.at(-1)?.push(...(hexColumns.match(/[0-9A-F]{2}/g) ?? []).map((byte) => Number.parseInt(byte, 16)));
  }
  return names.map((bytes) => Buffer.from(bytes).toString('latin1').replace(/\0$/, ''));
}

function expectOk(run: ToolRun): ToolRun {
  expect(run.code, describeRun(run)).toBe(0);
  // smbclient reports a failed command on stdout/stderr but may still exit 0.
  expect(`${run.stdout}${run.stderr}`, describeRun(run)).not.toMatch(/NT_STATUS_(?!OK)\w+/);
  return run;
}

async function ls(cluster: SmbCluster, pnn: number): Promise<string[]> {
  return listedNames(expectOk(await cluster.smbclient(pnn, ['ls'])));
}

/** smbtorture against node 0, connections alternating between the nodes (--unclist). */
async function smbtorture(cluster: SmbCluster, tests: readonly string[]): Promise<ToolRun> {
  const unclist = path.join(cluster.workDir, 'unclist');
  fs.writeFileSync(unclist, cluster.smbd.map((node) => `${node.unc}\n`).join(''));
  return cluster.client('smbtorture', [cluster.node(0).unc, `--unclist=${unclist}`, '--target=samba3', '--option=clustering=yes', ...tests], { timeoutMs: 150_000 });
}

/** Some databases every clustered smbd attaches, as `ctdb getdbmap` shows them. */
const SMBD_DATABASES = ['locking.tdb', 'brlock.tdb', 'g_lock.tdb', 'smbXsrv_session_global.tdb', 'passdb.tdb PERSISTENT', 'secrets.tdb PERSISTENT'];

/** How ours and Debian's ctdbd log a control they do not implement. */
const UNIMPLEMENTED_CONTROL = /is not implemented|Unknown CTDB control opcode/;

interface TortureSuite {
  /** smbtorture suites or single tests, run in one smbtorture. */
  tests: readonly string[];
  /** `outcome: subtest` of every subtest that does not succeed against plain (unclustered) Samba too. */
  expectedNonSuccess: readonly string[];
}

const TORTURE_SUITES: readonly TortureSuite[] = [
  { tests: ['base.lock'], expectedNonSuccess: [] },
  // Both probe behaviour of particular Windows versions and skip against any Samba server.
  { tests: ['smb2.lock'], expectedNonSuccess: ['skip: rw-none', 'skip: replay_broken_windows'] },
  // 16a and 17a are known failures of Samba's own selftest; 20 refuses to run as root.
  { tests: ['base.delete'], expectedNonSuccess: ['failure: deltest16a', 'failure: deltest17a', 'skip: deltest20'] },
  // An open on node 1 breaks the oplock a client holds through node 0: smbd to smbd messages through ctdb.
  { tests: ['smb2.oplock.exclusive2', 'smb2.oplock.batch5'], expectedNonSuccess: [] },
];

interface TortureOutcomes {
  /** Subtests in the order smbtorture started them. */
  started: string[];
  /** `outcome: subtest` per finished subtest, in order. */
  finished: string[];
}

function tortureOutcomes(run: ToolRun): TortureOutcomes {
  const started = [...run.stdout.matchAll(/^test: (\S+)/gm)].map((m) => m[1] ?? '');
  const finished = [...run.stdout.matchAll(/^(success|failure|error|skip|xfail): (\S+)/gm)].map((m) => `${m[1]}: ${m[2]}`);
  return { started, finished };
}

describe.each(['real', 'ours'] as const)('two clustered smbd over %s ctdbd', (impl) => {
  const cluster = useSmbCluster(impl);

  it('a user added with smbpasswd on node 0 is listed by pdbedit on node 1', async () => {
    const c = cluster();
    await c.node(0).toolOk('smbpasswd', ['-a', '-s', SMB_USER], { input: `${SMB_PASSWORD}\n${SMB_PASSWORD}\n` });
    const users = await c.node(1).toolOk('pdbedit', ['--list']);
    expect(users.stdout).toMatch(new RegExp(`^${SMB_USER}:0:`, 'm'));
  });

  it('persistent records committed on either node read back on the other (dbwrap_tool)', async () => {
    const c = cluster();
    const db = ['--persistent', 'acceptance_persistent.tdb'];
    await c.node(0).toolOk('dbwrap_tool', [...db, 'store', 'written-on-0', 'string', 'zero']);
    expect((await c.node(1).toolOk('dbwrap_tool', [...db, 'fetch', 'written-on-0', 'string'])).stdout.trim()).toBe('zero');
    await c.node(1).toolOk('dbwrap_tool', [...db, 'store', 'written-on-0', 'string', 'one']);
    await c.node(1).toolOk('dbwrap_tool', [...db, 'store', 'counter', 'int32', '41']);
    expect((await c.node(0).toolOk('dbwrap_tool', [...db, 'fetch', 'written-on-0', 'string'])).stdout.trim()).toBe('one');
    expect((await c.node(0).toolOk('dbwrap_tool', [...db, 'fetch', 'counter', 'int32'])).stdout.trim()).toBe('41');
    await c.node(0).toolOk('dbwrap_tool', [...db, 'delete', 'counter']);
    const keys = await c.node(1).toolOk('dbwrap_tool', [...db, 'listkeys']);
    expect(keys.stdout).toContain('written-on-0');
    expect(keys.stdout).not.toContain('counter');
  });

  it('a file put on node 0 reads back byte for byte on node 1', async () => {
    const c = cluster();
    const original = path.join(c.workDir, 'original.bin');
    const copy = path.join(c.workDir, 'copy.bin');
    fs.writeFileSync(original, crypto.randomBytes(3 * 1024 * 1024 + 17));
    expectOk(await c.smbclient(0, [`put ${original} data.bin`]));
    expectOk(await c.smbclient(1, [`get data.bin ${copy}`]));
    expect(fs.readFileSync(copy).equals(fs.readFileSync(original))).toBe(true);
  });

  it('mkdir, rename and delete on one node are seen on the other', async () => {
    const c = cluster();
    expectOk(await c.smbclient(0, ['mkdir made-on-0']));
    expect(await ls(c, 1)).toContain('made-on-0');
    expectOk(await c.smbclient(1, ['rename made-on-0 renamed-on-1', 'rename data.bin data-renamed.bin']));
    const seenOn0 = await ls(c, 0);
    expect(seenOn0).toEqual(expect.arrayContaining(['renamed-on-1', 'data-renamed.bin']));
    expect(seenOn0).not.toContain('made-on-0');
    expectOk(await c.smbclient(0, ['rmdir renamed-on-1', 'del data-renamed.bin']));
    expect(await ls(c, 1)).toEqual([]);
  });

  it('a g_lock held through node 0 blocks node 1 until it is released', async () => {
    const c = cluster();
    const held = path.join(c.workDir, 'g_lock.held');
    const release = path.join(c.workDir, 'g_lock.release');
    const acquired = path.join(c.workDir, 'g_lock.acquired-by-1');
    const lock = 'ctdb-smbd-acceptance';
    const holder = c.node(0).spawnTool('net', ['g_lock', 'do', lock, '30000', `touch ${held}; while [ ! -e ${release} ]; do sleep 0.1; done`], { timeoutMs: 60_000 });
    let contender: RunningTool | undefined;
    try {
      expect(await pollUntil(() => fs.existsSync(held) || holder.exited, 20_000), 'node 0 never took the lock').toBe(true);
      expect(fs.existsSync(held), `node 0 did not get the lock: ${holder.command}`).toBe(true);
      const dump = await c.node(1).toolOk('net', ['g_lock', 'dump', lock]);
      expect(dump.stdout, 'node 1 sees the holder on node 0 (vnn:pid)').toMatch(/^0:\d+: WRITE$/m);
      // A traverse of g_lock.tdb from node 1 (`locks` exits with the number of locks, not 0).
      expect(gLockNames(await c.node(1).tool('net', ['g_lock', 'locks']))).toContain(lock);
      contender = c.node(1).spawnTool('net', ['g_lock', 'do', lock, '30000', `touch ${acquired}`], { timeoutMs: 60_000 });
      await sleep(2_000);
      expect(contender.exited, 'node 1 got the lock while node 0 held it').toBe(false);
      expect(fs.existsSync(acquired)).toBe(false);
      fs.writeFileSync(release, '');
      expect((await holder.done).code).toBe(0);
      const contended = await contender.done;
      expect(contended.code, describeRun(contended)).toBe(0);
      expect(fs.existsSync(acquired)).toBe(true);
    } finally {
      await Promise.all([holder.stop(), contender?.stop()]);
    }
  });

  it('smbstatus on node 1 lists a session held on node 0', async () => {
    const c = cluster();
    const session = c.openSession(0);
    try {
      // Clustered smbstatus names session processes vnn:pid on every node.
      const sessionLine = new RegExp(`^0:(\\d+)\\s+${SMB_USER}\\s`, 'm');
      let local: ToolRun | undefined;
      const up = await pollUntil(async () => {
        local = await c.node(0).toolOk('smbstatus', ['--brief']);
        return sessionLine.test(local.stdout) || session.exited;
      }, 20_000, 200);
      const sessionPid = local === undefined ? undefined : sessionLine.exec(local.stdout)?.[1];
      expect(up && !session.exited && sessionPid !== undefined, `no session on node 0:\n${local?.stdout}\nsmbclient: ${session.stdout}`).toBe(true);
      const remote = await c.node(1).toolOk('smbstatus', ['--brief']);
      expect(remote.stdout).toMatch(new RegExp(`^0:${sessionPid}\\s+${SMB_USER}\\s`, 'm'));
    } finally {
      await session.stop();
    }
  });

  const tortureCases = TORTURE_SUITES.map((suite) => [suite.tests.join(' '), suite] as const);
  it.each(tortureCases)('smbtorture %s with connections on both nodes', async (_, { tests, expectedNonSuccess }) => {
    const run = await smbtorture(cluster(), tests);
    const { started, finished } = tortureOutcomes(run);
    expect(started.length, describeRun(run)).toBeGreaterThan(0);
    expect(finished.map((outcome) => outcome.replace(/^\w+: /, '')), `every subtest finished\n${describeRun(run)}`).toEqual(started);
    expect(finished.filter((outcome) => !outcome.startsWith('success: ')), describeRun(run)).toEqual(expectedNonSuccess);
    // 0 when all passed, 1 with (expected) failures; a crash would be a signal.
    expect(run.code, describeRun(run)).toBe(expectedNonSuccess.some((outcome) => outcome.startsWith('failure: ')) ? 1 : 0);
  }, 180_000);

  it("both ctdb daemons hold smbd's databases, and neither met a control it does not implement", async () => {
    for (const node of cluster().ctdb.nodes) {
      const dbmap = await node.ctdb(['getdbmap']);
      expect(dbmap.code, dbmap.stderr).toBe(0);
      const databases = [...dbmap.stdout.matchAll(/name:(\S+).*?( PERSISTENT)?$/gm)].map((m) => `${m[1]}${m[2] ?? ''}`);
      expect(databases, `node ${node.pnn}`).toEqual(expect.arrayContaining(SMBD_DATABASES));
      const log = fs.readFileSync(node.paths.log, 'utf8');
      expect(log.split('\n').filter((line) => UNIMPLEMENTED_CONTROL.test(line)), `node ${node.pnn}`).toEqual([]);
    }
  });
});
