// The recovery push's in-place store (storePushedRecord) against the general store rules
// (storeRecord): every kind of header gives the same file and the same delete-queue calls.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LtdbFlag } from '../../src/protocol';
import type { LtdbHeader } from '../../src/protocol';
import { storePushedRecord, storeRecord, type DeletionQueue, type RecordContext } from '../../src/database/record-store';
import type { ClusterDatabase } from '../../src/database/database';
import { CTDB_VOLATILE_FLAGS, TdbFile, buildLtdbRecord } from '../../src/store';
import { makeTempDir } from '../store/helpers';

const tmp = makeTempDir('record-store');
afterAll(() => tmp.cleanup());

const PNN = 1;

function database(name: string, volatile: boolean): ClusterDatabase {
  const file = TdbFile.open(path.join(tmp.dir, name), { flags: CTDB_VOLATILE_FLAGS, hashSize: 131 });
  return { volatile, file } as unknown as ClusterDatabase;
}

function recordingQueue(calls: string[]): DeletionQueue {
  return {
    schedule: (_db, key, header) => calls.push(`schedule ${key.toString()} rsn ${header.rsn}`),
    remove: (_db, key) => calls.push(`remove ${key.toString()}`),
  };
}

function contents(file: TdbFile): string[] {
  const out: string[] = [];
  file.traverseRead((key, value) => void out.push(`${key.toString()}=${value.toString('hex')}`));
  return out.sort();
}

const headers: LtdbHeader[] = [];
for (const dmaster of [PNN, 0, 2])
  for (const flags of [0, LtdbFlag.MIGRATED_WITH_DATA, LtdbFlag.VACUUM_MIGRATED, LtdbFlag.AUTOMATIC, LtdbFlag.VACUUM_MIGRATED | LtdbFlag.AUTOMATIC | 0x1000, 0x01000000])
    for (const rsn of [0n, 7n, 0xffffffffn, 0x1ffffffffn]) headers.push({ rsn, dmaster, reserved1: 0, flags });

describe.each([
  { kind: 'volatile, 3 lmasters', volatile: true, map: [0, 1, 2] },
  { kind: 'volatile, no vnn map', volatile: true, map: [] },
  { kind: 'persistent', volatile: false, map: [0, 1, 2] },
])('storePushedRecord ($kind)', ({ volatile, map }) => {
  it('stores what storeRecord stores and tells the delete queue the same', () => {
    const general = database(`general-${volatile}-${map.length}.tdb`, volatile);
    const inPlace = database(`in-place-${volatile}-${map.length}.tdb`, volatile);
    const generalCalls: string[] = [];
    const inPlaceCalls: string[] = [];
    const context = (calls: string[]): RecordContext => ({ pnn: PNN, vnnMap: { generation: 1, map }, deletions: recordingQueue(calls) });
    try {
      headers.forEach((header, i) => {
        for (const data of [Buffer.alloc(0), Buffer.from(`value ${i}`)]) {
          const key = Buffer.from(`key ${i} ${data.length}`);
          storeRecord(context(generalCalls), general, key, { ...header }, data);
          storePushedRecord(context(inPlaceCalls), inPlace, key, buildLtdbRecord(header, data));
        }
      });
      expect(contents(inPlace.file)).toEqual(contents(general.file));
      expect(inPlaceCalls).toEqual(generalCalls);
      expect(contents(general.file).length).toBeGreaterThan(headers.length);
    } finally {
      general.file.close();
      inPlace.file.close();
    }
  });
});
