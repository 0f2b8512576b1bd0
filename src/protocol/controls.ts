// The control table: for every 4.17 opcode, the payload codecs of its request and reply
// (ctdb/protocol/protocol_control.c) and how strictly ctdbd checks the request size
// (CHECK_CONTROL_DATA_SIZE in ctdb/server/ctdb_control.c).
import { type Codec, type ValueArg, decode, double, encode, i32, pid, string, stringn, text, u32, u64 } from './codec';
import { ControlCode } from './constants';
import { ProtocolError } from './errors';
import {
  addrInfoCodec,
  banStateCodec,
  connectionCodec,
  dbIdPaddedCodec,
  dbidMapCodec,
  dbStatisticsCodec,
  dbVacuumCodec,
  echoDataCodec,
  ifaceCodec,
  ifaceListCodec,
  nodeFlagChangeCodec,
  nodeMapCodec,
  notifyDataCodec,
  pidSrvidCodec,
  publicIpCodec,
  publicIpInfoCodec,
  publicIpListCodec,
  pulldbExtCodec,
  recBufferCodec,
  recDataCodec,
  recordsDigestCodec,
  scheduleForDeletionCodec,
  sockAddrCodec,
  statisticsCodec,
  statisticsListCodec,
  tickleListCodec,
  transdbCodec,
  traverseAllCodec,
  traverseAllExtCodec,
  traverseStartCodec,
  traverseStartExtCodec,
  tunableCodec,
  tunableListCodec,
  uptimeCodec,
  varListCodec,
  vnnMapCodec,
} from './types';

export interface ControlSpec<Req = unknown, Rep = unknown> {
  /** null = no payload. */
  request: Codec<Req> | null;
  /** null = no payload (the answer, if any, is in the status). */
  reply: Codec<Rep> | null;
  /** The answer travels in REPLY_CONTROL.status (GET_PNN, PING, PROCESS_EXISTS, SET_TUNABLE, …). */
  replyInStatus?: true;
  /** ctdbd answers "not implemented any more" (-1). */
  obsolete?: true;
  /** ctdbd rejects a request whose payload size is not exactly what it expects. */
  exactRequest?: true;
}

export interface ControlEntry<Req = unknown, Rep = unknown> extends ControlSpec<Req, Rep> {
  code: ControlCode;
  name: string;
}

type Flag = 'status' | 'exact';
type AnyCodec = Codec<unknown>;

/** One table row; the codec types flow into ControlRequests / ControlReplies. */
function spec<Req extends AnyCodec | null, Rep extends AnyCodec | null>(request: Req, reply: Rep, ...flags: Flag[]) {
  return {
    request,
    reply,
    ...(flags.includes('status') && { replyInStatus: true as const }),
    ...(flags.includes('exact') && { exactRequest: true as const }),
  };
}

const obsolete = { request: null, reply: null, obsolete: true as const };
/** No payload either way; ctdbd insists on an empty request. */
const emptyExact = spec(null, null, 'exact');
/** No payload either way; ctdbd ignores whatever the request carries. */
const empty = spec(null, null);
/** A u32 db_id request, size checked, no reply payload. */
const dbIdExact = spec(u32, null, 'exact');

