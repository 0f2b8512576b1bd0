// The recovery push's store of a whole rec_buffer (storePushedRecords: headers rewritten in
// place, records batched into one native call) against the general store rules (storeRecord,
// read-only flags dropped as a push drops them): every kind of header gives the same file and
// the same delete-queue calls.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LtdbFlag, encodeRecBuffer } from '../../src/protocol';
import { recordOffsets } from '../../src/protocol/rec-buffer';
import type { LtdbHeader } from '../../src/protocol';
import { storePushedRecords, storeRecord, type DeletionQueue, type RecordContext } from '../../src/database/record-store';
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
    queued: () => true,
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
])('storePushedRecords ($kind)', ({ volatile, map }) => {
  it('stores what storeRecord stores and tells the delete queue the same', () => {
    const general = database(`general-${volatile}-${map.length}.tdb`, volatile);
    const inPlace = database(`in-place-${volatile}-${map.length}.tdb`, volatile);
    const generalCalls: string[] = [];
    const inPlaceCalls: string[] = [];
    const context = (calls: string[]): RecordContext => ({ pnn: PNN, vnnMap: { generation: 1, map }, deletions: recordingQueue(calls) });
    try {
      const records = headers.flatMap((header, i) =>
        [Buffer.alloc(0), Buffer.from(`value ${i}`)].map((data) => ({ reqid: 0, key: Buffer.from(`key ${i} ${data.length}`), header, data })),
      );
      for (const { key, header, data } of records) storeRecord(context(generalCalls), general, key, { ...header, flags: header.flags & ~LtdbFlag.RO_FLAGS }, data);
      const pushed = Buffer.from(encodeRecBuffer({ dbId: 1, records: records.map(({ reqid, key, header, data }) => ({ reqid, key, data: buildLtdbRecord(header, data) })) }));
      const { starts, sizes } = recordOffsets(pushed, null);
      storePushedRecords(context(inPlaceCalls), inPlace, pushed, starts, sizes);
      expect(contents(inPlace.file)).toEqual(contents(general.file));
      expect(inPlaceCalls).toEqual(generalCalls);
      expect(contents(general.file).length).toBeGreaterThan(headers.length);
    } finally {
      general.file.close();
      inPlace.file.close();
    }
  });
});
