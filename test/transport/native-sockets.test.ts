// Listeners, outgoing connects, peer identity and error reporting of the io module.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeModule } from '../../src/native';
import type { TcpPeer, UnixPeer } from '../../src/transport/native-io';
import { isUnixPeer, NativeIo } from '../../src/transport/native-io';
import { IoHarness, makePacket, runNode, tempDir, write } from './io-harness';

const h = new IoHarness();
const dir = tempDir('ctdb-io-sockets-');
const cleanup: Array<() => void> = [];
afterAll(() => cleanup.forEach((fn) => fn()));

function listenTcp(address: string): { listener: number; port: number } {
  const listener = h.io.listenTcp(address, 0);
  cleanup.push(() => h.io.closeListener(listener));
  return { listener, port: h.io.listenerPort(listener) };
}

describe('unix listener', () => {
  const socketPath = path.join(dir, 'ctdbd.socket');
  let listener = 0;

  it('binds with the requested mode', () => {
    listener = h.io.listenUnix(socketPath, 0o700);
    cleanup.push(() => h.io.closeListener(listener));
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o700);
  });

  it('reports SO_PEERCRED of a client in another process', async () => {
    const before = h.accepted.length;
    const child = execFile(process.execPath, ['-e', `require('net').createConnection(${JSON.stringify(socketPath)}).on('connect', () => setTimeout(() => process.exit(0), 300))`]);
    await h.waitFor('accept', () => h.accepted.length > before);
    const peer = h.record(h.accepted[before]).peer as UnixPeer;
    expect(isUnixPeer(peer)).toBe(true);
    expect(peer.pid).toBe(child.pid);
    expect(peer.uid).toBe(process.getuid?.());
    expect(peer.gid).toBe(process.getgid?.());
    await h.waitFor('close', () => h.record(h.accepted[before]).closed.length === 1);
  });

  it('refuses the socket of a live daemon and a file that is not a socket', () => {
    expect(() => h.io.listenUnix(socketPath, 0o700)).toThrow(expect.objectContaining({ code: 'EADDRINUSE', message: expect.stringContaining(socketPath) }));
    const file = path.join(dir, 'plain-file');
    fs.writeFileSync(file, 'keep me');
    expect(() => h.io.listenUnix(file, 0o700)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('replaces a stale socket file', async () => {
    const stale = path.join(dir, 'stale.socket');
    // What a crashed daemon leaves: the socket file, and nobody accepting on it.
    execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`]);
    expect(fs.existsSync(stale)).toBe(true);
    const id = h.io.listenUnix(stale, 0o600);
    const { client, conn } = await h.connectUnix(stale, id);
    expect(h.record(conn).listener).toBe(id);
    client.destroy();
    h.io.closeListener(id);
  });

  it('names the path when the socket cannot be created', () => {
    const missing = path.join(dir, 'no-such-dir', 'x.socket');
    expect(() => h.io.listenUnix(missing, 0o700)).toThrow(`bind unix socket ${missing}: No such file or directory`);
    expect(() => h.io.listenUnix(path.join(dir, 'x'.repeat(200)), 0o700)).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });
});

describe('tcp', () => {
  it('connects from a bound source address and accepts with the peer address', async () => {
    const { listener, port } = listenTcp('127.0.0.2');
    const out = h.io.connectTcp('127.0.0.3', '127.0.0.2', port);
    await h.waitFor('connect and accept', () => h.record(out).connected.length === 1 && h.accepted.some((c) => h.record(c).listener === listener));
    expect(h.record(out).connected).toEqual([null]);
    const inConn = h.accepted.find((c) => h.record(c).listener === listener) as number;
    const peer = h.record(inConn).peer as TcpPeer;
    expect(peer.address).toBe('127.0.0.3');
    expect(peer.port).toBeGreaterThan(0);

    // Peer framing both ways: padded packets pass.
    expect(h.io.send(out, makePacket(48, 1))).toBe(true);
    expect(h.io.send(inConn, makePacket(64, 2))).toBe(true);
    await h.waitFor('packets', () => h.record(inConn).packets.length === 1 && h.record(out).packets.length === 1);
    expect(h.record(inConn).packets[0]).toEqual(makePacket(48, 1));
    expect(h.record(out).packets[0]).toEqual(makePacket(64, 2));

    h.io.close(out);
    await h.waitFor('peer sees EOF', () => h.record(inConn).closed.length === 1);
    expect(h.record(inConn).closed).toEqual(['connection closed by peer']);
    expect(h.record(out).closed).toEqual([]);
  });

  it('drops a peer whose packet length is not a multiple of 8', async () => {
    const { listener, port } = listenTcp('127.0.0.4');
    const socket = net.createConnection({ host: '127.0.0.4', port });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    await write(socket, Buffer.concat([makePacket(40), makePacket(44)]));
    await h.waitFor('close', () => h.accepted.some((c) => h.record(c).listener === listener && h.record(c).closed.length === 1));
    const conn = h.accepted.find((c) => h.record(c).listener === listener) as number;
    expect(h.record(conn).packets).toEqual([makePacket(40)]);
    expect(h.record(conn).closed).toEqual(['packet length 44 not a multiple of 8 on a peer connection']);
    socket.destroy();
  });

  it('reports a refused connect through connected() only', async () => {
    const { listener, port } = listenTcp('127.0.0.5');
    h.io.closeListener(listener);
    const out = h.io.connectTcp(null, '127.0.0.5', port);
    await h.waitFor('failure', () => h.record(out).connected.length === 1);
    const error = h.record(out).connected[0] as Error & { code: string };
    expect(error.code).toBe('ECONNREFUSED');
    expect(error.message).toBe(`connect to 127.0.0.5:${port}: Connection refused`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(h.record(out).closed).toEqual([]);
    expect(h.io.send(out, makePacket(32))).toBe(false);
  });

  it('queues packets sent while connecting', async () => {
    const { listener, port } = listenTcp('127.0.0.6');
    const out = h.io.connectTcp('127.0.0.7', '127.0.0.6', port);
    expect(h.io.send(out, makePacket(32, 9))).toBe(true);
    await h.waitFor('delivery', () => h.accepted.some((c) => h.record(c).listener === listener && h.record(c).packets.length === 1));
    h.io.close(out);
  });

  it('closeAfterFlush while connecting still delivers what was queued', async () => {
    const { listener, port } = listenTcp('127.0.0.10');
    const out = h.io.connectTcp('127.0.0.11', '127.0.0.10', port);
    expect(h.io.send(out, makePacket(40, 4))).toBe(true);
    h.io.closeAfterFlush(out);
    const inConn = (): number | undefined => h.accepted.find((c) => h.record(c).listener === listener);
    await h.waitFor('packet, then EOF', () => inConn() !== undefined && h.record(inConn() as number).closed.length === 1);
    expect(h.record(inConn() as number).packets).toEqual([makePacket(40, 4)]);
    expect(h.record(out)).toMatchObject({ connected: [], closed: [] });
  });

  it('listens and connects on IPv6 loopback', async () => {
    const { listener, port } = listenTcp('::1');
    const out = h.io.connectTcp('::1', '::1', port);
    await h.waitFor('accept', () => h.accepted.some((c) => h.record(c).listener === listener));
    const inConn = h.accepted.find((c) => h.record(c).listener === listener) as number;
    expect((h.record(inConn).peer as TcpPeer).address).toBe('::1');
    h.io.close(out);
  });

  it('rejects bad addresses and names the address of a failed bind', () => {
    expect(() => h.io.listenTcp('not-an-ip', 0)).toThrow(TypeError);
    expect(() => h.io.connectTcp('127.0.0.1', '::1', 1)).toThrow('must both be IPv4 or both IPv6');
    expect(() => h.io.connectTcp(null, '127.0.0.1', 70000)).toThrow(RangeError);
    const { port } = listenTcp('127.0.0.8');
    expect(() => h.io.listenTcp('127.0.0.8', port)).toThrow(expect.objectContaining({ code: 'EADDRINUSE', message: `bind 127.0.0.8:${port}: Address already in use` }));
    expect(() => h.io.connectTcp('192.0.2.1', '127.0.0.1', 1)).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL' }));
  });
});

describe('bad input straight to the addon', () => {
  it('throws TypeErrors instead of crashing', () => {
    const raw = nativeModule<Record<string, (...args: unknown[]) => unknown>>('io');
    const calls: Array<[string, unknown[]]> = [
      ['listenUnix', [42, 0o700]],
      ['listenUnix', ['/tmp/x', -1]],
      ['listenTcp', ['127.0.0.1', 1.5]],
      ['connectTcp', [{}, '127.0.0.1', 1]],
      ['send', [1, 'not a buffer']],
      ['send', [-1, Buffer.alloc(32)]],
      ['sendMany', [{}, Buffer.alloc(32)]],
      ['close', ['x']],
      ['init', [{}]],
    ];
    for (const [name, args] of calls) expect(() => raw[name](...args), name).toThrow(/^io\.|already initialised/);
    expect(raw.sendMany([1.5, 'x', null], Buffer.alloc(32))).toBe(0);
  });
});

describe('process lifetime', () => {
  it('allows one NativeIo per process', () => {
    const handlers = { packets: () => undefined, accepted: () => undefined, connected: () => undefined, closed: () => undefined };
    expect(() => new NativeIo(handlers)).toThrow('already initialised');
  });

  it('does not keep an idle process alive, but a listener does until closed', async () => {
    const socketPath = path.join(dir, 'lifetime.socket');
    const handlers = '{ packets() {}, accepted() {}, connected() {}, closed() {} }';
    const started = Date.now();
    expect(await runNode(`new NativeIo(${handlers}); console.log('idle done')`)).toBe('idle done\n');
    const out = await runNode(
      `const io = new NativeIo(${handlers}); const l = io.listenUnix(${JSON.stringify(socketPath)}, 0o700);
       setTimeout(() => { console.log('still alive'); io.closeListener(l); }, 200);`,
    );
    expect(out).toBe('still alive\n');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
