// Test tooling that needs nothing but a client of a real ctdbd (shared with the recovery
// benchmark): keeping the real recovery masters out of the way, and seeding databases.
import type { CtdbClient } from '../../src/client/ctdb-client';
import { ControlCode, LtdbFlag, Srvid, encodeRecBuffer } from '../../src/protocol';
import { disableMessageCodec } from '../../src/protocol/types';
import { NodeControls } from '../../src/recovery/node-controls';

const TEST_SRVID = 0xae00000000000000n;
const REPLY_WAIT_MS = 10_000;

/**
 * DISABLE_RECOVERIES to the recovery daemons of `nodes` (what `ctdb reloadnodes` sends; a
 * timeout of 0 enables recoveries again); resolves once each has replied.
 */
export async function disableRecoveries(client: CtdbClient, nodes: readonly number[], seconds: number): Promise<void> {
  const replySrvid = TEST_SRVID | (BigInt(process.pid & 0xffff) << 16n);
  const answered = new Set<number>();
  let allAnswered = (): void => undefined;
  const done = new Promise<void>((resolve) => (allAnswered = resolve));
  await client.registerSrvid(replySrvid, (data) => {
    answered.add(data.readInt32LE(0));
    if (nodes.every((pnn) => answered.has(pnn))) allAnswered();
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const message = Buffer.alloc(disableMessageCodec.size({ pnn: 0, srvid: 0n, timeout: 0 }));
    disableMessageCodec.push({ pnn: client.pnn, srvid: replySrvid, timeout: seconds }, message, 0);
    for (const pnn of nodes) client.sendMessage(pnn, Srvid.DISABLE_RECOVERIES, message);
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`DISABLE_RECOVERIES: no reply from ${nodes.filter((p) => !answered.has(p)).join(',')} within ${REPLY_WAIT_MS} ms`)), REPLY_WAIT_MS);
    });
    await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
    await client.deregisterSrvid(replySrvid);
  }
}

export interface SeedRecord {
  key: string;
  rsn: bigint;
  dmaster: number;
  /** null = a deleted record (header only). */
  value: string | Buffer | null;
  flags?: number;
}

/**
 * Writes records with chosen headers into ONE node's copy of a database through that daemon's
 * own recovery write path (freeze, transaction, DB_PUSH, commit with the current generation,
 * thaw). Bulk fills with the tool (writekey, ptrans) would take minutes at these sizes.
 */
export async function seedNode(client: CtdbClient, pnn: number, dbId: number, records: readonly SeedRecord[], options: { wipe?: boolean } = {}): Promise<void> {
  const controls = new NodeControls(client, 30_000);
  const { generation } = await controls.on(pnn, ControlCode.GETVNNMAP, undefined);
  const transdb = { dbId, tid: generation };
  const srvid = Srvid.RECOVERY | 0xfffe0000n | BigInt(pnn);
  await controls.on(pnn, ControlCode.DB_FREEZE, dbId);
  await controls.on(pnn, ControlCode.DB_TRANSACTION_START, transdb);
  if (options.wipe === true) await controls.on(pnn, ControlCode.WIPE_DATABASE, transdb);
  await controls.on(pnn, ControlCode.DB_PUSH_START, { dbId, lmaster: 0, srvid });
  const CHUNK = 5000;
  for (let i = 0; i < records.length; i += CHUNK) {
    const chunk = records.slice(i, i + CHUNK).map((r) => ({ reqid: 0, key: Buffer.from(r.key), data: ltdbData(r) }));
    if (!client.sendMessage(pnn, srvid, encodeRecBuffer({ dbId, records: chunk }))) await client.flush();
  }
  const stored = await controls.on(pnn, ControlCode.DB_PUSH_CONFIRM, dbId);
  if (stored !== records.length) throw new Error(`seeding node ${pnn}: ${stored} of ${records.length} records stored`);
  await controls.on(pnn, ControlCode.DB_TRANSACTION_COMMIT, transdb);
  await controls.on(pnn, ControlCode.DB_THAW, dbId);
}

function ltdbData(r: SeedRecord): Buffer {
  const value = r.value === null ? Buffer.alloc(0) : Buffer.from(r.value);
  const data = Buffer.alloc(24 + value.length);
  data.writeBigUInt64LE(r.rsn, 0);
  data.writeUInt32LE(r.dmaster, 8);
  data.writeUInt32LE(r.flags ?? LtdbFlag.MIGRATED_WITH_DATA, 16);
  value.copy(data, 24);
  return data;
}

/** The persistent-database sequence number record (key includes its NUL). */
export function seqnumRecord(seqnum: bigint): SeedRecord {
  const value = Buffer.alloc(8);
  value.writeBigUInt64LE(seqnum);
  return { key: '__db_sequence_number__\0', rsn: 1n, dmaster: 0, value, flags: 0 };
}


/** The recovery benchmark's data set (shared by both recovery suites). */
export const BENCH_DATABASES = { volatile: 'bench_vol.tdb', persistent: 'bench_pers.tdb' } as const;

/** The benchmark's volatile spread (key i only on node i % n, its dmaster, 100-byte values) on node nodes[n]. */
export function benchmarkSpread(n: number, nodes: readonly number[], count: number): SeedRecord[] {
  const records: SeedRecord[] = [];
  for (let i = n; i < count; i += nodes.length) records.push({ key: `v${i}`, rsn: 1n, dmaster: nodes[n], value: BENCH_VALUE });
  return records;
}
const BENCH_VALUE = 'v'.repeat(100);

/**
 * Seeds `count` volatile records spread like the perf anchors' fill (benchmarkSpread) and a
 * persistent database of `count` records that is identical on every node (as transactions
 * keep it). `attach` runs `ctdb attach` on node `via`.
 */
export async function seedBenchmarkDatabases(client: CtdbClient, via: number, nodes: readonly number[], count: number, attach: (args: string[]) => Promise<void>): Promise<{ volId: number; persId: number }> {
  await attach(['attach', BENCH_DATABASES.volatile]);
  await attach(['attach', BENCH_DATABASES.persistent, 'persistent']);
  const controls = new NodeControls(client, 30_000);
  const dbmap = await controls.on(via, ControlCode.GET_DBMAP, undefined);
  const names = await Promise.all(dbmap.map((db) => controls.on(via, ControlCode.GET_DBNAME, db.dbId)));
  const idOf = (name: string): number => {
    const at = names.indexOf(name);
    if (at < 0) throw new Error(`${name} is not attached on node ${via}`);
    return dbmap[at].dbId;
  };
  const volId = idOf(BENCH_DATABASES.volatile);
  const persId = idOf(BENCH_DATABASES.persistent);
  // The attach reaches the other nodes a moment after the tool returns.
  for (let waited = 0; ; waited += 50) {
    const maps = await Promise.all(nodes.map((pnn) => controls.on(pnn, ControlCode.GET_DBMAP, undefined)));
    if (maps.every((map) => [volId, persId].every((id) => map.some((db) => db.dbId === id)))) break;
    if (waited > 30_000) throw new Error('the benchmark databases did not reach every node within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const persistent: SeedRecord[] = [seqnumRecord(1n), ...Array.from({ length: count }, (_, i) => ({ key: `p${i}`, rsn: 1n, dmaster: 0, value: BENCH_VALUE, flags: 0 }))];
  for (const [n, pnn] of nodes.entries()) {
    await seedNode(client, pnn, volId, benchmarkSpread(n, nodes, count));
    await seedNode(client, pnn, persId, persistent);
  }
  return { volId, persId };
}
