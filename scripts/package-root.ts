// The package directory, from scripts/ (vitest runs the TS sources) and dist/scripts/ (built).
import fs from 'node:fs';
import path from 'node:path';

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the ctdbd package root above ${start}`);
  }
}

export const packageRoot = findPackageRoot(__dirname);

/** The single executable application `npm run build` produces (scripts/build-sea.ts). */
export const seaBinaryPath = path.join(packageRoot, 'dist', 'ctdbd');
