// Control and message payload structs (ctdb/protocol/protocol_types.c), one declarative table each.
// Offsets follow the LP64 C structs; alignment gaps are explicit pad() entries.
import {
  type Codec,
  type Timeval,
  array,
  bool,
  bytes,
  chararray,
  decode,
  double,
  encode,
  fixedArray,
  i32,
  mapped,
  need,
  pad,
  pid,
  restBytes,
  sizedBytes,
  stringn,
  struct,
  timeval,
  u16,
  u32,
  u64,
  u8,
} from './codec';
import { ProtocolError } from './errors';
import { type SockAddr, sockAddrCodec } from './sockaddr';

export type { SockAddr, Timeval };
export { sockAddrCodec };

const MAX_COUNT_BUCKETS = 16;
const MAX_HOT_KEYS = 10;

/** A db_id followed by 4 pad bytes (GET_DB_SEQNUM request), held as the plain db_id. */
export const dbIdPaddedCodec: Codec<number> = mapped(
  struct<{ dbId: number }>('db_id', [['dbId', u32], pad(4)]),
  (v) => v.dbId,
  (dbId) => ({ dbId }),
);

export interface LtdbHeader {
  /** Record sequence number. */
  rsn: bigint;
  dmaster: number;
  reserved1: number;
  flags: number;
}
export const ltdbHeaderCodec = struct<LtdbHeader>('ctdb_ltdb_header', [['rsn', u64], ['dmaster', u32], ['reserved1', u32], ['flags', u32], pad(4)]);
export const LTDB_HEADER_SIZE = 24;
/** Where fields of the header sit, for code that reads or rewrites them in place. */
export const LTDB_DMASTER_OFFSET = 8;
export const LTDB_FLAGS_OFFSET = 16;

/** A record value as stored in a ctdb tdb and carried by traverses: ltdb header, then the value. */
export interface LtdbRecord {
  header: LtdbHeader;
  value: Buffer;
}
export const ltdbRecordCodec = struct<LtdbRecord>('ltdb record', [['header', ltdbHeaderCodec], ['value', restBytes]]);

export interface VnnMap {
  generation: number;
  /** lmaster pnn of each hash slot. */
  map: number[];
}
export const vnnMapCodec = struct<VnnMap>('ctdb_vnn_map', [['generation', u32], ['map', array('vnn map', u32, u32)]]);

export interface Dbid {
  dbId: number;
  /** DbFlag bits. */
  flags: number;
}
export const dbidCodec = struct<Dbid>('ctdb_dbid', [['dbId', u32], ['flags', u8], pad(3)]);
export type DbidMap = Dbid[];
export const dbidMapCodec: Codec<DbidMap> = array('ctdb_dbid_map', u32, dbidCodec);

export interface NodeAndFlags {
  pnn: number;
  /** NodeFlag bits. */
  flags: number;
  addr: SockAddr;
}
export const nodeAndFlagsCodec = struct<NodeAndFlags>('ctdb_node_and_flags', [['pnn', u32], ['flags', u32], ['addr', sockAddrCodec]]);
export type NodeMap = NodeAndFlags[];
export const nodeMapCodec: Codec<NodeMap> = array('ctdb_node_map', u32, nodeAndFlagsCodec);

export interface PublicIp {
  pnn: number;
  addr: SockAddr;
}
export const publicIpCodec = struct<PublicIp>('ctdb_public_ip', [['pnn', u32], ['addr', sockAddrCodec]]);
export type PublicIpList = PublicIp[];
export const publicIpListCodec: Codec<PublicIpList> = array('ctdb_public_ip_list', u32, publicIpCodec);

export interface Iface {
  /** At most 17 bytes (char[18], NUL-terminated). */
  name: string;
  /** 1 up, 0 down. */
  linkState: number;
  references: number;
}
export const ifaceCodec = struct<Iface>('ctdb_iface', [['name', chararray(18)], ['linkState', u16], ['references', u32]]);
export type IfaceList = Iface[];
export const ifaceListCodec: Codec<IfaceList> = array('ctdb_iface_list', u32, ifaceCodec);

