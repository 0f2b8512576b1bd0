// The recovery master, in process (ctdbd 4.17 forks it as "ctdb-recoverd"). Every
// RecoverInterval it checks this node; on the leader it also checks the cluster —
// recovery modes, node maps, vnn maps, cluster lock — and runs a recovery when they
// disagree, hands out ban credits to nodes that make recoveries fail, and performs
// takeover runs. Election and leader announcements live in election.ts.
import fs from 'node:fs';
import path from 'node:path';
import {
  Capability,
  ControlCode,
  ControlFlag,
  INVALID_GENERATION,
  NodeFlag,
  Pnn,
  RecMode,
  Srvid,
  decodeMessage,
  encodeControlRequest,
  encodeMessage,
  MESSAGES,
} from '../protocol';
import type { MessageName, SrvidMessage, VnnMap } from '../protocol';
import type { Subscriber } from '../daemon/srvid-table';
import type { Daemon } from '../daemon/daemon';
import { memoryReport } from '../daemon/memory-report';
import type { Logger } from '../common/logging';
import { BanCredits } from './ban-credits';
import { Election } from './election';
import type { ClusterLock } from './election';
import { OperationGate } from './op-gate';
import { CtdbClient } from '../client/ctdb-client';
import { NodeFailure, RecoveryPipeline, recoverCluster, type RecoverDbResult } from '../recovery';
import { invalidateRecords } from '../database/record-transfer';


export class Recoverd {
  readonly election: Election;
  readonly log: Logger;
  readonly #recoveries = new OperationGate('recoveries');
  readonly #takeoverRuns = new OperationGate('takeover runs');
  readonly #credits: BanCredits;
  #needRecovery = false;
  #needTakeoverRun = false;
  #takeoverRequests: SrvidMessage[] = [];
  #lastCulprit: number;
  #loopTimer: NodeJS.Timeout | null = null;
  /** While a main loop pass runs (it may run a recovery). */
  #checking = false;
  #recmodeWatch: NodeJS.Timeout | null = null;
  #recmodePoll: Promise<void> | null = null;
  /** This node froze its databases (and gave up its volatile records) when it went inactive. */
  #frozenOnInactive = false;
  #stopped = false;
  /** Like ctdbd's recoverd, a client of its own daemon: the recovery talks to every node through it. */
  #client: CtdbClient | null = null;
  readonly #pipeline = new RecoveryPipeline();
  recoveryCount = 0;

  constructor(
    private readonly d: Daemon,
    log: Logger,
    private readonly clusterLock: ClusterLock,
  ) {
    this.log = log;
    this.#lastCulprit = d.pnn;
    this.#credits = new BanCredits(() => d.tunables.values.RecoveryGracePeriod * 1000);
    this.election = new Election({
      pnn: d.pnn,
      log: this.log,
      clusterLock,
      fastStart: d.paths.testMode,
      ownFlags: () => d.state.self.flags,
      hasLeaderCapability: () => (d.state.capabilities & Capability.RECMASTER) !== 0,
      connectedCount: () => d.state.nodes.filter((n) => d.state.isConnected(n.pnn)).length,
      configuredCount: () => d.state.nodes.filter((n) => !n.deleted).length,
      sendElection: (em) => d.sendMessage(Pnn.BROADCAST_ALL, Srvid.ELECTION, encodeMessage('ELECTION', em)),
      sendLeader: (pnn) => d.sendMessage(Pnn.BROADCAST_CONNECTED, Srvid.LEADER, encodeMessage('LEADER', pnn)),
      setRecoveryActive: () => this.#onActiveNodes((pnn) => d.router.call(pnn, ControlCode.SET_RECMODE, RecMode.ACTIVE)),
      banSelf: (reason) => {
        this.log.error(reason);
        this.#banNode(d.pnn);
      },
      electionTimeoutMs: () => d.tunables.values.ElectionTimeout * 1000,
      leaderTimeoutMs: () => d.config.cluster.leaderTimeout * 1000,
    });
  }

