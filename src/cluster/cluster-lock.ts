// The cluster lock as the leader election uses it: at most one helper holding the
// lock, taken with 4.17's 120 s patience, reported lost through a callback. Also the
// daemon's SET_RECMODE NORMAL check, which expects the lock to be held elsewhere.
import path from 'node:path';
import type { Logger } from '../common/logging';
import { projectRoot } from '../native';
import { ClusterMutex, LEADER_LOCK_TIMEOUT_SECONDS, RECMODE_CHECK_TIMEOUT_SECONDS } from './cluster-mutex';
import type { ClusterLockResult } from './cluster-mutex';
import type { ClusterLock } from './election';

/** Our own mutex helpers are built next to the addon. */
export const HELPER_DIR = path.join(projectRoot, 'build', 'Release');

const FAILURE_TEXT: Record<string, string> = {
  contended: 'contention',
  timeout: 'timeout',
  error: 'unknown error',
};

export class LeaderClusterLock implements ClusterLock {
  #mutex: ClusterMutex | null = null;

  constructor(
    private readonly lock: string | null,
    private readonly logger: Logger,
    /** The lock was held and is gone (helper died, lock file replaced). */
    private readonly onLost: () => void,
    /** Latency of a successful take, in seconds (RECD_RECLOCK_LATENCY). */
    private readonly onLatency: (seconds: number) => void,
  ) {}

  get enabled(): boolean {
    return this.lock !== null;
  }

  get held(): boolean {
    return this.#mutex?.held ?? false;
  }

  async take(): Promise<boolean> {
    if (this.lock === null || this.held) return this.held;
    const mutex: ClusterMutex = new ClusterMutex({
      lock: this.lock,
      helperDir: HELPER_DIR,
      logger: this.logger,
      timeoutSeconds: LEADER_LOCK_TIMEOUT_SECONDS,
      onLost: () => {
        if (this.#mutex !== mutex) return;
        this.#mutex = null;
        this.onLost();
      },
    });
    const result = await mutex.take();
    if (result.status !== 'locked') {
      this.logger.error(`Unable to take cluster lock - ${FAILURE_TEXT[result.status]}`);
      return false;
    }
    this.#mutex = mutex;
    this.onLatency(result.latency);
    return true;
  }

  release(): void {
    const mutex = this.#mutex;
    if (mutex === null) return;
    this.#mutex = null;
    this.logger.notice('Releasing cluster lock');
    void mutex.release();
  }
}

/**
 * SET_RECMODE NORMAL with a cluster lock configured: the leader must be holding it,
 * so our attempt has to meet contention (a timeout counts as fine, as in 4.17).
 */
export async function checkLockHeldElsewhere(lock: string, logger: Logger): Promise<{ ok: boolean; result: ClusterLockResult }> {
  const mutex = new ClusterMutex({ lock, helperDir: HELPER_DIR, logger, timeoutSeconds: RECMODE_CHECK_TIMEOUT_SECONDS });
  const result = await mutex.take();
  await mutex.release();
  return { ok: result.status === 'contended' || result.status === 'timeout', result };
}
