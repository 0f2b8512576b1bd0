// The recovery master, in process (ctdbd 4.17 forks it as "recoverd"): it decides
// who leads, broadcasts the leader every second, answers the tool's takeover-run and
// disable requests, and, as leader, runs a recovery whenever the cluster's vnn map,
// generation or recovery modes disagree with the set of active nodes.
//
// Election is still the simple rule the foundation needs (lowest connected, active,
// leader-capable node); the 4.17 election with cluster lock replaces it later.
import { randomInt } from 'node:crypto';
import {
  Capability,
  ControlCode,
  ControlFlag,
  INVALID_GENERATION,
  NodeFlag,
  Pnn,
  RecMode,
  Srvid,
  encodeControlRequest,
} from '../protocol';
import type { SrvidMessage } from '../protocol';
import { srvidMessageCodec, disableMessageCodec } from '../protocol/types';
import type { Subscriber } from '../daemon/srvid-table';
import type { Daemon } from '../daemon/daemon';
import { memoryReport } from '../daemon/memory-report';

const LEADER_BROADCAST_MS = 1000;

/** A time-limited "disabled" switch for recoveries or takeover runs. */
class OperationGate {
  #until = 0;
  disable(seconds: number): void {
    this.#until = seconds === 0 ? 0 : performance.now() + seconds * 1000;
  }
  get disabled(): boolean {
    return performance.now() < this.#until;
  }
}

export class Recoverd {
  #loopTimer: NodeJS.Timeout | null = null;
  #broadcastTimer: NodeJS.Timeout | null = null;
  #recovering = false;
  #recoveryRequested = true;
  #takeoverRequests: SrvidMessage[] = [];
  readonly #recoveries = new OperationGate();
  readonly #takeoverRuns = new OperationGate();
  #stopped = false;
  recoveryCount = 0;

  constructor(private readonly d: Daemon) {}

