// Loopback address blocks for local clusters. Every block is 127.A.B.1..n; a lock file per
// block in /tmp makes concurrently running test processes (vitest workers, a developer's
// `npm run cluster`) never share one, and a bind probe on the CTDB port skips blocks that some
// process outside this scheme is using.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const CTDB_PORT = 4379;

const LOCK_DIR = '/tmp/ctdb-address-blocks';
const MAX_ATTEMPTS = 200;

export interface AddressBlock {
  readonly addresses: readonly string[];
  /** Gives the block back; idempotent. */
  release(): void;
}

/** n (1..254) addresses of one block; a random block unless `preferred` (e.g. [127, 0, 10]) is free. */
export async function allocateAddressBlock(n: number, preferred?: readonly [number, number, number]): Promise<AddressBlock> {
  if (!Number.isInteger(n) || n < 1 || n > 254) throw new RangeError(`cannot allocate ${n} node addresses: need 1..254`);
  fs.mkdirSync(LOCK_DIR, { recursive: true });
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const prefix = attempt === 0 && preferred ? preferred.join('.') : randomPrefix();
    const block = tryLockBlock(prefix, n);
    if (block === undefined) continue;
    if (await allBindable(block.addresses)) return block;
    block.release();
  }
  throw new Error(`no free loopback address block of ${n} addresses after ${MAX_ATTEMPTS} attempts (locks in ${LOCK_DIR})`);
}

function randomPrefix(): string {
  // Second octet 1..254 keeps clear of 127.0.x.y, where hand-started clusters usually live.
  const second = 1 + Math.floor(Math.random() * 254);
  const third = Math.floor(Math.random() * 256);
  return `127.${second}.${third}`;
}

function tryLockBlock(prefix: string, n: number): AddressBlock | undefined {
  const lockPath = path.join(LOCK_DIR, `${prefix}.lock`);
  if (!createLockFile(lockPath)) return undefined;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    fs.rmSync(lockPath, { force: true });
    process.removeListener('exit', release);
  };
  process.on('exit', release);
  const addresses = Array.from({ length: n }, (_, i) => `${prefix}.${i + 1}`);
  return { addresses, release };
}

/** O_EXCL create holding our pid; a lock whose owner has died is taken over. */
function createLockFile(lockPath: string): boolean {
  for (let tries = 0; tries < 2; tries++) {
    try {
      fs.writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!isStaleLock(lockPath)) return false;
      fs.rmSync(lockPath, { force: true });
    }
  }
  return false;
}

function isStaleLock(lockPath: string): boolean {
  let owner: number;
  try {
    owner = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10);
  } catch {
    return false; // vanished or unreadable: let the next attempt decide
  }
  if (!Number.isInteger(owner) || owner <= 0) return true;
  try {
    process.kill(owner, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function allBindable(addresses: readonly string[]): Promise<boolean> {
  const results = await Promise.all(addresses.map(canBind));
  return results.every(Boolean);
}

function canBind(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: address, port: CTDB_PORT, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
