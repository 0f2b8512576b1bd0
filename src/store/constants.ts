// Public tdb constants: open flags (libtdb's TDB_* values, as smbd passes them through
// DB_OPEN_FLAGS), store modes and the error statuses the native store returns.

export const TdbFlag = {
  DEFAULT: 0,
  CLEAR_IF_FIRST: 1,
  NOLOCK: 4,
  NOMMAP: 8,
  NOSYNC: 64,
  SEQNUM: 128,
  VOLATILE: 256,
  ALLOW_NESTING: 512,
  DISALLOW_NESTING: 1024,
  INCOMPATIBLE_HASH: 2048,
  MUTEX_LOCKING: 4096,
} as const;

/** Flags CTDB uses for volatile databases with tdb mutexes (what smbd sees in DB_OPEN_FLAGS). */
export const CTDB_VOLATILE_FLAGS =
  TdbFlag.CLEAR_IF_FIRST | TdbFlag.NOSYNC | TdbFlag.DISALLOW_NESTING | TdbFlag.INCOMPATIBLE_HASH | TdbFlag.MUTEX_LOCKING;

export const CTDB_DEFAULT_HASH_SIZE = 100001;
export const TDB_DEFAULT_HASH_SIZE = 131;

export const StoreMode = { REPLACE: 0, INSERT: 1, MODIFY: 2 } as const;
export type StoreMode = (typeof StoreMode)[keyof typeof StoreMode];

/** libtdb's TDB_ERROR values, as returned (negated) by the native store. */
export const TdbStatus = {
  OK: 0,
  CORRUPT: 1,
  IO: 2,
  LOCK: 3,
  OOM: 4,
  EXISTS: 5,
  NOLOCK: 6,
  NOEXIST: 8,
  EINVAL: 9,
  RDONLY: 10,
  NESTING: 11,
} as const;
export type TdbStatus = (typeof TdbStatus)[keyof typeof TdbStatus];

const statusNames = new Map<number, string>(Object.entries(TdbStatus).map(([name, value]) => [value, `TDB_ERR_${name}`]));

/** "TDB_ERR_CORRUPT" etc. for a status value. */
export function tdbStatusName(status: number): string {
  return statusNames.get(status) ?? `TDB_ERR_${status}`;
}
