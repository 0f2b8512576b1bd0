// A two-node clustered Samba: a ctdb cluster (ours or Debian's ctdbd, the only difference) and
// one real smbd per node with `clustering = yes`, all exporting one shared directory. One SMB
// user (root, with a password set through node 0) is there for the clients.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { TestCluster } from '../harness/cluster';
import type { DaemonImpl } from '../harness/cluster';
import { RunningTool, runTool } from './samba-tools';
import type { RunOptions, ToolRun } from './samba-tools';
import { SmbdNode } from './smbd-node';

export const SMB_USER = 'root';
export const SMB_PASSWORD = 'Ctdb-test-1';
const NETBIOS_NAME = 'CTDBSMBTEST';

export class SmbCluster {
  readonly ctdb: TestCluster;
  readonly smbd: readonly SmbdNode[];
  /** The directory every smbd exports. */
  readonly exportDir: string;
  /** Scratch space for the test's local files. */
  readonly workDir: string;
  /** smb.conf of the SMB clients (smbclient, smbtorture): not the system's /etc/samba one. */
  readonly clientConfig: string;

  private constructor(ctdb: TestCluster, smbd: SmbdNode[], exportDir: string, workDir: string) {
    this.ctdb = ctdb;
    this.smbd = smbd;
    this.exportDir = exportDir;
    this.workDir = workDir;
    this.clientConfig = path.join(workDir, 'client.conf');
    // smbtorture base.* speaks SMB1.
    fs.writeFileSync(this.clientConfig, '[global]\n\tclient min protocol = NT1\n');
  }

  /** Starts ctdb, waits until it is healthy, then starts every smbd; stops what started on failure. */
  static async start(impl: DaemonImpl, nodes = 2): Promise<SmbCluster> {
    const ctdb = await TestCluster.start({ nodes, impl });
    const exportDir = path.join(ctdb.root, 'export');
    const workDir = path.join(ctdb.root, 'work');
    fs.mkdirSync(exportDir, { mode: 0o777 });
    fs.mkdirSync(workDir);
    const smbd = ctdb.nodes.map(
      (node) =>
        new SmbdNode({ pnn: node.pnn, address: node.address, ctdbSocket: node.socket, dir: path.join(node.base, 'samba'), exportDir, netbiosName: NETBIOS_NAME }),
    );
    const cluster = new SmbCluster(ctdb, smbd, exportDir, workDir);
    try {
      await ctdb.waitUntilHealthy();
      for (const node of smbd) await node.start();
    } catch (err) {
      cluster.reportFailure(`clustered smbd (${impl}) failed to start`);
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  node(pnn: number): SmbdNode {
    const node = this.smbd[pnn];
    if (node === undefined) throw new RangeError(`no smbd node ${pnn}`);
    return node;
  }

  /** An SMB client program run as SMB_USER: smbclient, smbtorture. */
  client(program: string, args: readonly string[], options?: RunOptions): Promise<ToolRun> {
    return runTool(program, this.#clientArgs(args), options);
  }

  /** An interactive smbclient session on node pnn's share, kept open until stop(). */
  openSession(pnn: number): RunningTool {
    return new RunningTool('smbclient', this.#clientArgs([this.node(pnn).unc]), { timeoutMs: 120_000 });
  }

  #clientArgs(args: readonly string[]): string[] {
    return [`--configfile=${this.clientConfig}`, `--user=${SMB_USER}%${SMB_PASSWORD}`, ...args];
  }

  /** smbclient commands (`-c`) against node pnn's share. */
  smbclient(pnn: number, commands: readonly string[], options?: RunOptions): Promise<ToolRun> {
    return this.client('smbclient', [this.node(pnn).unc, '--command', commands.join('; ')], options);
  }

  /** smbd first (it is a client of ctdbd), then ctdb. */
  async stop(): Promise<void> {
    await Promise.all(this.smbd.map((node) => node.stop()));
    await this.ctdb.stop();
  }

  reportFailure(what: string): void {
    this.ctdb.reportFailure(what);
    console.error(this.smbd.map((node) => node.logTail()).join('\n'));
  }
}

/** The cluster for a describe block: started in beforeAll, stopped in afterAll, logs printed after a failed test. */
export function useSmbCluster(impl: DaemonImpl, startTimeoutMs = 120_000): () => SmbCluster {
  let cluster: SmbCluster | undefined;
  beforeAll(async () => {
    cluster = await SmbCluster.start(impl);
  }, startTimeoutMs);
  afterEach((context) => {
    if (cluster && context.task.result?.state === 'fail') cluster.reportFailure(`test "${context.task.name}" failed`);
  });
  afterAll(() => cluster?.stop(), 60_000);
  return () => {
    if (cluster === undefined) throw new Error('useSmbCluster: the cluster is not started (used outside a test?)');
    return cluster;
  };
}
