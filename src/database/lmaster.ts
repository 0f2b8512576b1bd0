// The lmaster of a key: the vnnmap slot chosen by the key's lookup3 hash (ctdb_lmaster).
import type { VnnMap } from '../protocol';
import { tdbHash } from '../store';

/** undefined while there is no vnnmap to ask (before the first recovery). */
export function lmasterOf(vnnMap: VnnMap, key: Buffer): number | undefined {
  if (vnnMap.map.length === 0) return undefined;
  return vnnMap.map[(tdbHash(key, true) >>> 0) % vnnMap.map.length];
}
