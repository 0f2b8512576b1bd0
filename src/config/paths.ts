// Where CTDB 4.17 (Debian build) looks for everything.
// Two independent rules decide a path, and the difference is visible to operators:
// - ctdb.conf, ctdb.tunables, the run and var dirs follow path.c: compiled defaults, or, only when
//   CTDB_TEST_MODE is set, directories under CTDB_BASE. CTDB_BASE alone does NOT move them.
// - nodes, public_addresses, notify.sh and events/legacy are "$CTDB_BASE/<name>", with
//   CTDB_BASE defaulting to /etc/ctdb (ctdbd exports that default to its children).
import { ConfigError } from './config-error';

export const COMPILED_DIRS = {
  etc: '/etc/ctdb',
  run: '/run/ctdb',
  var: '/var/lib/ctdb',
  share: '/usr/share/ctdb',
  helper: '/usr/libexec/ctdb',
  log: '/var/log/ctdb',
} as const;

export interface CtdbPaths {
  testMode: boolean;
  /** Effective CTDB_BASE (exported to event scripts and helpers). */
  ctdbBase: string;
  etcDir: string;
  runDir: string;
  varDir: string;
  shareDir: string;
  helperDir: string;
  socket: string;
  pidFile: string;
  eventdSocket: string;
  configFile: string;
  nodesFile: string;
  publicAddressesFile: string;
  tunablesFile: string;
  notifyScript: string;
  eventScriptDir: string;
  /** Lock taken while probing which nodes-file address is ours; always in the compiled run dir. */
  socketLockFile: string;
}

export function resolvePaths(env: NodeJS.ProcessEnv = process.env): CtdbPaths {
  const testMode = env.CTDB_TEST_MODE !== undefined;
  const testBase = testMode ? env.CTDB_BASE : undefined;
  if (testMode && testBase === undefined) {
    // ctdbd aborts here; an exception is the clearer equivalent.
    throw new ConfigError('CTDB_BASE', undefined, undefined, 'CTDB_TEST_MODE is set but CTDB_BASE is not');
  }
  // path.c joins with a plain "%s/%s", so keep string concatenation (no normalisation).
  const under = (sub: string | undefined, compiled: string): string =>
    testBase === undefined ? compiled : sub === undefined ? testBase : `${testBase}/${sub}`;
  const etcDir = under(undefined, COMPILED_DIRS.etc);
  const runDir = under('run', COMPILED_DIRS.run);
  const ctdbBase = env.CTDB_BASE ?? COMPILED_DIRS.etc;
  return {
    testMode,
    ctdbBase,
    etcDir,
    runDir,
    varDir: under('var', COMPILED_DIRS.var),
    shareDir: under('share', COMPILED_DIRS.share),
    helperDir: COMPILED_DIRS.helper,
    socket: env.CTDB_SOCKET ?? `${runDir}/ctdbd.socket`,
    pidFile: `${runDir}/ctdbd.pid`,
    eventdSocket: `${runDir}/eventd.socket`,
    configFile: `${etcDir}/ctdb.conf`,
    nodesFile: `${ctdbBase}/nodes`,
    publicAddressesFile: `${ctdbBase}/public_addresses`,
    tunablesFile: `${etcDir}/ctdb.tunables`,
    notifyScript: `${ctdbBase}/notify.sh`,
    eventScriptDir: `${ctdbBase}/events/legacy`,
    socketLockFile: `${COMPILED_DIRS.run}/.socket_lock`,
  };
}
