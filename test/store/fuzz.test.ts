// Acceptance: 10k corrupted files opened and traversed: no crash, no hang, no write; every
// failure is a TdbError naming the file. Runs in child processes so a crash or a hang shows
// up as a failed child instead of taking the test runner down.
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { TdbFile, TdbFlag } from '../../src/store';
import { ensureToolsBuilt, exitOf, makeTempDir, scaled, withChildren } from './helpers';

const FILES = scaled(10_000);
const WORKERS = 2;
const CHILD = path.join(__dirname, 'fixtures', 'fuzz-child.cjs');
const tmp = makeTempDir('tdb-fuzz');
afterAll(() => tmp.cleanup());

/** Small valid files covering chains, free blocks, both hashes, mutexes and a recovery area. */
function makeBases(): string[] {
  const bases = [
    { name: 'default', flags: TdbFlag.DEFAULT, transaction: false },
    { name: 'jenkins-recovery', flags: TdbFlag.INCOMPATIBLE_HASH, transaction: true },
    { name: 'mutex', flags: TdbFlag.MUTEX_LOCKING | TdbFlag.INCOMPATIBLE_HASH, transaction: false },
  ];
  return bases.map(({ name, flags, transaction }) => {
    const file = path.join(tmp.dir, `base-${name}.tdb`);
    const db = TdbFile.open(file, { flags, hashSize: 31 });
    const fill = (): void => {
      for (let i = 0; i < 150; i++) db.store(`key-${i}`, `value-${i}`.repeat(1 + (i % 4)));
      for (let i = 0; i < 150; i += 3) db.delete(`key-${i}`);
    };
    if (transaction) db.transaction(fill);
    else fill();
    db.close();
    return file;
  });
}

test(`${FILES} corrupted files: clear errors, no crash, no hang, no write`, () =>
  withChildren(async (children) => {
    ensureToolsBuilt();
    const bases = makeBases();
    const runs = Array.from({ length: WORKERS }, (_, w) =>
      exitOf(children.spawn(process.execPath, [CHILD, tmp.dir, String(Math.ceil(FILES / WORKERS)), String(1000 + w), ...bases])),
    );
    const timer = setTimeout(() => children.killAll(), 150_000); // a hang fails the test
    const results = await Promise.all(runs);
    clearTimeout(timer);
    let files = 0;
    let opened = 0;
    for (const r of results) {
      expect(r.signal, `fuzz worker died: ${r.stderr}`).toBeNull();
      expect(r.code, r.stderr).toBe(0);
      const summary = JSON.parse(r.stdout) as { files: number; opened: number; writes: string[]; crashes: string[]; errors: Record<string, number> };
      expect(summary.crashes).toEqual([]);
      expect(summary.writes).toEqual([]);
      files += summary.files;
      opened += summary.opened;
    }
    expect(files).toBeGreaterThanOrEqual(FILES);
    expect(opened).toBeGreaterThan(0); // some corruptions still open (e.g. damage in a value)
  }), 180_000);
