import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEBUG_DEBUG,
  DEBUG_ERR,
  DEBUG_INFO,
  DEBUG_NOTICE,
  DEBUG_WARNING,
  createLogger,
  debugLevelName,
  formatRfc5424Time,
  parseDebugLevel,
  validateLogLocation,
} from '../../src/common/logging';
import { FILE_LINE, useTempDir } from './oracle';

const tempDir = useTempDir('h3-log-');

describe('debug levels (CTDB debug_level_parse / debug_level_to_string)', () => {
  it('has CTDB numbering', () => {
    expect([DEBUG_ERR, DEBUG_WARNING, DEBUG_NOTICE, DEBUG_INFO, DEBUG_DEBUG]).toEqual([0, 1, 3, 5, 10]);
  });

  const PARSE: Array<[string, number | undefined]> = [
    ['ERROR', 0], ['error', 0], ['E', 0], ['', 0], ['WARNING', 1], ['warn', 1], ['NOTICE', 3], ['n', 3], ['INFO', 5],
    ['DEBUG', 10], ['d', 10], ['0', 0], ['2', 2], ['7', 7], ['10', 10], ['4x', 4], ['11', undefined], ['-1', undefined],
    ['ERRORS', undefined], ['verbose', undefined], [' ERROR', undefined],
  ];
  it.each(PARSE)('parse %j -> %j', (text, level) => {
    expect(parseDebugLevel(text)).toBe(level);
  });

  const NAMES: Array<[number, string]> = [[0, 'ERROR'], [1, 'WARNING'], [2, 'WARNING'], [3, 'NOTICE'], [4, 'NOTICE'], [5, 'INFO'], [9, 'INFO'], [10, 'DEBUG'], [11, 'UNKNOWN']];
  it.each(NAMES)('name of %d is %s', (level, name) => {
    expect(debugLevelName(level)).toBe(name);
  });
});

describe('validateLogLocation (logging_validate)', () => {
  const CASES: Array<[string, boolean]> = [
    ['file:/tmp/x.log', true], ['file:/nonexistent-h3/x.log', false], ['file:', true], ['file', true], ['file:-', true],
    ['file:relative.log', true], ['syslog', true], ['syslog:nonblocking', true], ['syslog:udp', true],
    ['syslog:udp-rfc5424', true], ['syslog:', true], ['syslog:tcp', false], ['stderr', false], ['', false], [':::', false],
  ];
  it.each(CASES)('%j -> %s', (location, valid) => {
    expect(validateLogLocation(location)).toBe(valid);
  });
});

describe('file logging', () => {
  it('writes CTDB-format lines with the test-mode host name, filtered by level', () => {
    const file = path.join(tempDir(), 'log.ctdb');
    const logger = createLogger({
      location: `file:${file}`,
      level: 'NOTICE',
      pid: 4242,
      env: { CTDB_TEST_MODE: '1', CTDB_BASE: '/tmp/cluster/node.2' },
    });
    logger.error('error shown');
    logger.warning('warning shown\n');
    logger.notice('notice shown');
    logger.info('info hidden');
    logger.debug('debug hidden');
    logger.level = DEBUG_DEBUG;
    logger.debug('debug now shown');
    logger.child('ctdb-recoverd', 4243).notice('from the recovery daemon');
    logger.close();
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    const parsed = lines.map((line) => FILE_LINE.exec(line)?.slice(2));
    expect(parsed).toEqual([
      ['node.2', 'ctdbd', '4242', 'error shown'],
      ['node.2', 'ctdbd', '4242', 'warning shown'],
      ['node.2', 'ctdbd', '4242', 'notice shown'],
      ['node.2', 'ctdbd', '4242', 'debug now shown'],
      ['node.2', 'ctdb-recoverd', '4243', 'from the recovery daemon'],
    ]);
  });

  it('appends to an existing file and reopens after rotation', () => {
    const file = path.join(tempDir(), 'rotate.log');
    fs.writeFileSync(file, 'old line\n');
    const logger = createLogger({ location: `file:${file}`, level: 'ERROR', env: {} });
    logger.error('one');
    fs.renameSync(file, `${file}.1`);
    logger.reopen();
    logger.error('two');
    logger.close();
    expect(fs.readFileSync(`${file}.1`, 'utf8')).toMatch(/^old line\n.*: one\n$/);
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^\S+ \S+ ctdbd\[\d+\]: two\n$/);
  });

  it('a file in a missing directory is a clear error', () => {
    expect(() => createLogger({ location: 'file:/nonexistent-h3/dir/log', level: 0 })).toThrow(/\/nonexistent-h3\/dir\/log/);
  });

  it('timestamps are local time with microseconds and a numeric offset', () => {
    const text = formatRfc5424Time(1_700_000_000_123_456n);
    expect(text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.123456[+-]\d\d:\d\d$/);
    const python = spawnSync('python3', ['-c', 'import time; print(time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(1700000000)))'], {
      encoding: 'utf8',
    });
    expect(text.slice(0, 19)).toBe(python.stdout.trim());
  });
});

