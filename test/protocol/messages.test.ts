// Well-known message srvids: payload codecs round trip and match what the real daemons and tool send.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Codec,
  MESSAGES,
  type MessageName,
  Operation,
  Pnn,
  ProtocolError,
  Srvid,
  decodeMessage,
  decodePacket,
  encodeMessage,
  isPacket,
  messageName,
} from '../../src/protocol';
import { samplesFor } from './samples';

const names = Object.keys(MESSAGES) as MessageName[];
const encode = encodeMessage as (name: MessageName, value: unknown) => Buffer;
/** Empty payloads have no codec in the sample table. */
const samples = (name: MessageName): unknown[] => (MESSAGES[name].payload.fixedSize === 0 ? [undefined] : samplesFor(MESSAGES[name].payload as Codec<unknown>));

describe('MESSAGES', () => {
  it('maps every well-known srvid back to its name', () => {
    for (const name of names) expect(messageName(MESSAGES[name].srvid)).toBe(name);
    expect(new Set(names.map((n) => MESSAGES[n].srvid)).size).toBe(names.length);
    expect(messageName(1234n)).toBeUndefined();
    expect(messageName(Srvid.SAMBA_PROCESS)).toBeUndefined();
  });

  it.each(names)('%s payload round trips', (name) => {
    for (const v of samples(name)) expect(decodeMessage(name, encode(name, v))).toEqual(v);
  });

  it('names the message in errors', () => {
    expect(() => decodeMessage('LEADER', Buffer.alloc(2))).toThrow(ProtocolError);
    expect(() => decodeMessage('TAKEOVER_RUN', Buffer.alloc(8))).toThrow(/^TAKEOVER_RUN message: /);
  });
});

describe('messages captured from the real tool and daemons', () => {
  const dir = path.join(__dirname, '..', 'fixtures', 'wire');
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as Array<{ file: string; command: string; operation: string }>;
  const packets = index
    .filter((r) => r.operation === 'REQ_MESSAGE')
    .map((r) => ({ command: r.command, packet: decodePacket(fs.readFileSync(path.join(dir, r.file))) }))
    .flatMap(({ command, packet }) => (isPacket(packet, Operation.REQ_MESSAGE) ? [{ command, packet }] : []));

  it('decodes every well-known message and re-encodes it to the same bytes', () => {
    const known = packets.filter(({ packet }) => messageName(packet.srvid) !== undefined);
    expect(known.length).toBeGreaterThan(5);
    for (const { packet } of known) {
      const name = messageName(packet.srvid) as MessageName;
      expect(encode(name, decodeMessage(name, packet.data))).toEqual(packet.data);
    }
  });

  it('reads the leader broadcast and the tool takeover-run request', () => {
    const leaders = packets.filter(({ packet }) => packet.srvid === Srvid.LEADER).map(({ packet }) => decodeMessage('LEADER', packet.data));
    expect(leaders).toContain(0);
    for (const pnn of leaders) expect([0, 1, Pnn.UNKNOWN]).toContain(pnn);
    const takeover = packets.find(({ command, packet }) => command === 'ipreallocate' && packet.srvid === Srvid.TAKEOVER_RUN);
    expect(takeover).toBeDefined();
    const request = decodeMessage('TAKEOVER_RUN', takeover?.packet.data ?? Buffer.alloc(0));
    expect(request.pnn).toBe(0);
    expect(request.srvid >> 56n).toBe(Srvid.TOOL_RANGE >> 56n);
  });
});
