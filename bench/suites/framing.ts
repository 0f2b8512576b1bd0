// Native framing (C++ on the libuv loop, batched delivery) against the TypeScript
// PacketStream on node:net, over the same unix-socket traffic: 48-byte controls and
// 1 KiB messages, written in chunks that split packets. Receiver and writer run as
// separate processes (this file, forked with a role) so each CPU figure is only the
// receiving side's.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PacketStream } from '../../src/transport/framer';
import { NativeIo } from '../../src/transport/native-io';
import type { BenchSuite, SuiteResult } from '../suite';

type Impl = 'native' | 'ts';

interface Scenario {
  name: string;
  conns: number;
  packetsPerConn: number;
  /** Largest write; writes are random sizes up to this, so packets get split. */
  maxChunk: number;
}

interface ReceiverRole {
  role: 'receiver';
  impl: Impl;
  socket: string;
  expect: number;
}

interface WriterRole {
  role: 'writer';
  socket: string;
  scenario: Scenario;
}

interface ReceiverResult {
  packets: number;
  wallMs: number;
  cpuUs: number;
  /** Native: packets() calls. TS: 'data' events (the closest thing it has to a batch). */
  deliveries: number;
  checksum: number;
}

const SCENARIOS: Scenario[] = [
  { name: '1 connection', conns: 1, packetsPerConn: 400_000, maxChunk: 64 << 10 },
  { name: '1000 connections', conns: 1000, packetsPerConn: 300, maxChunk: 8 << 10 },
];

const CONTROL_SIZE = 48;
const MESSAGE_SIZE = 1024;

function xorshift(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Three controls to one message, headers as CTDB writes them (length, magic, version, ..., operation). */
function makeStream(packets: number, seed: number): Buffer {
  const rand = xorshift(seed);
  const sizes = Array.from({ length: packets }, () => (rand() % 4 === 0 ? MESSAGE_SIZE : CONTROL_SIZE));
  const stream = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
  let off = 0;
  for (const size of sizes) {
    stream.writeUInt32LE(size, off);
    stream.writeUInt32LE(0x43544442, off + 4);
    stream.writeUInt32LE(1, off + 8);
    stream.writeUInt32LE(size === MESSAGE_SIZE ? 5 : 7, off + 16);
    off += size;
  }
  return stream;
}

// ---- child roles -------------------------------------------------------------

/** Counts packets, touching each one's operation field, until `expect` arrived. */
function runReceiver(role: ReceiverRole): void {
  let packets = 0;
  let deliveries = 0;
  let checksum = 0;
  let startCpu: NodeJS.CpuUsage | null = null;
  let startWall = 0;
  const take = (packet: Buffer): void => {
    checksum = (checksum + packet.readUInt32LE(16)) >>> 0;
    packets++;
  };
  const begin = (): void => {
    if (startCpu !== null) return;
    startCpu = process.cpuUsage();
    startWall = performance.now();
  };
  const end = (): void => {
    deliveries++;
    if (packets < role.expect || startCpu === null) return;
    const cpu = process.cpuUsage(startCpu);
    const result: ReceiverResult = { packets, wallMs: performance.now() - startWall, cpuUs: cpu.user + cpu.system, deliveries, checksum };
    process.send?.(result, () => process.exit(0));
  };
  if (role.impl === 'native') {
    const io = new NativeIo({
      packets: (_conns, batch) => {
        begin();
        for (const packet of batch) take(packet);
        end();
      },
      accepted: () => undefined,
      connected: () => undefined,
      closed: () => undefined,
    });
    io.listenUnix(role.socket, 0o700);
    process.send?.('ready');
  } else {
    const server = net.createServer((socket) => {
      const stream = new PacketStream(take);
      socket.on('data', (chunk: Buffer) => {
        begin();
        stream.push(chunk);
        end();
      });
    });
    server.listen(role.socket, () => process.send?.('ready'));
  }
}

/** A full accept backlog makes a unix connect fail with EAGAIN: wait and retry. */
async function connectWithRetry(socketPath: string): Promise<net.Socket> {
  for (;;) {
    const socket = net.createConnection(socketPath);
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      socket.once('connect', () => resolve(null));
      socket.once('error', resolve);
    });
    if (error === null) return socket;
    if (error.code !== 'EAGAIN') throw error;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function runWriter(role: WriterRole): Promise<void> {
  const { scenario } = role;
  const rand = xorshift(99);
  const sockets: net.Socket[] = [];
  for (let i = 0; i < scenario.conns; i++) sockets.push(await connectWithRetry(role.socket));
  const streams = sockets.map((_, i) => makeStream(scenario.packetsPerConn, i + 1));
  const offsets = sockets.map(() => 0);
  // Round robin: every connection has data in flight at once, as with many smbd clients.
  for (let busy = true; busy; ) {
    busy = false;
    for (let i = 0; i < sockets.length; i++) {
      if (offsets[i] >= streams[i].length) continue;
      const size = 1 + (rand() % scenario.maxChunk);
      const ok = sockets[i].write(streams[i].subarray(offsets[i], offsets[i] + size));
      offsets[i] += size;
      busy = true;
      if (!ok) await new Promise((resolve) => sockets[i].once('drain', resolve));
    }
  }
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.end(() => resolve()))));
}

