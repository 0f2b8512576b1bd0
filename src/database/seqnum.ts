// Seqnum propagation, as ctdbd 4.17 does it. smbd keys caches on a tdb's header sequence
// number; a change on one node has to move the number on the others too. Once a database has
// seqnums enabled (ENABLE_SEQNUM), this node looks at its file's number every SeqnumInterval
// ms and, when a local writer has moved it, tells every active node (UPDATE_SEQNUM), whose
// daemon then bumps its own copy's number.
import type { ClusterDatabase } from './database';

export interface SeqnumHost {
  /** SeqnumInterval, read before each look (it is a tunable). */
  intervalMs(): number;
  /** UPDATE_SEQNUM for the database to every active node, no reply wanted. */
  announce(db: ClusterDatabase): void;
}

interface Watch {
  /** The number at the last look (or after the last bump for another node's change). */
  seen: number;
}

// Per database object: a re-attached database is a new object with a new watch.
const watches = new WeakMap<ClusterDatabase, Watch>();

/** ENABLE_SEQNUM: the file bumps its number on every change, and the watch starts (once). */
export function enableSeqnumPropagation(db: ClusterDatabase, host: SeqnumHost): void {
  db.enableSeqnum();
  if (watches.has(db)) return;
  const watch: Watch = { seen: db.file.seqnum };
  watches.set(db, watch);
  const look = (): void => {
    // A detached or closed database ends its watch.
    if (!db.file.isOpen) {
      watches.delete(db);
      return;
    }
    const now = db.file.seqnum;
    if (now !== watch.seen) host.announce(db);
    watch.seen = now;
    schedule();
  };
  // At least 1 ms: SeqnumInterval=0 would otherwise spin the event loop.
  const schedule = (): void => void setTimeout(look, Math.max(1, host.intervalMs())).unref();
  schedule();
}

/**
 * UPDATE_SEQNUM from another node: bump this file's number as libtdb's non-blocking increment
 * does (only if the file has seqnums enabled), and take the new number as seen so it is not
 * announced back.
 */
export function applyRemoteSeqnumUpdate(db: ClusterDatabase): void {
  db.file.incrementSeqnum();
  const watch = watches.get(db);
  if (watch !== undefined) watch.seen = db.file.seqnum;
}
