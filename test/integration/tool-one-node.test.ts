// The Debian `ctdb` tool against one node of ours and one node of the real ctdbd, in the
// same set-up: every command of the foundation issue must succeed, return promptly and
// print what it prints against the real daemon (masking addresses, pids, times and
// generations; statistics counters depend on internal traffic and are compared by shape).
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { compareTool, mask, useSideBySide } from './tool-compat';

const PROMPT_MS = 5_000;

describe('ctdb tool on one node: ours side by side with the real ctdbd', () => {
  const { ours, real } = useSideBySide(1);

  const same = (args: string[], options = {}) => async () => {
    const r = await compareTool(ours(), real(), 0, args, options);
    expect(r.oursMs).toBeLessThan(PROMPT_MS);
    return r;
  };

  for (const args of [
    ['status'],
    ['-X', 'status'],
    ['pnn'],
    ['listnodes'],
    ['nodestatus'],
    ['-X', 'nodestatus'],
    ['ping'],
    ['uptime'],
    ['runstate'],
    ['runstate', 'RUNNING'],
    ['runstate', 'STARTUP'],
    ['getcapabilities'],
    ['-X', 'getcapabilities'],
    ['listvars'],
    ['getvar', 'KeepaliveInterval'],
    ['getvar', 'keepaliveinterval'],
    ['getvar', 'NoSuchTunable'],
    ['getdebug'],
    ['getreclock'],
    ['leader'],
    ['ifaces'],
    ['ip'],
    ['-X', 'ip'],
    ['getdbmap'],
    ['-X', 'getdbmap'],
    ['getpid'],
    ['ipreallocate'],
    ['sync'],
  ]) {
    it(`ctdb ${args.join(' ')}`, same(args));
  }

  it('ctdb statistics / statisticsreset / stats (compared by shape)', async () => {
    await same(['statistics'], { numbers: true })();
    await same(['statisticsreset'])();
    await same(['statistics'], { numbers: true })();
    await same(['stats', '3'], { numbers: true })();
  });

  it('ctdb setvar changes the value and reports obsolete and unknown names as ctdbd does', async () => {
    await same(['setvar', 'RecoverInterval', '2'])();
    await same(['getvar', 'RecoverInterval'])();
    await same(['setvar', 'RecoverInterval', '1'])();
    await same(['setvar', 'NoSuchTunable', '1'])();
    await same(['setvar', 'VacuumLimit', '7'])();
  });

  it('ctdb setdebug / getdebug', async () => {
    await same(['setdebug', 'INFO'])();
    await same(['getdebug'])();
    await same(['setdebug', 'NOTICE'])();
    await same(['getdebug'])();
  });

  it('ctdb process-exists is true only for connected clients', async () => {
    const sockets = [ours().node(0).socket, real().node(0).socket].map(
      (path) => new Promise<net.Socket>((resolve, reject) => {
        const s = net.createConnection(path, () => resolve(s));
        s.on('error', reject);
      }),
    );
    const connected = await Promise.all(sockets);
    try {
      await same(['process-exists', String(process.pid)])();
    } finally {
      for (const s of connected) s.destroy();
    }
    await same(['process-exists', '1'])();
  });

  it('ctdb recover makes a new generation and returns to NORMAL', async () => {
    const generation = async (): Promise<string> => {
      const { stdout } = await ours().ctdb(0, ['status']);
      return /Generation:(\d+)/.exec(stdout)?.[1] ?? '';
    };
    const before = await generation();
    // Within RerecoveryTimeout (10 s) of the start-up recovery both leaders wait it out first:
    // how long the command takes depends on how soon the test gets here.
    const r = await compareTool(ours(), real(), 0, ['recover']);
    expect(r.oursMs).toBeLessThan(10_000 + PROMPT_MS);
    expect(await generation()).not.toBe(before);
    const { stdout } = await ours().ctdb(0, ['status']);
    expect(stdout).toContain('Recovery mode:NORMAL (0)');
  });

  it('ctdb shutdown stops both daemons', async () => {
    const r = await same(['shutdown'])();
    expect(r.ours.code).toBe(0);
    const after = await compareTool(ours(), real(), 0, ['pnn']);
    expect(after.ours.code).not.toBe(0);
    expect(mask(after.ours.stderr, ours())).toContain('Failed to connect to CTDB daemon');
  });
});