export interface PublicIpInfo {
  ip: PublicIp;
  /** Index into `ifaces` of the active interface, 0xFFFFFFFF for none. */
  activeIdx: number;
  ifaces: IfaceList;
}
export const publicIpInfoCodec = struct<PublicIpInfo>('ctdb_public_ip_info', [['ip', publicIpCodec], ['activeIdx', u32], ['ifaces', ifaceListCodec]]);

export interface Connection {
  /** The client (remote peer) end. */
  src: SockAddr;
  /** The server end: the public IP. */
  dst: SockAddr;
}
export const connectionCodec = struct<Connection>('ctdb_connection', [['src', sockAddrCodec], ['dst', sockAddrCodec]]);

export interface TickleList {
  addr: SockAddr;
  connections: Connection[];
}
export const tickleListCodec = struct<TickleList>('ctdb_tickle_list', [['addr', sockAddrCodec], ['connections', array('tickle connections', u32, connectionCodec)]]);

export interface AddrInfo {
  addr: SockAddr;
  /** Prefix length. */
  mask: number;
  /** Comma-separated interface names, or null. */
  iface: string | null;
}
export const addrInfoCodec = struct<AddrInfo>('ctdb_addr_info', [['addr', sockAddrCodec], ['mask', u32], ['iface', stringn]]);

export interface Uptime {
  currentTime: Timeval;
  ctdbdStartTime: Timeval;
  lastRecoveryStarted: Timeval;
  lastRecoveryFinished: Timeval;
}
export const uptimeCodec = struct<Uptime>('ctdb_uptime', [
  ['currentTime', timeval],
  ['ctdbdStartTime', timeval],
  ['lastRecoveryStarted', timeval],
  ['lastRecoveryFinished', timeval],
]);

export interface LatencyCounter {
  num: number;
  min: number;
  max: number;
  total: number;
}
export const latencyCounterCodec = struct<LatencyCounter>('ctdb_latency_counter', [['num', i32], pad(4), ['min', double], ['max', double], ['total', double]]);

const buckets = fixedArray('buckets', MAX_COUNT_BUCKETS, u32);

export interface LockStatistics {
  numCalls: number;
  numCurrent: number;
  numPending: number;
  numFailed: number;
  latency: LatencyCounter;
  /** 16 latency buckets. */
  buckets: number[];
}
const lockStatisticsCodec = struct<LockStatistics>('locks', [
  ['numCalls', u32],
  ['numCurrent', u32],
  ['numPending', u32],
  ['numFailed', u32],
  ['latency', latencyCounterCodec],
  ['buckets', buckets],
]);

/** Builds a struct of u32 counters named in wire order. */
function counters<K extends string>(name: string, keys: readonly K[]): Codec<Record<K, number>> {
  return struct<Record<K, number>>(
    name,
    keys.map((k) => [k, u32] as const),
  );
}

const nodeCounterNames = ['reqCall', 'replyCall', 'reqDmaster', 'replyDmaster', 'replyError', 'reqMessage', 'reqControl', 'replyControl', 'reqTunnel'] as const;
const clientCounterNames = ['reqCall', 'reqMessage', 'reqControl', 'reqTunnel'] as const;
const timeoutCounterNames = ['call', 'control', 'traverse'] as const;

export interface Statistics {
  numClients: number;
  frozen: number;
  recovering: number;
  clientPacketsSent: number;
  clientPacketsRecv: number;
  nodePacketsSent: number;
  nodePacketsRecv: number;
  keepalivePacketsSent: number;
  keepalivePacketsRecv: number;
  node: Record<(typeof nodeCounterNames)[number], number>;
  client: Record<(typeof clientCounterNames)[number], number>;
  timeouts: Record<(typeof timeoutCounterNames)[number], number>;
  reclock: { ctdbd: LatencyCounter; recd: LatencyCounter };
  locks: LockStatistics;
  totalCalls: number;
  pendingCalls: number;
  childwriteCalls: number;
  pendingChildwriteCalls: number;
  memoryUsed: number;
  /** `__last_counter` in C: marks the end of the plain counters. */
  lastCounter: number;
  maxHopCount: number;
  /** 16 buckets. */
  hopCountBucket: number[];
  callLatency: LatencyCounter;
  childwriteLatency: LatencyCounter;
  numRecoveries: number;
  statisticsStartTime: Timeval;
  statisticsCurrentTime: Timeval;
  totalRoDelegations: number;
  totalRoRevokes: number;
}

