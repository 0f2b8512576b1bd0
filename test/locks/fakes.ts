// In-memory stand-ins for a database and for lock helper processes, with an "external" lock
// holder (the part smbd plays) so contention can be scripted.
import type { LockDatabase, LockHelperEvents, LockHelperHandle, LockHelperLauncher } from '../../src/locks';

const WHOLE_DB = '\u0000whole-database';

export class FakeDatabase implements LockDatabase {
  readonly path: string;
  readonly tdbFlags = 0;
  /** Who holds each chain (key in latin1, or WHOLE_DB): 'daemon', 'external' or 'helper'. */
  readonly holders = new Map<string, string>();

  constructor(readonly name: string) {
    this.path = `/fake/${name}`;
  }

  holdExternally(key: string | undefined): void {
    this.holders.set(key ?? WHOLE_DB, 'external');
  }

  releaseExternally(key: string | undefined): void {
    this.holders.delete(key ?? WHOLE_DB);
  }

  /** Takes a chain (or the whole database) for `who`; false if anyone else has it. */
  take(key: Buffer | undefined, who: string): boolean {
    const id = key === undefined ? WHOLE_DB : key.toString('latin1');
    if (this.holders.has(WHOLE_DB)) return false;
    if (id === WHOLE_DB ? this.holders.size > 0 : this.holders.has(id)) return false;
    this.holders.set(id, who);
    return true;
  }

  drop(key: Buffer | undefined): void {
    const id = key === undefined ? WHOLE_DB : key.toString('latin1');
    if (!this.holders.delete(id)) throw new Error(`${this.name}: unlock of ${id} which is not locked`);
  }

  tryLockRecord(key: Buffer): boolean {
    return this.take(key, 'daemon');
  }
  unlockRecord(key: Buffer): void {
    this.drop(key);
  }
  tryLockAll(): boolean {
    return this.take(undefined, 'daemon');
  }
  unlockAll(): void {
    this.drop(undefined);
  }
}

/** Helpers that poll for their lock every millisecond; counts how many run per database. */
export class FakeLauncher implements LockHelperLauncher {
  readonly running = new Map<string, number>();
  readonly maxRunning = new Map<string, number>();
  launched = 0;

  launch(database: LockDatabase, key: Buffer | undefined, events: LockHelperEvents): LockHelperHandle {
    const db = database as FakeDatabase;
    this.launched++;
    const count = (this.running.get(db.name) ?? 0) + 1;
    this.running.set(db.name, count);
    this.maxRunning.set(db.name, Math.max(count, this.maxRunning.get(db.name) ?? 0));
    let locked = false;
    let finished = false;
    const exit = (reason: string): void => {
      if (finished) return;
      finished = true;
      clearInterval(poll);
      if (locked) db.drop(key);
      this.running.set(db.name, (this.running.get(db.name) ?? 1) - 1);
      setImmediate(() => events.exited(reason));
    };
    const poll = setInterval(() => {
      if (!locked && db.take(key, 'helper')) {
        locked = true;
        events.locked();
      }
    }, 1);
    return { pid: 0, release: () => exit('released'), kill: () => exit('killed') };
  }
}