// ---- orchestration -----------------------------------------------------------

function forkRole(role: ReceiverRole | WriterRole): ChildProcess {
  return fork(__filename, [JSON.stringify(role)], { stdio: 'inherit' });
}

async function measure(impl: Impl, scenario: Scenario, dir: string): Promise<ReceiverResult> {
  const socket = path.join(dir, `${impl}-${scenario.conns}.socket`);
  const receiver = forkRole({ role: 'receiver', impl, socket, expect: scenario.conns * scenario.packetsPerConn });
  let writer: ChildProcess | null = null;
  try {
    return await new Promise<ReceiverResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`framing bench ${impl}/${scenario.name} timed out`)), 60_000);
      receiver.on('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
      receiver.on('message', (message: 'ready' | ReceiverResult) => {
        if (message === 'ready') {
          writer = forkRole({ role: 'writer', socket, scenario });
          writer.on('exit', (code) => code !== 0 && reject(new Error(`writer exited with ${code}`)));
          return;
        }
        clearTimeout(timer);
        resolve(message);
      });
    });
  } finally {
    for (const child of [receiver, writer as ChildProcess | null]) {
      if (child !== null && child.exitCode === null) child.kill();
    }
  }
}

const suite: BenchSuite = {
  name: 'framing',
  description: 'native C++ framing vs TypeScript PacketStream on a unix socket (48 B controls + 1 KiB messages)',
  async run(): Promise<SuiteResult> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdb-bench-framing-'));
    const rows: SuiteResult['rows'] = [];
    const notes: string[] = [];
    try {
      for (const scenario of SCENARIOS) {
        const results = {} as Record<Impl, ReceiverResult>;
        for (const impl of ['ts', 'native'] as const) {
          const r = await measure(impl, scenario, dir);
          results[impl] = r;
          rows.push([scenario.name, impl, r.packets, Math.round(r.packets / (r.wallMs / 1000)), r.cpuUs / r.packets, r.packets / r.deliveries]);
        }
        const [ts, native] = [results.ts, results.native];
        if (ts.checksum !== native.checksum) throw new Error(`${scenario.name}: native and TS saw different packets`);
        notes.push(
          `${scenario.name}: native/TS packets/s ${((native.packets / native.wallMs) / (ts.packets / ts.wallMs)).toFixed(2)}x, ` +
            `CPU per packet ${(native.cpuUs / native.packets / (ts.cpuUs / ts.packets)).toFixed(2)}x of TS`,
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    notes.push('packets/delivery: native = packets per packets() call; TS = packets per socket data event');
    return { suite: 'framing', columns: ['scenario', 'impl', 'packets', 'packets/s', 'CPU µs/packet', 'packets/delivery'], rows, notes };
  },
};

export default suite;

if (require.main === module && process.argv[2] !== undefined) {
  const role = JSON.parse(process.argv[2]) as ReceiverRole | WriterRole;
  if (role.role === 'receiver') runReceiver(role);
  else void runWriter(role);
}