/** struct ctdb_statistics, 488 bytes. */
export const statisticsCodec = struct<Statistics>('ctdb_statistics', [
  ['numClients', u32],
  ['frozen', u32],
  ['recovering', u32],
  ['clientPacketsSent', u32],
  ['clientPacketsRecv', u32],
  ['nodePacketsSent', u32],
  ['nodePacketsRecv', u32],
  ['keepalivePacketsSent', u32],
  ['keepalivePacketsRecv', u32],
  ['node', counters('node', nodeCounterNames)],
  ['client', counters('client', clientCounterNames)],
  ['timeouts', counters('timeouts', timeoutCounterNames)],
  pad(4),
  ['reclock', struct<Statistics['reclock']>('reclock', [['ctdbd', latencyCounterCodec], ['recd', latencyCounterCodec]])],
  ['locks', lockStatisticsCodec],
  ['totalCalls', u32],
  ['pendingCalls', u32],
  ['childwriteCalls', u32],
  ['pendingChildwriteCalls', u32],
  ['memoryUsed', u32],
  ['lastCounter', u32],
  ['maxHopCount', u32],
  ['hopCountBucket', buckets],
  pad(4),
  ['callLatency', latencyCounterCodec],
  ['childwriteLatency', latencyCounterCodec],
  ['numRecoveries', u32],
  pad(4),
  ['statisticsStartTime', timeval],
  ['statisticsCurrentTime', timeval],
  ['totalRoDelegations', u32],
  ['totalRoRevokes', u32],
]);
export const STATISTICS_SIZE = 488;

export type StatisticsList = Statistics[];
/** i32 count, 4 pad bytes, then the entries. */
export const statisticsListCodec: Codec<StatisticsList> = array('ctdb_statistics_list', i32, statisticsCodec, 4);

/** struct ctdb_tunable_list member names in wire order (62 u32). */
export const TUNABLE_LIST_FIELDS = [
  'maxRedirectCount',
  'seqnumInterval',
  'controlTimeout',
  'traverseTimeout',
  'keepaliveInterval',
  'keepaliveLimit',
  'recoverTimeout',
  'recoverInterval',
  'electionTimeout',
  'takeoverTimeout',
  'monitorInterval',
  'tickleUpdateInterval',
  'scriptTimeout',
  'monitorTimeoutCount',
  'scriptUnhealthyOnTimeout',
  'recoveryGracePeriod',
  'recoveryBanPeriod',
  'databaseHashSize',
  'databaseMaxDead',
  'rerecoveryTimeout',
  'enableBans',
  'deterministicPublicIps',
  'reclockPingPeriod',
  'noIpFailback',
  'disableIpFailover',
  'verboseMemoryNames',
  'recdPingTimeout',
  'recdPingFailcount',
  'logLatencyMs',
  'reclockLatencyMs',
  'recoveryDropAllIps',
  'verifyRecoveryLock',
  'vacuumInterval',
  'vacuumMaxRunTime',
  'repackLimit',
  'vacuumLimit',
  'maxQueueDepthDropMsg',
  'allowUnhealthyDbRead',
  'statHistoryInterval',
  'deferredAttachTimeout',
  'vacuumFastPathCount',
  'lcp2PublicIpAssignment',
  'allowClientDbAttach',
  'recoverPdbBySeqnum',
  'deferredRebalanceOnNodeAdd',
  'fetchCollapse',
  'hopcountMakeSticky',
  'stickyDuration',
  'stickyPindown',
  'noIpTakeover',
  'dbRecordCountWarn',
  'dbRecordSizeWarn',
  'dbSizeWarn',
  'pulldbPreallocationSize',
  'noIpHostOnAllDisabled',
  'samba3Hack',
  'mutexEnabled',
  'lockProcessesPerDb',
  'recBufferSizeLimit',
  'queueBufferSize',
  'ipAllocAlgorithm',
  'allowMixedVersions',
] as const;
export type TunableList = Record<(typeof TUNABLE_LIST_FIELDS)[number], number>;
export const tunableListCodec: Codec<TunableList> = counters('ctdb_tunable_list', TUNABLE_LIST_FIELDS);

