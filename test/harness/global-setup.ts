// vitest globalSetup: the reference peers (Debian's ctdb, tdb-tools, python3-tdb) are
// installed and our ctdbd executable is built before any test runs, so no comparison test
// ever has to skip and test workers never race to build the binary.
import { ensureSeaBinary } from '../../scripts/build-sea';
import { ensureReferencePeers } from './reference-peers';

export default function setup(): void {
  ensureReferencePeers();
  ensureSeaBinary();
}
