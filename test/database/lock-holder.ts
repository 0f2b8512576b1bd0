// A libtdb process (Debian's python3-tdb) holding a database's all-record lock until told to
// let go, as a stuck smbd traverse would.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { DEBIAN_PYTHON } from '../harness/reference-peers';

const HOLD_LOCKALL = `
import os, sys, tdb
db = tdb.open(sys.argv[1], 0, int(sys.argv[2]), os.O_RDWR)
db.lock_all()
print("locked", flush=True)
sys.stdin.readline()
db.unlock_all()
`;

export interface LockHolder {
  /** Unlocks and waits for the process to exit. */
  release(): Promise<void>;
  /** Ends the process by its pid (test cleanup); the kernel drops its locks. */
  kill(): void;
}

/** Resolves once the process holds the lock; `tdbFlags` as DB_OPEN_FLAGS reports them. */
export async function holdAllRecordLock(path: string, tdbFlags: number): Promise<LockHolder> {
  const holder = spawn(DEBIAN_PYTHON, ['-c', HOLD_LOCKALL, path, String(tdbFlags)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(holder, 'exit');
  const [line] = (await Promise.race([once(holder.stdout, 'data'), exited])) as [Buffer | number];
  if (!(line instanceof Buffer) || !line.toString().includes('locked')) throw new Error(`python3-tdb could not lock ${path}`);
  return {
    release: async () => {
      holder.stdin.end('\n');
      await exited;
    },
    kill: () => {
      if (holder.exitCode === null) holder.kill();
    },
  };
}