/**
 * LIST_TUNABLES reply: u32 byte count, then the names joined by ':' with a NUL. The daemon's string
 * starts with ':' (ctdb_tunable_names_to_string); empty names are skipped on read (strtok).
 */
export type VarList = string[];
export const varListCodec: Codec<VarList> = mapped(
  struct<{ text: string | null }>('ctdb_var_list', [['text', stringn]]),
  (v) => (v.text ?? '').split(':').filter((name) => name !== ''),
  (names) => ({ text: `:${names.join(':')}` }),
);

/** SET_TUNABLE request. */
export interface Tunable {
  value: number;
  name: string | null;
}
export const tunableCodec = struct<Tunable>('ctdb_tunable', [['value', u32], ['name', stringn]]);

export interface TraverseStart {
  dbId: number;
  reqid: number;
  srvid: bigint;
}
export const traverseStartCodec = struct<TraverseStart>('ctdb_traverse_start', [['dbId', u32], ['reqid', u32], ['srvid', u64]]);

export interface TraverseStartExt extends TraverseStart {
  withEmptyRecords: boolean;
}
export const traverseStartExtCodec = struct<TraverseStartExt>('ctdb_traverse_start_ext', [
  ['dbId', u32],
  ['reqid', u32],
  ['srvid', u64],
  ['withEmptyRecords', bool],
  pad(7),
]);

export interface TraverseAll {
  dbId: number;
  reqid: number;
  pnn: number;
  clientReqid: number;
  srvid: bigint;
}
export const traverseAllCodec = struct<TraverseAll>('ctdb_traverse_all', [['dbId', u32], ['reqid', u32], ['pnn', u32], ['clientReqid', u32], ['srvid', u64]]);

export interface TraverseAllExt extends TraverseAll {
  withEmptyRecords: boolean;
}
export const traverseAllExtCodec = struct<TraverseAllExt>('ctdb_traverse_all_ext', [
  ['dbId', u32],
  ['reqid', u32],
  ['pnn', u32],
  ['clientReqid', u32],
  ['srvid', u64],
  ['withEmptyRecords', bool],
  pad(7),
]);

/**
 * One marshalled record: u32 total length (including itself), reqid, keylen, datalen, key, data.
 * When a record header travels with it, `data` is the 24-byte ltdb header followed by the value
 * (see ltdbRecordCodec).
 */
export interface RecData {
  reqid: number;
  key: Buffer;
  data: Buffer;
}
const REC_DATA_FIXED = 16;
export const recDataCodec: Codec<RecData> = {
  size: (v) => REC_DATA_FIXED + v.key.length + v.data.length,
  push(v, buf, off) {
    const len = REC_DATA_FIXED + v.key.length + v.data.length;
    buf.writeUInt32LE(len, off);
    buf.writeUInt32LE(v.reqid, off + 4);
    buf.writeUInt32LE(v.key.length, off + 8);
    buf.writeUInt32LE(v.data.length, off + 12);
    v.key.copy(buf, off + REC_DATA_FIXED);
    v.data.copy(buf, off + REC_DATA_FIXED + v.key.length);
    return len;
  },
  pull(buf, off, end) {
    need('ctdb_rec_data', REC_DATA_FIXED, off, end);
    const length = buf.readUInt32LE(off);
    if (length < REC_DATA_FIXED) throw new ProtocolError(`ctdb_rec_data: bad length ${length}`);
    need('ctdb_rec_data', length, off, end);
    const keylen = buf.readUInt32LE(off + 8);
    const datalen = buf.readUInt32LE(off + 12);
    const size = REC_DATA_FIXED + keylen + datalen;
    if (size > length) throw new ProtocolError(`ctdb_rec_data: key (${keylen}) and data (${datalen}) overflow record length ${length}`);
    const keyAt = off + REC_DATA_FIXED;
    return {
      value: { reqid: buf.readUInt32LE(off + 4), key: buf.subarray(keyAt, keyAt + keylen), data: buf.subarray(keyAt + keylen, keyAt + keylen + datalen) },
      size,
    };
  },
};

