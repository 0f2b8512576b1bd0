// Shared pieces of the cluster-mutex tests: the two fcntl helpers under comparison, a scratch
// directory, a logger that records, and bookkeeping that stops every helper a test started.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { ClusterMutex, type ClusterMutexLogger, type ClusterMutexOptions } from '../../src/cluster/cluster-mutex';

export const OUR_HELPER_DIR = path.resolve(__dirname, '../../build/Release');
export const OUR_HELPER = path.join(OUR_HELPER_DIR, 'ctdb_mutex_fcntl_helper');
export const DEBIAN_HELPER = '/usr/libexec/ctdb/ctdb_mutex_fcntl_helper';

export const FCNTL_HELPERS = [
  { name: 'our', helper: OUR_HELPER },
  { name: "Debian's", helper: DEBIAN_HELPER },
] as const;

if (!fs.existsSync(OUR_HELPER)) {
  throw new Error(`${OUR_HELPER} is missing: build it with flock /tmp/ctdb-native-build.lock npx node-gyp rebuild`);
}

export interface RecordingLogger extends ClusterMutexLogger {
  lines: string[];
}

export function recordingLogger(): RecordingLogger {
  const lines: string[] = [];
  const record = (message: string): void => {
    lines.push(message);
  };
  return { lines, error: record, notice: record, debug: record };
}

export interface LostReport {
  reason: string;
  afterMs: number;
}

/** A ClusterMutex that remembers when and why it lost the lock. */
export interface WatchedMutex {
  mutex: ClusterMutex;
  logger: RecordingLogger;
  lost: Promise<LostReport>;
}

/**
 * Per-test scratch directory and mutex factory; afterEach releases every mutex (killing its
 * helper) and removes the directory, also when the test failed.
 */
export function useMutexScratch(): { dir: () => string; open: (options: Partial<ClusterMutexOptions> & { lock: string | null }) => WatchedMutex } {
  let dir = '';
  const opened: ClusterMutex[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-mutex-'));
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((mutex) => mutex.release()));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir: () => dir,
    open: (options) => {
      const logger = recordingLogger();
      const startedAt = performance.now();
      let reportLoss: (report: LostReport) => void = () => {};
      const lost = new Promise<LostReport>((resolve) => (reportLoss = resolve));
      const mutex = new ClusterMutex({
        helperDir: OUR_HELPER_DIR,
        logger,
        timeoutSeconds: 10,
        onLost: (reason) => reportLoss({ reason, afterMs: performance.now() - startedAt }),
        ...options,
      });
      opened.push(mutex);
      return { mutex, logger, lost };
    },
  };
}

/** Resolves with what the promise gives, or 'pending' if it has not settled within ms. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
