// Payloads of the well-known message srvids (ctdb/protocol/protocol_message.c). Any other srvid
// (Samba's pid srvids, tool reply addresses, traverse streams) carries opaque bytes.
import { type Codec, type ValueArg, decode, encode, string, u32 } from './codec';
import { Srvid } from './constants';
import { disableMessageCodec, electionMessageCodec, nodeFlagChangeCodec, publicIpCodec, recBufferCodec, srvidMessageCodec } from './types';

/** An empty payload (RECONFIGURE, RELOAD_NODES, the obsolete log srvids). */
const none: Codec<void> = {
  fixedSize: 0,
  size: () => 0,
  push: () => 0,
  pull: () => ({ value: undefined, size: 0 }),
};

const messages = {
  BANNING: { srvid: Srvid.BANNING, payload: u32 },
  ELECTION: { srvid: Srvid.ELECTION, payload: electionMessageCodec },
  LEADER: { srvid: Srvid.LEADER, payload: u32 },
  RECONFIGURE: { srvid: Srvid.RECONFIGURE, payload: none },
  RELEASE_IP: { srvid: Srvid.RELEASE_IP, payload: string },
  TAKE_IP: { srvid: Srvid.TAKE_IP, payload: string },
  SET_NODE_FLAGS: { srvid: Srvid.SET_NODE_FLAGS, payload: nodeFlagChangeCodec },
  RECD_UPDATE_IP: { srvid: Srvid.RECD_UPDATE_IP, payload: publicIpCodec },
  VACUUM_FETCH: { srvid: Srvid.VACUUM_FETCH, payload: recBufferCodec },
  DETACH_DATABASE: { srvid: Srvid.DETACH_DATABASE, payload: u32 },
  MEM_DUMP: { srvid: Srvid.MEM_DUMP, payload: srvidMessageCodec },
  GETLOG: { srvid: Srvid.GETLOG, payload: none },
  CLEARLOG: { srvid: Srvid.CLEARLOG, payload: none },
  PUSH_NODE_FLAGS: { srvid: Srvid.PUSH_NODE_FLAGS, payload: nodeFlagChangeCodec },
  RELOAD_NODES: { srvid: Srvid.RELOAD_NODES, payload: none },
  TAKEOVER_RUN: { srvid: Srvid.TAKEOVER_RUN, payload: srvidMessageCodec },
  REBALANCE_NODE: { srvid: Srvid.REBALANCE_NODE, payload: u32 },
  DISABLE_TAKEOVER_RUNS: { srvid: Srvid.DISABLE_TAKEOVER_RUNS, payload: disableMessageCodec },
  DISABLE_RECOVERIES: { srvid: Srvid.DISABLE_RECOVERIES, payload: disableMessageCodec },
  DISABLE_IP_CHECK: { srvid: Srvid.DISABLE_IP_CHECK, payload: u32 },
} satisfies Record<string, { srvid: bigint; payload: Codec<unknown> }>;

export type MessageName = keyof typeof messages;
/** Decoded payload per well-known message (a pnn, an IP string, an election message, ...). */
export type MessagePayloads = { [N in MessageName]: (typeof messages)[N]['payload'] extends Codec<infer T> ? T : never };

/** The well-known messages by name: srvid and payload codec. */
export const MESSAGES: { readonly [N in MessageName]: { srvid: bigint; payload: Codec<MessagePayloads[N]> } } = messages;

const nameBySrvid = new Map<bigint, MessageName>(Object.entries(messages).map(([name, m]) => [m.srvid, name as MessageName]));

/** The well-known message sent to `srvid`, if it is one. */
export function messageName(srvid: bigint): MessageName | undefined {
  return nameBySrvid.get(srvid);
}

export function encodeMessage<N extends MessageName>(name: N, ...value: ValueArg<MessagePayloads[N]>): Buffer {
  return encode(MESSAGES[name].payload as Codec<unknown>, value[0]);
}

/** Decodes REQ_MESSAGE data sent to a well-known srvid (trailing bytes are ignored, as ctdb does). */
export function decodeMessage<N extends MessageName>(name: N, data: Buffer): MessagePayloads[N] {
  return decode(MESSAGES[name].payload, data, `${name} message`);
}
