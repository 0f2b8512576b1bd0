// Every case of 4.17's volatile merge (recdb_add) on three nodes, and the merge restated on its
// own, so that tests can say which copy of each key must win a recovery.
import type { SeedRecord } from './seed';

/**
 * What each node (by pnn 0-2) holds of key `key-i` before the recovery, case i % 6, with
 * `master` the recovery master and `a`, `b` the two other nodes.
 */
export function mergeCase(i: number, master: number): (SeedRecord | null)[] {
  const key = `key-${i}`;
  const [a, b] = [0, 1, 2].filter((pnn) => pnn !== master);
  const copies: (SeedRecord | null)[] = [null, null, null];
  const put = (pnn: number, rsn: number, dmaster = pnn, deleted = false): void => {
    copies[pnn] = { key, rsn: BigInt(rsn), dmaster, value: deleted ? null : `v${i}-n${pnn}-r${rsn}` };
  };
  switch (i % 6) {
    case 0: // every node has a copy: the highest RSN wins
      put(a, 10);
      put(b, 12);
      put(master, 11);
      break;
    case 1: // deleted on the node with the highest RSN: stale copies must not come back
      put(a, 7);
      put(b, 9, b, true);
      put(master, 3);
      break;
    case 2: // only one node has it
      put(b, 4);
      break;
    case 3: // RSN tie: the copy naming the recovery master loses
      put(master, 5, master);
      put(a, 5, a);
      break;
    case 4: // RSN tie (once a's own copy is stored with the next rsn) between copies naming
      // another node: the first in node order stays
      put(a, 6, a);
      put(b, 7, a);
      break;
    default: // the recovery master's own copy is newest
      put(master, 20);
      put(a, 19);
  }
  return copies;
}

/**
 * How node `pnn` stores a seeded (pushed) copy: a volatile record it is dmaster of gets the next
 * rsn as it is stored (ctdb_ltdb_store_server's rule, in both daemons).
 */
export function storedCopy(copy: SeedRecord | null, pnn: number): SeedRecord | null {
  return copy && { ...copy, rsn: copy.rsn + (copy.dmaster === pnn ? 1n : 0n) };
}

/** The 4.17 merge, restated independently: node after node; null when the winner is deleted or there is none. */
export function expectedWinner(copies: (SeedRecord | null)[], master: number): SeedRecord | null {
  let winner: SeedRecord | null = null;
  for (const c of copies) {
    if (c === null) continue;
    if (winner === null || c.rsn > winner.rsn || (c.rsn === winner.rsn && winner.dmaster === master)) winner = c;
  }
  return winner?.value === null ? null : winner;
}