describe('stderr logging (ctdbd -i, file:, file:-)', () => {
  it('writes bare messages without a header', () => {
    const lines: string[] = [];
    const write = fs.writeSync;
    const spy = (fd: number, data: unknown): number => {
      if (fd === 2) lines.push(String(data));
      return String(data).length;
    };
    (fs as { writeSync: unknown }).writeSync = spy;
    try {
      const a = createLogger({ location: 'syslog', level: 'INFO', interactive: true });
      a.notice('plain message');
      a.debug('hidden');
      createLogger({ location: 'file:-', level: 0 }).error('second\n');
      createLogger({ location: 'file:', level: 0 }).error('third');
    } finally {
      (fs as { writeSync: unknown }).writeSync = write;
    }
    expect(lines).toEqual(['plain message\n', 'second\n', 'third\n']);
  });
});

describe('syslog logging', () => {
  it('syslog:udp sends RFC3164 "<pri>prog[pid]: msg" to 127.0.0.1:514', async () => {
    const packets = await captureUdp(async () => {
      const logger = createLogger({ location: 'syslog:udp', level: 'INFO', pid: 77 });
      logger.error('bad thing');
      logger.notice('note');
      logger.info('detail');
      logger.debug('hidden');
      await new Promise((r) => setTimeout(r, 100));
      logger.close();
    }, 3);
    // CTDB maps levels 2..5 (so INFO too) to LOG_NOTICE.
    expect(packets).toEqual(['<27>ctdbd[77]: bad thing', '<29>ctdbd[77]: note', '<29>ctdbd[77]: detail']);
  });

  it('syslog:udp truncates packets to 1023 bytes like CTDB', async () => {
    const packets = await captureUdp(async () => {
      const logger = createLogger({ location: 'syslog:udp', level: 0, pid: 1 });
      logger.error('x'.repeat(5000));
      await new Promise((r) => setTimeout(r, 100));
      logger.close();
    }, 1);
    expect(packets[0]).toBe(`<27>ctdbd[1]: ${'x'.repeat(1023 - '<27>ctdbd[1]: '.length)}`);
  });

  it('syslog:udp-rfc5424 sends RFC5424 headers', async () => {
    const packets = await captureUdp(async () => {
      const logger = createLogger({ location: 'syslog:udp-rfc5424', level: 'WARNING', pid: 78 });
      logger.warning('careful');
      await new Promise((r) => setTimeout(r, 100));
      logger.close();
    }, 1);
    expect(packets[0]).toMatch(/^<28>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d \S+ ctdbd 78 - - careful$/);
  });

  it('syslog writes glibc-syslog-format datagrams to the local socket', async () => {
    const socketPath = path.join(tempDir(), 'devlog');
    const receiver = spawn('python3', [
      '-c',
      `import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(10)
print("ready", flush=True)
for i in range(2): print(s.recv(2048).decode(), flush=True)`,
      socketPath,
    ]);
    try {
      let output = '';
      receiver.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      await waitFor(() => output.startsWith('ready'));
      const logger = createLogger({ location: 'syslog', level: 'NOTICE', pid: 99, syslogSocket: socketPath });
      logger.error('disk on fire');
      logger.info('hidden');
      logger.notice('all good');
      logger.close();
      await waitFor(() => output.split('\n').length >= 4);
      const [, first, second] = output.split('\n');
      expect(first).toMatch(/^<27>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ctdbd\[99\]: disk on fire$/);
      expect(second).toMatch(/^<29>.* ctdbd\[99\]: all good$/);
    } finally {
      receiver.kill();
    }
  });

  it('rejects unknown locations and levels', () => {
    expect(() => createLogger({ location: 'syslog:tcp', level: 0 })).toThrow("Invalid logging option 'syslog:tcp'");
    expect(() => createLogger({ location: 'journal', level: 0 })).toThrow(/Invalid logging option/);
    expect(() => createLogger({ location: 'file:-', level: 'LOUD' })).toThrow("Invalid debug level 'LOUD'");
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function captureUdp(send: () => Promise<void>, count: number): Promise<string[]> {
  const socket = dgram.createSocket('udp4');
  const packets: string[] = [];
  socket.on('message', (msg) => packets.push(msg.toString()));
  await new Promise<void>((resolve) => socket.bind(514, '127.0.0.1', resolve));
  try {
    await send();
    await waitFor(() => packets.length >= count);
    return packets;
  } finally {
    socket.close();
  }
}
