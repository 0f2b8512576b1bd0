// One clustered smbd beside one ctdb node: its own smb.conf and state directories, the node's
// ctdbd socket, and the SMB port on the node's own loopback address. The smbd runs in the
// foreground in a process group of its own, so stopping it takes its forked children too.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { canConnect, tailOf } from '../../scripts/cluster/local-node';
import { isAlive, pollUntil, signalProcess, waitForExit } from '../../scripts/cluster/processes';
import { runTool, runToolOk, RunningTool } from './samba-tools';
import type { RunOptions, ToolRun } from './samba-tools';

export const SMBD = '/usr/sbin/smbd';
export const SMB_PORT = 445;
export const SHARE = 'share';

export interface SmbdNodeOptions {
  pnn: number;
  /** The ctdb node's address: smbd listens there (and only there). */
  address: string;
  /** The ctdb node's unix socket. */
  ctdbSocket: string;
  /** This smbd's directory (config, state, logs). */
  dir: string;
  /** The exported directory, the same path for every node. */
  exportDir: string;
  /** Identical on every node: the cluster is one SMB server (machine SID, passdb keys). */
  netbiosName: string;
}

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** Process groups of running smbds: SIGKILLed if the test process exits without stopping them. */
const runningGroups = new Set<number>();
process.on('exit', () => {
  for (const pgid of runningGroups) signalProcess(-pgid, 'SIGKILL');
});

export class SmbdNode {
  readonly pnn: number;
  readonly address: string;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly outputFile: string;
  pid: number | undefined;

  constructor(options: SmbdNodeOptions) {
    this.pnn = options.pnn;
    this.address = options.address;
    this.dir = options.dir;
    this.configFile = path.join(options.dir, 'smb.conf');
    this.logFile = path.join(options.dir, 'log.smbd');
    this.outputFile = path.join(options.dir, 'smbd.out');
    fs.mkdirSync(options.dir, { recursive: true });
    fs.writeFileSync(this.configFile, smbConf(options, this.logFile));
  }

  /** `//address/share` */
  get unc(): string {
    return `//${this.address}/${SHARE}`;
  }

  async start(): Promise<void> {
    if (this.pid !== undefined && isAlive(this.pid)) throw new Error(`smbd of node ${this.pnn} already runs as pid ${this.pid}`);
    const output = fs.openSync(this.outputFile, 'a');
    try {
      const smbd = spawn(SMBD, ['--foreground', '--no-process-group', `--configfile=${this.configFile}`], {
        detached: true,
        stdio: ['ignore', output, output],
        env: { PATH: process.env.PATH, LANG: 'C' },
      });
      this.pid = smbd.pid;
      if (smbd.pid !== undefined) runningGroups.add(smbd.pid);
      smbd.unref();
      const exited = new Promise<string>((resolve) => smbd.once('exit', (code, signal) => resolve(`exited with ${code ?? signal}`)));
      const up = await Promise.race([pollUntil(() => canConnect({ host: this.address, port: SMB_PORT }), START_TIMEOUT_MS, 100), exited]);
      if (up !== true) {
        const why = up === false ? `no listener on ${this.address}:${SMB_PORT} after ${START_TIMEOUT_MS} ms` : up;
        throw new Error(`smbd of node ${this.pnn} ${why}\n${this.logTail()}`);
      }
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      fs.closeSync(output);
    }
  }

  /** SIGTERM to smbd's process group, SIGKILL to it when smbd has not exited in time. */
  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    signalProcess(-pid, 'SIGTERM');
    if (!(await waitForExit(pid, STOP_TIMEOUT_MS))) signalProcess(-pid, 'SIGKILL');
    // Forked children may outlive the parent for a moment; none may survive the test.
    signalProcess(-pid, 'SIGKILL');
    runningGroups.delete(pid);
    this.pid = undefined;
  }

  /** A Samba program reading this node's smb.conf (`-s` for all but smbpasswd, which uses `-c`). */
  tool(program: string, args: readonly string[], options?: RunOptions): Promise<ToolRun> {
    return runTool(program, [...configArgs(program, this.configFile), ...args], options);
  }

  toolOk(program: string, args: readonly string[], options?: RunOptions): Promise<ToolRun> {
    return runToolOk(program, [...configArgs(program, this.configFile), ...args], options);
  }

  /** Starts a Samba program that keeps running (stop it by calling stop()). */
  spawnTool(program: string, args: readonly string[], options?: RunOptions): RunningTool {
    return new RunningTool(program, [...configArgs(program, this.configFile), ...args], options);
  }

  logTail(lines = 40): string {
    return [this.logFile, this.outputFile].map((file) => `--- smbd ${this.pnn} ${file}\n${tailOf(file, lines)}`).join('\n');
  }
}

function configArgs(program: string, configFile: string): string[] {
  return path.basename(program) === 'smbpasswd' ? ['-c', configFile] : [`--configfile=${configFile}`];
}

function smbConf(options: SmbdNodeOptions, logFile: string): string {
  const dir = (name: string): string => {
    const full = path.join(options.dir, name);
    fs.mkdirSync(full, { recursive: true });
    return full;
  };
  return `[global]
\tclustering = yes
\tctdbd socket = ${options.ctdbSocket}
\tnetbios name = ${options.netbiosName}
\tworkgroup = CTDBTEST
\tserver role = standalone server
\tpassdb backend = tdbsam
\tmap to guest = never
\t# A bare 127.A.B.C matches no probed interface; with a /8 it matches lo.
\tinterfaces = ${options.address}/8
\tbind interfaces only = yes
\tsmb ports = ${SMB_PORT}
\tdisable netbios = yes
\t# smbtorture base.* speaks SMB1.
\tserver min protocol = NT1
\tprivate dir = ${dir('private')}
\tlock directory = ${dir('lock')}
\tstate directory = ${dir('state')}
\tcache directory = ${dir('cache')}
\tpid directory = ${dir('run')}
\tncalrpc dir = ${dir('ncalrpc')}
\tbinddns dir = ${dir('bind-dns')}
\tlog file = ${logFile}
\tlog level = 1
\tmax log size = 0
\tload printers = no
\tprinting = bsd
\tprintcap name = /dev/null
\tdisable spoolss = yes

[${SHARE}]
\tpath = ${options.exportDir}
\tread only = no
`;
}
