// The daemon: wires configuration, the unix-socket clients, the node transport,
// the control router, the control handlers and the in-process recovery master.
// Packet handling here is routing only; what each control does lives in controls/.
import fs from 'node:fs';
import path from 'node:path';
import {
  Capability,
  ControlCode,
  ControlFlag,
  KEEPALIVE_VERSION,
  NodeFlag,
  Operation,
  Pnn,
  ProtocolError,
  RecMode,
  Runstate,
  Srvid,
  decodePacket,
  encodeControlRequest,
  encodePacket,
  makeHeader,
  writeHeaderFields,
} from '../protocol';
import type { Header, Packet, ReplyCall, ReplyControl, ReplyDmaster, ReplyError, ReqCall, ReqControl, ReqDmaster, ReqMessage, Timeval } from '../protocol';
import { ZERO_TIMEVAL, timevalNow } from '../common/time';
import { resolvePaths } from '../config/paths';
import type { CtdbPaths } from '../config/paths';
import { loadCtdbConfig } from '../config/ctdb-conf';
import type { CtdbConfig } from '../config/ctdb-conf';
import { loadNodesFile } from '../config/nodes';
import { Tunables } from '../config/tunables';
import { createLogger } from '../common/logging';
import type { Logger } from '../common/logging';
import { NativeIo } from '../transport/native-io';
import type { TcpPeer, UnixPeer } from '../transport/native-io';
import { NodeState } from '../cluster/node-state';
import { PeerLinks } from '../cluster/peer-links';
import { Recoverd } from '../cluster/recoverd';
import { findOwnPnn } from '../cluster/own-node';
import { BanTimer } from '../cluster/ban';
import { LeaderClusterLock } from '../cluster/cluster-lock';
import { Client, ClientTable } from './client';
import { ControlRouter, isBroadcast } from './control-router';
import type { ControlReply, ControlRequest, RouterHost } from './control-router';
import { SrvidTable } from './srvid-table';
import type { Subscriber } from './srvid-table';
import { StatisticsCollector, updateLatency } from './statistics';
import type { LiveState } from './statistics';
import { dispatchControl } from './controls';
import { vacuumingOf } from './controls/vacuum';
import { trans3Commits } from './controls/persistent';
import { createPidFile } from './pidfile';
import { DatabaseRegistry } from '../database/registry';
import { buildLtdbRecord } from '../store';
import { RecordLocks } from '../database/record-lock';
import { MigrationEngine } from '../database/migration';
import type { CallOutcome } from '../database/migration';
import { LockScheduler, processLockHelperLauncher } from '../locks';
import type { PidFile } from './pidfile';

export interface DaemonOptions {
  interactive: boolean;
  env: NodeJS.ProcessEnv;
}

export interface RunningDaemon {
  readonly pid: number;
  /** Resolves with the exit code once the daemon has shut down. */
  stopped: Promise<number>;
  /** Graceful stop (SIGTERM, SIGINT). */
  shutdown(reason: string): void;
  /** SIGHUP: reopen the log file after rotation. */
  reopenLogs(): void;
}

const EMPTY = Buffer.alloc(0);
const RECORD_COUNTERS = {
  [Operation.REQ_CALL]: 'reqCall',
  [Operation.REPLY_CALL]: 'replyCall',
  [Operation.REQ_DMASTER]: 'reqDmaster',
  [Operation.REPLY_DMASTER]: 'replyDmaster',
  [Operation.REPLY_ERROR]: 'replyError',
} as const;
/** What `ctdb version` of the matching tool prints; peers and logs see the same. */
const CTDB_VERSION_STRING = '4.17.12-Debian';

