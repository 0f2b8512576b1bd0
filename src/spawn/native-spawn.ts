// Typed view of the `spawn` and `childTiming` native modules (native/spawn/).
import { nativeModule } from '../native';

export type NativeChildListener = (event: 'data' | 'exit', a?: Buffer | number | null, b?: number | null) => void;

export interface NativeSpawn {
  /** vfork+exec `file`; channelTarget is the child's descriptor number for the status socket, or -1. */
  spawn(file: string, argv: string[], channelTarget: number, onEvent: NativeChildListener): { id: number; pid: number };
  /** Closes the parent's end of the channel. */
  release(id: number): void;
  /** Signals the child through its pidfd; false once it has been reaped. */
  kill(id: number, signal: number): boolean;
  /** Children spawned and not yet reaped, in this thread. */
  running(): number;
}

export type ChildCreationMethod = 'fork' | 'vfork' | 'fork+exec' | 'vfork+exec' | 'posix_spawn';

export interface NativeChildTiming {
  /** Holds `mib` MiB of touched 4 KiB pages in this process (0 frees them). */
  holdMemory(mib: number): void;
  /** Microseconds from creating each child to reaping it. */
  measure(method: ChildCreationMethod, file: string, iterations: number): Float64Array;
}

export const nativeSpawn = nativeModule<NativeSpawn>('spawn');
export const nativeChildTiming = nativeModule<NativeChildTiming>('childTiming');