const specs = {
  [ControlCode.PROCESS_EXISTS]: spec(pid, null, 'status', 'exact'),
  [ControlCode.STATISTICS]: spec(null, statisticsCodec, 'exact'),
  [ControlCode.PING]: spec(null, null, 'status', 'exact'),
  [ControlCode.GETDBPATH]: spec(u32, string, 'exact'),
  [ControlCode.GETVNNMAP]: spec(null, vnnMapCodec),
  [ControlCode.SETVNNMAP]: spec(vnnMapCodec, null),
  [ControlCode.GET_DEBUG]: spec(null, i32, 'exact'),
  [ControlCode.SET_DEBUG]: spec(i32, null, 'exact'),
  [ControlCode.GET_DBMAP]: spec(null, dbidMapCodec),
  [ControlCode.GET_NODEMAPv4]: obsolete,
  [ControlCode.SET_DMASTER]: obsolete,
  [ControlCode.PULL_DB]: obsolete,
  [ControlCode.PUSH_DB]: obsolete,
  [ControlCode.GET_RECMODE]: spec(null, null, 'status'),
  [ControlCode.SET_RECMODE]: spec(u32, null, 'exact'),
  [ControlCode.STATISTICS_RESET]: emptyExact,
  [ControlCode.DB_ATTACH]: spec(string, u32),
  [ControlCode.SET_CALL]: obsolete,
  [ControlCode.TRAVERSE_START]: spec(traverseStartCodec, null, 'exact'),
  [ControlCode.TRAVERSE_ALL]: spec(traverseAllCodec, null),
  [ControlCode.TRAVERSE_DATA]: spec(recDataCodec, null),
  [ControlCode.REGISTER_SRVID]: empty,
  [ControlCode.DEREGISTER_SRVID]: empty,
  [ControlCode.GET_DBNAME]: spec(u32, string, 'exact'),
  [ControlCode.ENABLE_SEQNUM]: dbIdExact,
  [ControlCode.UPDATE_SEQNUM]: dbIdExact,
  [ControlCode.DUMP_MEMORY]: spec(null, text, 'exact'),
  [ControlCode.GET_PID]: spec(null, null, 'status'),
  [ControlCode.GET_RECMASTER]: obsolete,
  [ControlCode.SET_RECMASTER]: obsolete,
  [ControlCode.FREEZE]: emptyExact,
  [ControlCode.THAW]: obsolete,
  [ControlCode.GET_PNN]: spec(null, null, 'status'),
  [ControlCode.SHUTDOWN]: empty,
  [ControlCode.GET_MONMODE]: obsolete,
  [ControlCode.TAKEOVER_IPv4]: obsolete,
  [ControlCode.RELEASE_IPv4]: obsolete,
  [ControlCode.TCP_CLIENT]: spec(connectionCodec, null, 'exact'),
  [ControlCode.TCP_ADD]: spec(connectionCodec, null, 'exact'),
  [ControlCode.TCP_REMOVE]: spec(connectionCodec, null, 'exact'),
  [ControlCode.STARTUP]: emptyExact,
  [ControlCode.SET_TUNABLE]: spec(tunableCodec, null, 'status'),
  [ControlCode.GET_TUNABLE]: spec(stringn, u32),
  [ControlCode.LIST_TUNABLES]: spec(null, varListCodec),
  [ControlCode.GET_PUBLIC_IPSv4]: obsolete,
  [ControlCode.MODIFY_FLAGS]: spec(nodeFlagChangeCodec, null, 'exact'),
  [ControlCode.GET_ALL_TUNABLES]: spec(null, tunableListCodec, 'exact'),
  [ControlCode.KILL_TCP]: obsolete,
  [ControlCode.GET_TCP_TICKLE_LIST]: spec(sockAddrCodec, tickleListCodec, 'exact'),
  [ControlCode.SET_TCP_TICKLE_LIST]: spec(tickleListCodec, null),
  [ControlCode.REGISTER_SERVER_ID]: obsolete,
  [ControlCode.UNREGISTER_SERVER_ID]: obsolete,
  [ControlCode.CHECK_SERVER_ID]: obsolete,
  [ControlCode.GET_SERVER_ID_LIST]: obsolete,
  [ControlCode.DB_ATTACH_PERSISTENT]: spec(string, u32),
  [ControlCode.PERSISTENT_STORE]: obsolete,
  [ControlCode.UPDATE_RECORD]: spec(recBufferCodec, null),
  [ControlCode.SEND_GRATUITOUS_ARP]: spec(addrInfoCodec, null),
  [ControlCode.TRANSACTION_START]: obsolete,
  [ControlCode.TRANSACTION_COMMIT]: obsolete,
  [ControlCode.WIPE_DATABASE]: spec(transdbCodec, null, 'exact'),
  [ControlCode.UPTIME]: spec(null, uptimeCodec),
  [ControlCode.START_RECOVERY]: empty,
  [ControlCode.END_RECOVERY]: empty,
  [ControlCode.RELOAD_NODES_FILE]: emptyExact,
  [ControlCode.TRY_DELETE_RECORDS]: spec(recBufferCodec, recBufferCodec),
  [ControlCode.ENABLE_MONITOR]: obsolete,
  [ControlCode.DISABLE_MONITOR]: obsolete,
  [ControlCode.ADD_PUBLIC_IP]: spec(addrInfoCodec, null),
  [ControlCode.DEL_PUBLIC_IP]: spec(addrInfoCodec, null),
  [ControlCode.RUN_EVENTSCRIPTS]: obsolete,
  [ControlCode.GET_CAPABILITIES]: spec(null, u32),
  [ControlCode.START_PERSISTENT_UPDATE]: obsolete,
  [ControlCode.CANCEL_PERSISTENT_UPDATE]: obsolete,
  [ControlCode.TRANS2_COMMIT]: obsolete,
  [ControlCode.TRANS2_FINISHED]: obsolete,
  [ControlCode.TRANS2_ERROR]: obsolete,
  [ControlCode.TRANS2_COMMIT_RETRY]: obsolete,
  [ControlCode.RECD_PING]: emptyExact,
  [ControlCode.RELEASE_IP]: spec(publicIpCodec, null, 'exact'),
  [ControlCode.TAKEOVER_IP]: spec(publicIpCodec, null, 'exact'),
  [ControlCode.GET_PUBLIC_IPS]: spec(null, publicIpListCodec, 'exact'),
  [ControlCode.GET_NODEMAP]: spec(null, nodeMapCodec),
  [ControlCode.GET_EVENT_SCRIPT_STATUS]: obsolete,
  [ControlCode.TRAVERSE_KILL]: spec(traverseStartCodec, null, 'exact'),
  [ControlCode.RECD_RECLOCK_LATENCY]: spec(double, null, 'exact'),
  [ControlCode.GET_RECLOCK_FILE]: spec(null, string, 'exact'),
  [ControlCode.SET_RECLOCK_FILE]: obsolete,
  [ControlCode.STOP_NODE]: emptyExact,
  [ControlCode.CONTINUE_NODE]: emptyExact,
  [ControlCode.SET_NATGWSTATE]: obsolete,
  [ControlCode.SET_LMASTERROLE]: spec(u32, null, 'exact'),
  [ControlCode.SET_RECMASTERROLE]: spec(u32, null, 'exact'),
  [ControlCode.ENABLE_SCRIPT]: obsolete,
  [ControlCode.DISABLE_SCRIPT]: obsolete,
  [ControlCode.SET_BAN_STATE]: spec(banStateCodec, null, 'exact'),
  [ControlCode.GET_BAN_STATE]: spec(null, banStateCodec, 'exact'),
  [ControlCode.SET_DB_PRIORITY]: obsolete,
  [ControlCode.GET_DB_PRIORITY]: obsolete,
  [ControlCode.TRANSACTION_CANCEL]: obsolete,
  [ControlCode.REGISTER_NOTIFY]: spec(notifyDataCodec, null),
  [ControlCode.DEREGISTER_NOTIFY]: spec(u64, null, 'exact'),
  [ControlCode.TRANS2_ACTIVE]: obsolete,
  [ControlCode.GET_LOG]: obsolete,
  [ControlCode.CLEAR_LOG]: obsolete,
  [ControlCode.TRANS3_COMMIT]: spec(recBufferCodec, null, 'status'),
  [ControlCode.GET_DB_SEQNUM]: spec(dbIdPaddedCodec, u64, 'exact'),
  [ControlCode.DB_SET_HEALTHY]: dbIdExact,
  [ControlCode.DB_GET_HEALTH]: spec(u32, string, 'exact'),
  [ControlCode.GET_PUBLIC_IP_INFO]: spec(sockAddrCodec, publicIpInfoCodec, 'exact'),
  [ControlCode.GET_IFACES]: spec(null, ifaceListCodec, 'exact'),
  [ControlCode.SET_IFACE_LINK_STATE]: spec(ifaceCodec, null, 'exact'),
  [ControlCode.TCP_ADD_DELAYED_UPDATE]: spec(connectionCodec, null, 'exact'),
  [ControlCode.GET_STAT_HISTORY]: spec(null, statisticsListCodec, 'exact'),
  [ControlCode.SCHEDULE_FOR_DELETION]: spec(scheduleForDeletionCodec, null, 'exact'),
  [ControlCode.SET_DB_READONLY]: dbIdExact,
  [ControlCode.CHECK_SRVIDS]: obsolete,
  [ControlCode.TRAVERSE_START_EXT]: spec(traverseStartExtCodec, null, 'exact'),
  [ControlCode.GET_DB_STATISTICS]: spec(u32, dbStatisticsCodec, 'exact'),
  [ControlCode.SET_DB_STICKY]: dbIdExact,
  [ControlCode.RELOAD_PUBLIC_IPS]: emptyExact,
  [ControlCode.TRAVERSE_ALL_EXT]: spec(traverseAllExtCodec, null),
  [ControlCode.RECEIVE_RECORDS]: obsolete,
  [ControlCode.IPREALLOCATED]: emptyExact,
  [ControlCode.GET_RUNSTATE]: spec(null, u32, 'exact'),
  [ControlCode.DB_DETACH]: spec(u32, null),
  [ControlCode.GET_NODES_FILE]: spec(null, nodeMapCodec),
  [ControlCode.DB_FREEZE]: dbIdExact,
  [ControlCode.DB_THAW]: dbIdExact,
  [ControlCode.DB_TRANSACTION_START]: spec(transdbCodec, null, 'exact'),
  [ControlCode.DB_TRANSACTION_COMMIT]: spec(transdbCodec, null, 'exact'),
  [ControlCode.DB_TRANSACTION_CANCEL]: dbIdExact,
  [ControlCode.DB_PULL]: spec(pulldbExtCodec, u32, 'exact'),
  [ControlCode.DB_PUSH_START]: spec(pulldbExtCodec, null, 'exact'),
  [ControlCode.DB_PUSH_CONFIRM]: spec(u32, u32, 'exact'),
  [ControlCode.DB_OPEN_FLAGS]: spec(u32, i32, 'exact'),
  [ControlCode.DB_ATTACH_REPLICATED]: spec(string, u32),
  [ControlCode.CHECK_PID_SRVID]: spec(pidSrvidCodec, null, 'status', 'exact'),
  [ControlCode.TUNNEL_REGISTER]: empty,
  [ControlCode.TUNNEL_DEREGISTER]: empty,
  [ControlCode.VACUUM_FETCH]: spec(recBufferCodec, null),
  [ControlCode.DB_VACUUM]: spec(dbVacuumCodec, null, 'exact'),
  [ControlCode.ECHO_DATA]: spec(echoDataCodec, echoDataCodec),
  [ControlCode.DISABLE_NODE]: emptyExact,
  [ControlCode.ENABLE_NODE]: emptyExact,
  [ControlCode.DB_DIGEST]: spec(u32, recordsDigestCodec, 'exact'),
} satisfies { [C in ControlCode]: { request: AnyCodec | null; reply: AnyCodec | null } };