  start(): void {
    const on = (srvid: bigint, handler: (data: Buffer, srcnode: number) => void): void => {
      const sub: Subscriber = { deliver: (_s, _p, data, srcnode) => handler(data, srcnode) };
      this.d.subscribe(srvid, sub);
    };
    on(Srvid.LEADER, (data, srcnode) => this.#leaderAnnounced(data, srcnode));
    on(Srvid.TAKEOVER_RUN, (data) => this.#withSrvidMessage(data, (m) => this.#takeoverRequests.push(m)));
    on(Srvid.DISABLE_TAKEOVER_RUNS, (data) => this.#disableAndReply(data, this.#takeoverRuns));
    on(Srvid.DISABLE_RECOVERIES, (data) => this.#disableAndReply(data, this.#recoveries));
    on(Srvid.DISABLE_IP_CHECK, () => undefined);
    on(Srvid.REBALANCE_NODE, () => undefined);
    on(Srvid.MEM_DUMP, (data) =>
      this.#withSrvidMessage(data, (m) => this.d.sendMessage(m.pnn, m.srvid, Buffer.from(memoryReport() + '\0'))),
    );
    this.#broadcastLoop();
    this.#mainLoop();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#loopTimer !== null) clearTimeout(this.#loopTimer);
    if (this.#broadcastTimer !== null) clearTimeout(this.#broadcastTimer);
  }

  get isLeader(): boolean {
    return this.#electedLeader() === this.d.pnn;
  }

  /** Asks the leader logic to run a recovery at its next loop. */
  requestRecovery(): void {
    this.#recoveryRequested = true;
  }

  peerConnected(pnn: number): void {
    // Tell the newcomer our flags; its capabilities are fetched by the next loop.
    this.#pushOwnFlags(pnn, this.d.state.self.flags, this.d.state.self.flags);
    this.#recoveryRequested = true;
  }

  peerDisconnected(pnn: number): void {
    if (pnn === this.d.state.leader) this.d.state.leader = Pnn.UNKNOWN;
    if (this.d.state.vnnMap.map.includes(pnn)) this.#recoveryRequested = true;
  }

  ownFlagsChanged(oldFlags: number, newFlags: number): void {
    this.#pushOwnFlags(Pnn.BROADCAST_CONNECTED, oldFlags, newFlags);
    // Only a change of the active set needs a new vnn map; health changes do not.
    if (((oldFlags ^ newFlags) & NodeFlag.INACTIVE) !== 0) this.#recoveryRequested = true;
  }

  #pushOwnFlags(destnode: number, oldFlags: number, newFlags: number): void {
    void this.d.router.send(destnode, {
      opcode: ControlCode.MODIFY_FLAGS,
      srvid: 0n,
      flags: ControlFlag.NOREPLY,
      clientId: 0,
      srcnode: this.d.pnn,
      data: encodeControlRequest(ControlCode.MODIFY_FLAGS, { pnn: this.d.pnn, newFlags, oldFlags }),
    });
  }

  /** Lowest-numbered node that is connected, active and may lead. */
  #electedLeader(): number {
    const s = this.d.state;
    for (const node of s.nodes) {
      if (!s.isConnected(node.pnn) || !s.isActive(node.pnn)) continue;
      if ((node.capabilities & Capability.RECMASTER) === 0) continue;
      return node.pnn;
    }
    return Pnn.UNKNOWN;
  }

  #leaderAnnounced(data: Buffer, srcnode: number): void {
    if (data.length < 4) return;
    const leader = data.readUInt32LE(0);
    this.d.state.leader = leader === Pnn.UNKNOWN ? Pnn.UNKNOWN : srcnode;
  }

  #broadcastLoop(): void {
    if (this.#stopped) return;
    if (this.isLeader) {
      this.d.state.leader = this.d.pnn;
      const data = Buffer.alloc(4);
      data.writeUInt32LE(this.d.pnn, 0);
      this.d.sendMessage(Pnn.BROADCAST_CONNECTED, Srvid.LEADER, data);
    }
    this.#broadcastTimer = setTimeout(() => this.#broadcastLoop(), LEADER_BROADCAST_MS);
  }

  #mainLoop(): void {
    if (this.#stopped) return;
    void this.#checkCluster()
      .catch((err: Error) => this.d.logger.error(`Recovery master: ${err.message}`))
      .finally(() => {
        if (this.#stopped) return;
        const interval = Math.max(1, this.d.tunables.values.RecoverInterval) * 1000;
        this.#loopTimer = setTimeout(() => this.#mainLoop(), interval);
      });
  }

  async #checkCluster(): Promise<void> {
    await this.#refreshPeers();
    if (!this.isLeader || this.#recovering) return;
    if (!this.#recoveries.disabled && (await this.#needRecovery())) await this.#recover();
    if (this.#takeoverRequests.length > 0 && !this.#takeoverRuns.disabled) await this.#takeoverRun();
  }

  /**
   * Each peer is the authority on its own flags and capabilities (setleaderrole,
   * stop, ban …): ask every connected peer each loop, so a flag push that raced a
   * connection set-up is never lost for long.
   */
  async #refreshPeers(): Promise<void> {
    await Promise.all(
      this.d.state.connectedPeers().map(async (pnn) => {
        try {
          const [caps, nodemap] = await Promise.all([
            this.d.router.call(pnn, ControlCode.GET_CAPABILITIES, undefined),
            this.d.router.call(pnn, ControlCode.GET_NODEMAP, undefined),
          ]);
          const node = this.d.state.nodes[pnn];
          node.capabilities = caps.reply;
          const own = nodemap.reply.find((n) => n.pnn === pnn);
          if (own !== undefined) this.d.applyPeerFlags(pnn, own.flags);
        } catch (err) {
          this.d.logger.warning((err as Error).message);
        }
      }),
    );
  }

  #activeNodes(): number[] {
    const s = this.d.state;
    return s.nodes.filter((n) => s.isConnected(n.pnn) && s.isActive(n.pnn)).map((n) => n.pnn);
  }

  #lmasterNodes(active: number[]): number[] {
    return active.filter((pnn) => (this.d.state.nodes[pnn].capabilities & Capability.LMASTER) !== 0);
  }

  async #needRecovery(): Promise<boolean> {
    if (this.#recoveryRequested) return true;
    const own = this.d.state.vnnMap;
    if (own.generation === INVALID_GENERATION) return true;
    const active = this.#activeNodes();
    if (!sameMembers(own.map, this.#lmasterNodes(active))) return true;
    const views = await Promise.all(
      active.map(async (pnn) => {
        const [recmode, vnnmap] = await Promise.all([
          this.d.router.send(pnn, controlRequest(this.d.pnn, ControlCode.GET_RECMODE)),
          this.d.router.call(pnn, ControlCode.GETVNNMAP, undefined),
        ]);
        return { pnn, recmode: recmode.status, vnnmap: vnnmap.reply };
      }),
    );
    for (const v of views) {
      if (v.recmode !== RecMode.NORMAL) {
        this.d.logger.notice(`Node ${v.pnn} is in recovery mode, starting a recovery`);
        return true;
      }
      if (v.vnnmap.generation !== own.generation || !sameMembers(v.vnnmap.map, own.map)) {
        this.d.logger.notice(`Node ${v.pnn} has a different vnnmap, starting a recovery`);
        return true;
      }
    }
    return false;
  }

  async #recover(): Promise<void> {
    this.#recovering = true;
    this.#recoveryRequested = false;
    const started = performance.now();
    try {
      const active = this.#activeNodes();
      const all = (step: (pnn: number) => Promise<unknown>): Promise<unknown[]> => Promise.all(active.map(step));
      this.d.logger.notice(`Starting recovery on nodes ${active.join(',')}`);
      await all((pnn) => this.d.router.call(pnn, ControlCode.SET_RECMODE, RecMode.ACTIVE));
      await all((pnn) => this.d.router.call(pnn, ControlCode.START_RECOVERY, undefined));
      let generation: number;
      do generation = randomInt(0, 0x100000000);
      while (generation === INVALID_GENERATION);
      const lmasters = this.#lmasterNodes(active);
      const vnnMap = { generation, map: lmasters.length > 0 ? lmasters : active };
      await all((pnn) => this.d.router.call(pnn, ControlCode.SETVNNMAP, vnnMap));
      await all((pnn) => this.d.router.call(pnn, ControlCode.SET_RECMODE, RecMode.NORMAL));
      await all((pnn) => this.d.router.call(pnn, ControlCode.END_RECOVERY, undefined));
      this.recoveryCount++;
      this.d.logger.notice(
        `Recovery complete: generation 0x${generation.toString(16)} in ${(performance.now() - started).toFixed(1)} ms`,
      );
      await this.#takeoverRun();
    } catch (err) {
      this.#recoveryRequested = true;
      this.d.logger.error(`Recovery failed: ${(err as Error).message}`);
    } finally {
      this.#recovering = false;
    }
  }

  /** No public addresses are managed yet, so a takeover run is the IPREALLOCATED round. */
  async #takeoverRun(): Promise<void> {
    const requests = this.#takeoverRequests;
    this.#takeoverRequests = [];
    let result = this.d.pnn;
    try {
      const connected = this.d.broadcastTargets(Pnn.BROADCAST_CONNECTED);
      await Promise.all(connected.map((pnn) => this.d.router.call(pnn, ControlCode.IPREALLOCATED, undefined)));
    } catch (err) {
      this.d.logger.error(`Takeover run failed: ${(err as Error).message}`);
      result = -1;
    }
    const reply = Buffer.alloc(4);
    reply.writeInt32LE(result, 0);
    for (const r of requests) if (r.srvid !== 0n) this.d.sendMessage(r.pnn, r.srvid, reply);
  }

  #withSrvidMessage(data: Buffer, use: (m: SrvidMessage) => void): void {
    try {
      use(srvidMessageCodec.pull(data, 0, data.length).value);
    } catch (err) {
      this.d.logger.error(`Ignoring malformed srvid message: ${(err as Error).message}`);
    }
  }

  #disableAndReply(data: Buffer, gate: OperationGate): void {
    try {
      const m = disableMessageCodec.pull(data, 0, data.length).value;
      gate.disable(m.timeout);
      const reply = Buffer.alloc(4);
      reply.writeInt32LE(this.d.pnn, 0);
      if (m.srvid !== 0n) this.d.sendMessage(m.pnn, m.srvid, reply);
    } catch (err) {
      this.d.logger.error(`Ignoring malformed disable message: ${(err as Error).message}`);
    }
  }
}

function controlRequest(pnn: number, opcode: ControlCode) {
  return { opcode, srvid: 0n, flags: 0, clientId: 0, srcnode: pnn, data: Buffer.alloc(0) };
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort((x, y) => x - y);
  const sb = [...b].sort((x, y) => x - y);
  return sa.every((v, i) => v === sb[i]);
}

