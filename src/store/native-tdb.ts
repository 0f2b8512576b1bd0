// Typed view of the `tdb` native module (native/tdb/binding.cc). Status-returning calls give
// a count/length >= 0, or minus a TdbStatus; the TdbFile facade turns those into errors.
import { nativeModule } from '../native';

export interface NativeCheckReport {
  ok: boolean;
  problem: string;
  records: number;
  deadRecords: number;
  freeBlocks: number;
  freeBytes: number;
}

export interface NativeTdbInfo {
  path: string;
  hashSize: number;
  tdbFlags: number;
  jenkinsHash: boolean;
  mutexes: boolean;
  mapSize: number;
  inTransaction: boolean;
}

/** A SHA-256 being built natively (an External). */
export type RecDataDigestState = { readonly __recDataDigest: unique symbol };

/** The methods of one open tdb file, bound to it natively (no handle argument to check). */
export interface NativeTdbHandle {
  close(): void;
  fetchInto(key: Buffer, out: Buffer, offset: number): number;
  copyScratch(): Buffer;
  exists(key: Buffer): number;
  delete(key: Buffer): number;
  store(key: Buffer, data: Buffer, mode: number): number;
  storeMany(buffer: Buffer, spans: Uint32Array): number;
  updateMany(buffer: Buffer, spans: Uint32Array, headerBytes: number): number;
  chainLock(key: Buffer, write: boolean, wait: boolean): number;
  chainUnlock(key: Buffer, write: boolean): number;
  chainLockMark(key: Buffer): number;
  chainUnlockMark(key: Buffer): number;
  lockAll(write: boolean, wait: boolean): number;
  unlockAll(write: boolean): number;
  transactionStart(wait: boolean): number;
  transactionPrepareCommit(): number;
  transactionCommit(): number;
  transactionCancel(): number;
  repack(): number;
  wipe(): number;
  traverse(write: boolean, fn: (key: Buffer, data: Buffer) => boolean | void): number;
  traverseReadBatched(fn: (batch: Buffer) => boolean | void, fromChain?: number): number;
  traverseRecBuffers(fn: (buffer: Buffer, records: number) => boolean | void, limit: number): number;
  newRecDataDigest(): RecDataDigestState;
  /** The chain to go on from (hash size: done), or -status. */
  digestRecData(state: RecDataDigestState, minData: number, flagsMask: number, fromChain: number, sliceBytes: number): number;
  /** [records, unusual]; the digest goes into `out` (32 bytes). */
  finishRecDataDigest(state: RecDataDigestState, out: Buffer): [number, number];
  seqnum(): number;
  enableSeqnum(): void;
  incrementSeqnum(): void;
  info(): NativeTdbInfo;
  lastError(): { message: string; errno: number };
  check(): NativeCheckReport;
}

export interface NativeTdb {
  open(path: string, hashSize: number, tdbFlags: number, openFlags: number, mode: number): NativeTdbHandle;
  hashKey(key: Buffer, jenkins: boolean): number;
}

export const nativeTdb = nativeModule<NativeTdb>('tdb');
