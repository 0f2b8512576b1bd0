// The integration-test harness: a local test-mode cluster of our ctdbd or Debian's, driven
// with the Debian `ctdb` tool. Every cluster is stopped when the test that started it ends
// (pass or fail), and SIGKILLed at the latest when the test process exits.
//
//   const cluster = await TestCluster.start({ nodes: 3, impl: 'ours' });
//   await cluster.waitUntilHealthy();
//   const { code, stdout } = await cluster.ctdb(0, ['status']);
//
// Started in beforeAll instead of inside a test? Pair it with afterAll(() => cluster.stop()),
// or use useTestCluster(), which also prints the node logs when a test fails.
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, onTestFailed, onTestFinished } from 'vitest';
import { allocateAddressBlock } from '../../scripts/cluster/addresses';
import type { AddressBlock } from '../../scripts/cluster/addresses';
import type { ToolResult } from '../../scripts/cluster/ctdb-tool';
import { LocalCluster } from '../../scripts/cluster/local-cluster';
import type { LocalNode, DaemonImpl } from '../../scripts/cluster/local-node';
import { pollUntil } from '../../scripts/cluster/processes';

export type { ToolResult } from '../../scripts/cluster/ctdb-tool';
export type { DaemonImpl } from '../../scripts/cluster/local-node';

export interface TestClusterOptions {
  nodes: number;
  impl: DaemonImpl;
  /** Extra ctdb.conf text, appended to every node's generated file. */
  config?: string;
  /** Written to every node's ctdb.tunables as Name=value lines. */
  tunables?: Record<string, number>;
  /** Every node's public_addresses file ("IP/bits iface" lines); none by default. */
  publicAddresses?: string;
  /** Extra daemon environment (beyond CTDB_BASE, CTDB_TEST_MODE=yes and PATH). */
  env?: NodeJS.ProcessEnv;
}

/**
 * n addresses 127.A.B.1..n that no concurrently running test cluster uses (lock file per block
 * in /tmp, bind probe on port 4379). Give them back with release(); process exit does too.
 */
export function allocateNodeAddresses(n: number): Promise<AddressBlock> {
  return allocateAddressBlock(n);
}

const running = new Set<TestCluster>();
process.on('exit', () => {
  for (const cluster of running) cluster.killNow();
});

export class TestCluster {
  readonly impl: DaemonImpl;
  readonly #local: LocalCluster;
  #stopping: Promise<void> | undefined;
  /** Set when a test using this cluster failed: its directory then outlives stop(). */
  keepFiles = false;

  private constructor(impl: DaemonImpl, local: LocalCluster) {
    this.impl = impl;
    this.#local = local;
  }

  static async start(options: TestClusterOptions): Promise<TestCluster> {
    const local = await LocalCluster.create(options);
    const cluster = new TestCluster(options.impl, local);
    running.add(cluster);
    registerWithCurrentTest(cluster);
    try {
      await local.startAll();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      cluster.reportFailure(`TestCluster (${options.impl}, ${options.nodes} nodes) failed to start: ${message}`);
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get nodes(): readonly LocalNode[] {
    return this.#local.nodes;
  }

  /** Parent directory of the node.N base directories (logs stay there). */
  get root(): string {
    return this.#local.root;
  }

  node(pnn: number): LocalNode {
    const node = this.#local.nodes[pnn];
    if (node === undefined) throw new RangeError(`no node ${pnn} in this ${this.#local.nodes.length}-node cluster`);
    return node;
  }

  /** Runs /usr/bin/ctdb against node `pnn` (its CTDB_BASE and CTDB_SOCKET). */
  ctdb(pnn: number, args: readonly string[], options: { timeoutMs?: number } = {}): Promise<ToolResult> {
    return this.node(pnn).ctdb(args, options.timeoutMs);
  }

  /** Polls until the predicate holds; rejects with the node logs in the message on timeout. */
  async waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
    if (await pollUntil(predicate, timeoutMs, 200)) return;
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.#local.logTails(20)}`);
  }

  /** Until every node reports every node OK (`ctdb nodestatus all` exits 0 on each). */
  async waitUntilHealthy(timeoutMs = 60_000): Promise<void> {
    await this.waitFor(
      async () => {
        const results = await Promise.all(this.nodes.map((n) => (n.pid === undefined ? undefined : n.ctdb(['nodestatus', 'all'], 5_000))));
        return results.every((r) => r === undefined || r.code === 0);
      },
      timeoutMs,
      'all nodes healthy',
    );
  }

  kill(pnn: number, signal: NodeJS.Signals = 'SIGTERM'): void {
    this.node(pnn).kill(signal);
  }

  stopNode(pnn: number): Promise<void> {
    return this.node(pnn).stop();
  }

  startNode(pnn: number): Promise<void> {
    return this.node(pnn).start();
  }

  /**
   * Stops every node (ctdb shutdown, SIGTERM, SIGKILL), frees the addresses and removes the
   * node directories unless keepFiles (or CTDB_TEST_KEEP=1); idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#local.stopAll().finally(() => {
      running.delete(this);
      if (!this.keepFiles && process.env.CTDB_TEST_KEEP !== '1') fs.rmSync(this.root, { recursive: true, force: true });
    });
    return this.#stopping;
  }

  /** Prints the node logs and keeps the node directories for a post-mortem. */
  reportFailure(what: string): void {
    this.keepFiles = true;
    console.error(`${what}: cluster files kept in ${this.root}\n${this.logTails()}`);
  }

  killNow(): void {
    this.#local.killAll();
    running.delete(this);
  }

  logTails(lines?: number): string {
    return this.#local.logTails(lines);
  }
}

/** Inside a running test: stop with the test, print the logs if it fails. Elsewhere: no-op. */
function registerWithCurrentTest(cluster: TestCluster): void {
  try {
    onTestFailed(() => cluster.reportFailure('test failed'));
    onTestFinished(() => cluster.stop());
  } catch {
    // Not inside a test (beforeAll, a script): the caller stops it.
  }
}

/**
 * One cluster for a whole describe block/file: started in beforeAll, stopped in afterAll, node
 * logs printed after any failed test. Returns an accessor for use inside the tests.
 */
export function useTestCluster(options: TestClusterOptions): () => TestCluster {
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    cluster = await TestCluster.start(options);
  });
  afterEach((context) => {
    if (cluster && context.task.result?.state === 'fail') cluster.reportFailure(`test "${context.task.name}" failed`);
  });
  afterAll(() => cluster?.stop());
  return () => {
    if (cluster === undefined) throw new Error('useTestCluster: the cluster is not started (used outside a test?)');
    return cluster;
  };
}
