// The tdb store side by side with Debian's libtdb: store / fetch / read traverse / delete ops/s
// for 16-byte keys and 100-byte values, per record count, hash size and locking mode.
// "libtdb" and "native" are C++ loops (bench/native/store_bench_addon.cc) over libtdb-dev and
// over our store core; "js" goes through the TdbFile facade. All three run in this process and
// take turns in small chunks (the order rotating), so the shared box's drift hits them alike.
// Rates are per CPU second: thread CPU for the C++ loops, process CPU (GC threads included) for
// JS, which on a busy box measures the work and not the time slices others took. The ratio
// range is the lowest and highest per-chunk ratio. Targets: native >= libtdb, js >= libtdb / 2.
// Files are opened as CTDB opens volatile databases (NOSYNC, DISALLOW_NESTING, Jenkins hash,
// mutexes in mutex mode) without CLEAR_IF_FIRST.
// Each op is timed on TIMED_KEYS keys: for larger sizes the file is first filled to the size
// minus TIMED_KEYS by our native store (untimed; the files are libtdb's byte for byte) and
// copied for each implementation, the last TIMED_KEYS are the timed stores, and fetch and delete
// use TIMED_KEYS keys spread over the whole file. STORE_BENCH_SIZES=100000 limits the sizes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CTDB_VOLATILE_FLAGS, StoreMode, TdbFile, TdbFlag } from '../../src/store';
import type { BenchSuite, SuiteResult } from '../suite';

// fetch: a new buffer per value (tdb_fetch, TdbFile.fetch); fetchInto: values copied into one
// reused buffer (tdb_parse_record, TdbFile.fetchInto).
const OPS = ['store', 'fetch', 'fetchInto', 'traverse', 'delete'] as const;
type Op = (typeof OPS)[number];
type KeyOp = Exclude<Op, 'traverse'>;
const IMPLS = ['libtdb', 'native', 'js'] as const;
type Impl = (typeof IMPLS)[number];

interface Config {
  records: number;
  hashSize: number;
  mutex: boolean;
}

/** One implementation's open database: each call does the work and returns the CPU ns it took. */
interface Runner {
  run(op: KeyOp, first: number, count: number, step: number): number;
  traverse(): number;
  close(): void;
}

interface BenchAddon {
  open(impl: 'libtdb' | 'native', file: string, hashSize: number, mutex: boolean, records: number): unknown;
  run(handle: unknown, op: KeyOp, first: number, count: number, step: number): number;
  traverse(handle: unknown): { cpuNs: number; records: number };
  close(handle: unknown): void;
}

const ROOT = path.resolve(__dirname, '..', '..', '..');
const ADDON_SOURCE = path.join(ROOT, 'bench', 'native', 'store_bench_addon.cc');
const VALUE = Buffer.alloc(100, 'v');
const FETCH_BUFFER = Buffer.alloc(4096);
const CHUNKS = 10;
const TRAVERSE_ROUNDS = 2;
const TIMED_KEYS = 100_000;

/** Builds the bench addon into a fresh temp dir (never committed binaries). */
function buildAddon(dir: string): BenchAddon {
  const out = path.join(dir, 'store_bench.node');
  const core = fs
    .readdirSync(path.join(ROOT, 'native', 'tdb'))
    .filter((f) => f.endsWith('.cc') && f !== 'binding.cc')
    .map((f) => path.join(ROOT, 'native', 'tdb', f));
  const napiInclude = path.dirname(require.resolve('node-addon-api/napi.h'));
  execFileSync('c++', [
    '-O2', '-std=c++20', '-shared', '-fPIC', '-fvisibility=hidden', '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-DNAPI_VERSION=8',
    `-I${path.join(process.execPath, '..', '..', 'include', 'node')}`, `-I${napiInclude}`,
    `-I${path.join(ROOT, 'native')}`, '-o', out, ADDON_SOURCE, ...core, '-ltdb', '-lpthread',
  ], { stdio: 'inherit' });
  return require(out) as BenchAddon;
}