  start(): void {
    this.#on('LEADER', (pnn) => {
      void this.election.onLeaderMessage(pnn);
      this.d.state.leader = this.election.leader;
    });
    this.#on('ELECTION', (em) => this.election.onElectionMessage(em));
    this.#on('BANNING', (pnn) => {
      if (this.election.isLeader) this.#credits.add(pnn, this.#nodeCount());
    });
    this.#on('TAKEOVER_RUN', (request) => this.#takeoverRequests.push(request));
    this.#on('DISABLE_TAKEOVER_RUNS', (m) => this.#disableAndReply(m, this.#takeoverRuns));
    this.#on('DISABLE_RECOVERIES', (m) => this.#disableAndReply(m, this.#recoveries));
    this.#on('DISABLE_IP_CHECK', () => undefined);
    this.#on('REBALANCE_NODE', () => undefined);
    this.#on('MEM_DUMP', (m) => this.d.sendMessage(m.pnn, m.srvid, Buffer.from(memoryReport() + '\0')));
    this.log.notice('monitor_cluster starting');
    void this.#localClient().catch((err: Error) => this.log.error(`Cannot connect to the local daemon: ${err.message}`));
    this.election.start();
    this.#mainLoop();
    this.#recmodeWatch = setInterval(() => this.#watchRecoveryModes(), RECMODE_WATCH_MS);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#loopTimer !== null) clearTimeout(this.#loopTimer);
    if (this.#recmodeWatch !== null) clearInterval(this.#recmodeWatch);
    this.election.stop();
    this.#client?.close();
    void this.#pipeline.close();
  }

  /** Our connection to the local daemon, (re)opened on demand. */
  async #localClient(): Promise<CtdbClient> {
    if (this.#client === null || this.#client.closedBy !== null) this.#client = await CtdbClient.connect(this.d.paths.socket);
    return this.#client;
  }

  get isLeader(): boolean {
    return this.election.isLeader;
  }

  /** Asks for a recovery at the leader's next loop (ctdb recover sets recmode instead). */
  requestRecovery(): void {
    this.#needRecovery = true;
  }

  peerConnected(pnn: number): void {
    // Tell the newcomer our flags now; it is polled from the next loop on.
    void this.d.router.send(pnn, this.#flagChange(this.d.state.self.flags, this.d.state.self.flags));
  }

  /**
   * This node leads and goes on leading: its next broadcast will name it. (What it heard from
   * another leader may be stale: that one may just have given up the role.)
   */
  get leadingHere(): boolean {
    return this.election.isLeader && !this.election.inProgress && this.election.canBeLeader();
  }

  peerDisconnected(pnn: number): void {
    if (pnn === this.election.leader) {
      this.log.notice(`Leader node ${pnn} disconnected`);
      this.election.leader = Pnn.UNKNOWN;
      this.d.state.leader = Pnn.UNKNOWN;
    }
  }

  ownFlagsChanged(oldFlags: number, newFlags: number): void {
    void this.d.router.send(Pnn.BROADCAST_CONNECTED, this.#flagChange(oldFlags, newFlags));
    // Health changes move public addresses, not the vnn map.
    if (((oldFlags ^ newFlags) & ~NodeFlag.INACTIVE) !== 0) this.#needTakeoverRun = true;
  }

  #flagChange(oldFlags: number, newFlags: number) {
    return {
      opcode: ControlCode.MODIFY_FLAGS,
      srvid: 0n,
      flags: ControlFlag.NOREPLY,
      clientId: 0,
      srcnode: this.d.pnn,
      data: encodeControlRequest(ControlCode.MODIFY_FLAGS, { pnn: this.d.pnn, newFlags, oldFlags }),
    };
  }

  #on<N extends MessageName>(name: N, handler: (payload: ReturnType<typeof decodeMessage<N>>) => void): void {
    const sub: Subscriber = {
      deliver: (_srvid, _packet, data) => {
        let payload: ReturnType<typeof decodeMessage<N>>;
        try {
          payload = decodeMessage(name, data);
        } catch (err) {
          this.log.error(`Ignoring malformed ${name} message: ${(err as Error).message}`);
          return;
        }
        handler(payload);
      },
    };
    this.d.subscribe(MESSAGES[name].srvid, sub);
  }

  #nodeCount(): number {
    return this.d.state.nodes.length;
  }

  #activeNodes(): number[] {
    const s = this.d.state;
    return s.nodes.filter((n) => s.isConnected(n.pnn) && s.isActive(n.pnn)).map((n) => n.pnn);
  }

  #lmasters(active: readonly number[]): number[] {
    return active.filter((pnn) => (this.d.state.nodes[pnn].capabilities & Capability.LMASTER) !== 0);
  }

  /** Runs `step` on every active node; a failure names the node that failed. */
  async #onActiveNodes(step: (pnn: number) => Promise<unknown>, nodes = this.#activeNodes()): Promise<void> {
    await Promise.all(
      nodes.map((pnn) =>
        step(pnn).catch((err: Error) => {
          throw new NodeFailure(pnn, err.message);
        }),
      ),
    );
  }

  // ---- main loop ---------------------------------------------------------------------

  #mainLoop(): void {
    if (this.#stopped) return;
    if (this.#loopTimer !== null) clearTimeout(this.#loopTimer);
    this.#loopTimer = null;
    this.#checking = true;
    const started = performance.now();
    void this.#check()
      .catch((err: Error) => this.log.error(`main loop: ${err.message}`))
      .finally(() => {
        this.#checking = false;
        if (this.#stopped) return;
        const interval = this.d.tunables.values.RecoverInterval * 1000;
        this.#loopTimer = setTimeout(() => this.#mainLoop(), Math.max(0, interval - (performance.now() - started)));
      });
  }

  /**
   * `ctdb recover` sets recovery mode ACTIVE on one node and waits for a new generation. 4.17's
   * leader notices at its next loop, up to RecoverInterval later; this leader looks at the
   * recovery modes every RECMODE_WATCH_MS between loops (its own for free, the others' with
   * GET_RECMODE) and runs the loop at once when one is ACTIVE. A recovery it then runs is the
   * one the loop would have run.
   */
  #watchRecoveryModes(): void {
    // After a failed recovery (#needRecovery still set) retries keep the loop's pace.
    if (this.#checking || this.#needRecovery || this.#recmodePoll !== null || !this.election.isLeader || this.election.inProgress) return;
    if (this.#recoveries.disabled || (this.d.state.self.flags & NodeFlag.INACTIVE) !== 0) return;
    if (this.d.state.recMode === RecMode.ACTIVE) {
      this.#mainLoop();
      return;
    }
    const peers = this.#activeNodes().filter((pnn) => pnn !== this.d.pnn);
    this.#recmodePoll = Promise.all(peers.map(async (pnn) => (await this.d.router.call(pnn, ControlCode.GET_RECMODE, undefined)).status))
      .then((modes) => {
        if (modes.includes(RecMode.ACTIVE) && !this.#checking && !this.#stopped) this.#mainLoop();
      })
      .catch(() => undefined)
      .finally(() => (this.#recmodePoll = null));
  }

  /**
   * A stopped or banned node puts itself in recovery mode and freezes all its databases once,
   * declaring its volatile records invalid: the recovery that takes it back must not revive
   * a record the active nodes deleted meanwhile (Samba bug 14294).
   */
  async #holdInactive(): Promise<void> {
    if (this.d.state.recMode === RecMode.NORMAL) {
      this.log.error('Node is stopped or banned but recovery mode is not active. Activate recovery mode and lock databases');
      await this.d.router.call(this.d.pnn, ControlCode.SET_RECMODE, RecMode.ACTIVE);
    }
    if (this.#frozenOnInactive) return;
    for (const db of this.d.databases.newestFirst()) invalidateRecords(db);
    // A freeze waits for every lock holder: give up for this loop after RecoverTimeout, as
    // 4.17's control does; the freeze goes on, and the next loop asks again.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('Failed to freeze node in STOPPED or BANNED state: timed out')), this.d.tunables.values.RecoverTimeout * 1000);
    });
    try {
      await Promise.race([this.d.router.call(this.d.pnn, ControlCode.FREEZE, undefined), timeout]);
    } finally {
      clearTimeout(timer);
    }
    this.#frozenOnInactive = true;
  }

  async #check(): Promise<void> {
    if (this.election.inProgress) return;
    if (!this.election.leaderTimeoutActive) this.election.startLeaderTimeout();
    const self = this.d.state.self;
    if ((self.flags & NodeFlag.INACTIVE) !== 0) {
      // A stopped or banned node keeps its databases out of the way and does not lead.
      this.election.resetPriority();
      await this.#holdInactive();
      return;
    }
    this.#frozenOnInactive = false;
    await this.#refreshPeers();
    if (!this.election.isLeader) return;
    // The leader recovers: its worker threads start now, not when a recovery is waiting.
    this.#pipeline.start();
    if (this.#banMisbehaving()) return;
    if (this.#needRecovery) {
      await this.#recover();
      return;
    }
    if (await this.#someNodeInRecovery()) {
      await this.#recover();
      return;
    }
    if (this.clusterLock.enabled && !this.clusterLock.held) {
      this.log.error('Failed cluster lock sanity check');
      this.#setCulprit(this.d.pnn);
      await this.#recover();
      return;
    }
    if (!this.#recoveries.disabled && (await this.#mapsDiffer())) {
      await this.#recover();
      return;
    }
    if (!this.#takeoverRuns.disabled && (this.#takeoverRequests.length > 0 || this.#needTakeoverRun)) {
      await this.#takeoverRun();
    }
  }

  /**
   * Each peer is the authority on its own flags and capabilities (stop, ban,
   * setleaderrole …): ask every connected peer each loop, so a flag push that raced
   * a connection set-up is never lost for long.
   */
  async #refreshPeers(): Promise<void> {
    await Promise.all(
      this.d.state.connectedPeers().map(async (pnn) => {
        try {
          const [caps, nodemap] = await Promise.all([
            this.d.router.call(pnn, ControlCode.GET_CAPABILITIES, undefined),
            this.d.router.call(pnn, ControlCode.GET_NODEMAP, undefined),
          ]);
          this.d.state.nodes[pnn].capabilities = caps.reply;
          const own = nodemap.reply.find((n) => n.pnn === pnn);
          if (own !== undefined) this.d.applyPeerFlags(pnn, own.flags);
        } catch (err) {
          this.log.warning((err as Error).message);
        }
      }),
    );
  }

  async #someNodeInRecovery(): Promise<boolean> {
    for (const pnn of this.#activeNodes()) {
      const { status } = await this.d.router.call(pnn, ControlCode.GET_RECMODE, undefined);
      if (status === RecMode.ACTIVE) {
        this.log.notice(`Node:${pnn} was in recovery mode. Start recovery process`);
        return true;
      }
    }
    return false;
  }

  /** Node maps and vnn maps of all active nodes against ours (4.17 main_loop checks). */
  async #mapsDiffer(): Promise<boolean> {
    const own = this.d.state.vnnMap;
    const active = this.#activeNodes();
    const lmasters = this.#lmasters(active);
    if (own.generation === INVALID_GENERATION) return true;
    if (own.map.length !== lmasters.length) {
      this.log.error(`The vnnmap count is different from the number of active lmaster nodes: ${own.map.length} vs ${lmasters.length}`);
      this.#setCulprit(this.d.pnn);
      return true;
    }
    const missing = lmasters.find((pnn) => !own.map.includes(pnn));
    if (missing !== undefined) {
      this.log.error(`Active LMASTER node ${missing} is not in the vnnmap`);
      this.#setCulprit(missing);
      return true;
    }
    for (const pnn of active) {
      if (pnn === this.d.pnn) continue;
      const [{ reply: nodemap }, { reply: vnnmap }] = await Promise.all([
        this.d.router.call(pnn, ControlCode.GET_NODEMAP, undefined),
        this.d.router.call(pnn, ControlCode.GETVNNMAP, undefined),
      ]);
      if (nodemap.length !== this.d.state.nodes.length) {
        this.log.error(`Remote node:${pnn} has different node count. ${nodemap.length} vs ${this.d.state.nodes.length} of the local node`);
        this.#setCulprit(pnn);
        return true;
      }
      if (vnnmap.generation !== own.generation || !sameMap(vnnmap, own)) {
        this.log.error(`Remote node ${pnn} has different vnnmap (generation ${vnnmap.generation} vs ${own.generation} ours)`);
        this.#setCulprit(pnn);
        return true;
      }
    }
    return false;
  }

  // ---- banning -------------------------------------------------------------------------

  #setCulprit(pnn: number, count = 1): void {
    if ((this.d.state.self.flags & NodeFlag.INACTIVE) !== 0) return;
    this.#credits.add(pnn, count);
    this.#lastCulprit = pnn;
  }

  /** Bans nodes with too many credits; true when this node banned itself. */
  #banMisbehaving(): boolean {
    let self = false;
    for (const pnn of this.#credits.takeMisbehaving(2 * this.#nodeCount())) {
      this.log.notice(`Node ${pnn} reached its banning credits`);
      this.#banNode(pnn);
      if (pnn === this.d.pnn) self = true;
    }
    return self;
  }

  #banNode(pnn: number): void {
    const time = this.d.tunables.values.RecoveryBanPeriod;
    this.log.notice(`Banning node ${pnn} for ${time} seconds`);
    void this.d.router
      .call(pnn, ControlCode.SET_BAN_STATE, { pnn, time })
      .catch((err: Error) => this.log.error(`Failed to ban node ${pnn}: ${err.message}`));
  }

  // ---- recovery ------------------------------------------------------------------------

  async #recover(): Promise<void> {
    if (!this.election.isLeader) {
      this.log.notice(`Leader changed to ${this.election.leader}, aborting recovery`);
      return;
    }
    this.#needRecovery = true;
    if (!this.#recoveries.begin()) return;
    const started = performance.now();
    try {
      if (this.election.inProgress) throw new Error('recovery called while election in progress - try again later');
      if (this.#banMisbehaving()) throw new Error('This node was banned, aborting recovery');
      if (this.clusterLock.enabled && !this.clusterLock.held) {
        this.log.error('Cluster lock not held - abort recovery, ban node');
        this.#banNode(this.d.pnn);
        throw new Error('cluster lock not held');
      }
      this.log.notice(`Recovery initiated due to problem with node ${this.#lastCulprit}`);
      fs.mkdirSync(this.d.config.database.stateDbDir, { recursive: true });
      const stagingDir = fs.mkdtempSync(path.join(this.d.config.database.stateDbDir, `recovery.${this.d.pnn}.`));
      const result = await recoverCluster(await this.#localClient(), this.#pipeline, {
        socketPath: this.d.paths.socket,
        stagingDir,
        onPhase: ({ dbId, phase }) => phase === 'freeze' && this.log.notice(`recover database 0x${dbId.toString(16).padStart(8, '0')}`),
        onProgress: (db, attempt) =>
          this.log.notice(
            db.ok
              ? `Recovered database ${db.name}: ${db.records} records (${db.pulledNodes ?? 0} nodes pulled, ${db.pushedRecords ?? 0} pushed, ${db.wipedNodes ?? 0} nodes wiped${db.spilled === true ? ', merged in LMDB' : ''}) in ${db.durationMs.toFixed(1)} ms (${phaseSummary(db)})`
              : `Recovery of database ${db.name} failed (attempt ${attempt}): ${db.error ?? 'unknown error'}`,
          ),
      }).finally(() => fs.rmSync(stagingDir, { recursive: true, force: true }));
      if (!result.ok) {
        throw result.culprit === undefined ? new Error(result.error ?? 'recovery failed') : new NodeFailure(result.culprit, result.error ?? 'recovery failed');
      }
      const dbCount = result.report?.results.length ?? 0;
      this.log.notice(`${dbCount} of ${dbCount} databases recovered, generation 0x${result.generation.toString(16)}`);
      await this.#takeoverRun();
      this.d.sendMessage(Pnn.BROADCAST_CONNECTED, Srvid.RECONFIGURE, Buffer.alloc(0));
      this.recoveryCount++;
      this.#needRecovery = false;
      this.#credits.reset();
      this.log.notice(`Recovery complete in ${(performance.now() - started).toFixed(1)} ms`);
      this.#recoveries.end();
      const rerecovery = this.d.tunables.values.RerecoveryTimeout;
      if (rerecovery > 0) {
        this.log.notice(`Just finished a recovery. New recoveries will now be suppressed for the rerecovery timeout (${rerecovery} seconds)`);
        this.#recoveries.disable(rerecovery);
      }
    } catch (err) {
      if (err instanceof NodeFailure) {
        // The recovery helper blames the failing node with a full round of credits.
        this.#setCulprit(err.pnn, this.#nodeCount());
        this.log.error(`Recovery failed on node ${err.pnn}: ${err.message}`);
      } else {
        this.log.error(`Recovery failed: ${(err as Error).message}`);
      }
      this.#recoveries.end();
    }
  }

  /** No public addresses are managed yet, so a takeover run is the IPREALLOCATED round. */
  async #takeoverRun(): Promise<void> {
    const requests = this.#takeoverRequests;
    this.#takeoverRequests = [];
    if (!this.#takeoverRuns.begin()) {
      this.#takeoverRequests.push(...requests);
      return;
    }
    let result = this.d.pnn;
    try {
      const connected = this.d.broadcastTargets(Pnn.BROADCAST_CONNECTED);
      await this.#onActiveNodes((pnn) => this.d.router.call(pnn, ControlCode.IPREALLOCATED, undefined), connected);
      this.#needTakeoverRun = false;
    } catch (err) {
      this.log.error(`Takeover run failed: ${(err as Error).message}`);
      this.#needTakeoverRun = true;
      result = -1;
    } finally {
      this.#takeoverRuns.end();
    }
    for (const r of requests) if (r.srvid !== 0n) this.d.sendMessage(r.pnn, r.srvid, int32(result));
  }

  #disableAndReply(m: { pnn: number; srvid: bigint; timeout: number }, gate: OperationGate): void {
    const ok = gate.disable(m.timeout);
    if (m.timeout > 0) this.log.notice(`Disabling ${gate.name} for ${m.timeout} seconds`);
    // Our pnn tells the caller it worked; -EAGAIN that the operation is running.
    if (m.srvid !== 0n) this.d.sendMessage(m.pnn, m.srvid, int32(ok ? this.d.pnn : -EAGAIN));
  }
}

const EAGAIN = 11;
/** How often the leader looks for a node put in recovery mode between its loops. */
const RECMODE_WATCH_MS = 50;

/** "freeze 3.1, pull 120.4, …" in milliseconds, for the per-database log line. */
function phaseSummary(db: RecoverDbResult): string {
  return Object.entries(db.phaseMs ?? {})
    .map(([phase, ms]) => `${phase} ${ms.toFixed(1)}`)
    .join(', ');
}

/** Replies to srvid requests are a bare int32. */
function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  return b;
}

function sameMap(a: VnnMap, b: VnnMap): boolean {
  return a.map.length === b.map.length && a.map.every((pnn, i) => pnn === b.map[i]);
}
