// The Debian reference peers every comparison test and the real-smbd test need. Tests must
// never skip, so a machine without them gets them installed (as root, with apt-get) instead.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';

interface ReferencePeer {
  what: string;
  present: () => boolean;
}

const PACKAGES = ['ctdb', 'tdb-tools', 'python3-tdb', 'samba', 'smbclient', 'samba-testsuite'];

/** Debian's python, the one python3-tdb installs into (a python3 earlier on PATH may be another). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

const PEERS: readonly ReferencePeer[] = [
  { what: '/usr/bin/ctdb', present: () => fs.existsSync('/usr/bin/ctdb') },
  { what: '/usr/sbin/ctdbd', present: () => fs.existsSync('/usr/sbin/ctdbd') },
  { what: 'tdbdump', present: () => fs.existsSync('/usr/bin/tdbdump') },
  { what: `${DEBIAN_PYTHON}'s tdb module`, present: () => spawnSync(DEBIAN_PYTHON, ['-c', 'import tdb'], { stdio: 'ignore' }).status === 0 },
  // The real-smbd acceptance test (test/smbd): a clustered smbd and the Samba tools that drive it.
  ...['/usr/sbin/smbd', '/usr/bin/smbclient', '/usr/bin/smbtorture', '/usr/bin/pdbedit'].map((file) => ({ what: file, present: () => fs.existsSync(file) })),
];

function missingPeers(): string[] {
  return PEERS.filter((peer) => !peer.present()).map((peer) => peer.what);
}

/** Installs the Debian packages above (ctdb, tdb tools, samba and its test suite) when any reference peer is missing. */
export function ensureReferencePeers(): void {
  const missing = missingPeers();
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`reference peers missing (${missing.join(', ')}) and not root: run apt-get install ${PACKAGES.join(' ')}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...PACKAGES], { stdio: 'inherit', env });
  const stillMissing = missingPeers();
  if (stillMissing.length > 0) throw new Error(`still missing after apt-get install: ${stillMissing.join(', ')}`);
}