/** ctdb_rec_buffer / marshall buffer: db_id, u32 count, then the records back to back. */
export interface RecBuffer {
  dbId: number;
  records: RecData[];
}
export const recBufferCodec = struct<RecBuffer>('ctdb_rec_buffer', [['dbId', u32], ['records', array('records', u32, recDataCodec)]]);
export const encodeRecBuffer = (v: RecBuffer): Buffer => encode(recBufferCodec, v);
export const decodeRecBuffer = (buf: Buffer): RecBuffer => decode(recBufferCodec, buf, 'ctdb_rec_buffer');

export interface PulldbExt {
  dbId: number;
  /** LMASTER_ANY for all records. */
  lmaster: number;
  srvid: bigint;
}
export const pulldbExtCodec = struct<PulldbExt>('ctdb_pulldb_ext', [['dbId', u32], ['lmaster', u32], ['srvid', u64]]);

/** DB_DIGEST's reply (not CTDB's). */
export interface RecordsDigest {
  /** Records DB_PULL would send. */
  records: number;
  /** Of those, records a recovery's push would not leave as they are (see digestRecords). */
  unusual: number;
  /** SHA-256 of their rec_data, in DB_PULL's order. */
  digest: Buffer;
}
export const recordsDigestCodec = struct<RecordsDigest>('records_digest', [['records', u32], ['unusual', u32], ['digest', bytes(32)]]);

export interface Transdb {
  dbId: number;
  tid: number;
}
export const transdbCodec = struct<Transdb>('ctdb_transdb', [['dbId', u32], ['tid', u32]]);

export interface BanState {
  pnn: number;
  /** Seconds; 0 = unban. */
  time: number;
}
export const banStateCodec = struct<BanState>('ctdb_ban_state', [['pnn', u32], ['time', u32]]);

export interface NodeFlagChange {
  pnn: number;
  newFlags: number;
  oldFlags: number;
}
export const nodeFlagChangeCodec = struct<NodeFlagChange>('ctdb_node_flag_change', [['pnn', u32], ['newFlags', u32], ['oldFlags', u32]]);

/** CHECK_PID_SRVID request: 12 bytes, packed (no gap after the pid). */
export interface PidSrvid {
  pid: number;
  srvid: bigint;
}
export const pidSrvidCodec = struct<PidSrvid>('ctdb_pid_srvid', [['pid', pid], ['srvid', u64]]);

/** SCHEDULE_FOR_DELETION request (ctdb_key_data). */
export interface ScheduleForDeletion {
  dbId: number;
  header: LtdbHeader;
  key: Buffer;
}
export const scheduleForDeletionCodec = struct<ScheduleForDeletion>('ctdb_key_data', [['dbId', u32], pad(4), ['header', ltdbHeaderCodec], ['key', sizedBytes]]);

/** REGISTER_NOTIFY request. */
export interface NotifyData {
  srvid: bigint;
  data: Buffer;
}
export const notifyDataCodec = struct<NotifyData>('ctdb_notify_data', [['srvid', u64], ['data', sizedBytes]]);

export interface HotKey {
  count: number;
  key: Buffer;
  /** The sender's in-memory pointer that C puts on the wire; meaningless, kept for exact re-encoding. */
  keyAddress: bigint;
}

export interface DbStatistics {
  locks: LockStatistics;
  vacuumLatency: LatencyCounter;
  roDelegations: number;
  roRevokes: number;
  /** 16 buckets. */
  hopCountBucket: number[];
  /** As sent; the key table always has 10 slots. */
  numHotKeys: number;
  /** Exactly 10 slots (unused ones have count 0 and an empty key). */
  hotKeys: HotKey[];
}

