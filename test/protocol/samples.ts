// One table of sample values for every codec (primitives and payload structs), shared by the
// round-trip, truncation, fuzz and control-table tests.
import {
  type Codec,
  type LatencyCounter,
  type LockStatistics,
  type Statistics,
  TUNABLE_LIST_FIELDS,
  type TunableList,
  addrInfoCodec,
  banStateCodec,
  bool,
  bytes,
  chararray,
  connectionCodec,
  dbIdPaddedCodec,
  dbidCodec,
  dbidMapCodec,
  dbStatisticsCodec,
  dbVacuumCodec,
  disableMessageCodec,
  double,
  echoDataCodec,
  electionMessageCodec,
  i32,
  ifaceCodec,
  ifaceListCodec,
  latencyCounterCodec,
  ltdbHeaderCodec,
  ltdbRecordCodec,
  nodeAndFlagsCodec,
  nodeFlagChangeCodec,
  nodeMapCodec,
  notifyDataCodec,
  pid,
  pidSrvidCodec,
  publicIpCodec,
  publicIpInfoCodec,
  publicIpListCodec,
  pulldbExtCodec,
  recBufferCodec,
  recDataCodec,
  recordsDigestCodec,
  restBytes,
  scheduleForDeletionCodec,
  serverIdCodec,
  sizedBytes,
  sockAddrCodec,
  srvidMessageCodec,
  statisticsCodec,
  statisticsListCodec,
  string,
  stringn,
  text,
  tickleListCodec,
  timeval,
  transdbCodec,
  traverseAllCodec,
  traverseAllExtCodec,
  traverseStartCodec,
  traverseStartExtCodec,
  tunableCodec,
  tunableListCodec,
  u16,
  u32,
  u64,
  u8,
  uptimeCodec,
  varListCodec,
  vnnMapCodec,
} from '../../src/protocol';

export interface CodecSamples {
  name: string;
  codec: Codec<unknown>;
  samples: unknown[];
  /** The last field runs to the end of the payload, so a truncation is just a shorter valid value. */
  runsToEnd?: true;
}

function entry<T>(name: string, codec: Codec<T>, samples: T[], runsToEnd?: true): CodecSamples {
  return { name, codec, samples, ...(runsToEnd && { runsToEnd }) };
}

const ip4 = { family: 'ipv4', address: '127.0.77.1', port: 4379 } as const;
const ip6 = { family: 'ipv6', address: 'fd00::1:2', port: 445 } as const;
const ip6full = { family: 'ipv6', address: '2001:db8:0:1:2:3:4:5', port: 0 } as const;
const latency: LatencyCounter = { num: 3, min: 0.5, max: 2.25, total: 3.75 };
const seq = (n: number, from: number): number[] => Array.from({ length: n }, (_, i) => from + i);
const counters = <K extends string>(keys: readonly K[], from: number): Record<K, number> =>
  Object.fromEntries(keys.map((k, i) => [k, from + i])) as Record<K, number>;
const locks: LockStatistics = { numCalls: 1, numCurrent: 2, numPending: 3, numFailed: 4, latency, buckets: seq(16, 10) };

const statistics: Statistics = {
  ...counters(['numClients', 'frozen', 'recovering', 'clientPacketsSent', 'clientPacketsRecv', 'nodePacketsSent', 'nodePacketsRecv', 'keepalivePacketsSent', 'keepalivePacketsRecv'], 1),
  node: counters(['reqCall', 'replyCall', 'reqDmaster', 'replyDmaster', 'replyError', 'reqMessage', 'reqControl', 'replyControl', 'reqTunnel'], 20),
  client: counters(['reqCall', 'reqMessage', 'reqControl', 'reqTunnel'], 40),
  timeouts: counters(['call', 'control', 'traverse'], 50),
  reclock: { ctdbd: latency, recd: { num: 0, min: 0, max: 0, total: 0 } },
  locks,
  ...counters(['totalCalls', 'pendingCalls', 'childwriteCalls', 'pendingChildwriteCalls', 'memoryUsed', 'lastCounter', 'maxHopCount'], 60),
  hopCountBucket: seq(16, 70),
  callLatency: latency,
  childwriteLatency: latency,
  numRecoveries: 9,
  statisticsStartTime: { sec: 1_763_000_000, usec: 123_456 },
  statisticsCurrentTime: { sec: 1_763_000_100, usec: 999_999 },
  totalRoDelegations: 5,
  totalRoRevokes: 6,
};

