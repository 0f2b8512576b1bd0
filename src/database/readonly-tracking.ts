// Beside a database with the READONLY flag, 4.17 keeps `<file>.RO`: per record key, which nodes
// hold a read-only copy, as a bitmap of pnns (byte pnn / 8, bit pnn % 8). Only the daemon opens
// it, so it takes no locks, is emptied on open and never synced: it tracks delegations, which
// end with the daemon (and with every recovery) anyway.
import { TdbFile, TdbFlag } from '../store';

const TRACKING_FLAGS = TdbFlag.NOLOCK | TdbFlag.CLEAR_IF_FIRST | TdbFlag.NOSYNC;

export class ReadOnlyTracking {
  readonly #file: TdbFile;

  private constructor(
    readonly path: string,
    file: TdbFile,
  ) {
    this.#file = file;
  }

  /** Creates (or empties) the tracking file of the database file at `dbPath`. */
  static open(dbPath: string, hashSize: number): ReadOnlyTracking {
    const path = `${dbPath}.RO`;
    return new ReadOnlyTracking(path, TdbFile.open(path, { flags: TRACKING_FLAGS, hashSize, access: 'create', mode: 0o600 }));
  }

  addHolder(key: Buffer, pnn: number): void {
    const bits = this.#file.fetch(key);
    const byte = pnn >>> 3;
    const next = Buffer.alloc(Math.max(bits?.length ?? 0, byte + 1));
    bits?.copy(next);
    next[byte] |= 1 << (pnn & 7);
    this.#file.store(key, next);
  }

  holders(key: Buffer): number[] {
    const bits = this.#file.fetch(key);
    const pnns: number[] = [];
    if (bits === undefined) return pnns;
    for (let byte = 0; byte < bits.length; byte++) for (let bit = 0; bit < 8; bit++) if ((bits[byte] & (1 << bit)) !== 0) pnns.push(byte * 8 + bit);
    return pnns;
  }

  /** The revoke finished: nobody holds a copy any more. */
  clear(key: Buffer): void {
    this.#file.delete(key);
  }

  /** Recovery strips every delegation. */
  wipe(): void {
    this.#file.wipe();
  }

  close(): void {
    this.#file.close();
  }
}
