import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { resolvePaths } from '../../src/config/paths';

const CTDB_PATH = '/usr/libexec/ctdb/ctdb-path';

/** The real Debian helper is the oracle for every path it can print. */
function realPath(env: NodeJS.ProcessEnv, ...args: string[]): string {
  return execFileSync(CTDB_PATH, args, { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' }).trimEnd();
}

const ENVIRONMENTS: Array<[string, NodeJS.ProcessEnv]> = [
  ['compiled defaults', {}],
  ['CTDB_BASE alone (does not move etc/run/var)', { CTDB_BASE: '/tmp/h3-base' }],
  ['test mode', { CTDB_TEST_MODE: 'yes', CTDB_BASE: '/tmp/h3-base/node.0' }],
  ['test mode with empty CTDB_TEST_MODE', { CTDB_TEST_MODE: '', CTDB_BASE: '/tmp/x' }],
  ['CTDB_SOCKET override', { CTDB_SOCKET: '/tmp/h3-sock' }],
  ['test mode and CTDB_SOCKET', { CTDB_TEST_MODE: '1', CTDB_BASE: '/tmp/b', CTDB_SOCKET: '/tmp/s' }],
];

describe('resolvePaths matches ctdb-path', () => {
  it.each(ENVIRONMENTS)('%s', (_label, env) => {
    const paths = resolvePaths(env);
    expect(paths.configFile).toBe(realPath(env, 'config'));
    expect(paths.pidFile).toBe(realPath(env, 'pidfile', 'ctdbd'));
    expect(paths.socket).toBe(realPath(env, 'socket', 'ctdbd'));
    expect(paths.eventdSocket).toBe(realPath(env, 'socket', 'eventd'));
    expect(paths.etcDir).toBe(realPath(env, 'etcdir'));
    expect(paths.runDir).toBe(realPath(env, 'rundir'));
    expect(paths.varDir).toBe(realPath(env, 'vardir'));
    expect(paths.shareDir).toBe(realPath(env, 'datadir'));
    expect(paths.tunablesFile).toBe(realPath(env, 'etcdir', 'append', 'ctdb.tunables'));
  });
});

describe('CTDB_BASE-relative files (ctdbd.c rules)', () => {
  it('default to /etc/ctdb', () => {
    const paths = resolvePaths({});
    expect(paths).toMatchObject({
      testMode: false,
      ctdbBase: '/etc/ctdb',
      helperDir: '/usr/libexec/ctdb',
      nodesFile: '/etc/ctdb/nodes',
      publicAddressesFile: '/etc/ctdb/public_addresses',
      notifyScript: '/etc/ctdb/notify.sh',
      eventScriptDir: '/etc/ctdb/events/legacy',
      socketLockFile: '/run/ctdb/.socket_lock',
    });
  });

  it('follow CTDB_BASE even outside test mode, while ctdb.conf does not', () => {
    const paths = resolvePaths({ CTDB_BASE: '/srv/ctdb' });
    expect(paths.nodesFile).toBe('/srv/ctdb/nodes');
    expect(paths.eventScriptDir).toBe('/srv/ctdb/events/legacy');
    expect(paths.configFile).toBe('/etc/ctdb/ctdb.conf');
  });

  it('the socket lock stays in the compiled run dir in test mode', () => {
    expect(resolvePaths({ CTDB_TEST_MODE: '1', CTDB_BASE: '/t' }).socketLockFile).toBe('/run/ctdb/.socket_lock');
  });

  it('test mode without CTDB_BASE is an error (ctdbd aborts)', () => {
    expect(() => resolvePaths({ CTDB_TEST_MODE: '1' })).toThrow(/CTDB_BASE/);
  });
});
