// The databases this node has attached, with the 4.17
// naming rules: id = Jenkins lookup3 of the name with its NUL, file `<dir>/<name>.<pnn>`.
import fs from 'node:fs';
import path from 'node:path';
import { DbFlag } from '../protocol';
import { tdbHash } from '../store';
import { ClusterDatabase } from './database';
import type { Subscriber } from '../daemon/srvid-table';
import type { PushSession } from './record-transfer';

export interface RegistryConfig {
  readonly pnn: number;
  readonly volatileDir: string;
  readonly persistentDir: string;
  readonly mutexes: boolean;
  /** DatabaseHashSize, read at each attach (it is a tunable). */
  hashSize(): number;
}

export class AttachError extends Error {}

/** A database's id: what ctdb_hash computes over the name and its terminating NUL. */
export function databaseId(name: string): number {
  return tdbHash(Buffer.from(`${name}\0`), true) >>> 0;
}

/** Flags a re-attach may ask for: the kind only (READONLY/STICKY are set by their own controls). */
const KIND_FLAGS = DbFlag.PERSISTENT | DbFlag.REPLICATED;

export class DatabaseRegistry {
  readonly #byId = new Map<number, ClusterDatabase>();
  readonly #byName = new Map<string, ClusterDatabase>();
  /** DB_PUSH sessions by database id, with the srvid subscription feeding each. */
  readonly pushes = new Map<number, { session: PushSession; subscriber: Subscriber }>();

  constructor(private readonly config: RegistryConfig) {}

  /** The latest attach first: the order of ctdbd's database list, which GET_DBMAP shows. */
  newestFirst(): ClusterDatabase[] {
    return [...this.#byId.values()].reverse();
  }

  get(id: number): ClusterDatabase | undefined {
    return this.#byId.get(id);
  }

  /** The database or an error naming the id, as ctdbd's "Unknown db" failures. */
  require(id: number): ClusterDatabase {
    const db = this.#byId.get(id);
    if (db === undefined) throw new AttachError(`unknown database id 0x${id.toString(16).padStart(8, '0')}`);
    return db;
  }

  byName(name: string): ClusterDatabase | undefined {
    return this.#byName.get(name);
  }

  /**
   * Attaches `name` with the kind flags (0 volatile, PERSISTENT or REPLICATED). An existing
   * database is returned if it already has every requested flag. `created` tells whether the
   * attach was new (and so is to be announced to the other nodes).
   */
  attach(name: string, kindFlags: number): { db: ClusterDatabase; created: boolean } {
    checkName(name);
    const existing = this.#byName.get(name);
    if (existing !== undefined) {
      if ((existing.flags & kindFlags) !== kindFlags) {
        throw new AttachError(`failed to re-attach ${name} with flags 0x${kindFlags.toString(16)}, database has flags 0x${existing.flags.toString(16)}`);
      }
      return { db: existing, created: false };
    }
    const id = databaseId(name);
    const clash = this.#byId.get(id);
    if (clash !== undefined) throw new AttachError(`db_id 0x${id.toString(16)} hash collision: ${name} and ${clash.name}`);
    const persistent = (kindFlags & DbFlag.PERSISTENT) !== 0;
    const dir = persistent ? this.config.persistentDir : this.config.volatileDir;
    fs.mkdirSync(dir, { recursive: true });
    const db = ClusterDatabase.open(
      {
        id,
        name,
        kindFlags: kindFlags & KIND_FLAGS,
        path: path.join(dir, `${name}.${this.config.pnn}`),
        hashSize: this.config.hashSize(),
        mutexes: this.config.mutexes,
      },
      (file) => fs.rmSync(file, { force: true }),
    );
    this.#byId.set(id, db);
    this.#byName.set(name, db);
    return { db, created: true };
  }

  /** Forgets the database and closes its file (which stays on disk, as with ctdbd). */
  detach(id: number): void {
    const db = this.require(id);
    this.#byId.delete(id);
    this.#byName.delete(db.name);
    this.pushes.delete(id);
    db.close();
  }

  /** Every `<name>.<pnn>` file of the persistent directory, attached (ctdbd does this at start). */
  attachPersistentFiles(): ClusterDatabase[] {
    const suffix = `.${this.config.pnn}`;
    let entries: string[];
    try {
      entries = fs.readdirSync(this.config.persistentDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries
      .filter((f) => f.endsWith(`.tdb${suffix}`))
      .sort()
      .map((f) => this.attach(f.slice(0, -suffix.length), DbFlag.PERSISTENT).db);
  }

  closeAll(): void {
    for (const db of this.#byId.values()) db.close();
    this.#byId.clear();
    this.#byName.clear();
    this.pushes.clear();
  }
}

/** Names become file names: nothing that could leave the database directory. */
function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new AttachError(`invalid database name ${JSON.stringify(name)}`);
  }
}
