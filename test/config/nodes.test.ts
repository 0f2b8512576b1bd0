import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error';
import { formatIPv6, parseCtdbAddress, parseIPv4, parseIPv6 } from '../../src/config/inet';
import { loadNodesFile, parseNodesFile } from '../../src/config/nodes';
import { useTempDir } from './oracle';

const tempDir = useTempDir('h3-nodes-');

/** `ctdb -Y listnodes` reads $CTDB_BASE/nodes itself: "|pnn|address|" per non-deleted node. */
function realListNodes(text: string): string[] | 'error' {
  fs.writeFileSync(path.join(tempDir(), 'nodes'), text);
  const result = spawnSync('/usr/bin/ctdb', ['-Y', 'listnodes'], {
    env: { PATH: process.env.PATH, CTDB_BASE: tempDir() },
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (result.status !== 0) return 'error';
  return result.stdout.split('\n').filter((l) => l.length > 0);
}

function ourListNodes(text: string): string[] | 'error' {
  try {
    return parseNodesFile(text, 'nodes')
      .filter((n) => !n.deleted)
      .map((n) => `|${n.pnn}|${n.address}|`);
  } catch (err) {
    if (err instanceof ConfigError) return 'error';
    throw err;
  }
}

const NODE_FILES: Array<[string, string]> = [
  ['three IPv4 nodes', '10.0.0.1\n10.0.0.2\n10.0.0.3\n'],
  ['deleted node keeps its PNN', '10.0.0.1\n#10.0.0.2\n10.0.0.3\n'],
  ['"# anything" is a deleted node too', '# comment\n10.0.0.3\n'],
  ['blank lines do not use a PNN', '10.0.0.1\n\n   \n\t\n10.0.0.3\n\n\n'],
  ['surrounding spaces and tabs', '  10.0.0.1\t \n\t10.0.0.2\n'],
  ['CRLF', '10.0.0.1\r\n10.0.0.2\r\n'],
  ['IPv6 canonicalised', 'fd00::0001\nFD00:0:0:0:0:0:0:2\n2001:db8:0:0:1:0:0:1\n'],
  ['bracketed IPv6', '[fd00::5]\n'],
  ['IPv4-mapped becomes IPv4', '::ffff:10.1.2.3\n'],
  ['IPv4-mapped in hex form is rejected', '::ffff:a01:203\n'],
  ['no trailing newline', '10.0.0.1\n10.0.0.2'],
  ['empty file', ''],
  ['garbage', '10.0.0.1\nnot-an-ip\n'],
  ['port is not allowed', '10.0.0.1:4379\n'],
  ['IPv6 zone id', 'fe80::1%eth0\n'],
  ['leading zeros', '10.0.0.01\n'],
  ['trailing comment on the line', '10.0.0.1 # node one\n'],
  ['space inside', '10.0.0.1 10.0.0.2\n'],
];

describe('nodes file vs `ctdb -Y listnodes`', () => {
  it.each(NODE_FILES)('%s', (_label, text) => {
    expect(ourListNodes(text)).toEqual(realListNodes(text));
  });
});

describe('random nodes files vs `ctdb -Y listnodes`', () => {
  let state = 4379;
  // Small linear congruential generator: deterministic, so failures replay.
  const random = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const ENTRIES = ['10.0.0.1', '10.0.0.2', 'fd00::1', '[fd00::2]', '::ffff:10.0.0.9', '#10.0.0.3', '#', '', '300.1.1.1', 'x'];
  const SPACING = ['', ' ', '\t', ' \t '];
  const files = Array.from({ length: 60 }, () =>
    Array.from({ length: Math.floor(random() * 8) }, () => `${pick(SPACING)}${pick(ENTRIES)}${pick(SPACING)}${pick(['\n', '\n', '\r\n'])}`).join(''),
  );
  it.each(files.map((text, index) => [index, text] as const))('file #%d %j', (_index, text) => {
    expect(ourListNodes(text)).toEqual(realListNodes(text));
  });
});

describe('parseNodesFile', () => {
  it('returns deleted nodes with address 0.0.0.0', () => {
    expect(parseNodesFile('10.0.0.1\n#10.0.0.2\n\nfd00::3\n', 'n')).toEqual([
      { pnn: 0, address: '10.0.0.1', family: 4, deleted: false },
      { pnn: 1, address: '0.0.0.0', family: 4, deleted: true },
      { pnn: 2, address: 'fd00::3', family: 6, deleted: false },
    ]);
  });

  it('invalid address: ConfigError naming file and line', () => {
    expect(() => parseNodesFile('10.0.0.1\n\n10.0.0.300\n', '/etc/ctdb/nodes')).toThrow(
      new ConfigError('/etc/ctdb/nodes', 3, undefined, 'invalid node address "10.0.0.300"'),
    );
  });

  it('loadNodesFile reads the file, and a missing file is a ConfigError', () => {
    const file = path.join(tempDir(), 'nodes');
    fs.writeFileSync(file, '127.0.0.1\n');
    expect(loadNodesFile(file)).toHaveLength(1);
    expect(() => loadNodesFile(path.join(tempDir(), 'missing'))).toThrow(/missing: cannot read nodes file/);
  });
});

/** glibc's inet_pton/inet_ntop through Python, which calls them directly. */
function glibc(inputs: string[]): Array<{ v4: boolean; v6: string | null }> {
  const script = `
import json, socket, sys
out = []
for s in json.load(sys.stdin):
    r = {"v4": False, "v6": None}
    try:
        socket.inet_pton(socket.AF_INET, s); r["v4"] = True
    except (OSError, ValueError): pass
    try:
        r["v6"] = socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, s))
    except (OSError, ValueError): pass
    out.append(r)
print(json.dumps(out))`;
  const result = spawnSync('python3', ['-c', script], { input: JSON.stringify(inputs), encoding: 'utf8' });
  return JSON.parse(result.stdout);
}

const ADDRESSES = [
  '0.0.0.0', '255.255.255.255', '1.2.3.4', '256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1..2.3', ' 1.2.3.4', '1.2.3.4 ',
  '1.2.3.-4', '1.2.3.4/24', '0x1.2.3.4', '::', '::1', '1::', '1::2', ':::', '1:::2', '::1::', ':1::2', '1::2:', '1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7::8', '12345::', 'fFfF::', 'g::', '::1.2.3.4',
  '::ffff:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3', '::256.1.2.3', '1.2.3.4::', '0:0:0:0:0:0:0:1',
  '0:0:1:0:0:0:1:0', '1:0:0:1:0:0:0:1', '1:0:1:0:1:0:1:0', '0:0:0:0:0:0:0:2', '0:0:0:0:0:0:102:304', '0:0:0:0:0:ffff:102:304',
  '0:0:0:0:1:ffff:102:304', 'fe80::1%eth0', '[::1]', '', ':', '1:2:3:4:5:6:7:8:', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  '2001:DB8::A', '::0:0', '0::0', '1:0::', '0:1::',
];

describe('address parsing and printing vs glibc', () => {
  const truth = glibc(ADDRESSES);
  it.each(ADDRESSES.map((a, i) => [a, truth[i]] as const))('%j', (text, expected) => {
    expect(parseIPv4(text) !== undefined).toBe(expected.v4);
    const v6 = parseIPv6(text);
    expect(v6 && formatIPv6(v6)).toBe(expected.v6 ?? undefined);
  });

  it('CTDB extras: brackets, IPv4-mapped, length limit', () => {
    expect(parseCtdbAddress('[fd00::1]')?.address).toBe('fd00::1');
    expect(parseCtdbAddress('::ffff:192.0.2.1')).toMatchObject({ family: 4, address: '192.0.2.1' });
    expect(parseCtdbAddress('::ffff:c000:201')).toBeUndefined();
    expect(parseCtdbAddress(`${'0'.repeat(60)}::1`)).toBeUndefined();
    expect(parseCtdbAddress('[10.0.0.1]')).toBeUndefined();
  });
});
