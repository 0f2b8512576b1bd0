// One NativeIo per test process (the native module allows no second one): it records
// every callback per connection so tests can wait for what they expect to happen.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { IoOptions, TcpPeer, UnixPeer } from '../../src/transport/native-io';
import { projectRoot } from '../../src/native';
import { NativeIo } from '../../src/transport/native-io';
import { afterAll } from 'vitest';

export interface ConnRecord {
  peer: UnixPeer | TcpPeer | null;
  listener: number;
  packets: Buffer[];
  closed: string[];
  connected: Array<Error | null>;
}

export class IoHarness {
  readonly io: NativeIo;
  readonly conns = new Map<number, ConnRecord>();
  readonly accepted: number[] = [];
  /** Size of each packets() batch. */
  readonly batches: number[] = [];
  /** Called after recording, e.g. to echo packets back. */
  onPackets: ((conns: Uint32Array, packets: Buffer[]) => void) | null = null;

  constructor(options: IoOptions = {}) {
    this.io = new NativeIo(
      {
        packets: (conns, packets) => {
          this.batches.push(packets.length);
          for (let i = 0; i < packets.length; i++) this.record(conns[i]).packets.push(packets[i]);
          this.onPackets?.(conns, packets);
        },
        accepted: (listener, conn, peer) => {
          const rec = this.record(conn);
          rec.peer = peer;
          rec.listener = listener;
          this.accepted.push(conn);
        },
        connected: (conn, error) => this.record(conn).connected.push(error),
        closed: (conn, reason) => this.record(conn).closed.push(reason),
      },
      options,
    );
  }

  record(conn: number): ConnRecord {
    let rec = this.conns.get(conn);
    if (rec === undefined) {
      rec = { peer: null, listener: 0, packets: [], closed: [], connected: [] };
      this.conns.set(conn, rec);
    }
    return rec;
  }

  /** Waits (letting the loop run) until `done()` holds. */
  async waitFor(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** Connects a node:net client to a unix listener and returns it with the native connection id. */
  async connectUnix(socketPath: string, listener?: number): Promise<{ client: net.Socket; conn: number }> {
    const before = this.accepted.length;
    const client = net.createConnection(socketPath);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    const mine = (): number | undefined =>
      this.accepted.slice(before).find((conn) => listener === undefined || this.record(conn).listener === listener);
    await this.waitFor('accept', () => mine() !== undefined);
    return { client, conn: mine() as number };
  }
}

/** A packet of `length` bytes: the length prefix, then `tag` repeated, so contents can be checked. */
export function makePacket(length: number, tag = length & 0xff): Buffer {
  const packet = Buffer.alloc(length, tag);
  packet.writeUInt32LE(length, 0);
  return packet;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes and waits until the kernel took the bytes. */
export function write(socket: net.Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(bytes, (err) => (err ? reject(err) : resolve())));
}

/** Runs a script in a fresh node process with `NativeIo` (from the tsc build) in scope; resolves with its stdout. */
export function runNode(script: string, timeoutMs = 10_000): Promise<string> {
  const facade = path.join(projectRoot, 'dist', 'src', 'transport', 'native-io.js');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', `const { NativeIo } = require(${JSON.stringify(facade)});\n${script}`], { timeout: timeoutMs }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

/** A unix listener for one test file; node:net clients pushed to `clients` are destroyed with it. */
export function unixListener(h: IoHarness, prefix: string): { socketPath: string; listener: number; clients: net.Socket[] } {
  const socketPath = path.join(tempDir(prefix), 'ctdbd.socket');
  const fixture = { socketPath, listener: h.io.listenUnix(socketPath, 0o700), clients: [] as net.Socket[] };
  afterAll(() => {
    for (const client of fixture.clients) client.destroy();
    h.io.closeListener(fixture.listener);
  });
  return fixture;
}