export class Daemon implements RouterHost {
  readonly startTime = process.hrtime.bigint();
  readonly startedAt = timevalNow();
  readonly clients = new ClientTable();
  readonly srvids = new SrvidTable();
  readonly router: ControlRouter;
  readonly stats = new StatisticsCollector();
  readonly state: NodeState;
  readonly peers: PeerLinks;
  readonly recoverd: Recoverd;
  readonly io: NativeIo;
  readonly ban: BanTimer;
  readonly databases: DatabaseRegistry;
  readonly lockScheduler: LockScheduler;
  readonly migration: MigrationEngine;
  lastRecoveryStarted: Timeval = ZERO_TIMEVAL;
  lastRecoveryFinished: Timeval = ZERO_TIMEVAL;
  #socketListener: number | null = null;
  #keepaliveTimer: NodeJS.Timeout | null = null;
  #startupTimer: NodeJS.Timeout | null = null;
  #statTimer: NodeJS.Timeout | null = null;
  #pidFile: PidFile | null = null;
  #stopping = false;
  #resolveStopped!: (code: number) => void;
  readonly stopped = new Promise<number>((resolve) => (this.#resolveStopped = resolve));

  constructor(
    readonly paths: CtdbPaths,
    readonly config: CtdbConfig,
    readonly logger: Logger,
    readonly tunables: Tunables,
    nodes: ReturnType<typeof loadNodesFile>,
    readonly pnn: number,
  ) {
    let caps = Capability.PARALLEL_RECOVERY | Capability.FRAGMENTED_CONTROLS;
    if (config.cluster.leaderCapability) caps |= Capability.RECMASTER;
    if (config.legacy.lmasterCapability) caps |= Capability.LMASTER;
    this.state = new NodeState(nodes, pnn, caps, Pnn.UNKNOWN);
    if (config.legacy.startAsStopped) this.state.self.flags |= NodeFlag.STOPPED;
    if (config.legacy.startAsDisabled) this.state.self.flags |= NodeFlag.PERMANENTLY_DISABLED;
    this.router = new ControlRouter(this);
    this.databases = new DatabaseRegistry({
      pnn,
      volatileDir: config.database.volatileDbDir,
      persistentDir: config.database.persistentDbDir,
      mutexes: config.database.tdbMutexes,
      hashSize: () => this.tunables.values.DatabaseHashSize,
    });
    this.lockScheduler = new LockScheduler({
      launcher: processLockHelperLauncher(),
      helpersPerDatabase: tunables.values.LockProcessesPerDB,
      log: logger,
    });
    this.migration = new MigrationEngine({
      pnn,
      logger,
      databases: this.databases,
      locks: new RecordLocks(this.lockScheduler, logger),
      statistics: () => this.stats.counters,
      vnnMap: () => this.state.vnnMap,
      sendToNode: (dest, packet) => this.state.isConnected(dest) && this.sendToPeer(dest, packet),
      banned: () => (this.state.self.flags & NodeFlag.BANNED) !== 0,
      tunables: () => this.tunables.values,
      updateRecord: async (dest, db, key, header, data) => {
        const reply = await this.router.send(dest, {
          opcode: ControlCode.UPDATE_RECORD,
          srvid: 0n,
          flags: 0,
          clientId: 0,
          srcnode: this.pnn,
          data: encodeControlRequest(ControlCode.UPDATE_RECORD, { dbId: db.id, records: [{ reqid: 0, key, data: buildLtdbRecord(header, data) }] }),
        });
        return reply.status === 0;
      },
      forceRecovery: (reason) => {
        this.logger.error(`${reason}: forcing a recovery`);
        this.state.recMode = RecMode.ACTIVE;
      },
      deletions: vacuumingOf(this),
    });
    this.io = new NativeIo({
      packets: (conns, packets) => this.#onPackets(conns, packets),
      accepted: (listener, conn, peer) => this.#onAccepted(listener, conn, peer),
      connected: (conn, error) => this.peers.connected(conn, error),
      closed: (conn, reason) => this.#onClosed(conn, reason),
    });
    const self = this.state.self;
    this.peers = new PeerLinks(
      this.io,
      self.address,
      this.state.nodes.filter((n) => n.pnn !== pnn && !n.deleted).map((n) => ({ pnn: n.pnn, address: n.address })),
      {
        peerUp: (p) => this.#peerUp(p),
        peerDown: (p, reason) => this.#peerDown(p, reason),
        packet: (p, packet) => this.#onPeerPacket(p, packet),
        log: (level, msg) => this.logger[level](msg),
      },
    );
    const recdLog = logger.child('ctdb-recoverd');
    this.recoverd = new Recoverd(
      this,
      recdLog,
      new LeaderClusterLock(
        config.cluster.clusterLock,
        recdLog,
        () => this.recoverd.election.lostClusterLock(),
        (seconds) => updateLatency(this.stats.counters.reclock.recd, seconds),
      ),
    );
    this.ban = new BanTimer(
      (banned, seconds) => {
        this.logger.error(banned ? `Banning this node for ${seconds} seconds` : 'Unbanning this node');
        const flags = this.state.self.flags;
        this.setOwnFlags(banned ? flags | NodeFlag.BANNED : flags & ~NodeFlag.BANNED);
      },
      () => this.tunables.values.EnableBans !== 0,
    );
  }

  // ---- RouterHost -------------------------------------------------------------------

  generation(): number {
    return this.state.vnnMap.generation;
  }

  broadcastTargets(destnode: number): number[] {
    const nodes = this.state.nodes.filter((n) => !n.deleted);
    switch (destnode) {
      case Pnn.BROADCAST_ACTIVE:
        return nodes.filter((n) => this.state.isActive(n.pnn)).map((n) => n.pnn);
      case Pnn.BROADCAST_CONNECTED:
        return nodes.filter((n) => this.state.isConnected(n.pnn)).map((n) => n.pnn);
      default:
        return nodes.map((n) => n.pnn);
    }
  }

  isConnected(pnn: number): boolean {
    return this.state.isConnected(pnn);
  }

  isValidPnn(pnn: number): boolean {
    return this.state.node(pnn) !== undefined;
  }

  sendToPeer(pnn: number, packet: Buffer): boolean {
    const ok = this.peers.send(pnn, packet);
    if (ok) this.stats.counters.nodePacketsSent++;
    return ok;
  }

  dispatchLocal(req: ControlRequest): Promise<ControlReply> {
    return dispatchControl(this, req, req.clientId === 0 ? undefined : this.clients.byId(req.clientId));
  }

  controlTimeoutMs(): number {
    return this.tunables.values.ControlTimeout * 1000;
  }

  // ---- lifecycle ----------------------------------------------------------------------

  async start(): Promise<void> {
    this.logger.notice(`Starting CTDBD (Version ${CTDB_VERSION_STRING}) as PID: ${process.pid}`);
    fs.mkdirSync(path.dirname(this.paths.pidFile), { recursive: true });
    this.#pidFile = createPidFile(this.paths.pidFile);
    this.logger.notice(`Created PID file ${this.paths.pidFile}`);
    fs.mkdirSync(path.dirname(this.paths.socket), { recursive: true });
    this.#socketListener = this.io.listenUnix(this.paths.socket, 0o700);
    this.logger.notice(`Listening to ctdb socket ${this.paths.socket}`);
    this.setRunstate(Runstate.INIT);
    this.logger.notice(`PNN is ${this.pnn}`);
    for (const db of this.databases.attachPersistentFiles()) this.logger.notice(`Attached to persistent database ${db.path}`);
    this.peers.start();
    this.setRunstate(Runstate.SETUP);
    this.#scheduleKeepalive();
    this.#scheduleStatHistory();
    this.recoverd.start();
    this.setRunstate(Runstate.FIRST_RECOVERY);
  }

  /** Stops everything; safe to call more than once. */
  shutdown(reason: string, code = 0): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.logger.notice(`Shutting down: ${reason}`);
    this.setRunstate(Runstate.SHUTDOWN);
    this.recoverd.stop();
    this.ban.stop();
    if (this.#startupTimer !== null) clearTimeout(this.#startupTimer);
    if (this.#keepaliveTimer !== null) clearTimeout(this.#keepaliveTimer);
    if (this.#statTimer !== null) clearTimeout(this.#statTimer);
    this.peers.stop();
    // Clients see the socket close: the tool's `ctdb shutdown` waits for exactly that.
    for (const client of [...this.clients.all()]) this.#dropClient(client, null);
    // Like ctdbd, the socket file stays behind: clients then see ECONNREFUSED.
    if (this.#socketListener !== null) this.io.closeListener(this.#socketListener);
    vacuumingOf(this).stop();
    this.lockScheduler.close();
    this.databases.closeAll();
    this.#pidFile?.remove();
    this.logger.notice('CTDB daemon shutting down');
    this.#resolveStopped(code);
  }

  setRunstate(runstate: Runstate): void {
    if (this.state.runstate === runstate) return;
    this.logger.notice(`Set runstate to ${Runstate[runstate]} (${runstate})`);
    this.state.runstate = runstate;
  }

  /** Changes this node's own flags and tells every connected node. */
  setOwnFlags(flags: number): void {
    const old = this.state.setFlags(this.pnn, flags);
    if (old === flags) return;
    this.logger.notice(`Node flags changed from 0x${old.toString(16)} to 0x${flags.toString(16)}`);
    this.recoverd.ownFlagsChanged(old, flags);
  }

  /**
   * Flags another node reports for itself. Our own flags are ours, DISCONNECTED is
   * what our own transport sees, and news about a disconnected node is stale.
   */
  applyPeerFlags(pnn: number, reported: number): void {
    const node = this.state.node(pnn);
    if (pnn === this.pnn || node === undefined || (node.flags & NodeFlag.DISCONNECTED) !== 0) return;
    const flags = (reported & ~NodeFlag.DISCONNECTED) | (node.flags & NodeFlag.DISCONNECTED);
    const old = this.state.setFlags(pnn, flags);
    if (old === flags) return;
    this.logger.notice(`Node ${pnn} has changed flags - 0x${old.toString(16)} -> 0x${flags.toString(16)}`);
    if (((old ^ flags) & NodeFlag.INACTIVE) !== 0) this.recoverd.requestRecovery();
  }

  /** RELOAD_NODES_FILE: re-read the nodes file and connect to new nodes. */
  reloadNodes(): void {
    const { added, removed } = this.state.reload(loadNodesFile(this.paths.nodesFile));
    for (const node of removed) {
      this.logger.notice(`Node ${node.pnn} (${node.address}) removed by nodes file reload`);
      this.peers.removePeer(node.pnn);
    }
    for (const node of added) {
      if (node.pnn === this.pnn) continue;
      this.logger.notice(`Node ${node.pnn} (${node.address}) added by nodes file reload`);
      this.peers.addPeer({ pnn: node.pnn, address: node.address });
    }
  }

  /** END_RECOVERY: the first recovery moves the node on to startup and then to RUNNING. */
  recoveryEnded(): void {
    trans3Commits(this).recoveryEnded();
    this.lastRecoveryFinished = timevalNow();
    if (this.state.runstate !== Runstate.FIRST_RECOVERY) return;
    this.setRunstate(Runstate.STARTUP);
    // Event scripts are not run yet: startup and the first monitor pass succeed at once.
    this.#startupTimer = setTimeout(() => {
      this.#startupTimer = null;
      if (this.state.runstate !== Runstate.STARTUP) return;
      this.setRunstate(Runstate.RUNNING);
      this.setOwnFlags(this.state.self.flags & ~NodeFlag.UNHEALTHY);
    }, 0);
  }

  liveState(): LiveState {
    return { numClients: this.clients.size, recovering: this.state.recMode === RecMode.ACTIVE, frozen: false };
  }

  disconnectClient(client: Client): void {
    this.#dropClient(client, null);
  }

  uptimeSeconds(): number {
    return Number((process.hrtime.bigint() - this.startTime) / 1_000_000_000n);
  }

  // ---- messages ---------------------------------------------------------------------

  /** Sends a message from this daemon (srcnode = own pnn). */
  sendMessage(destnode: number, srvid: bigint, data: Buffer): void {
    const packet = encodePacket({
      header: this.header(Operation.REQ_MESSAGE, destnode, 0),
      srvid,
      data,
    });
    this.#routeMessage(destnode, packet, srvid, data, this.pnn);
  }

  /** A message from this daemon to one subscriber only. */
  sendMessageTo(sub: Subscriber, srvid: bigint, data: Buffer): void {
    const packet = encodePacket({ header: this.header(Operation.REQ_MESSAGE, this.pnn, 0), srvid, data });
    sub.deliver(srvid, packet, data, this.pnn);
  }

  /** Registers an in-daemon subscriber (the recovery master's srvids). */
  subscribe(srvid: bigint, sub: Subscriber): void {
    this.srvids.register(srvid, sub);
  }

  header<Op extends Operation>(operation: Op, destnode: number, reqid: number) {
    return makeHeader(operation, { destnode, srcnode: this.pnn, reqid, generation: this.state.vnnMap.generation });
  }

  /** `srcnode` is what the packet's header says (the sender subscribers are told about). */
  #routeMessage(destnode: number, packet: Buffer, srvid: bigint, data: Buffer, srcnode: number): void {
    if (destnode === Pnn.CURRENT_NODE) destnode = this.pnn;
    const targets = isBroadcast(destnode) ? this.broadcastTargets(destnode) : [destnode];
    for (const pnn of targets) {
      // Each copy names its own destination, as ctdbd rewrites destnode per node.
      const copy = targets.length === 1 && pnn === destnode ? packet : Buffer.from(packet);
      writeHeaderFields(copy, { destnode: pnn });
      if (pnn === this.pnn) this.#deliverLocal(srvid, copy, data, srcnode);
      else if (this.state.isConnected(pnn)) this.sendToPeer(pnn, copy);
    }
  }

  #deliverLocal(srvid: bigint, packet: Buffer, data: Buffer, srcnode: number): void {
    for (const sub of this.srvids.subscribers(srvid)) sub.deliver(srvid, packet, data, srcnode);
    if (srvid !== Srvid.ALL) {
      for (const sub of this.srvids.subscribers(Srvid.ALL)) sub.deliver(srvid, packet, data, srcnode);
    }
  }

  // ---- I/O events ----------------------------------------------------------------------

  #onAccepted(listener: number, conn: number, peer: UnixPeer | TcpPeer): void {
    if (this.peers.isListener(listener)) {
      this.peers.accepted(conn, peer as TcpPeer);
      return;
    }
    if (this.#stopping) {
      this.io.close(conn);
      return;
    }
    this.clients.add(conn, (peer as UnixPeer).pid, this.io);
  }

