// TdbFile: a libtdb-compatible database file, shared safely with libtdb processes (smbd).
// Every call is synchronous and, except the ones documented as blocking, never waits for
// another process: the daemon uses the *Nonblock variants and leaves waiting to helpers.
import fs from 'node:fs';
import { StoreMode, TdbFlag, TdbStatus, TDB_DEFAULT_HASH_SIZE } from './constants';
import { TdbError } from './errors';
import { nativeTdb, type NativeCheckReport, type NativeTdbHandle, type NativeTdbInfo } from './native-tdb';

export type TdbKey = Buffer | string;

export interface TdbOpenOptions {
  /** Chains when the file is created or wiped (CLEAR_IF_FIRST); ignored for existing files. */
  hashSize?: number;
  /** TdbFlag bits. */
  flags?: number;
  /** 'r' read-only (no locks), 'rw' existing file, 'create' (default) creates if missing. */
  access?: 'r' | 'rw' | 'create';
  /** Refuse to open an existing file (like O_EXCL). */
  exclusive?: boolean;
  mode?: number;
}

export type TraverseCallback = (key: Buffer, data: Buffer) => boolean | void;
export type CheckReport = NativeCheckReport;
export type TdbInfo = NativeTdbInfo;

const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL } = fs.constants;
const accessFlags = { r: O_RDONLY, rw: O_RDWR, create: O_RDWR | O_CREAT } as const;

// Fetched values are views into a shared slab (like Node's Buffer pool): one native call and
// no allocation but the view per fetch. A kept value keeps its whole slab alive, so slabs are
// small. Values larger than the slab's free rest are copied out of the native scratch buffer; a
// new slab is started when less than MIN_SLAB_ROOM is free.
const SLAB_SIZE = 64 * 1024;
const MIN_SLAB_ROOM = 4 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let slabMemory = slab.buffer;
let slabUsed = 0;

// Node's own Buffer subclass, which subarray() reaches through Symbol.species. Building views
// with it directly skips subarray's species lookup and Buffer.from's argument checks (about a
// tenth of a fetch); should a Node version not expose it, Buffer.from does the same job.
const bufferSpecies = (Buffer as unknown as Record<symbol, unknown>)[Symbol.species];
const viewOf: (memory: ArrayBuffer, offset: number, length: number) => Buffer =
  typeof bufferSpecies === 'function' && bufferSpecies !== Buffer
    ? (memory, offset, length) => new (bufferSpecies as new (m: ArrayBuffer, o: number, l: number) => Buffer)(memory, offset, length)
    : (memory, offset, length) => Buffer.from(memory, offset, length);

function toKey(key: TdbKey): Buffer {
  return typeof key === 'string' ? Buffer.from(key) : key;
}

/** Hands each record of a native traverse batch ([u32 key length][u32 data length][key][data]...) to `fn`. */
function eachRecord(fn: TraverseCallback): (batch: Buffer) => boolean {
  return (batch) => {
    for (let off = 0; off < batch.length; ) {
      const keyLength = batch.readUInt32LE(off);
      const dataLength = batch.readUInt32LE(off + 4);
      const keyStart = off + 8;
      off = keyStart + keyLength + dataLength;
      if (fn(batch.subarray(keyStart, keyStart + keyLength), batch.subarray(keyStart + keyLength, off)) === false) return false;
    }
    return true;
  };
}

export interface RecDataDigestResult {
  records: number;
  unusual: number;
  digest: Buffer;
}

/** See TdbFile.recDataDigest. */
export interface RecDataDigest {
  step(sliceBytes: number): boolean;
  result(): RecDataDigestResult;
}

export class TdbFile {
  #handle: NativeTdbHandle | undefined;
  // Set while traverseRead callbacks run: they may not write (the last batch is delivered
  // after the native traverse has ended, so the native read-only guard no longer applies).
  #readTraverses = 0;
  readonly path: string;
  /** The file's own (an existing file keeps the size it was created with). */
  readonly hashSize: number;

  private constructor(path: string, handle: NativeTdbHandle) {
    this.path = path;
    this.#handle = handle;
    this.hashSize = handle.info().hashSize;
  }

