import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TUNABLES, Tunables } from '../../src/config/tunables';
import { useTempDir } from './oracle';

const tempDir = useTempDir('h3-tun-');

describe('tunable table', () => {
  it('has the 62 struct ctdb_tunable_list slots, 13 of them obsolete', () => {
    expect(TUNABLES).toHaveLength(62);
    expect(TUNABLES.filter((t) => t.obsolete)).toHaveLength(13);
    expect(new Tunables().toWireArray()).toEqual(TUNABLES.map((t) => t.default));
  });

  it('wire order starts, ends and places the moved entries as protocol.h does', () => {
    const names = TUNABLES.map((t) => t.name);
    expect(names.slice(0, 3)).toEqual(['MaxRedirectCount', 'SeqnumInterval', 'ControlTimeout']);
    expect(names.slice(-2)).toEqual(['IPAllocAlgorithm', 'AllowMixedVersions']);
    expect(names.indexOf('VacuumFastPathCount')).toBe(40);
    expect(names.indexOf('LCP2PublicIPs')).toBe(41);
    expect(names.indexOf('DeterministicIPs')).toBe(21);
    expect(names.indexOf('MaxQueueDropMsg')).toBe(36);
  });

  it('list order differs from wire order exactly in the two known places', () => {
    const listed = new Tunables().listNames();
    expect(listed).toHaveLength(49);
    expect(listed.indexOf('VacuumFastPathCount')).toBe(listed.indexOf('MaxQueueDropMsg') - 1);
    const wireNonObsolete = TUNABLES.filter((t) => !t.obsolete).map((t) => t.name);
    expect([...listed].sort()).toEqual([...wireNonObsolete].sort());
    expect(listed).not.toEqual(wireNonObsolete);
  });
});

describe('get/set', () => {
  it('names are case-insensitive; typed values follow', () => {
    const t = new Tunables();
    expect(t.get('keepaliveinterval')).toBe(5);
    expect(t.set('KEEPALIVEINTERVAL', 9)).toBe('ok');
    expect(t.values.KeepaliveInterval).toBe(9);
    expect(t.get('KeepaliveInterval')).toBe(9);
  });

  it('obsolete tunables are stored but flagged; unknown ones are refused', () => {
    const t = new Tunables();
    expect(t.set('VacuumLimit', 1)).toBe('obsolete');
    expect(t.values.VacuumLimit).toBe(1);
    expect(t.set('NoSuchThing', 1)).toBe('unknown');
    expect(t.get('NoSuchThing')).toBeUndefined();
  });

  it.each([-1, 1.5, 2 ** 32, Number.NaN])('rejects %s as a value', (value) => {
    expect(() => new Tunables().set('MonitorInterval', value)).toThrow(RangeError);
  });

  it('wire array reflects sets at the struct offset', () => {
    const t = new Tunables();
    t.set('AllowMixedVersions', 1);
    t.set('MaxRedirectCount', 7);
    const wire = t.toWireArray();
    expect(wire[61]).toBe(1);
    expect(wire[0]).toBe(7);
  });
});

describe('loadFile (ctdb.tunables)', () => {
  const load = (text: string | undefined) => {
    const file = path.join(tempDir(), 'ctdb.tunables');
    fs.rmSync(file, { force: true });
    if (text !== undefined) fs.writeFileSync(file, text);
    const t = new Tunables();
    t.set('MonitorInterval', 99); // loading resets to defaults first, as ctdbd does
    const messages: string[] = [];
    const ok = t.loadFile(file, (m) => messages.push(m.replace(`${file}:`, '')));
    return { t, ok, messages };
  };

  it('announces the file it loads, as ctdbd does at NOTICE level', () => {
    const file = path.join(tempDir(), 'announced.tunables');
    fs.writeFileSync(file, 'MonitorInterval=20\n');
    const notices: string[] = [];
    new Tunables().loadFile(file, () => {}, (m) => notices.push(m));
    expect(notices).toEqual([`Loading tunables from ${file}`]);
    new Tunables().loadFile(path.join(tempDir(), 'absent'), () => {}, (m) => notices.push(m));
    expect(notices).toHaveLength(1);
  });

  it('a missing file is fine and gives defaults', () => {
    const { t, ok, messages } = load(undefined);
    expect(ok).toBe(true);
    expect(messages).toEqual([]);
    expect(t.values.MonitorInterval).toBe(15);
  });

  it('applies valid lines: hex, octal, spaces, any case', () => {
    const { t, ok } = load('MonitorInterval=30\n keepaliveinterval = 0x7\nTakeoverTimeout=013\n# comment\n');
    expect(ok).toBe(true);
    expect(t.values).toMatchObject({ MonitorInterval: 30, KeepaliveInterval: 7, TakeoverTimeout: 11 });
  });

  it('reports every bad line, still applies good ones (and obsolete ones)', () => {
    const { t, ok, messages } = load(
      'MonitorInterval=30\n[section]\nBogus=1\nVacuumLimit=77\nEmptyOne=\nNoEquals\nRecoverTimeout=12abc\nStickyDuration=-5\nDBSizeWarn=4294967297\nElectionTimeout=5\n',
    );
    expect(ok).toBe(false);
    expect(messages).toEqual([
      '2: Invalid line for section [section] - sections not supported',
      '3: Unknown tunable "Bogus"',
      '4: Obsolete tunable "VacuumLimit"',
      '5: Invalid line containing "EmptyOne"',
      '6: Invalid line containing "NoEquals"',
      '7: Invalid value "12abc" for tunable "RecoverTimeout"',
      '8: Invalid value "-5" for tunable "StickyDuration"',
    ]);
    expect(t.values).toMatchObject({ MonitorInterval: 30, VacuumLimit: 77, RecoverTimeout: 30, StickyDuration: 600, DBSizeWarn: 1, ElectionTimeout: 5 });
  });

  it('a malformed line stops reading; earlier lines stay applied', () => {
    const { t, ok, messages } = load('MonitorInterval=30\n= 4\nElectionTimeout=5\n');
    expect(ok).toBe(false);
    expect(messages).toEqual(['2: Syntax error: option "= 4" has no name']);
    expect(t.values.MonitorInterval).toBe(30);
    expect(t.values.ElectionTimeout).toBe(3);
  });

  it('an unreadable path is reported, defaults stay', () => {
    const t = new Tunables();
    const messages: string[] = [];
    expect(t.loadFile(tempDir(), (m) => messages.push(m))).toBe(false);
    expect(messages[0]).toMatch(/^Failed to open /);
  });
});
