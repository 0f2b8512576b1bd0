import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error';
import {
  CONF_TOOL_DEFAULT_LOG_LEVEL,
  dumpCtdbConf,
  loadCtdbConfig,
  parseCtdbConf,
  type CtdbConfOptions,
} from '../../src/config/ctdb-conf';
import { resolvePaths } from '../../src/config/paths';
import { runCtdbConfig, useTempDir } from './oracle';

const tempDir = useTempDir('h3-conf-');
let base: string;

beforeAll(() => {
  base = tempDir();
  for (const dir of ['vol', 'per', 'sta', 'adir']) fs.mkdirSync(path.join(base, dir));
  fs.writeFileSync(path.join(base, 'afile'), '');
  fs.writeFileSync(path.join(base, 'dbg.sh'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(base, 'noexec.sh'), '#!/bin/sh\n', { mode: 0o644 });
});

const expand = (text: string): string => text.replaceAll('$BASE', base);

/** Our parse with ctdb-config's settings, or the ConfigError it throws. */
function ours(text: string, strict: boolean): { dump: string } | { error: ConfigError } {
  const options: CtdbConfOptions = { etcDir: base, defaultLogLevel: CONF_TOOL_DEFAULT_LOG_LEVEL, strict };
  try {
    return { dump: dumpCtdbConf(parseCtdbConf(text, path.join(base, 'ctdb.conf'), options)) };
  } catch (err) {
    if (err instanceof ConfigError) return { error: err };
    throw err;
  }
}

/** Asserts that `ctdb-config dump` and `ctdb-config validate` agree with us on this file. */
function expectSameAsCtdbConfig(text: string): { dumpOk: boolean; validateOk: boolean } {
  fs.writeFileSync(path.join(base, 'ctdb.conf'), text);
  const dump = runCtdbConfig(base, 'dump');
  const validate = runCtdbConfig(base, 'validate');
  const lenient = ours(text, false);
  const strict = ours(text, true);
  if (dump.status === 0) {
    expect(lenient).toEqual({ dump: dump.stdout });
  } else {
    expect(lenient, `ctdb-config dump failed: ${dump.stderr}`).toHaveProperty('error');
  }
  expect('error' in strict, `validate said: ${validate.stderr}`).toBe(validate.status !== 0);
  return { dumpOk: dump.status === 0, validateOk: validate.status === 0 };
}

type OptionCase = [section: string, option: string, value: string, valid: boolean];

const OPTION_CASES: OptionCase[] = [
  ['logging', 'location', 'file:$BASE/log.ctdb', true],
  ['logging', 'location', 'file:/nonexistent-h3/log', false],
  ['logging', 'location', 'file:$BASE/afile/log', false],
  ['logging', 'location', 'file', true],
  ['logging', 'location', 'file:-', true],
  ['logging', 'location', ':file', true],
  ['logging', 'location', 'file:$BASE/a:b', true],
  ['logging', 'location', 'syslog', true],
  ['logging', 'location', 'syslog:nonblocking', true],
  ['logging', 'location', 'syslog:udp', true],
  ['logging', 'location', 'syslog:udp-rfc5424', true],
  ['logging', 'location', 'syslog:tcp', false],
  ['logging', 'location', 'stderr', false],
  ['logging', 'location', 'FILE:/tmp/x', false],
  ['logging', 'log level', 'ERROR', true],
  ['logging', 'log level', 'warning', true],
  ['logging', 'log level', 'Notice', true],
  ['logging', 'log level', 'INFO', true],
  ['logging', 'log level', 'DEBUG', true],
  ['logging', 'log level', 'deb', true],
  ['logging', 'log level', '0', true],
  ['logging', 'log level', '10', true],
  ['logging', 'log level', '4x', true],
  ['logging', 'log level', '11', false],
  ['logging', 'log level', '-1', false],
  ['logging', 'log level', 'ERRORS', false],
  ['logging', 'log level', 'verbose', false],
  ['cluster', 'transport', 'tcp', true],
  ['cluster', 'transport', 'ib', false],
  ['cluster', 'transport', 'TCP', false],
  ['cluster', 'node address', '127.0.0.1', true],
  ['cluster', 'node address', '::1', true],
  ['cluster', 'node address', 'fd00:1::2', true],
  ['cluster', 'node address', '::ffff:10.0.0.1', true],
  ['cluster', 'node address', 'fe80::1%eth0', false],
  ['cluster', 'node address', '[::1]', false],
  ['cluster', 'node address', '10.0.0', false],
  ['cluster', 'node address', '010.0.0.1', false],
  ['cluster', 'node address', 'node1.example', false],
  ['cluster', 'cluster lock', '/shared/.ctdb/reclock', true],
  ['cluster', 'cluster lock', '!/usr/libexec/ctdb/ctdb_mutex_fcntl_helper /shared/lock', true],
  ['cluster', 'recovery lock', '/shared/lock', true],
  ['cluster', 'leader timeout', '1', true],
  ['cluster', 'leader timeout', '5', true],
  ['cluster', 'leader timeout', '7x', true],
  ['cluster', 'leader timeout', '0x10', true],
  ['cluster', 'leader timeout', '010', true],
  ['cluster', 'leader timeout', '+9', true],
  ['cluster', 'leader timeout', '2147483647', true],
  ['cluster', 'leader timeout', '2147483648', false],
  ['cluster', 'leader timeout', '99999999999999999999', false],
  ['cluster', 'leader timeout', '0', false],
  ['cluster', 'leader timeout', '-3', false],
  ['cluster', 'leader timeout', 'abc', false],
  ['cluster', 'leader capability', 'false', true],
  ['cluster', 'leader capability', 'No', true],
  ['cluster', 'leader capability', 'YES', true],
  ['cluster', 'leader capability', '1', false],
  ['cluster', 'leader capability', 'on', false],
  ['database', 'volatile database directory', '$BASE/vol', true],
  ['database', 'volatile database directory', '$BASE/missing', false],
  ['database', 'volatile database directory', '$BASE/afile', false],
  ['database', 'volatile database directory', '/var/lib/ctdb/volatile', true],
  ['database', 'persistent database directory', '$BASE/per', true],
  ['database', 'persistent database directory', '$BASE/missing', false],
  ['database', 'state database directory', '$BASE/sta', true],
  ['database', 'state database directory', '$BASE/missing', false],
  ['database', 'lock debug script', 'dbg.sh', true],
  ['database', 'lock debug script', '/some/where/dbg.sh', true],
  ['database', 'lock debug script', '/some/where/dbg.sh/', true],
  ['database', 'lock debug script', 'noexec.sh', false],
  ['database', 'lock debug script', 'adir', false],
  ['database', 'lock debug script', 'missing.sh', false],
  ['database', 'lock debug script', '/', false],
  ['database', 'tdb mutexes', 'false', true],
  ['database', 'tdb mutexes', 'maybe', false],
  ['event', 'debug script', 'dbg.sh', true],
  ['event', 'debug script', 'noexec.sh', false],
  ['event', 'debug script', 'missing.sh', false],
  ['failover', 'disabled', 'true', true],
  ['failover', 'disabled', 'disabled', false],
  ['legacy', 'realtime scheduling', 'false', true],
  ['legacy', 'realtime scheduling', '0', false],
  ['legacy', 'lmaster capability', 'no', true],
  ['legacy', 'lmaster capability', 'nope', false],
  ['legacy', 'start as stopped', 'yes', true],
  ['legacy', 'start as stopped', 'y', false],
  ['legacy', 'start as disabled', 'TRUE', true],
  ['legacy', 'start as disabled', 't', false],
  ['legacy', 'script log level', 'NOTICE', true],
  ['legacy', 'script log level', '5', true],
  ['legacy', 'script log level', 'loud', false],
];

describe('every option, valid and invalid values, against ctdb-config', () => {
  it.each(OPTION_CASES)('[%s] %s = %s (valid: %s)', (section, option, value, valid) => {
    const outcome = expectSameAsCtdbConfig(expand(`[${section}]\n\t${option} = ${value}\n`));
    expect(outcome).toEqual({ dumpOk: valid, validateOk: valid });
  });

  it.each(OPTION_CASES.map(([s, o]) => [s, o] as const).filter((c, i, all) => all.findIndex((d) => d[0] === c[0] && d[1] === c[1]) === i))(
    '[%s] %s with an empty value is fatal',
    (section, option) => {
      expect(expectSameAsCtdbConfig(`[${section}]\n${option} =\n`)).toEqual({ dumpOk: false, validateOk: false });
    },
  );
});

const FILE_CASES: Array<[label: string, text: string, dumpOk: boolean, validateOk: boolean]> = [
  ['empty file', '', true, true],
  ['comments only', '# nothing\n; here\n', true, true],
  [
    'every option set',
    `[logging]
  location = file:$BASE/log.ctdb
  log level = INFO
[cluster]
  transport = tcp
  node address = 127.0.0.7
  cluster lock = !/usr/bin/helper $BASE/lock
  recovery lock = /old/lock
  leader timeout = 9
  leader capability = false
[database]
  volatile database directory = $BASE/vol
  persistent database directory = $BASE/per
  state database directory = $BASE/sta
  lock debug script = dbg.sh
  tdb mutexes = false
[event]
  debug script = /anywhere/dbg.sh
[failover]
  disabled = true
[legacy]
  realtime scheduling = false
  lmaster capability = false
  start as stopped = true
  start as disabled = true
  script log level = DEBUG
`,
    true,
    true,
  ],
  ['unknown section (ignored by dump and ctdbd)', '[bogus]\nx = 1\n[cluster]\nleader timeout = 8\n', true, false],
  ['unknown option (ignored by dump and ctdbd)', '[cluster]\nport = 4379\nleader timeout = 8\n', true, false],
  ['option before any section', 'leader timeout = 8\n', true, false],
  ['section names are case-insensitive', '[CLUSTER]\nleader timeout = 8\n', true, true],
  ['option names are case-sensitive', '[cluster]\nLeader Timeout = 8\n', true, false],
  ['section name is not trimmed', '[ cluster ]\nleader timeout = 8\n', true, false],
  ['text after ] is ignored', '[cluster] trailing\nleader timeout = 8\n', true, true],
  ['whitespace runs collapse inside names', '[cluster]\n  leader     timeout   =   8  \n', true, true],
  ['tab inside a name does not match', '[cluster]\nleader\ttimeout = 8\n', true, false],
  ['continuation lines', '[cluster]\ncluster lock = /a  b\\\n    c\n', true, true],
  ['value equal to the default is still "default"', '[cluster]\nleader timeout = 5\n[legacy]\nlmaster capability = TRUE\n', true, true],
  ['repeated option: last differing value wins', '[cluster]\nleader timeout = 7\nleader timeout = 8\n', true, true],
  ['repeated option: setting back to the default keeps the earlier value', '[cluster]\nleader timeout = 7\nleader timeout = 5\n', true, true],
  ['repeated section', '[cluster]\nleader timeout = 7\n[legacy]\nstart as stopped = yes\n[cluster]\nleader capability = no\n', true, true],
  ['unterminated section header: whole file silently ignored', '[cluster]\nleader timeout = 7\n[legacy\n', true, true],
  ['nameless option: whole file silently ignored', '[cluster]\nleader timeout = 7\n= 3\n', true, true],
  ['invalid value before a syntax error is still fatal', '[cluster]\nleader timeout = 0\n[x\n', false, false],
  ['several invalid values', '[cluster]\nleader timeout = 0\ntransport = udp\n[legacy]\nstart as stopped = maybe\n', false, false],
  ['line without = is ignored', '[cluster]\nleader timeout\nleader capability = no\n', true, true],
  ['CRLF file', '[cluster]\r\nleader timeout = 6\r\n', true, true],
];

describe('whole files, against ctdb-config dump/validate', () => {
  it.each(FILE_CASES)('%s', (_label, text, dumpOk, validateOk) => {
    expect(expectSameAsCtdbConfig(expand(text))).toEqual({ dumpOk, validateOk });
  });
});

/** Deterministic pseudo-random generator (mulberry32), so a failing case can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T,>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)];

const RANDOM_SECTIONS = ['cluster', 'CLUSTER', 'legacy', 'logging', 'database', 'event', 'failover', 'bogus', ' cluster'];
const RANDOM_NAMES = [
  ...new Set(OPTION_CASES.map(([, option]) => option)),
  'Leader Timeout', 'leader  timeout', 'leader\ttimeout', 'no such option',
];
const RANDOM_VALUES = [
  ...new Set(OPTION_CASES.map(([, , value]) => value)),
  '', '7 # trailing', 'a=b', '  spaced   out  ',
];
const RANDOM_SEPARATORS = [' = ', '=', '   =   ', '\t=\t', ' =', '= '];

/** One random ctdb.conf line, weighted towards well-formed options so values really get applied. */
function randomLine(random: () => number): string {
  const indent = pick(random, ['', '', '  ', '\t']);
  const roll = random();
  if (roll < 0.2) {
    const name = pick(random, RANDOM_SECTIONS);
    return `${indent}[${name}${random() < 0.04 ? '' : ']'}${random() < 0.1 ? ' junk' : ''}`;
  }
  if (roll < 0.75) {
    const continued = random() < 0.05 ? `\\\n${pick(random, ['', '  '])}x` : '';
    return `${indent}${pick(random, RANDOM_NAMES)}${pick(random, RANDOM_SEPARATORS)}${pick(random, RANDOM_VALUES)}${continued}`;
  }
  if (roll < 0.85) return `${indent}${pick(random, ['#', ';'])} comment = 1`;
  if (roll < 0.95) return indent;
  return pick(random, ['just words', '= 5', '[', 'x =']);
}

describe('random files: same verdict and dump as ctdb-config', () => {
  const random = seededRandom(20261121);
  const files = Array.from({ length: 150 }, () =>
    Array.from({ length: 1 + Math.floor(random() * 12) }, () => randomLine(random) + (random() < 0.1 ? '\r\n' : '\n')).join(''),
  );
  const verdicts: Array<{ dumpOk: boolean; validateOk: boolean }> = [];
  it.each(files.map((text, index) => [index, text] as const))('file #%d %j', (_index, text) => {
    verdicts.push(expectSameAsCtdbConfig(expand(text)));
  });

  it('the random files cover accepted, lenient-only and rejected outcomes', () => {
    const count = (dumpOk: boolean, validateOk: boolean) =>
      verdicts.filter((v) => v.dumpOk === dumpOk && v.validateOk === validateOk).length;
    expect(count(true, true)).toBeGreaterThan(10);
    expect(count(true, false)).toBeGreaterThan(10);
    expect(count(false, false)).toBeGreaterThan(10);
  });
});

describe('typed configuration for the daemon', () => {
  const parse = (text: string, warn?: (m: string) => void) =>
    parseCtdbConf(expand(text), '/etc/ctdb/ctdb.conf', { etcDir: base, warn }).config;

  it('defaults (ctdbd uses NOTICE, not the tool default ERROR)', () => {
    expect(parse('')).toEqual({
      logging: { location: 'file:/var/log/ctdb/log.ctdb', level: 'NOTICE' },
      cluster: { transport: 'tcp', nodeAddress: null, clusterLock: null, leaderTimeout: 5, leaderCapability: true },
      database: {
        volatileDbDir: '/var/lib/ctdb/volatile',
        persistentDbDir: '/var/lib/ctdb/persistent',
        stateDbDir: '/var/lib/ctdb/state',
        lockDebugScript: null,
        tdbMutexes: true,
      },
      event: { debugScript: null },
      failover: { disabled: false },
      legacy: { realtimeScheduling: true, lmasterCapability: true, startAsStopped: false, startAsDisabled: false, scriptLogLevel: 'ERROR' },
    });
  });

  it('every option set', () => {
    const config = parse(FILE_CASES[2][1]);
    expect(config.logging).toEqual({ location: `file:${base}/log.ctdb`, level: 'INFO' });
    expect(config.cluster).toEqual({
      transport: 'tcp',
      nodeAddress: '127.0.0.7',
      clusterLock: `!/usr/bin/helper ${base}/lock`,
      leaderTimeout: 9,
      leaderCapability: false,
    });
    expect(config.database).toEqual({
      volatileDbDir: `${base}/vol`,
      persistentDbDir: `${base}/per`,
      stateDbDir: `${base}/sta`,
      lockDebugScript: 'dbg.sh',
      tdbMutexes: false,
    });
    expect(config.event.debugScript).toBe('/anywhere/dbg.sh');
    expect(config.failover.disabled).toBe(true);
    expect(config.legacy).toEqual({
      realtimeScheduling: false,
      lmasterCapability: false,
      startAsStopped: true,
      startAsDisabled: true,
      scriptLogLevel: 'DEBUG',
    });
  });

  it('recovery lock is the deprecated fallback for cluster lock, with a warning', () => {
    const warnings: string[] = [];
    expect(parse('[cluster]\nrecovery lock = /old\n', (m) => warnings.push(m)).cluster.clusterLock).toBe('/old');
    expect(warnings.join('\n')).toMatch(/recovery lock is deprecated/);
    expect(parse('[cluster]\nrecovery lock = /old\ncluster lock = /new\n').cluster.clusterLock).toBe('/new');
  });

  it('test mode does not move the database directory defaults', () => {
    const paths = resolvePaths({ CTDB_TEST_MODE: '1', CTDB_BASE: base });
    fs.rmSync(paths.configFile, { force: true });
    expect(loadCtdbConfig(paths).database.volatileDbDir).toBe('/var/lib/ctdb/volatile');
  });

  it('unknown names and a malformed file are reported as warnings, never silently', () => {
    const warnings: string[] = [];
    parse('[bogus]\nx = 1\n[cluster]\nport = 1\n[legacy\n', (m) => warnings.push(m));
    expect(warnings).toEqual([
      '/etc/ctdb/ctdb.conf:1: ignoring unknown section [bogus]',
      '/etc/ctdb/ctdb.conf:2: ignoring option "x" outside a known section',
      '/etc/ctdb/ctdb.conf:4: ignoring unknown option [cluster] -> "port"',
      `/etc/ctdb/ctdb.conf:5: section header "[legacy" has no closing ']'; CTDB ignores the whole file and uses defaults`,
    ]);
  });

  const ERRORS: Array<[string, string, number, string]> = [
    ['[cluster]\n\nleader timeout = 0\n', '/etc/ctdb/ctdb.conf:3: [cluster] -> leader timeout: Invalid value for [cluster] -> leader timeout = 0', 3, '[cluster] -> leader timeout'],
    ['[legacy]\nstart as stopped = maybe\n', '/etc/ctdb/ctdb.conf:2: [legacy] -> start as stopped: invalid boolean value "maybe"', 2, '[legacy] -> start as stopped'],
    ['[logging]\nlog level =\n', '/etc/ctdb/ctdb.conf:2: [logging] -> log level: empty value', 2, '[logging] -> log level'],
    ['[database]\nstate database directory = /nonexistent-h3\n', '/etc/ctdb/ctdb.conf:2: [database] -> state database directory: state database directory "/nonexistent-h3" does not exist', 2, '[database] -> state database directory'],
  ];
  it.each(ERRORS)('error names file, line and option: %j', (text, message, line, option) => {
    let caught: unknown;
    try {
      parse(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect(caught).toMatchObject({ message, line, option, file: '/etc/ctdb/ctdb.conf' });
  });

  it('several errors are all listed', () => {
    expect(() => parse('[cluster]\nleader timeout = 0\ntransport = udp\n')).toThrow(
      /ctdb.conf:2: .*leader timeout.*\n.*ctdb.conf:3: .*transport = udp/,
    );
  });

  it('an unreadable config file is a ConfigError naming the file', () => {
    const dir = path.join(base, 'cfgdir');
    fs.mkdirSync(path.join(dir, 'ctdb.conf'), { recursive: true });
    expect(() => loadCtdbConfig(resolvePaths({ CTDB_TEST_MODE: '1', CTDB_BASE: dir }))).toThrow(/cfgdir\/ctdb.conf: cannot read/);
  });
});
