// vitest globalSetup: the reference peers (Debian's ctdb, tdb-tools, python3-tdb) are
// installed before any test runs, so no comparison test ever has to skip.
import { ensureReferencePeers } from './reference-peers';

export default function setup(): void {
  ensureReferencePeers();
}
