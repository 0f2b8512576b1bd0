import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error';
import { loadPublicAddresses, parsePublicAddresses } from '../../src/config/public-addresses';
import { useTempDir } from './oracle';

const FILE = '/etc/ctdb/public_addresses';

describe('parsePublicAddresses', () => {
  const VALID: Array<[string, string, object[]]> = [
    ['one address', '10.0.0.10/24 eth0\n', [{ address: '10.0.0.10', family: 4, maskBits: 24, interfaces: ['eth0'], line: 1 }]],
    [
      'several interfaces, comments, blanks, tabs, CRLF',
      '# public IPs\n\n  10.0.0.10/24\teth0,eth1\r\n\t# indented comment\n10.0.0.11/16 eth2 ignored extra words\n',
      [
        { address: '10.0.0.10', family: 4, maskBits: 24, interfaces: ['eth0', 'eth1'], line: 3 },
        { address: '10.0.0.11', family: 4, maskBits: 16, interfaces: ['eth2'], line: 5 },
      ],
    ],
    ['IPv6 canonicalised', 'FD00:0::0010/64 eth0\n', [{ address: 'fd00::10', family: 6, maskBits: 64, interfaces: ['eth0'], line: 1 }]],
    ['empty interface names are dropped', '10.0.0.1/32 ,eth0,,eth1,\n', [{ address: '10.0.0.1', family: 4, maskBits: 32, interfaces: ['eth0', 'eth1'], line: 1 }]],
    ['mask is not range-checked (as in ctdbd)', '10.0.0.1/99 eth0\n', [{ address: '10.0.0.1', family: 4, maskBits: 99, interfaces: ['eth0'], line: 1 }]],
    ['empty file', '', []],
  ];
  it.each(VALID)('%s', (_label, text, expected) => {
    expect(parsePublicAddresses(text, FILE)).toEqual(expected);
  });

  const INVALID: Array<[string, string, number, RegExp]> = [
    ['no interface', '10.0.0.1/24\n', 1, /no interface specified/],
    ['no mask', '10.0.0.1 eth0\n', 1, /badly formed public address "10.0.0.1"/],
    ['empty mask', '10.0.0.1/ eth0\n', 1, /badly formed/],
    ['hex mask (decimal only)', '10.0.0.1/0x18 eth0\n', 1, /badly formed/],
    ['negative mask', '10.0.0.1/-1 eth0\n', 1, /badly formed/],
    ['bad address', '\n10.0.0.256/24 eth0\n', 2, /badly formed/],
    ['hostname', 'server/24 eth0\n', 1, /badly formed/],
    ['duplicate', '10.0.0.1/24 eth0\n10.0.0.1/16 eth1\n', 2, /duplicate public IP address 10.0.0.1/],
    ['duplicate via IPv4-mapped form', '10.0.0.1/24 eth0\n::ffff:10.0.0.1/24 eth1\n', 2, /duplicate/],
  ];
  it.each(INVALID)('%s: ConfigError at the right line', (_label, text, line, message) => {
    let caught: unknown;
    try {
      parsePublicAddresses(text, FILE);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).line).toBe(line);
    expect((caught as ConfigError).message).toMatch(new RegExp(`^${FILE}:${line}: `));
    expect((caught as ConfigError).message).toMatch(message);
  });
});

describe('loadPublicAddresses', () => {
  const tempDir = useTempDir('h3-pa-');

  it('missing file means no public addresses', () => {
    expect(loadPublicAddresses(path.join(tempDir(), 'public_addresses'))).toBeUndefined();
  });

  it('reads the file', () => {
    const file = path.join(tempDir(), 'public_addresses');
    fs.writeFileSync(file, '192.0.2.1/24 lo\n');
    expect(loadPublicAddresses(file)).toHaveLength(1);
  });

  it('an unreadable path is a ConfigError', () => {
    expect(() => loadPublicAddresses(tempDir())).toThrow(ConfigError);
  });
});
