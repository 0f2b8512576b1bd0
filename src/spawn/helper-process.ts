// A helper executable run by vfork+exec with a status channel (a socketpair installed at a
// descriptor of our choosing). The child keeps only stdio and that channel, runs with default
// signal dispositions, an empty signal mask and normal scheduling, and is reaped through a pidfd
// on the event loop. Closing the channel (release) is the polite way to stop a helper.
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../native';
import { nativeSpawn } from './native-spawn';

export interface HelperExit {
  /** Exit status, or null when killed by a signal. */
  code: number | null;
  /** Signal name when killed, else null. */
  signal: NodeJS.Signals | null;
}

export interface HelperEvents {
  /** Bytes the helper wrote on its channel. */
  onData?(bytes: Buffer): void;
  /** Called once, after every byte has been delivered. */
  onExit?(exit: HelperExit): void;
}

export interface HelperSpawnOptions {
  /** Descriptor number of the channel in the child (>= 3), default 3; null for no channel. */
  channelFd?: number | null;
}

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(os.constants.signals).map(([name, value]) => [value, name as NodeJS.Signals]),
);

/** Where binding.gyp puts a helper executable. */
export function helperExecutable(name: string): string {
  return path.join(projectRoot, 'build', 'Release', name);
}

export class HelperProcess {
  readonly pid: number;
  readonly #id: number;
  #exit: HelperExit | undefined;

  private constructor(id: number, pid: number) {
    this.#id = id;
    this.pid = pid;
  }

  /** Starts `file` (an absolute path) with `args` (argv[0] is the file). Throws if it cannot be executed. */
  static spawn(file: string, args: readonly string[], events: HelperEvents = {}, options: HelperSpawnOptions = {}): HelperProcess {
    if (!path.isAbsolute(file)) throw new TypeError(`helper path must be absolute: ${file}`);
    const channelFd = options.channelFd === undefined ? 3 : options.channelFd;
    if (channelFd !== null && (!Number.isInteger(channelFd) || channelFd < 3 || channelFd > 1023)) {
      throw new RangeError(`helper channel descriptor must be 3..1023, got ${channelFd}`);
    }
    let helper: HelperProcess | undefined;
    const onEvent = (event: 'data' | 'exit', a?: Buffer | number | null, b?: number | null): void => {
      if (event === 'data') {
        events.onData?.(a as Buffer);
        return;
      }
      const exit: HelperExit = { code: (a as number | null) ?? null, signal: b == null ? null : (signalNames.get(b) ?? null) };
      if (helper !== undefined) helper.#exit = exit;
      events.onExit?.(exit);
    };
    const { id, pid } = nativeSpawn.spawn(file, [file, ...args], channelFd ?? -1, onEvent);
    helper = new HelperProcess(id, pid);
    return helper;
  }

  /** Set once the helper has been reaped. */
  get exit(): HelperExit | undefined {
    return this.#exit;
  }

  /** Closes our end of the channel: the helper sees end of stream. */
  release(): void {
    nativeSpawn.release(this.#id);
  }

  /** Sends a signal; false if the helper has already been reaped. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    const number = os.constants.signals[signal];
    if (number === undefined) throw new RangeError(`unknown signal ${signal}`);
    return nativeSpawn.kill(this.#id, number);
  }
}

/** Helpers started by this thread that have not been reaped yet. */
export function runningHelpers(): number {
  return nativeSpawn.running();
}
