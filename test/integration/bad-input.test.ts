// Malformed packets on the unix socket and on port 4379: each gets the protocol's error
// reply where one exists, otherwise its connection is closed; the daemon keeps serving.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ControlCode, Operation, Pnn, encodePacket, makeHeader } from '../../src/protocol';
import { CtdbClient } from '../../src/client/ctdb-client';
import { useTestCluster } from '../harness/cluster';

function connectUnix(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(path, () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes bytes and resolves with whatever comes back until the daemon closes or 1 s passes. */
function exchange(socket: net.Socket, bytes: Buffer, waitMs = 1000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = () => resolve({ data: Buffer.concat(chunks), closed });
    socket.on('data', (c) => chunks.push(c));
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      finish();
    });
    socket.on('error', () => undefined);
    const timer = setTimeout(finish, waitMs);
    socket.write(bytes);
  });
}

function control(opcode: number, data: Buffer, options: { magic?: number; version?: number } = {}): Buffer {
  const header = makeHeader(Operation.REQ_CONTROL, { destnode: Pnn.CURRENT_NODE, srcnode: 0, reqid: 7 });
  const buf = encodePacket({ header, opcode, srvid: 0n, clientId: 0, flags: 0, data });
  if (options.magic !== undefined) buf.writeUInt32LE(options.magic, 4);
  if (options.version !== undefined) buf.writeUInt32LE(options.version, 8);
  return buf;
}

/** REPLY_CONTROL status (offset 32) of the first packet in the reply bytes. */
function replyStatus(data: Buffer): number {
  expect(data.length).toBeGreaterThanOrEqual(44);
  expect(data.readUInt32LE(16)).toBe(Operation.REPLY_CONTROL);
  return data.readInt32LE(32);
}

describe('bad input never takes the daemon down', () => {
  const cluster = useTestCluster({ nodes: 2, impl: 'ours' });

  async function stillServing(): Promise<void> {
    const client = await CtdbClient.connect(cluster().node(0).socket);
    expect(client.pnn).toBe(0);
    client.close();
  }

  const cases: Array<{ name: string; bytes: () => Buffer; expect: 'closed' | 'error-reply' }> = [
    { name: 'a packet shorter than the header', bytes: () => Buffer.from([12, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]), expect: 'closed' },
    { name: 'a length over the maximum', bytes: () => Buffer.from([0xff, 0xff, 0xff, 0x7f, 0x42, 0x44, 0x54, 0x43]), expect: 'closed' },
    { name: 'bad magic', bytes: () => control(ControlCode.GET_PNN, Buffer.alloc(0), { magic: 0x12345678 }), expect: 'closed' },
    { name: 'bad protocol version', bytes: () => control(ControlCode.GET_PNN, Buffer.alloc(0), { version: 2 }), expect: 'closed' },
    { name: 'an unknown operation', bytes: () => { const b = control(ControlCode.GET_PNN, Buffer.alloc(0)); b.writeUInt32LE(77, 16); return b; }, expect: 'closed' },
    { name: 'a truncated control payload', bytes: () => control(ControlCode.SET_DEBUG, Buffer.alloc(2)), expect: 'error-reply' },
    { name: 'an oversized control payload', bytes: () => control(ControlCode.SET_DEBUG, Buffer.alloc(12)), expect: 'error-reply' },
    { name: 'an unknown opcode', bytes: () => control(2, Buffer.alloc(0)), expect: 'error-reply' },
    { name: 'an obsolete opcode', bytes: () => control(ControlCode.GET_RECMASTER, Buffer.alloc(0)), expect: 'error-reply' },
    { name: 'a control whose datalen overruns the packet', bytes: () => { const b = control(ControlCode.GET_PNN, Buffer.alloc(8)); b.writeUInt32LE(4096, 56); return b; }, expect: 'closed' },
  ];

  for (const c of cases) {
    it(`unix socket: ${c.name}`, async () => {
      const socket = await connectUnix(cluster().node(0).socket);
      const { data, closed } = await exchange(socket, c.bytes());
      socket.destroy();
      if (c.expect === 'closed') expect(closed).toBe(true);
      else expect(replyStatus(data)).toBe(-1);
      await stillServing();
    });
  }

  it('unix socket: half a packet, then the client goes away', async () => {
    const socket = await connectUnix(cluster().node(0).socket);
    socket.write(control(ControlCode.GET_PNN, Buffer.alloc(0)).subarray(0, 20));
    socket.destroy();
    await stillServing();
  });

  it('unix socket: 1 MiB of random garbage', async () => {
    const socket = await connectUnix(cluster().node(0).socket);
    const garbage = Buffer.alloc(1 << 20);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
    await exchange(socket, garbage, 300);
    socket.destroy();
    await stillServing();
  });

  it('port 4379: a stranger is refused, garbage from a node address closes that link only', async () => {
    const node0 = cluster().node(0);
    const stranger = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ host: node0.address, port: 4379 }, () => resolve(s));
      s.once('error', reject);
    });
    expect((await exchange(stranger, Buffer.alloc(64, 0x41))).closed).toBe(true);
    stranger.destroy();
    // Node 1's address (it is part of this cluster) sending garbage on its incoming link.
    const peer = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ host: node0.address, port: 4379, localAddress: cluster().node(1).address }, () => resolve(s));
      s.once('error', reject);
    });
    await exchange(peer, Buffer.concat([Buffer.from([13, 0, 0, 0]), Buffer.alloc(100, 0x55)]), 500);
    peer.destroy();
    await stillServing();
  });
});
