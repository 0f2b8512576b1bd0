// The Debian reference peers every comparison test and the real-smbd test need. Tests must
// never skip, so a machine without them gets them installed (as root, with apt-get) instead.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';

interface ReferencePeer {
  what: string;
  present: () => boolean;
}

const PACKAGES = ['ctdb', 'tdb-tools', 'python3-tdb', 'samba', 'smbclient', 'samba-testsuite', 'strace', 'faketime'];

/** Debian's python, the one python3-tdb installs into (a python3 earlier on PATH may be another). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/** The injected clock of the wall-clock jump test. */
export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

const PEERS: readonly ReferencePeer[] = [
  { what: '/usr/bin/ctdb', present: () => fs.existsSync('/usr/bin/ctdb') },
  { what: '/usr/sbin/ctdbd', present: () => fs.existsSync('/usr/sbin/ctdbd') },
  { what: 'tdbdump', present: () => fs.existsSync('/usr/bin/tdbdump') },
  { what: `${DEBIAN_PYTHON}'s tdb module`, present: () => spawnSync(DEBIAN_PYTHON, ['-c', 'import tdb'], { stdio: 'ignore' }).status === 0 },
  // The real-smbd acceptance test (test/smbd): a clustered smbd and the Samba tools that drive it.
  ...['/usr/sbin/smbd', '/usr/bin/smbclient', '/usr/bin/smbtorture', '/usr/bin/pdbedit'].map((file) => ({ what: file, present: () => fs.existsSync(file) })),
  // Fault injection: strace kills a committing process at an exact syscall (test/store/crash-points);
  // libfaketime moves the wall clock under running daemons (test/cluster/clock-jump).
  ...['/usr/bin/strace', LIBFAKETIME].map((file) => ({ what: file, present: () => fs.existsSync(file) })),
];

function missingPeers(): string[] {
  return PEERS.filter((peer) => !peer.present()).map((peer) => peer.what);
}

const POLICY_RC_D = '/usr/sbin/policy-rc.d';

/**
 * Runs `install` with Debian's policy hook refusing service starts, so the packages do not start
 * a system smbd on 0.0.0.0:445 or a ctdbd (the tests start their own); an existing hook stays.
 */
function withoutServiceStarts(install: () => void): void {
  if (fs.existsSync(POLICY_RC_D)) {
    install();
    return;
  }
  fs.writeFileSync(POLICY_RC_D, '#!/bin/sh\n# Written by the test setup while it installs packages.\nexit 101\n', { mode: 0o755 });
  try {
    install();
  } finally {
    fs.rmSync(POLICY_RC_D, { force: true });
  }
}

/** Installs the Debian packages above (ctdb, tdb tools, samba and its test suite, fault injectors) when any is missing. */
export function ensureReferencePeers(): void {
  const missing = missingPeers();
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`reference peers missing (${missing.join(', ')}) and not root: run apt-get install ${PACKAGES.join(' ')}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  withoutServiceStarts(() => execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...PACKAGES], { stdio: 'inherit', env }));
  const stillMissing = missingPeers();
  if (stillMissing.length > 0) throw new Error(`still missing after apt-get install: ${stillMissing.join(', ')}`);
}

