// The real Debian ctdbd 4.17 as the oracle for start-up behaviour: default log level, log line
// format, ctdb.tunables handling, LIST_TUNABLES order, and which ctdb.conf problems are fatal.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/common/logging';
import { ConfigError } from '../../src/config/config-error';
import { loadCtdbConfig } from '../../src/config/ctdb-conf';
import { resolvePaths } from '../../src/config/paths';
import { Tunables } from '../../src/config/tunables';
import { FILE_LINE, makeTempDir, testModeEnv } from './oracle';

const NODE_ADDRESS = '127.93.0.1';
// Each line probes one parsing rule on a tunable that cannot disturb the daemon; the malformed
// line near the end must stop reading, so the last line is neither applied nor reported.
const TUNABLES_FILE = `MonitorInterval=30
keepaliveinterval = 0x7
TakeoverTimeout = 013
[section]
Bogus=1
VacuumLimit=77
EmptyOne=
NoEquals
RecoverTimeout=12abc
StickyDuration=-5
DBSizeWarn=4294967297
DBRecordCountWarn=+5
DBRecordSizeWarn=18446744073709551615
LogLatencyMs=18446744073709551616
StickyPindown=08
HopcountMakeSticky=0x
TickleUpdateInterval=1e3
VerboseMemoryNames = 1 
RecoveryGracePeriod=5  x
Stat History Interval=2
  ;comment
\tRecBufferSizeLimit\t=\t12345
= 9
ElectionTimeout=8
`;

function writeNodeBase(base: string, extraConf: string): void {
  for (const dir of ['run', 'var/volatile', 'var/persistent', 'var/state', 'events/legacy']) {
    fs.mkdirSync(path.join(base, dir), { recursive: true });
  }
  fs.writeFileSync(path.join(base, 'nodes'), `${NODE_ADDRESS}\n`);
  fs.writeFileSync(
    path.join(base, 'ctdb.conf'),
    `[logging]
  location = file:${base}/log.ctdb
[cluster]
  node address = ${NODE_ADDRESS}
[database]
  volatile database directory = ${base}/var/volatile
  persistent database directory = ${base}/var/persistent
  state database directory = ${base}/var/state
${extraConf}`,
  );
}

