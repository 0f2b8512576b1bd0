// Typed view of the `tdb` native module (native/tdb/binding.cc). Status-returning calls give
// a count/length >= 0, or minus a TdbStatus; the TdbFile facade turns those into errors.
import { nativeModule } from '../native';

declare const handleBrand: unique symbol;
/** Opaque native handle of one open tdb file. */
export type TdbHandle = { readonly [handleBrand]: true };

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

export interface NativeTdb {
  open(path: string, hashSize: number, tdbFlags: number, openFlags: number, mode: number): TdbHandle;
  close(h: TdbHandle): void;
  fetchInto(h: TdbHandle, key: Buffer, out: Buffer, offset: number): number;
  copyScratch(h: TdbHandle): Buffer;
  exists(h: TdbHandle, key: Buffer): number;
  delete(h: TdbHandle, key: Buffer): number;
  store(h: TdbHandle, key: Buffer, data: Buffer, mode: number): number;
  chainLock(h: TdbHandle, key: Buffer, write: boolean, wait: boolean): number;
  chainUnlock(h: TdbHandle, key: Buffer, write: boolean): number;
  chainLockMark(h: TdbHandle, key: Buffer): number;
  chainUnlockMark(h: TdbHandle, key: Buffer): number;
  lockAll(h: TdbHandle, write: boolean, wait: boolean): number;
  unlockAll(h: TdbHandle, write: boolean): number;
  transactionStart(h: TdbHandle, wait: boolean): number;
  transactionPrepareCommit(h: TdbHandle): number;
  transactionCommit(h: TdbHandle): number;
  transactionCancel(h: TdbHandle): number;
  repack(h: TdbHandle): number;
  wipe(h: TdbHandle): number;
  traverse(h: TdbHandle, write: boolean, fn: (key: Buffer, data: Buffer) => boolean | void): number;
  traverseReadBatched(h: TdbHandle, fn: (batch: Buffer) => boolean | void): number;
  seqnum(h: TdbHandle): number;
  enableSeqnum(h: TdbHandle): void;
  incrementSeqnum(h: TdbHandle): void;
  info(h: TdbHandle): NativeTdbInfo;
  lastError(h: TdbHandle): { message: string; errno: number };
  hashKey(key: Buffer, jenkins: boolean): number;
  check(h: TdbHandle): NativeCheckReport;
}

export const nativeTdb = nativeModule<NativeTdb>('tdb');