type Specs = typeof specs;
type PayloadOf<C> = C extends Codec<infer T> ? T : void;

/** Decoded request payload per opcode (void = no payload). */
export type ControlRequests = { [C in ControlCode]: PayloadOf<Specs[C]['request']> };
/** Decoded reply payload per opcode (void = no payload; see replyInStatus). */
export type ControlReplies = { [C in ControlCode]: PayloadOf<Specs[C]['reply']> };

/** Every 4.17 control (and our DB_DIGEST), keyed by opcode. */
export const CONTROLS: { readonly [C in ControlCode]: ControlEntry<ControlRequests[C], ControlReplies[C]> } = Object.fromEntries(
  Object.entries(specs).map(([code, s]) => [code, { code: Number(code), name: ControlCode[Number(code)], ...s }]),
) as never;

/** The 4.17 name without the CTDB_CONTROL_ prefix, or "UNKNOWN(n)". */
export function controlName(code: number): string {
  return ControlCode[code] ?? `UNKNOWN(${code})`;
}

function entry(code: number): ControlEntry {
  const e = (CONTROLS as Record<number, ControlEntry | undefined>)[code];
  if (e === undefined) throw new ProtocolError(`unknown control opcode ${code}`);
  return e;
}

function encodeWith(codec: Codec<unknown> | null, value: unknown): Buffer {
  return codec === null ? Buffer.alloc(0) : encode(codec, value);
}

