// Leader election with CTDB 4.17 semantics. Without a cluster lock, nodes exchange
// election messages (BROADCAST_ALL, srvid ELECTION): a node that would rather lead
// (it may lead, the other is inactive, or it has run longer, then lower pnn) answers
// with its own; the election ends ElectionTimeout after the last message. With a
// cluster lock, the node that takes the lock leads. The leader announces itself every
// second; a node that hears no leader for `leader timeout` seconds calls an election.
// Every timer runs on the monotonic clock.
import type { ElectionMessage, Timeval } from '../protocol';
import { NodeFlag, Pnn } from '../protocol';
import { timevalNow } from '../common/time';
import type { Logger } from '../common/logging';

export interface ClusterLock {
  readonly enabled: boolean;
  readonly held: boolean;
  /** Takes the lock; false on contention, timeout or error (already logged). */
  take(): Promise<boolean>;
  release(): void;
}

export interface ElectionHost {
  readonly pnn: number;
  readonly log: Logger;
  readonly clusterLock: ClusterLock;
  ownFlags(): number;
  /** Leader capability of this node right now. */
  hasLeaderCapability(): boolean;
  /** Nodes of our node map that are connected, this node included. */
  connectedCount(): number;
  /** Nodes of the nodes file that are not deleted. */
  configuredCount(): number;
  sendElection(message: ElectionMessage): void;
  sendLeader(pnn: number): void;
  /** Sets recovery mode ACTIVE on every active node (an election stops inter-node traffic). */
  setRecoveryActive(): Promise<void>;
  banSelf(reason: string): void;
  electionTimeoutMs(): number;
  leaderTimeoutMs(): number;
  /** CTDB_TEST_MODE: the first election period is 0.5 s. */
  readonly fastStart: boolean;
}

const FAST_ELECTION_MS = 500;
const ANSWER_DELAY_MS = 500;
/**
 * ctdbd broadcasts once a second. Every ctdb tool command that needs the leader (status,
 * recover, ipreallocate, ...) first waits for a broadcast, so a twentieth of that makes them
 * answer sooner on every node (the leader answers its own clients at once); to the other
 * nodes a broadcast only restarts their leader timeout: twenty small messages a second.
 */
const BROADCAST_MS = 50;