const tunables = Object.fromEntries(TUNABLE_LIST_FIELDS.map((k, i) => [k, i * 7])) as TunableList;
const header = { rsn: 0x1_0000_0002n, dmaster: 1, reserved1: 0, flags: 0x10000 };
const record = { reqid: 7, key: Buffer.from('key'), data: Buffer.from('value bytes') };
const emptyRecord = { reqid: 0, key: Buffer.alloc(0), data: Buffer.alloc(0) };
const hotKey = (i: number): { count: number; key: Buffer; keyAddress: bigint } => ({ count: i, key: Buffer.from('k'.repeat(i)), keyAddress: BigInt(i) * 0x1000n });

export const CODEC_SAMPLES: CodecSamples[] = [
  entry('u8', u8, [0, 255]),
  entry('u16', u16, [0, 0xbeef]),
  entry('u32', u32, [0, 0xfffffffe]),
  entry('i32', i32, [-1, 0x7fffffff]),
  entry('u64', u64, [0n, 0xf101000000000000n]),
  entry('double', double, [0, -1.5, 1e300]),
  entry('bool', bool, [true, false]),
  entry('pid', pid, [1, 4_194_304]),
  entry('timeval', timeval, [{ sec: 0, usec: 0 }, { sec: 1_763_000_000, usec: 42 }]),
  entry('string', string, [null, '', '/var/lib/ctdb/volatile/test.tdb.0'], true),
  entry('text', text, [null, 'report\nlines'], true),
  entry('stringn', stringn, [null, '', 'RecoverInterval']),
  entry('chararray(18)', chararray(18), ['', 'eth0', '12345678901234567']),
  entry('bytes(3)', bytes(3), [Buffer.from([1, 2, 3])]),
  entry('restBytes', restBytes, [Buffer.alloc(0), Buffer.from('tail')], true),
  entry('sizedBytes', sizedBytes, [Buffer.alloc(0), Buffer.from('data')]),
  entry('db_id + pad', dbIdPaddedCodec, [0xc445c6ab]),
  entry('sock_addr', sockAddrCodec, [ip4, ip6, ip6full, { family: 'ipv6', address: '::', port: 1 }]),
  entry('ltdb_header', ltdbHeaderCodec, [header]),
  entry('ltdb record', ltdbRecordCodec, [{ header, value: Buffer.from('v') }, { header, value: Buffer.alloc(0) }], true),
  entry('vnn_map', vnnMapCodec, [{ generation: 1, map: [] }, { generation: 412131831, map: [0, 1, 2] }]),
  entry('dbid', dbidCodec, [{ dbId: 0xc445c6ab, flags: 0x1 }]),
  entry('dbid_map', dbidMapCodec, [[], [{ dbId: 1, flags: 0 }, { dbId: 2, flags: 0x8 }]]),
  entry('node_and_flags', nodeAndFlagsCodec, [{ pnn: 0, flags: 0x2, addr: ip4 }]),
  entry('node_map', nodeMapCodec, [[], [{ pnn: 0, flags: 0, addr: ip4 }, { pnn: 1, flags: 0x10, addr: { family: 'ipv4', address: '0.0.0.0', port: 0 } }]]),
  entry('public_ip', publicIpCodec, [{ pnn: 0xffffffff, addr: ip6 }]),
  entry('public_ip_list', publicIpListCodec, [[], [{ pnn: 0, addr: ip4 }, { pnn: 1, addr: ip6 }]]),
  entry('iface', ifaceCodec, [{ name: 'eth0', linkState: 1, references: 2 }]),
  entry('iface_list', ifaceListCodec, [[], [{ name: 'lo', linkState: 0, references: 0 }]]),
  entry('public_ip_info', publicIpInfoCodec, [
    { ip: { pnn: 0, addr: ip4 }, activeIdx: 0xffffffff, ifaces: [] },
    { ip: { pnn: 1, addr: ip6 }, activeIdx: 0, ifaces: [{ name: 'eth1', linkState: 1, references: 1 }] },
  ]),
  entry('connection', connectionCodec, [{ src: { ...ip4, port: 50000 }, dst: { ...ip4, port: 445 } }]),
  entry('tickle_list', tickleListCodec, [{ addr: ip4, connections: [] }, { addr: ip6, connections: [{ src: ip6, dst: ip6full }] }]),
  entry('addr_info', addrInfoCodec, [{ addr: ip4, mask: 24, iface: 'eth0,eth1' }, { addr: ip6, mask: 64, iface: null }]),
  entry('uptime', uptimeCodec, [
    {
      currentTime: { sec: 10, usec: 1 },
      ctdbdStartTime: { sec: 5, usec: 2 },
      lastRecoveryStarted: { sec: 6, usec: 3 },
      lastRecoveryFinished: { sec: 7, usec: 4 },
    },
  ]),
  entry('latency_counter', latencyCounterCodec, [latency]),
  entry('statistics', statisticsCodec, [statistics]),
  entry('statistics_list', statisticsListCodec, [[], [statistics, { ...statistics, numClients: 99 }]]),
  entry('tunable_list', tunableListCodec, [tunables]),
  entry('var_list', varListCodec, [[], ['MaxRedirectCount', 'SeqnumInterval']]),
  entry('tunable', tunableCodec, [{ value: 7, name: 'RecoverInterval' }, { value: 0, name: null }]),
  entry('traverse_start', traverseStartCodec, [{ dbId: 1, reqid: 2, srvid: 0xbe00000000001234n }]),
  entry('traverse_start_ext', traverseStartExtCodec, [{ dbId: 1, reqid: 2, srvid: 3n, withEmptyRecords: true }]),
  entry('traverse_all', traverseAllCodec, [{ dbId: 1, reqid: 2, pnn: 3, clientReqid: 4, srvid: 5n }]),
  entry('traverse_all_ext', traverseAllExtCodec, [{ dbId: 1, reqid: 2, pnn: 3, clientReqid: 4, srvid: 5n, withEmptyRecords: false }]),
  entry('rec_data', recDataCodec, [record, emptyRecord]),
  entry('rec_buffer', recBufferCodec, [{ dbId: 5, records: [] }, { dbId: 6, records: [record, emptyRecord, record] }]),
  entry('pulldb_ext', pulldbExtCodec, [{ dbId: 1, lmaster: 0xffffffff, srvid: 0xf001000000000001n }]),
  entry('transdb', transdbCodec, [{ dbId: 1, tid: 2 }]),
  entry('records_digest', recordsDigestCodec, [{ records: 100000, unusual: 0, digest: Buffer.alloc(32, 0xa5) }]),
  entry('ban_state', banStateCodec, [{ pnn: 1, time: 300 }]),
  entry('node_flag_change', nodeFlagChangeCodec, [{ pnn: 1, newFlags: 2, oldFlags: 3 }]),
  entry('pid_srvid', pidSrvidCodec, [{ pid: 1234, srvid: 0xfe00000000000002n }]),
  entry('schedule_for_deletion', scheduleForDeletionCodec, [{ dbId: 9, header, key: Buffer.from('key') }]),
  entry('notify_data', notifyDataCodec, [{ srvid: 1n, data: Buffer.from('bye') }]),
  entry('db_statistics', dbStatisticsCodec, [
    { locks, vacuumLatency: latency, roDelegations: 1, roRevokes: 2, hopCountBucket: seq(16, 0), numHotKeys: 10, hotKeys: seq(10, 0).map(hotKey) },
  ]),
  entry('election_message', electionMessageCodec, [{ numConnected: 2, priorityTime: { sec: 3, usec: 4 }, pnn: 1, nodeFlags: 0 }]),
  entry('srvid_message', srvidMessageCodec, [{ pnn: 0, srvid: 0xce01000000000000n }]),
  entry('disable_message', disableMessageCodec, [{ pnn: 0, srvid: 1n, timeout: 60 }]),
  entry('server_id', serverIdCodec, [{ pid: 1234n, taskId: 0, vnn: 1, uniqueId: 0xdeadbeefn }]),
  entry('db_vacuum', dbVacuumCodec, [{ dbId: 1, fullVacuumRun: true }]),
  entry('echo_data', echoDataCodec, [{ timeout: 100, data: Buffer.from('ping') }]),
];

/** The sample entry of a codec object used in the control table. */
export function samplesEntryFor(codec: Codec<unknown>): CodecSamples {
  const found = CODEC_SAMPLES.find((s) => s.codec === codec);
  if (found === undefined) throw new Error('no samples for a codec used by the control table');
  return found;
}

export const samplesFor = (codec: Codec<unknown>): unknown[] => samplesEntryFor(codec).samples;

/** Deterministic pseudo-random bytes (xorshift32). */
export function noise(length: number, seed: number): Buffer {
  let x = seed || 1;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
