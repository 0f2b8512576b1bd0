// The cluster lock as the election sees it. Until the mutex helper client lands this
// covers the unconfigured case only.
import type { ClusterLock } from './election';

export const NO_CLUSTER_LOCK: ClusterLock = Object.freeze({
  enabled: false,
  held: false,
  take: () => Promise.resolve(false),
  release: () => undefined,
});