export class Election {
  leader: number = Pnn.UNKNOWN;
  inProgress = false;
  #priorityTime: Timeval = timevalNow();
  #fastStart: boolean;
  readonly #startedMs = performance.now();
  #electionTimer: NodeJS.Timeout | null = null;
  #answerTimer: NodeJS.Timeout | null = null;
  #leaderTimeout: NodeJS.Timeout | null = null;
  #broadcastTimer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(private readonly host: ElectionHost) {
    this.#fastStart = host.fastStart;
  }

  get isLeader(): boolean {
    return this.leader === this.host.pnn;
  }

  canBeLeader(): boolean {
    return (this.host.ownFlags() & NodeFlag.INACTIVE) === 0 && this.host.hasLeaderCapability();
  }

  start(): void {
    this.#broadcastLoop();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of [this.#electionTimer, this.#answerTimer, this.#leaderTimeout, this.#broadcastTimer]) {
      if (t !== null) clearTimeout(t);
    }
    this.host.clusterLock.release();
  }

  /** An inactive node loses its seniority so that the leader role stays on stable nodes. */
  resetPriority(): void {
    this.#priorityTime = timevalNow();
  }

  get leaderTimeoutActive(): boolean {
    return this.#leaderTimeout !== null;
  }

  startLeaderTimeout(): void {
    this.#cancelLeaderTimeout();
    this.#leaderTimeout = setTimeout(() => {
      this.#leaderTimeout = null;
      this.host.log.notice('Leader broadcast timeout');
      void this.forceElection();
    }, this.host.leaderTimeoutMs());
  }

  /** SRVID_LEADER from some node (UNKNOWN: an election has been called). */
  async onLeaderMessage(pnn: number): Promise<void> {
    this.#cancelLeaderTimeout();
    if (pnn === this.leader) {
      this.startLeaderTimeout();
      return;
    }
    if (pnn === Pnn.UNKNOWN) {
      const wasInProgress = this.inProgress;
      // The main loop must not restart the leader timeout until the election is over.
      this.inProgress = true;
      if (this.host.clusterLock.enabled) {
        if (!wasInProgress) await this.#clusterLockElection();
      } else {
        // Ends the election even if the node that called it dies before its request arrives.
        this.#armElectionTimer();
      }
      return;
    }
    this.host.log.notice(`Received leader broadcast, leader=${pnn}`);
    this.leader = pnn;
    this.startLeaderTimeout();
  }

  onElectionMessage(em: ElectionMessage): void {
    if (em.pnn === this.host.pnn) return;
    this.inProgress = true;
    this.#armElectionTimer();
    if (this.#wins(em)) {
      this.#answerTimer ??= setTimeout(() => {
        this.#answerTimer = null;
        this.#sendElectionRequest();
      }, ANSWER_DELAY_MS);
      return;
    }
    if (this.#answerTimer !== null) clearTimeout(this.#answerTimer);
    this.#answerTimer = null;
    if (this.host.clusterLock.held) this.host.clusterLock.release();
    this.leader = em.pnn;
  }

  /** Starts an election (leader timeout, lost cluster lock, leader gone). */
  async forceElection(): Promise<void> {
    if (this.#stopped) return;
    if (!this.#mayStand()) {
      this.host.log.notice('Not connected to any other node yet, waiting before calling an election');
      this.startLeaderTimeout();
      return;
    }
    this.host.log.error('Start election');
    try {
      await this.host.setRecoveryActive();
    } catch (err) {
      this.host.log.error(`Unable to set recovery mode to active on cluster: ${(err as Error).message}`);
      this.startLeaderTimeout();
      return;
    }
    this.inProgress = true;
    this.host.sendLeader(Pnn.UNKNOWN);
    if (this.host.clusterLock.enabled) {
      await this.#clusterLockElection();
      return;
    }
    this.#armElectionTimer();
    this.#sendElectionRequest();
  }

  /** The cluster lock helper died or the lock file went away. */
  lostClusterLock(): void {
    this.host.log.error('Cluster lock helper terminated');
    if (this.canBeLeader()) void this.forceElection();
  }

  /**
   * A node that has only just started stands only once it is connected or has
   * waited a while: standing alone before the transport is up would split the
   * cluster into single-node leaders.
   */
  #mayStand(): boolean {
    if (this.host.configuredCount() <= 1 || this.host.connectedCount() > 1) return true;
    return performance.now() - this.#startedMs > 3 * this.host.leaderTimeoutMs();
  }

  #electionData(): ElectionMessage {
    const em: ElectionMessage = {
      numConnected: this.host.connectedCount(),
      priorityTime: this.#priorityTime,
      pnn: this.host.pnn,
      nodeFlags: this.host.ownFlags(),
    };
    if (!this.canBeLeader()) {
      // Try to lose.
      em.numConnected = 0;
      em.priorityTime = timevalNow();
    }
    return em;
  }

  #wins(em: ElectionMessage): boolean {
    if (!this.canBeLeader()) return false;
    if ((em.nodeFlags & NodeFlag.INACTIVE) !== 0) return true;
    const mine = this.#electionData();
    // The longest running node wins, then the lower pnn.
    let cmp = compareTimeval(em.priorityTime, mine.priorityTime);
    if (cmp === 0) cmp = mine.pnn - em.pnn;
    return cmp > 0;
  }

  #sendElectionRequest(): void {
    // Assume we win until somebody says otherwise.
    this.leader = this.host.pnn;
    this.host.sendElection(this.#electionData());
  }

  #armElectionTimer(): void {
    if (this.#electionTimer !== null) clearTimeout(this.#electionTimer);
    const ms = this.#fastStart ? FAST_ELECTION_MS : this.host.electionTimeoutMs();
    this.#electionTimer = setTimeout(() => void this.#electionEnded(), ms);
  }

  async #electionEnded(): Promise<void> {
    this.#electionTimer = null;
    this.inProgress = false;
    this.#fastStart = false;
    this.host.log.warning(`Election period ended, leader=${this.leader}`);
    if (!this.isLeader || !this.host.clusterLock.enabled) return;
    if (!(await this.host.clusterLock.take())) this.host.banSelf('Unable to get cluster lock, banning node');
  }

  async #clusterLockElection(): Promise<void> {
    try {
      if (!this.canBeLeader()) {
        if (this.host.clusterLock.held) this.host.clusterLock.release();
        return;
      }
      // Keep a lock we hold: that keeps the leader role stable.
      if (this.host.clusterLock.held) return;
      this.leader = Pnn.UNKNOWN;
      if (await this.host.clusterLock.take()) {
        this.leader = this.host.pnn;
        this.host.log.warning(`Took cluster lock, leader=${this.leader}`);
      }
    } finally {
      this.inProgress = false;
    }
  }

  #cancelLeaderTimeout(): void {
    if (this.#leaderTimeout !== null) clearTimeout(this.#leaderTimeout);
    this.#leaderTimeout = null;
  }

  /** Every BROADCAST_MS: announce ourselves while leading; step down when no longer fit to lead. */
  #broadcastLoop(): void {
    if (this.#stopped) return;
    if (!this.canBeLeader()) {
      if (this.isLeader) this.leader = Pnn.UNKNOWN;
      if (this.host.clusterLock.held) this.host.clusterLock.release();
    } else if (this.isLeader && !this.inProgress) {
      this.host.sendLeader(this.host.pnn);
    }
    this.#broadcastTimer = setTimeout(() => this.#broadcastLoop(), BROADCAST_MS);
  }
}

function compareTimeval(a: Timeval, b: Timeval): number {
  return a.sec !== b.sec ? Math.sign(a.sec - b.sec) : Math.sign(a.usec - b.usec);
}
