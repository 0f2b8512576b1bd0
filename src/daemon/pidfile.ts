// The daemon's pid file with Samba's semantics (lib/util/pidfile.c): an fcntl lock held for
// the life of the process says "running", so a stale file left by a crash never blocks a
// restart, while a second daemon with the same file is refused.
import { lockPidFile, releasePidFile } from './process-native';

export interface PidFile {
  readonly path: string;
  /** Unlinks the file and drops the lock; idempotent. Also runs at process exit. */
  remove(): void;
}

export function createPidFile(pidFilePath: string): PidFile {
  let fd: number;
  try {
    fd = lockPidFile(pidFilePath);
  } catch (err) {
    const holder = (err as { holderPid?: number }).holderPid;
    if (holder === undefined) throw err;
    throw Object.assign(new Error(`ctdbd is already running as process ${holder}: pid file ${pidFilePath} is locked`), {
      code: 'EAGAIN',
      holderPid: holder,
    });
  }
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    process.removeListener('exit', remove);
    releasePidFile(fd, pidFilePath);
  };
  // Like ctdbd's atexit handler: whatever path the process takes out, the file goes with it.
  process.on('exit', remove);
  return { path: pidFilePath, remove };
}