function ctdbTool(base: string, ...args: string[]) {
  return spawnSync('/usr/bin/ctdb', args, { env: testModeEnv(base), encoding: 'utf8', timeout: 10_000 });
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('real ctdbd accepts unknown options and applies ctdb.tunables', () => {
  let base: string;
  let daemonPid: number | undefined;

  beforeAll(async () => {
    base = makeTempDir('h3-real-');
    // No log level: ctdbd's own default (NOTICE) applies. Unknown names must not stop it.
    writeNodeBase(base, '[bogus]\n  x = 1\n[cluster]\n  no such option = 1\n');
    fs.writeFileSync(path.join(base, 'ctdb.tunables'), TUNABLES_FILE);
    // ctdbd daemonises: the process we spawn exits once the daemon is running.
    const starter = spawn('/usr/sbin/ctdbd', [], { env: testModeEnv(base), stdio: 'ignore' });
    await new Promise((resolve) => starter.on('exit', resolve));
    const pidFile = path.join(base, 'run', 'ctdbd.pid');
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim().length > 0, 'ctdbd pid file');
    daemonPid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    await waitFor(() => ctdbTool(base, 'listvars').status === 0, 'ctdb listvars');
  }, 30_000);

  afterAll(async () => {
    if (daemonPid !== undefined && isAlive(daemonPid)) {
      process.kill(daemonPid, 'SIGTERM');
      await waitFor(() => !isAlive(daemonPid as number), 'ctdbd to exit').catch(() => process.kill(daemonPid as number, 'SIGKILL'));
    }
    fs.rmSync(base, { recursive: true, force: true });
  }, 30_000);

  it('our config loader also accepts the file (unknowns only warned about)', () => {
    const warnings: string[] = [];
    const config = loadCtdbConfig(resolvePaths(testModeEnv(base)), { warn: (m) => warnings.push(m) });
    expect(config.cluster.nodeAddress).toBe(NODE_ADDRESS);
    expect(config.logging.level).toBe('NOTICE');
    expect(warnings).toHaveLength(3);
  });

  it('`ctdb listvars` shows the same names, order and values as our Tunables', () => {
    const tunables = new Tunables();
    tunables.loadFile(resolvePaths(testModeEnv(base)).tunablesFile, () => {});
    const real = ctdbTool(base, 'listvars')
      .stdout.trim()
      .split('\n')
      .map((line) => /^(\S+)\s+= (\d+)$/.exec(line)?.slice(1));
    expect(real).toEqual(tunables.listNames().map((name) => [name, String(tunables.values[name])]));
  });

  it('the tunables file problems are the ones ctdbd logs', () => {
    const file = resolvePaths(testModeEnv(base)).tunablesFile;
    const ours: string[] = [];
    // We prefix file:line and say why a line is malformed; the rest of the text is ctdbd's.
    new Tunables().loadFile(file, (m) => ours.push(m.replace(/^.*?:\d+: /, '').replace(/^(Syntax error): .*/, '$1')));
    const prefix = 'ctdb_tunable_load_file: ';
    const logged = fs
      .readFileSync(path.join(base, 'log.ctdb'), 'utf8')
      .split('\n')
      .map((line) => FILE_LINE.exec(line)?.[5])
      .filter((message): message is string => message?.startsWith(prefix) ?? false)
      .map((message) => message.slice(prefix.length).trimEnd());
    expect(ours).toEqual(logged);
  });

  it('log lines have the same shape as ours, default level NOTICE', () => {
    const realLines = fs.readFileSync(path.join(base, 'log.ctdb'), 'utf8').trimEnd().split('\n');
    const realFields = realLines.map((line) => FILE_LINE.exec(line));
    expect(realFields.every((m) => m !== null)).toBe(true);
    expect(realLines.some((line) => line.endsWith(`Loading tunables from ${base}/ctdb.tunables`))).toBe(true);

    const ourFile = path.join(base, 'ours.log');
    const logger = createLogger({ location: `file:${ourFile}`, level: 'NOTICE', env: testModeEnv(base), pid: daemonPid });
    logger.notice('CTDB starting on node');
    logger.info('not at NOTICE');
    logger.close();
    const [ourLine, ...rest] = fs.readFileSync(ourFile, 'utf8').trimEnd().split('\n');
    expect(rest).toEqual([]);
    const ourFields = FILE_LINE.exec(ourLine);
    const firstReal = realFields[0] as RegExpExecArray;
    expect(ourFields?.[2]).toBe(firstReal[2]);
    expect(ourFields?.[1].slice(-6)).toBe(firstReal[1].slice(-6));
    expect(ourFields?.[5]).toBe(firstReal[5]);
  });
});

describe('real ctdbd refuses invalid values, and so do we', () => {
  const INVALID: Array<[string, string, RegExp]> = [
    ['leader timeout = 0', '[cluster]\n  leader timeout = 0\n', /leader timeout/],
    ['empty value', '[legacy]\n  script log level =\n', /script log level/],
    ['bad boolean', '[failover]\n  disabled = maybe\n', /disabled/],
  ];

  it.each(INVALID)('%s', async (_label, extra, option) => {
    const base = makeTempDir('h3-bad-');
    try {
      writeNodeBase(base, extra);
      const daemon = spawn('/usr/sbin/ctdbd', ['-i'], { env: testModeEnv(base), stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      daemon.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const killer = setTimeout(() => daemon.kill('SIGKILL'), 10_000);
      const status = await new Promise<number | null>((resolve) => daemon.on('exit', resolve));
      clearTimeout(killer);
      expect(status).toBe(1);
      expect(stderr).toMatch(/Failed to load configuration file/);
      expect(() => loadCtdbConfig(resolvePaths(testModeEnv(base)))).toThrow(ConfigError);
      expect(() => loadCtdbConfig(resolvePaths(testModeEnv(base)))).toThrow(option);
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
