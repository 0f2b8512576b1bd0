// A set of LocalNodes on one freshly allocated loopback block, each with its own CTDB_BASE
// under one root directory. Shared by `npm run cluster` and the integration-test harness.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureSeaBinary } from '../build-sea';
import { allocateAddressBlock } from './addresses';
import type { AddressBlock } from './addresses';
import { LocalNode, REAL_CTDBD } from './local-node';
import type { DaemonImpl } from './local-node';
import { writeNodeBase } from './node-base';

export interface LocalClusterOptions {
  nodes: number;
  impl: DaemonImpl;
  /** Parent of the node.N directories; a fresh temporary directory by default. */
  root?: string;
  /** Extra ctdb.conf text for every node. */
  config?: string;
  tunables?: Readonly<Record<string, number>>;
  /** Every node's public_addresses file. */
  publicAddresses?: string;
  /** Extra daemon environment. */
  env?: NodeJS.ProcessEnv;
  /** Try this 127.A.B block first (random blocks otherwise). */
  preferredBlock?: readonly [number, number, number];
}

export function daemonBinary(impl: DaemonImpl): string {
  return impl === 'real' ? REAL_CTDBD : ensureSeaBinary();
}

export class LocalCluster {
  readonly root: string;
  readonly nodes: readonly LocalNode[];
  readonly #addresses: AddressBlock;

  private constructor(root: string, nodes: LocalNode[], addresses: AddressBlock) {
    this.root = root;
    this.nodes = nodes;
    this.#addresses = addresses;
  }

  /** Allocates addresses and writes every node's CTDB_BASE; starts nothing. */
  static async create(options: LocalClusterOptions): Promise<LocalCluster> {
    const binary = daemonBinary(options.impl);
    const block = await allocateAddressBlock(options.nodes, options.preferredBlock);
    const root = options.root ?? fs.mkdtempSync(path.join(os.tmpdir(), `ctdb-${options.impl}-cluster-`));
    const nodes = block.addresses.map((address, pnn) => {
      const { config, tunables, publicAddresses } = options;
      const paths = writeNodeBase({ base: path.join(root, `node.${pnn}`), addresses: block.addresses, pnn, config, tunables, publicAddresses });
      return new LocalNode({ pnn, address, paths, binary, env: options.env });
    });
    return new LocalCluster(root, nodes, block);
  }

  async startAll(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.start()));
  }

  /** Stops every node and gives the addresses back. */
  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    this.#addresses.release();
  }

  /** Synchronous variant for process exit. */
  killAll(): void {
    for (const node of this.nodes) node.killNow();
    this.#addresses.release();
  }

  logTails(lines?: number): string {
    return this.nodes.map((node) => node.logTail(lines)).join('\n');
  }
}
