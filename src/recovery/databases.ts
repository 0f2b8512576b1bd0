// Which databases a recovery covers: the union of every active node's GET_DBMAP (not just the
// leader's: a database attached only on a node the leader did not know about would otherwise
// be lost, Samba bug 14294), with the database attached where it is missing, as 4.17 does.
// Call it while the active nodes are in recovery mode ACTIVE: attaching with ATTACH_RECOVERY
// is only allowed then, and client attaches are deferred, so the list cannot change under us.
import type { CtdbClient } from '../client/ctdb-client';
import { ControlCode, ControlFlag, DbFlag } from '../protocol';
import { NodeControls, NodeFailure } from './node-controls';

export interface RecoveryDatabase {
  dbId: number;
  name: string;
  /** DbFlag bits common to all nodes (READONLY and STICKY masked out). */
  flags: number;
  persistent: boolean;
  replicated: boolean;
  /** Nodes that had the database attached before collectDatabases attached it on the others. */
  attachedOn: number[];
}

/** Set only on the nodes where a client asked for them, so they may legitimately differ. */
const LOCAL_ONLY_FLAGS = DbFlag.READONLY | DbFlag.STICKY;
const DEFAULT_TIMEOUT_MS = 30_000;

export async function collectDatabases(
  client: CtdbClient,
  activeNodes: readonly number[],
  options: { timeoutMs?: number } = {},
): Promise<RecoveryDatabase[]> {
  const controls = new NodeControls(client, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const dbmaps = await controls.onEach(activeNodes, ControlCode.GET_DBMAP, undefined);
  const found = new Map<number, { flags: number; attachedOn: number[] }>();
  activeNodes.forEach((pnn, i) => {
    for (const db of dbmaps[i]) {
      const flags = db.flags & ~LOCAL_ONLY_FLAGS;
      const known = found.get(db.dbId);
      if (known === undefined) found.set(db.dbId, { flags, attachedOn: [pnn] });
      else if (known.flags !== flags) {
        throw new Error(`database 0x${db.dbId.toString(16)} has flags 0x${flags.toString(16)} on node ${pnn} but 0x${known.flags.toString(16)} elsewhere`);
      } else known.attachedOn.push(pnn);
    }
  });
  return Promise.all(
    [...found].map(async ([dbId, { flags, attachedOn }]) => {
      const name = await agreedName(controls, dbId, attachedOn);
      await attachMissing(controls, name, flags, activeNodes.filter((pnn) => !attachedOn.includes(pnn)));
      return { dbId, name, flags, persistent: (flags & DbFlag.PERSISTENT) !== 0, replicated: (flags & DbFlag.REPLICATED) !== 0, attachedOn };
    }),
  );
}

/** GET_DBNAME from every node that has the database; a node naming it differently is blamed. */
async function agreedName(controls: NodeControls, dbId: number, nodes: readonly number[]): Promise<string> {
  const names = await controls.onEach(nodes, ControlCode.GET_DBNAME, dbId);
  const name = names[0] ?? '';
  const odd = names.findIndex((n) => n !== name);
  if (odd >= 0) throw new NodeFailure(nodes[odd], `database 0x${dbId.toString(16)} is called ${names[odd]} on node ${nodes[odd]} but ${name} on node ${nodes[0]}`);
  return name;
}

const ATTACH_BY_KIND = [
  { flag: DbFlag.PERSISTENT, control: ControlCode.DB_ATTACH_PERSISTENT },
  { flag: DbFlag.REPLICATED, control: ControlCode.DB_ATTACH_REPLICATED },
] as const;

async function attachMissing(controls: NodeControls, name: string, flags: number, missing: readonly number[]): Promise<void> {
  if (missing.length === 0) return;
  const control = ATTACH_BY_KIND.find((k) => (flags & k.flag) !== 0)?.control ?? ControlCode.DB_ATTACH;
  await controls.onEach(missing, control, name, ControlFlag.ATTACH_RECOVERY);
}
