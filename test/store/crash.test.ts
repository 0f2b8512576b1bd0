// Acceptance: a process killed (SIGKILL) at random points while committing transactions leaves
// a file in which libtdb and our store both see exactly the old or exactly the new contents.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { TdbFile, TdbFlag } from '../../src/store';
import { withChildren, ensureToolsBuilt, makeTempDir, prng, recoverBoth, recoveryArea, scaled } from './helpers';

const ITERATIONS = scaled(100);
const RECORDS = 300;
const CHILD = path.join(__dirname, 'fixtures', 'store-child.cjs');
const tmp = makeTempDir('tdb-crash');
afterAll(() => tmp.cleanup());

/** The single version every record carries, or a description of the mix found. */
function versionOf(records: Map<string, string>): number | string {
  const versions = new Set<string>();
  for (let i = 0; i < RECORDS; i++) {
    const value = records.get(`rec-${i}`);
    const m = value === undefined ? null : /^v(\d+)-/.exec(value);
    if (value === undefined || m === null) return `record rec-${i} is ${value === undefined ? 'missing' : JSON.stringify(value)}`;
    if (value !== `v${m[1]}-`.repeat(value.length / `v${m[1]}-`.length)) return `record rec-${i} is torn: ${value}`;
    versions.add(m[1]);
  }
  if (records.size !== RECORDS) return `${records.size} records instead of ${RECORDS}`;
  return versions.size === 1 ? Number([...versions][0]) : `mixed versions ${[...versions].join(',')}`;
}

function spinMicros(us: number): void {
  const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000));
  while (process.hrtime.bigint() < end);
}

const modes = [
  { name: 'fcntl', flags: TdbFlag.DEFAULT, hashSize: 131, seed: 11 },
  { name: 'mutex', flags: TdbFlag.MUTEX_LOCKING | TdbFlag.INCOMPATIBLE_HASH, hashSize: 131, seed: 12 },
];

describe.concurrent.each(modes)('crash during commit, $name mode', ({ name, flags, hashSize, seed }) => {
  test(`${ITERATIONS} kills: libtdb and our store see exactly the old or the new contents`, () =>
    withChildren(async (children) => {
    ensureToolsBuilt();
    const file = path.join(tmp.dir, `${name}.tdb`);
    const db = TdbFile.open(file, { flags, hashSize });
    db.transaction(() => {
      for (let i = 0; i < RECORDS; i++) db.store(`rec-${i}`, 'v0-');
    });
    db.close();
    const rand = prng(seed);
    let pendingSeen = 0;
    let commitMicros = 1000;
    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const child = children.spawn(process.execPath, [CHILD, 'txnloop', file, String(flags), String(RECORDS)]);
      let lastCommitted = 0; // versions restart at 1 in every child
      const exited = new Promise((resolve) => child.on('close', resolve));
      // Kill at a random moment of the commit the child announces (after a few whole commits).
      const killAt = 2 + Math.floor(rand() * 3);
      child.stdout?.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        for (const m of text.matchAll(/committed (\d+) (\d+)/g)) {
          lastCommitted = Math.max(lastCommitted, Number(m[1]));
          commitMicros = Number(m[2]);
        }
        if (text.includes(`commit ${killAt}\n`) && child.exitCode === null) {
          spinMicros(rand() * commitMicros);
          child.kill('SIGKILL');
        }
      });
      await exited;
      if (recoveryArea(file).pending) pendingSeen++;

      // libtdb and our store each recover their own copy of the crashed file.
      const { libtdbView, ourView, check: report, forUs } = await recoverBoth(file, flags);
      expect(report.ok, `our check after kill ${iteration}: ${report.problem}`).toBe(true);

      const libtdbVersion = versionOf(libtdbView);
      const ourVersion = versionOf(ourView);
      expect(typeof libtdbVersion, `libtdb after kill ${iteration}: ${libtdbVersion}`).toBe('number');
      expect(ourVersion).toBe(libtdbVersion);
      // The file holds the last commit the child reported, or the one it was committing.
      expect([lastCommitted, lastCommitted + 1]).toContain(libtdbVersion);
      // Go on from the state our store recovered, reset to version 0.
      fs.copyFileSync(forUs, file);
      const reset = TdbFile.open(file, { flags, access: 'rw' });
      reset.transaction(() => {
        for (let i = 0; i < RECORDS; i++) reset.store(`rec-${i}`, 'v0-');
      });
      reset.close();
    }
    // The kills must really have landed inside commits, not only between them.
    expect(pendingSeen, `kills that hit a live recovery record: ${pendingSeen}`).toBeGreaterThan(0);
    console.log(`${name}: ${pendingSeen} of ${ITERATIONS} kills hit a commit in progress`);
    }), 300_000);
});
