// A probe process: asks each daemon for a cheap control every 10 ms and keeps the longest
// answer time, until the parent sends 'stop'; then it reports that and exits. Being its own
// process, it measures the daemons' stalls, not those of a busy load generator.
import { fork } from 'node:child_process';
import path from 'node:path';
import { CtdbClient } from '../src/client/ctdb-client';
import { ControlCode, Pnn } from '../src/protocol';

const INTERVAL_MS = 10;

export interface LatencyProbe {
  /** Ends the probe; resolves with the longest answer time seen, in ms. */
  stop(): Promise<number>;
}

/** Starts the probe against the daemons listening on `sockets`; resolves once it is connected. */
export function startLatencyProbe(sockets: readonly string[]): Promise<LatencyProbe> {
  const child = fork(path.join(__dirname, 'latency-probe.js'), sockets, { stdio: 'inherit' });
  const result = new Promise<number>((resolve, reject) => {
    child.on('message', (m: { maxMs?: number }) => m.maxMs !== undefined && resolve(m.maxMs));
    child.on('exit', (code) => reject(new Error(`latency probe exited with ${code}`)));
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve({ stop: () => (child.send('stop'), result) }));
    child.once('exit', (code) => reject(new Error(`latency probe exited with ${code} before it was ready`)));
  });
}

async function probe(sockets: string[]): Promise<void> {
  const clients = await Promise.all(sockets.map((s) => CtdbClient.connect(s)));
  let running = true;
  let maxMs = 0;
  process.on('message', () => (running = false));
  process.send?.({ ready: true });
  await Promise.all(
    clients.map(async (client) => {
      while (running) {
        const t0 = performance.now();
        await client.control(Pnn.CURRENT_NODE, ControlCode.GET_PNN, Buffer.alloc(0));
        maxMs = Math.max(maxMs, performance.now() - t0);
        await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
      }
    }),
  );
  for (const c of clients) c.close();
  process.send?.({ maxMs }, () => process.exit(0));
}

if (require.main === module) void probe(process.argv.slice(2));