  #onClosed(conn: number, reason: string): void {
    if (this.peers.owns(conn)) {
      this.peers.closed(conn, reason);
      return;
    }
    const client = this.clients.byConn(conn);
    if (client !== undefined) this.#dropClient(client, reason);
  }

  #onPackets(conns: Uint32Array, packets: Buffer[]): void {
    for (let i = 0; i < packets.length; i++) {
      const conn = conns[i];
      if (this.peers.owns(conn)) {
        this.peers.packets(conn, packets[i]);
        continue;
      }
      const client = this.clients.byConn(conn);
      if (client !== undefined) this.#onClientPacket(client, packets[i]);
    }
  }

  #dropClient(client: Client, reason: string | null): void {
    trans3Commits(this).clientGone(client.id);
    this.srvids.deregisterAll(client.srvids, client);
    client.srvids.length = 0;
    this.clients.remove(client);
    if (reason === null) this.io.close(client.conn);
    else this.logger.debug(`Client pid ${client.pid} disconnected: ${reason}`);
  }

  /** Decodes a packet; a malformed one is logged once (with what happens next) and yields null. */
  #decode(buf: Buffer, from: string, consequence: string): Packet | null {
    try {
      return decodePacket(buf);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.logger.error(`${from}: ${err.message}; ${consequence}`);
      return null;
    }
  }

  /** REPLY_CONTROL for a request, from `srcnode` (the node that executed it). */
  #controlReply(req: ReqControl, srcnode: number, r: ControlReply): Buffer {
    return encodePacket({
      header: { ...this.header(Operation.REPLY_CONTROL, req.header.srcnode, req.header.reqid), srcnode },
      status: r.status,
      data: r.status < 0 ? EMPTY : r.data,
      errorMessage: r.errorMessage,
    });
  }

  #onClientPacket(client: Client, buf: Buffer): void {
    this.stats.counters.clientPacketsRecv++;
    const packet = this.#decode(buf, `Client pid ${client.pid}`, 'closing its connection');
    if (packet === null) {
      this.#dropClient(client, null);
      return;
    }
    switch (packet.header.operation) {
      case Operation.REQ_CONTROL:
        this.stats.counters.client.reqControl++;
        this.#clientControl(client, packet as ReqControl);
        return;
      case Operation.REQ_MESSAGE: {
        this.stats.counters.client.reqMessage++;
        const msg = packet as ReqMessage;
        const destnode = msg.header.destnode === Pnn.CURRENT_NODE ? this.pnn : msg.header.destnode;
        // Locally the client's own header travels on; to other nodes the message is ours
        // (rewritten in place: the packet's bytes are this packet's alone).
        const out = padded(buf);
        const remote = destnode !== this.pnn;
        if (remote) writeHeaderFields(out, { srcnode: this.pnn, generation: this.generation(), reqid: 0 });
        this.#routeMessage(destnode, out, msg.srvid, msg.data, remote ? this.pnn : msg.header.srcnode);
        return;
      }
      case Operation.REQ_CALL:
        this.stats.counters.client.reqCall++;
        this.migration.clientCall(packet as ReqCall, (outcome) => this.#replyCall(client, packet.header, outcome));
        return;
      default:
        this.logger.error(`Client pid ${client.pid}: unsupported operation ${packet.header.operation}; closing its connection`);
        this.#dropClient(client, null);
    }
  }

  #clientControl(client: Client, req: ReqControl): void {
    const destnode = req.header.destnode === Pnn.CURRENT_NODE ? this.pnn : req.header.destnode;
    const reply = this.router.send(destnode, {
      opcode: req.opcode,
      srvid: req.srvid,
      flags: req.flags,
      clientId: client.id,
      srcnode: req.header.srcnode,
      data: req.data,
    });
    if ((req.flags & ControlFlag.NOREPLY) !== 0) return;
    void reply.then((r) => {
      if (this.clients.byConn(client.conn) !== client) return;
      client.send(this.#controlReply(req, destnode, r));
      this.stats.counters.clientPacketsSent++;
    });
  }

  /** The end of a client's call; a client that has gone away meanwhile gets nothing. */
  #replyCall(client: Client, request: Header, outcome: CallOutcome): void {
    if (this.clients.byConn(client.conn) !== client) return;
    const header = { destnode: request.srcnode, reqid: request.reqid };
    const packet =
      'error' in outcome
        ? encodePacket({ header: this.header(Operation.REPLY_ERROR, header.destnode, header.reqid), status: -1, msg: Buffer.from(`${outcome.error}\0`) })
        : encodePacket({ header: this.header(Operation.REPLY_CALL, header.destnode, header.reqid), status: outcome.status, data: outcome.data });
    client.send(packet);
    this.stats.counters.clientPacketsSent++;
  }

  // ---- peers ----------------------------------------------------------------------------

  #peerUp(pnn: number): void {
    const node = this.state.nodes[pnn];
    this.state.setFlags(pnn, node.flags & ~NodeFlag.DISCONNECTED);
    this.logger.notice(`Node ${pnn} is now connected`);
    this.recoverd.peerConnected(pnn);
  }

  #peerDown(pnn: number, reason: string): void {
    const node = this.state.nodes[pnn];
    if ((node.flags & NodeFlag.DISCONNECTED) !== 0) return;
    this.state.setFlags(pnn, node.flags | NodeFlag.DISCONNECTED | NodeFlag.UNHEALTHY);
    this.logger.notice(`Node ${pnn} is now disconnected: ${reason}`);
    this.router.failPendingFor(pnn);
    this.recoverd.peerDisconnected(pnn);
  }

  #onPeerPacket(pnn: number, buf: Buffer): void {
    this.stats.counters.nodePacketsRecv++;
    const packet = this.#decode(buf, `Node ${pnn}`, 'dropping the packet');
    if (packet === null) return;
    switch (packet.header.operation) {
      case Operation.REQ_CONTROL: {
        this.stats.counters.node.reqControl++;
        const req = packet as ReqControl;
        const reply = this.dispatchLocal({
          opcode: req.opcode,
          srvid: req.srvid,
          flags: req.flags,
          clientId: 0,
          srcnode: req.header.srcnode,
          data: req.data,
        });
        if ((req.flags & ControlFlag.NOREPLY) !== 0) return;
        void reply.then((r) => this.sendToPeer(req.header.srcnode, this.#controlReply(req, this.pnn, r)));
        return;
      }
      case Operation.REPLY_CONTROL:
        this.stats.counters.node.replyControl++;
        this.router.handleReply(packet as ReplyControl);
        return;
      case Operation.REQ_MESSAGE: {
        this.stats.counters.node.reqMessage++;
        const msg = packet as ReqMessage;
        this.#deliverLocal(msg.srvid, buf, msg.data, msg.header.srcnode);
        return;
      }
      case Operation.REQ_KEEPALIVE:
        this.stats.counters.keepalivePacketsRecv++;
        return;
      case Operation.REQ_CALL:
      case Operation.REPLY_CALL:
      case Operation.REQ_DMASTER:
      case Operation.REPLY_DMASTER:
      case Operation.REPLY_ERROR:
        this.stats.counters.node[RECORD_COUNTERS[packet.header.operation]]++;
        this.migration.nodePacket(packet as ReqCall | ReplyCall | ReqDmaster | ReplyDmaster | ReplyError);
        return;
      default:
        this.logger.debug(`Node ${pnn}: operation ${packet.header.operation} not handled yet`);
    }
  }

  #scheduleStatHistory(): void {
    const intervalMs = Math.max(1, this.tunables.values.StatHistoryInterval) * 1000;
    this.#statTimer = setTimeout(() => {
      this.stats.rotate(this.liveState());
      this.#scheduleStatHistory();
    }, intervalMs);
  }

  #scheduleKeepalive(): void {
    const intervalMs = Math.max(1, this.tunables.values.KeepaliveInterval) * 1000;
    this.#keepaliveTimer = setTimeout(() => {
      for (const pnn of this.peers.connectedPnns()) {
        const packet = encodePacket({
          header: this.header(Operation.REQ_KEEPALIVE, pnn, 0),
          version: KEEPALIVE_VERSION,
          uptime: this.uptimeSeconds(),
        });
        if (this.sendToPeer(pnn, packet)) this.stats.counters.keepalivePacketsSent++;
      }
      for (const pnn of this.peers.tick(this.tunables.values.KeepaliveLimit)) {
        this.logger.notice(`Keepalive: node ${pnn} has been silent for too long, disconnecting it`);
      }
      this.#scheduleKeepalive();
    }, intervalMs);
  }
}

