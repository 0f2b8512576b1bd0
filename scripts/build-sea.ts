// Builds dist/ctdbd: a Node single executable application whose embedded main
// (src/bin/sea-main.ts) loads dist/src/bin/ctdbd.js of the package it sits in. Being a real
// executable named ctdbd is what makes /proc/PID/exe, `pidof ctdbd` and `ps` show ctdbd.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot, seaBinaryPath } from './package-root';

interface PostjectApi {
  inject(file: string, resourceName: string, data: Buffer, options: { sentinelFuse: string; overwrite?: boolean }): Promise<void>;
}

// Fixed by Node for every SEA-capable release (see the "single executable applications" docs).
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const seaMain = path.join(packageRoot, 'dist', 'src', 'bin', 'sea-main.js');

/** Rebuilds when the binary is missing or older than its embedded main or the node it copies. */
export function seaBinaryIsCurrent(): boolean {
  if (!fs.existsSync(seaBinaryPath)) return false;
  const built = fs.statSync(seaBinaryPath).mtimeMs;
  return [seaMain, process.execPath].every((input) => fs.statSync(input).mtimeMs <= built);
}

export async function buildSeaBinary(): Promise<string> {
  if (!fs.existsSync(seaMain)) throw new Error(`${seaMain} is missing: run the TypeScript build (tsc) first`);
  const nodeBinary = fs.realpathSync(process.execPath);
  if (!fs.readFileSync(nodeBinary).includes(`${SEA_FUSE}:0`)) {
    throw new Error(`${nodeBinary} has no unused SEA fuse: it cannot be turned into a single executable`);
  }
  // Work inside dist/ so the final rename is atomic: concurrent builds (vitest workers) never
  // expose a half-written binary.
  const work = fs.mkdtempSync(path.join(packageRoot, 'dist', '.sea-build-'));
  try {
    const blob = path.join(work, 'sea-prep.blob');
    const config = path.join(work, 'sea-config.json');
    fs.writeFileSync(config, JSON.stringify({ main: seaMain, output: blob, disableExperimentalSEAWarning: true }));
    execFileSync(nodeBinary, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
    const binary = path.join(work, 'ctdbd');
    fs.copyFileSync(nodeBinary, binary);
    const postject = require('postject') as PostjectApi;
    await postject.inject(binary, 'NODE_SEA_BLOB', fs.readFileSync(blob), { sentinelFuse: SEA_FUSE });
    fs.chmodSync(binary, 0o755);
    fs.renameSync(binary, seaBinaryPath);
    return seaBinaryPath;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export async function ensureSeaBinary(): Promise<string> {
  return seaBinaryIsCurrent() ? seaBinaryPath : buildSeaBinary();
}

if (require.main === module) {
  buildSeaBinary().then(
    (binary) => console.log(`built ${binary}`),
    (err: unknown) => {
      console.error(`build-sea: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