/** As store_bench_addon.cc: CTDB's volatile-database flags without CLEAR_IF_FIRST. */
function benchFlags(c: Config): number {
  return (CTDB_VOLATILE_FLAGS & ~TdbFlag.CLEAR_IF_FIRST & ~TdbFlag.MUTEX_LOCKING) | (c.mutex ? TdbFlag.MUTEX_LOCKING : 0);
}

function cRunner(addon: BenchAddon, impl: 'libtdb' | 'native', file: string, c: Config): Runner {
  const handle = addon.open(impl, file, c.hashSize, c.mutex, c.records);
  return {
    run: (op, first, count, step) => addon.run(handle, op, first, count, step),
    traverse() {
      const { cpuNs, records } = addon.traverse(handle);
      if (records !== c.records) throw new Error(`${impl} traverse visited ${records} of ${c.records} records`);
      return cpuNs;
    },
    close: () => addon.close(handle),
  };
}

function cpuNs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
}

function jsRunner(file: string, c: Config): Runner {
  const keys = Array.from({ length: c.records }, (_, i) => Buffer.from(`key-${String(i).padStart(12, '0')}`));
  const db = TdbFile.open(file, { hashSize: c.hashSize, flags: benchFlags(c) });
  const bodies: Record<KeyOp, (k: Buffer) => boolean> = {
    store: (k) => (db.store(k, VALUE, StoreMode.REPLACE), true),
    fetch: (k) => db.fetch(k)?.length === VALUE.length,
    fetchInto: (k) => db.fetchInto(k, FETCH_BUFFER) === VALUE.length,
    delete: (k) => db.delete(k),
  };
  return {
    run(op, first, count, step) {
      const body = bodies[op];
      let ok = true;
      const start = cpuNs();
      for (let j = 0; j < count; j++) ok = body(keys[(first + j) * step]) && ok;
      const spent = cpuNs() - start;
      if (!ok) throw new Error(`js ${op} failed`);
      return spent;
    },
    traverse() {
      const start = cpuNs();
      const records = db.traverseRead(() => {});
      const spent = cpuNs() - start;
      if (records !== c.records) throw new Error(`js traverse visited ${records} of ${c.records} records`);
      return spent;
    },
    close: () => db.close(),
  };
}

type Timings = Record<Impl, number[]>; // CPU ns per chunk (or traverse round)

/** Runs `work(impl, chunk)` for every chunk, rotating which implementation goes first. */
function interleaved(runners: Record<Impl, Runner>, chunks: number, work: (r: Runner, chunk: number) => number): Timings {
  const t: Timings = { libtdb: [], native: [], js: [] };
  for (let chunk = 0; chunk < chunks; chunk++) {
    for (let i = 0; i < IMPLS.length; i++) {
      const impl = IMPLS[(chunk + i) % IMPLS.length];
      t[impl][chunk] = work(runners[impl], chunk);
    }
  }
  return t;
}

