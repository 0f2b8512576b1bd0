// The pid file on its own: content, stale files, removal, errors, and a lock held elsewhere.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPidFile } from '../../src/daemon/pidfile';

let dir: string;
let pidPath: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdbd-pidfile-'));
  pidPath = path.join(dir, 'ctdbd.pid');
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('createPidFile', () => {
  it('writes "<pid>\\n" over whatever a crashed daemon left, and remove() is idempotent', () => {
    fs.writeFileSync(pidPath, '1234567890 stale text\n');
    const pidFile = createPidFile(pidPath);
    expect(fs.readFileSync(pidPath, 'utf8')).toBe(`${process.pid}\n`);
    pidFile.remove();
    pidFile.remove();
    expect(fs.existsSync(pidPath)).toBe(false);
  });

  it('names the file and the errno when it cannot create it', () => {
    const missing = path.join(dir, 'no-such-dir', 'ctdbd.pid');
    expect(() => createPidFile(missing)).toThrow(expect.objectContaining({ code: 'ENOENT', message: expect.stringContaining(missing) }));
  });

  it('refuses a file another process holds locked, naming that process', async () => {
    // python's lockf takes the same fcntl record lock ctdbd does.
    const holder = spawn('/usr/bin/python3', ['-c', 'import fcntl,sys,time; f=open(sys.argv[1],"w"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(60)', pidPath], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise((resolve) => holder.stdout.once('data', resolve));
      expect(() => createPidFile(pidPath)).toThrow(
        expect.objectContaining({ code: 'EAGAIN', holderPid: holder.pid, message: `ctdbd is already running as process ${holder.pid}: pid file ${pidPath} is locked` }),
      );
      expect(fs.existsSync(pidPath)).toBe(true);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
