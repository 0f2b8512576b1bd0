// Side-by-side comparison helpers: run the same `ctdb` command against our daemon and
// the real ctdbd and compare what the tool prints, after masking what legitimately
// differs between two clusters (addresses, pids, times, generations).
import { beforeAll, expect } from 'vitest';
import { useTestCluster } from '../harness/cluster';
import type { TestCluster, ToolResult } from '../harness/cluster';

export interface Masking {
  /** Also mask every number (for counters that depend on internal traffic). */
  numbers?: boolean;
  /** Mask the leader's pnn: which node wins an election depends on start-up timing, in both daemons. */
  leader?: boolean;
}

const DATE = /\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d+ \d\d:\d\d:\d\d \d{4}\b/g;

export function mask(text: string, cluster: TestCluster, options: Masking = {}): string {
  let out = text.split(cluster.root).join('<root>');
  // Longest addresses first so 127.1.2.1 does not eat part of 127.1.2.10.
  const nodes = [...cluster.nodes].sort((a, b) => b.address.length - a.address.length);
  for (const n of nodes) out = out.split(n.address).join(`<node${n.pnn}>`);
  out = out
    .replace(DATE, '<date>')
    .replace(/\(\d{3} \d\d:\d\d:\d\d\)/g, '(<duration>)')
    .replace(/time=\d+\.\d+ sec/g, 'time=<t> sec')
    .replace(/\d+\.\d+ seconds/g, '<t> seconds')
    .replace(/Generation:\d+/g, 'Generation:<gen>')
    .replace(/\|\d{6,}\|/g, '|<num>|');
  for (const n of cluster.nodes) if (n.pid !== undefined) out = out.split(String(n.pid)).join('<pid>');
  if (options.leader === true) out = out.replace(/^Leader:\d+$/m, 'Leader:<leader>').replace(/^\d+\n$/, '<leader>\n');
  if (options.numbers === true) out = out.replace(/\d+(\.\d+)?/g, '<n>');
  // Column alignment follows the widest value; compare words, not padding.
  return out.replace(/[ \t]+/g, ' ');
}

export interface Compared {
  ours: ToolResult;
  real: ToolResult;
  oursMs: number;
  realMs: number;
}

/** Runs the command on both clusters and expects the same exit code and masked output. */
export async function compareTool(
  ours: TestCluster,
  real: TestCluster,
  pnn: number,
  args: readonly string[],
  options: Masking = {},
): Promise<Compared> {
  const t0 = performance.now();
  const o = await ours.ctdb(pnn, args);
  const t1 = performance.now();
  const r = await real.ctdb(pnn, args);
  const t2 = performance.now();
  const label = `ctdb ${args.join(' ')}`;
  expect({ cmd: label, code: o.code, stdout: mask(o.stdout, ours, options), stderr: mask(o.stderr, ours, options) }).toEqual({
    cmd: label,
    code: r.code,
    stdout: mask(r.stdout, real, options),
    stderr: mask(r.stderr, real, options),
  });
  return { ours: o, real: r, oursMs: t1 - t0, realMs: t2 - t1 };
}

/** One cluster of ours and one of Debian's ctdbd for a describe block, both healthy before its tests. */
export function useSideBySide(nodes: number): { ours: () => TestCluster; real: () => TestCluster } {
  const ours = useTestCluster({ nodes, impl: 'ours' });
  const real = useTestCluster({ nodes, impl: 'real' });
  beforeAll(async () => {
    await Promise.all([ours().waitUntilHealthy(), real().waitUntilHealthy()]);
  }, 120_000);
  return { ours, real };
}