/** Per op: the operations all chunks of one implementation did together, and the chunk timings. */
function measureConfig(addon: BenchAddon, dir: string, c: Config): Record<Op, { ops: number; timings: Timings }> {
  const files = Object.fromEntries(IMPLS.map((impl) => [impl, path.join(dir, `${impl}.tdb`)])) as Record<Impl, string>;
  const timed = Math.min(c.records, TIMED_KEYS);
  const prefill = c.records - timed;
  if (prefill > 0) {
    // Every implementation gets a copy: a file grown through its mapping and a freshly written
    // copy do not perform alike.
    const seed = path.join(dir, 'seed.tdb');
    const filler = addon.open('native', seed, c.hashSize, c.mutex, c.records);
    addon.run(filler, 'store', 0, prefill, 1);
    addon.close(filler);
    for (const file of Object.values(files)) fs.copyFileSync(seed, file);
    fs.rmSync(seed);
  }
  const runners: Record<Impl, Runner> = {
    libtdb: cRunner(addon, 'libtdb', files.libtdb, c),
    native: cRunner(addon, 'native', files.native, c),
    js: jsRunner(files.js, c),
  };
  try {
    const perChunk = timed / CHUNKS;
    const keyPhase = (op: KeyOp, first: number, step: number) => ({
      ops: timed,
      timings: interleaved(runners, CHUNKS, (r, chunk) => r.run(op, first + chunk * perChunk, perChunk, step)),
    });
    const store = keyPhase('store', prefill, 1);
    const fetch = keyPhase('fetch', 0, c.records / timed);
    const fetchInto = keyPhase('fetchInto', 0, c.records / timed);
    const traverse = { ops: c.records * TRAVERSE_ROUNDS, timings: interleaved(runners, TRAVERSE_ROUNDS, (r) => r.traverse()) };
    const del = keyPhase('delete', 0, c.records / timed);
    return { store, fetch, fetchInto, traverse, delete: del };
  } finally {
    for (const r of Object.values(runners)) r.close();
    for (const file of Object.values(files)) fs.rmSync(file, { force: true });
  }
}

function configs(): Config[] {
  const sizes = (process.env.STORE_BENCH_SIZES ?? '100000,1000000').split(',').map(Number);
  return sizes.flatMap((records) => [10007, 100001].flatMap((hashSize) => [false, true].map((mutex) => ({ records, hashSize, mutex }))));
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** Overall ratio of two implementations' rates, and the range of their per-chunk ratios. */
function ratio(t: Timings, impl: Impl): { overall: number; range: string } {
  const perChunk = t.libtdb.map((base, i) => base / t[impl][i]);
  return {
    overall: sum(t.libtdb) / sum(t[impl]),
    range: `${Math.min(...perChunk).toFixed(2)}-${Math.max(...perChunk).toFixed(2)}`,
  };
}

const suite: BenchSuite = {
  name: 'store',
  description: 'tdb store vs libtdb 1.4.8: ops per CPU second (16-byte keys, 100-byte values), interleaved in one process',
  async run(): Promise<SuiteResult> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctdb-store-bench-'));
    const rows: SuiteResult['rows'] = [];
    const misses: string[] = [];
    try {
      const addon = buildAddon(dir);
      for (const c of configs()) {
        const name = `${c.records / 1000}k h${c.hashSize} ${c.mutex ? 'mutex' : 'fcntl'}`;
        const results = measureConfig(addon, dir, c);
        for (const op of OPS) {
          const { ops, timings } = results[op];
          const rate = (impl: Impl): number => ops / (sum(timings[impl]) / 1e9);
          const native = ratio(timings, 'native');
          const js = ratio(timings, 'js');
          rows.push([name, op, rate('libtdb'), rate('native'), rate('js'), native.overall, native.range, js.overall, js.range]);
          if (native.overall < 1) misses.push(`${name} ${op}: native ${native.overall.toFixed(2)}x libtdb`);
          if (js.overall < 0.5) misses.push(`${name} ${op}: js ${js.overall.toFixed(2)}x libtdb`);
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return {
      suite: 'store',
      columns: ['config', 'op', 'libtdb/s', 'native/s', 'js/s', 'native/libtdb', 'chunks', 'js/libtdb', 'chunks'],
      rows,
      notes: [
        `targets: native >= 1.0x libtdb, js >= 0.5x libtdb; ${CHUNKS} interleaved chunks per op (traverse: ${TRAVERSE_ROUNDS} rounds); ` +
          `"chunks" = lowest-highest per-chunk ratio; each op timed on ${TIMED_KEYS / 1000}k keys (the last stores, spread fetches and deletes)`,
        ...(misses.length === 0 ? ['all targets met'] : misses.map((m) => `below target: ${m}`)),
      ],
    };
  },
};

export default suite;
