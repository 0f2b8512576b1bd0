// Typed facade of native/process: pid file locking and close-on-exec.
import { nativeModule } from '../native';

interface ProcessModule {
  createPidFile(path: string): number;
  releasePidFile(fd: number, path: string): void;
  setCloseOnExec(fd: number): void;
}

const native = nativeModule<ProcessModule>('process');

/**
 * Creates (or takes over) the pid file, locks it with fcntl for the life of this process and
 * writes "<pid>\n". Returns the descriptor that holds the lock. A file locked by another live
 * process throws an error with code EAGAIN and `holderPid`.
 */
export function lockPidFile(path: string): number {
  return native.createPidFile(path);
}

/** Removes the pid file, then drops the lock. */
export function releasePidFile(fd: number, path: string): void {
  native.releasePidFile(fd, path);
}

export function setCloseOnExec(fd: number): void {
  native.setCloseOnExec(fd);
}
