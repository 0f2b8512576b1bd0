// Outside test mode, started the way Debian's ctdb.service starts it: /usr/sbin/ctdbd with no
// arguments and no CTDB_* environment, Type=forking, PIDFile=/run/ctdb/ctdbd.pid,
// ExecStop=ctdb shutdown. Runs in a private mount namespace with its own /run and /etc/ctdb,
// so the machine's real paths are never touched.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ensureSeaBinary } from '../../scripts/build-sea';
import { allocateAddressBlock } from '../../scripts/cluster/addresses';
import type { AddressBlock } from '../../scripts/cluster/addresses';
import { waitForNativeBuild } from '../../scripts/cluster/local-node';
import { writeNodeBase } from '../../scripts/cluster/node-base';

// What systemd does for ctdb.service, then what `systemctl stop` does; key=value lines out.
const SYSTEMD_LIKE_RUN = `
mount -t tmpfs tmpfs /run && mkdir /run/ctdb || exit 97   # RuntimeDirectory=ctdb
mount --bind "$ETC" /etc/ctdb || exit 98
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$CTDBD"
echo "launcher=$?"
pid=$(cat /run/ctdb/ctdbd.pid) || exit 99
trap 'kill -KILL "$pid" 2>/dev/null' EXIT
echo "pid=$pid"
echo "session=$(ps -o sid= -p "$pid" | tr -d ' ')"
echo "stdin=$(readlink /proc/$pid/fd/0)"
echo "stdout=$(readlink /proc/$pid/fd/1)"
echo "exe=$(readlink /proc/$pid/exe)"
/usr/bin/ctdb ping >/dev/null 2>&1; echo "ping=$?"
/usr/bin/ctdb shutdown >/dev/null 2>&1; echo "shutdown=$?"
for i in $(seq 100); do
  state=$(awk '{print $3}' /proc/$pid/stat 2>/dev/null) || break
  [ "$state" = Z ] && break
  sleep 0.1
done
echo "exited=$([ -z "$state" ] || [ "$state" = Z ] && echo yes || echo no)"
echo "pidfile=$([ -e /run/ctdb/ctdbd.pid ] && echo present || echo gone)"
`;

let block: AddressBlock;
let etc: string;

beforeEach(async () => {
  block = await allocateAddressBlock(1);
  etc = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdbd-system-etc-'));
  writeNodeBase({ base: etc, addresses: block.addresses, pnn: 0 });
});

afterEach(() => {
  block.release();
  fs.rmSync(etc, { recursive: true, force: true });
});

it('works as Debian ctdb.service runs it (Type=forking, PIDFile, ExecStop)', async () => {
  const ctdbd = ensureSeaBinary();
  await waitForNativeBuild();
  const run = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', SYSTEMD_LIKE_RUN], {
    env: { PATH: process.env.PATH, ETC: etc, CTDBD: ctdbd },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(run.status, run.stderr).toBe(0);
  const facts = Object.fromEntries(run.stdout.trim().split('\n').map((line) => line.split('=', 2)));
  expect(facts).toEqual({
    launcher: '0',
    pid: expect.stringMatching(/^\d+$/),
    // become_daemon(): a session of its own, stdin and stdout on /dev/null.
    session: facts.pid,
    stdin: '/dev/null',
    stdout: '/dev/null',
    exe: ctdbd,
    ping: '0',
    shutdown: '0',
    exited: 'yes',
    pidfile: 'gone',
  });
});