interface HotKeySlot {
  count: number;
  keyAddress: bigint;
  keyLength: bigint;
}
interface DbStatisticsFixed extends Omit<DbStatistics, 'hotKeys'> {
  slots: HotKeySlot[];
}
const dbStatisticsFixedCodec = struct<DbStatisticsFixed>('ctdb_db_statistics', [
  ['locks', lockStatisticsCodec],
  ['vacuumLatency', latencyCounterCodec],
  ['roDelegations', u32],
  ['roRevokes', u32],
  ['hopCountBucket', buckets],
  ['numHotKeys', u32],
  pad(4),
  ['slots', fixedArray('hot keys', MAX_HOT_KEYS, struct<HotKeySlot>('hot key', [['count', u32], pad(4), ['keyAddress', u64], ['keyLength', u64]]))],
]);

/** struct ctdb_db_statistics: 464 fixed bytes (10 hot-key slots of {count, TDB_DATA}) then the key bytes. */
export const dbStatisticsCodec: Codec<DbStatistics> = {
  size: (v) => (dbStatisticsFixedCodec.fixedSize as number) + v.hotKeys.reduce((n, k) => n + k.key.length, 0),
  push(v, buf, off) {
    const { hotKeys, ...rest } = v;
    const slots = hotKeys.map((k) => ({ count: k.count, keyAddress: k.keyAddress, keyLength: BigInt(k.key.length) }));
    let at = off + dbStatisticsFixedCodec.push({ ...rest, slots }, buf, off);
    for (const k of hotKeys) at += k.key.copy(buf, at);
    return at - off;
  },
  pull(buf, off, end) {
    const fixedPart = dbStatisticsFixedCodec.pull(buf, off, end);
    const { slots, ...rest } = fixedPart.value;
    let at = off + fixedPart.size;
    const hotKeys = slots.map((s): HotKey => {
      if (s.keyLength > BigInt(end - at)) throw new ProtocolError(`truncated ctdb_db_statistics hot key: need ${s.keyLength} bytes, have ${end - at}`);
      const len = Number(s.keyLength);
      const key = buf.subarray(at, at + len);
      at += len;
      return { count: s.count, key, keyAddress: s.keyAddress };
    });
    return { value: { ...rest, hotKeys }, size: at - off };
  },
};

export interface ElectionMessage {
  numConnected: number;
  priorityTime: Timeval;
  pnn: number;
  nodeFlags: number;
}
export const electionMessageCodec = struct<ElectionMessage>('ctdb_election_message', [
  ['numConnected', u32],
  pad(4),
  ['priorityTime', timeval],
  ['pnn', u32],
  ['nodeFlags', u32],
]);

/** Reply address carried by MEM_DUMP / TAKEOVER_RUN messages (srvid 0 = no reply wanted). */
export interface SrvidMessage {
  pnn: number;
  srvid: bigint;
}
export const srvidMessageCodec = struct<SrvidMessage>('ctdb_srvid_message', [['pnn', u32], pad(4), ['srvid', u64]]);

export interface DisableMessage {
  pnn: number;
  srvid: bigint;
  /** Seconds; 0 re-enables. */
  timeout: number;
}
export const disableMessageCodec = struct<DisableMessage>('ctdb_disable_message', [['pnn', u32], pad(4), ['srvid', u64], ['timeout', u32], pad(4)]);

export interface ServerId {
  pid: bigint;
  taskId: number;
  vnn: number;
  uniqueId: bigint;
}
export const serverIdCodec = struct<ServerId>('ctdb_server_id', [['pid', u64], ['taskId', u32], ['vnn', u32], ['uniqueId', u64]]);

/** DB_VACUUM request: 5 bytes, no padding. */
export interface DbVacuum {
  dbId: number;
  fullVacuumRun: boolean;
}
export const dbVacuumCodec = struct<DbVacuum>('ctdb_db_vacuum', [['dbId', u32], ['fullVacuumRun', bool]]);

export interface EchoData {
  /** Milliseconds to wait before replying. */
  timeout: number;
  data: Buffer;
}
export const echoDataCodec = struct<EchoData>('ctdb_echo_data', [['timeout', u32], ['data', sizedBytes]]);