  static open(path: string, options: TdbOpenOptions = {}): TdbFile {
    const hashSize = options.hashSize ?? TDB_DEFAULT_HASH_SIZE;
    if (!Number.isInteger(hashSize) || hashSize < 1 || hashSize > 0x3fffffff) {
      throw new RangeError(`${path}: hash size must be an integer from 1 to 1073741823, got ${hashSize}`);
    }
    const access = options.access ?? 'create';
    if (!(access in accessFlags)) throw new TypeError(`${path}: access must be 'r', 'rw' or 'create'`);
    const openFlags = accessFlags[access] | (options.exclusive ? O_CREAT | O_EXCL : 0);
    try {
      return new TdbFile(path, nativeTdb.open(path, hashSize, options.flags ?? TdbFlag.DEFAULT, openFlags, options.mode ?? 0o600));
    } catch (err) {
      const e = err as Error & { tdbStatus?: number; errno?: number };
      if (e.tdbStatus === undefined) throw err; // argument errors
      throw new TdbError(e.message, e.tdbStatus, e.errno ?? 0);
    }
  }

  get isOpen(): boolean {
    return this.#handle !== undefined;
  }

  /** Closes the file; this drops every lock this process holds on it. */
  close(): void {
    if (this.#handle === undefined) return;
    this.#handle.close();
    this.#handle = undefined;
  }

  get info(): TdbInfo {
    return this.#h().info();
  }

  #writable(op: string): void {
    if (this.#readTraverses > 0) throw new TdbError(`${this.path}: ${op}: write inside a read traverse`, TdbStatus.RDONLY, 0);
  }

  #h(): NativeTdbHandle {
    if (this.#handle === undefined) throw new TdbError(`${this.path}: database is closed`, TdbStatus.EINVAL, 0);
    return this.#handle;
  }

  // Turns a native result into a value, throwing for every status but `allowed`.
  #check(op: string, result: number, allowed: number = TdbStatus.OK): number {
    if (result >= 0 || -result === allowed) return result;
    const detail = this.#h().lastError();
    throw new TdbError(`${this.path}: ${op}: ${detail.message}`, -result, detail.errno);
  }

  /** The value stored under `key`, or undefined. */
  fetch(key: TdbKey): Buffer | undefined {
    if (SLAB_SIZE - slabUsed < MIN_SLAB_ROOM) {
      slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      slabMemory = slab.buffer;
      slabUsed = 0;
    }
    const n = this.#check('fetch', this.#h().fetchInto(toKey(key), slab, slabUsed), TdbStatus.NOEXIST);
    if (n < 0) return undefined;
    if (n > SLAB_SIZE - slabUsed) return this.#h().copyScratch();
    const value = viewOf(slabMemory, slab.byteOffset + slabUsed, n);
    slabUsed += (n + 7) & ~7;
    return value;
  }

  /**
   * Copies the value into `out` without allocating. Returns its length, or -1 if absent.
   * A length greater than out.length means nothing was copied: retry with a larger buffer.
   */
  fetchInto(key: TdbKey, out: Buffer): number {
    const n = this.#check('fetch', this.#h().fetchInto(toKey(key), out, 0), TdbStatus.NOEXIST);
    return n < 0 ? -1 : n;
  }

  exists(key: TdbKey): boolean {
    return this.#check('exists', this.#h().exists(toKey(key)), TdbStatus.NOEXIST) === 0;
  }

  /** Replace (default), insert (fails with TDB_ERR_EXISTS) or modify (fails with TDB_ERR_NOEXIST). */
  store(key: TdbKey, data: Buffer | string, mode: StoreMode = StoreMode.REPLACE): void {
    this.#writable('store');
    const value = typeof data === 'string' ? Buffer.from(data) : data;
    this.#check('store', this.#h().store(toKey(key), value, mode));
  }

  /**
   * Stores (replacing) many records that lie in one buffer in one native call: `spans` holds
   * [key offset, key length, value offset, value length] per record. A failure leaves the
   * records before it stored.
   */
  storeMany(buffer: Buffer, spans: Uint32Array): void {
    this.#writable('store');
    this.#check('store', this.#h().storeMany(buffer, spans));
  }

  /**
   * storeMany for replicated updates: each value starts with a header of `headerBytes` whose
   * first 8 bytes are its rsn; a record only replaces a stored copy with a lower rsn (a missing
   * one counts as rsn 0 and an empty value) unless their values past the header are the same.
   * Returns how many records were stored: fewer than given means the next one was refused (or
   * its value is shorter than the header), and the ones before it stay stored.
   */
  updateMany(buffer: Buffer, spans: Uint32Array, headerBytes: number): number {
    this.#writable('store');
    return this.#check('store', this.#h().updateMany(buffer, spans, headerBytes));
  }