function decodeWith(codec: Codec<unknown> | null, data: Buffer, what: string, exact: boolean): unknown {
  if (codec !== null) return decode(codec, data, what, exact);
  if (exact && data.length !== 0) throw new ProtocolError(`${what}: expected no data, got ${data.length} bytes`);
  return undefined;
}

export function encodeControlRequest<C extends ControlCode>(code: C, ...value: ValueArg<ControlRequests[C]>): Buffer {
  return encodeWith(entry(code).request, value[0]);
}

/** Decodes REQ_CONTROL data, enforcing ctdbd's exact-size checks where it has them. */
export function decodeControlRequest<C extends ControlCode>(code: C, data: Buffer): ControlRequests[C] {
  const e = entry(code);
  return decodeWith(e.request, data, `${e.name} request`, e.exactRequest === true) as ControlRequests[C];
}

export function encodeControlReply<C extends ControlCode>(code: C, ...value: ValueArg<ControlReplies[C]>): Buffer {
  return encodeWith(entry(code).reply, value[0]);
}

/** Decodes REPLY_CONTROL data of a successful reply (trailing bytes are ignored, as the client library does). */
export function decodeControlReply<C extends ControlCode>(code: C, data: Buffer): ControlReplies[C] {
  const e = entry(code);
  return decodeWith(e.reply, data, `${e.name} reply`, false) as ControlReplies[C];
}