/** Daemon output is always padded to 8 with the padded size in `length`. */
function padded(buf: Buffer): Buffer {
  if (buf.length % 8 === 0) return buf;
  const out = Buffer.alloc((buf.length + 7) & ~7);
  buf.copy(out);
  out.writeUInt32LE(out.length, 0);
  return out;
}

/** Reads configuration, builds the daemon and starts serving. */
export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const paths = resolvePaths(options.env);
  const warnings: string[] = [];
  const config = loadCtdbConfig(paths, { warn: (msg: string) => warnings.push(msg) });
  const logger = createLogger({
    location: config.logging.location,
    level: config.logging.level,
    program: 'ctdbd',
    interactive: options.interactive,
    env: options.env,
  });
  for (const w of warnings) logger.warning(w);
  const tunables = new Tunables();
  tunables.loadFile(paths.tunablesFile, (msg) => logger.error(msg));
  const nodes = loadNodesFile(paths.nodesFile);
  const pnn = findOwnPnn(nodes, config.cluster.nodeAddress);
  const daemon = new Daemon(paths, config, logger, tunables, nodes, pnn);
  await daemon.start();
  return {
    pid: process.pid,
    stopped: daemon.stopped,
    shutdown: (reason) => daemon.shutdown(reason),
    reopenLogs: () => logger.reopen(),
  };
}