  /** Returns false if there was no such record. */
  delete(key: TdbKey): boolean {
    this.#writable('delete');
    return this.#check('delete', this.#h().delete(toKey(key)), TdbStatus.NOEXIST) === 0;
  }

  /**
   * Calls `fn` for every record, libtdb-style: the traverse sits on each record's lock while
   * `fn` runs; returning false stops. A write traverse (default) may store and delete from the
   * callback and excludes transactions; `{ write: false }` may not write.
   * Returns the number of records visited.
   */
  traverse(fn: TraverseCallback, options: { write?: boolean } = {}): number {
    return this.#check('traverse', this.#h().traverse(options.write ?? true, fn));
  }

  /**
   * Read traverse. Records arrive in batches copied under their chain locks (no lock is held
   * while `fn` runs), so this is the fast way to read a whole database.
   */
  traverseRead(fn: TraverseCallback): number {
    let visited = 0;
    this.#readTraverse(() =>
      this.#h().traverseReadBatched(
        eachRecord((key, data) => {
          visited++;
          return fn(key, data);
        }),
      ),
    );
    return visited;
  }

  /**
   * One slice of a read traverse: the chains from `fromChain` on until about 256 KiB of records
   * were copied (as traverseRead copies them). Returns the chain the next slice starts at, or
   * null when the walk is complete (or `fn` returned false). A walk in slices sees each record
   * at most once (a key never changes chain) but not one moment of the whole file.
   */
  traverseReadSlice(fromChain: number, fn: TraverseCallback): number | null {
    const next = this.#readTraverse(() => this.#h().traverseReadBatched(eachRecord(fn), fromChain));
    return next < this.hashSize ? next : null;
  }

  /**
   * The whole file, read as traverseRead reads it, in CTDB's rec_buffer wire layout: each buffer
   * has 8 bytes at the start for the caller to fill (db_id, record count), then one ctdb_rec_data
   * per record (reqid 0). A buffer is handed over once it holds `limit` bytes or more, with the
   * number of records in it; returning false stops. Returns the number of records.
   */
  traverseRecBuffers(limit: number, fn: (buffer: Buffer, records: number) => boolean | void): number {
    return this.#readTraverse(() => this.#h().traverseRecBuffers(fn, limit));
  }

  /**
   * The SHA-256 of the records traverseRecBuffers would lay out (ctdb_rec_data, reqid 0), in its
   * order, with nothing copied out: equal digests mean equal rec_buffer contents. `unusual`
   * counts records whose data is at most `minData` bytes or has a bit of `flagsMask` in its u32
   * at offset 16.
   */
  digestRecData(minData: number, flagsMask: number): RecDataDigestResult {
    const digest = this.recDataDigest(minData, flagsMask);
    while (!digest.step(Number.POSITIVE_INFINITY));
    return digest.result();
  }

  /**
   * digestRecData in steps, for a caller that serves others in between: each step() hashes the
   * chains holding about `sliceBytes` of records and says whether the walk is complete. The
   * file must not change until it is (the digest would describe no moment of it).
   */
  recDataDigest(minData: number, flagsMask: number): RecDataDigest {
    const state = this.#h().newRecDataDigest();
    let next = 0;
    return {
      step: (sliceBytes) => {
        if (next < this.hashSize) next = this.#readTraverse(() => this.#h().digestRecData(state, minData, flagsMask, next, sliceBytes));
        return next >= this.hashSize;
      },
      result: () => {
        if (next < this.hashSize) throw new Error(`${this.path}: digest taken before the walk is complete`);
        const digest = Buffer.alloc(32);
        const [records, unusual] = this.#h().finishRecDataDigest(state, digest);
        return { records, unusual, digest };
      },
    };
  }

  /** Runs a native read traverse whose callbacks may not write. */
  #readTraverse(walk: () => number): number {
    this.#readTraverses++;
    try {
      return this.#check('traverse', walk());
    } finally {
      this.#readTraverses--;
    }
  }

  /** Blocking write lock on the key's chain (waits for other processes). */
  chainLock(key: TdbKey): void {
    this.#check('chainlock', this.#h().chainLock(toKey(key), true, true));
  }

  /** Non-blocking chain write lock: false if another process holds the chain. */
  chainLockNonblock(key: TdbKey): boolean {
    return this.#check('chainlock', this.#h().chainLock(toKey(key), true, false), TdbStatus.NOLOCK) === 0;
  }

  chainUnlock(key: TdbKey): void {
    this.#check('chainunlock', this.#h().chainUnlock(toKey(key), true));
  }

  /**
   * Records that `key`'s chain is write-locked for this process by someone else (a lock helper
   * holding it on our behalf), without locking: fetch/store/delete on the chain then proceed.
   * Undo with chainUnlockMark before the helper releases the lock (libtdb's tdb_chainlock_mark).
   */
  chainLockMark(key: TdbKey): void {
    this.#check('chainlock_mark', this.#h().chainLockMark(toKey(key)));
  }

  /** Forgets a chainLockMark without unlocking (the helper still holds the lock). */
  chainUnlockMark(key: TdbKey): void {
    this.#check('chainlock_unmark', this.#h().chainUnlockMark(toKey(key)));
  }

  chainLockRead(key: TdbKey): void {
    this.#check('chainlock_read', this.#h().chainLock(toKey(key), false, true));
  }

  chainLockReadNonblock(key: TdbKey): boolean {
    return this.#check('chainlock_read', this.#h().chainLock(toKey(key), false, false), TdbStatus.NOLOCK) === 0;
  }

  chainUnlockRead(key: TdbKey): void {
    this.#check('chainunlock_read', this.#h().chainUnlock(toKey(key), false));
  }

  /** Blocking all-record write lock. */
  lockAll(): void {
    this.#check('lockall', this.#h().lockAll(true, true));
  }

  lockAllNonblock(): boolean {
    return this.#check('lockall', this.#h().lockAll(true, false), TdbStatus.NOLOCK) === 0;
  }

  unlockAll(): void {
    this.#check('unlockall', this.#h().unlockAll(true));
  }

  lockAllRead(): void {
    this.#check('lockall_read', this.#h().lockAll(false, true));
  }

  unlockAllRead(): void {
    this.#check('unlockall_read', this.#h().unlockAll(false));
  }

  /** Blocking: waits for other transactions and write traverses. */
  transactionStart(): void {
    this.#check('transaction_start', this.#h().transactionStart(true));
  }

  /** False if another process holds the transaction lock. */
  transactionStartNonblock(): boolean {
    return this.#check('transaction_start', this.#h().transactionStart(false), TdbStatus.NOLOCK) === 0;
  }

  transactionPrepareCommit(): void {
    this.#check('transaction_prepare_commit', this.#h().transactionPrepareCommit());
  }

  transactionCommit(): void {
    this.#check('transaction_commit', this.#h().transactionCommit());
  }

  transactionCancel(): void {
    this.#check('transaction_cancel', this.#h().transactionCancel());
  }

  /** Runs `fn` inside a transaction: committed if it returns, cancelled if it throws. */
  transaction<T>(fn: () => T): T {
    this.transactionStart();
    let result: T;
    try {
      result = fn();
    } catch (err) {
      this.transactionCancel();
      throw err;
    }
    this.transactionCommit();
    return result;
  }

  /** The header's sequence number (bumped on every change by openers using TDB_SEQNUM). */
  get seqnum(): number {
    return this.#h().seqnum();
  }

  enableSeqnum(): void {
    this.#h().enableSeqnum();
  }

  /** Bumps the sequence number without a lock, if seqnums are enabled (tdb_increment_seqnum_nonblock). */
  incrementSeqnum(): void {
    this.#h().incrementSeqnum();
  }

  /** Rewrites the file compactly (in a transaction). */
  repack(): void {
    this.#check('repack', this.#h().repack());
  }

  /** Deletes every record. */
  wipe(): void {
    this.#check('wipe', this.#h().wipe());
  }

  /** Structural check, like `tdbtool check`. */
  check(): CheckReport {
    return this.#h().check();
  }
}

/** The 32-bit tdb hash of a key (default or, with `jenkins`, TDB_INCOMPATIBLE_HASH). */
export function tdbHash(key: TdbKey, jenkins = false): number {
  return nativeTdb.hashKey(toKey(key), jenkins);
}
