// Loads the compiled addon once. Each native module registers itself under its own
// name (see native/module.h); typed facades live next to the code that uses them.
import fs from 'node:fs';
import path from 'node:path';

export interface NativeErrnoError extends Error {
  code: string;
  errno: number;
}

/** The package root: works from src/ (tests), dist/src/ (built) and a SEA binary's side files. */
function findRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the ctdbd package root above ${start}`);
  }
}

export const projectRoot = findRoot(__dirname);

const addon = require(path.join(projectRoot, 'build', 'Release', 'ctdb_native.node')) as Record<string, unknown>;

export function nativeModule<T>(name: string): T {
  const mod = addon[name];
  if (mod === undefined) throw new Error(`native module '${name}' is not built into ctdb_native.node`);
  return mod as T;
}
