// Builds dist/ctdbd: a Node single executable application whose embedded main
// (src/bin/sea-main.ts) loads dist/src/bin/ctdbd.js of the package it sits in. Being a real
// executable named ctdbd is what makes /proc/PID/exe, `pidof ctdbd` and `ps` show ctdbd.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot, seaBinaryPath } from './package-root';

// Fixed by Node for every SEA-capable release (see the "single executable applications" docs).
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const seaMain = path.join(packageRoot, 'dist', 'src', 'bin', 'sea-main.js');

/**
 * What the binary was built from: the embedded main's text and the node it copies. (tsc
 * rewrites sea-main.js on every build, so its mtime says nothing.)
 */
function buildInputsDigest(): string {
  const hash = createHash('sha256').update(fs.readFileSync(seaMain));
  const node = fs.statSync(fs.realpathSync(process.execPath));
  return hash.update(`${process.version} ${node.size} ${node.mtimeMs}`).digest('hex');
}

const stampPath = `${seaBinaryPath}.stamp`;

export function seaBinaryIsCurrent(): boolean {
  try {
    return fs.existsSync(seaBinaryPath) && fs.readFileSync(stampPath, 'utf8') === buildInputsDigest();
  } catch {
    return false;
  }
}

/** Runs a build step; its chatter (postject warns about every ELF note) only shows on failure. */
function quietly(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${path.basename(args[0] ?? command)} failed (${result.error?.message ?? `status ${result.status}`}):\n${result.stdout}${result.stderr}`);
  }
}

export function buildSeaBinary(): string {
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
    quietly(nodeBinary, ['--experimental-sea-config', config]);
    const binary = path.join(work, 'ctdbd');
    fs.copyFileSync(nodeBinary, binary);
    quietly(nodeBinary, [require.resolve('postject/dist/cli.js'), binary, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
    fs.chmodSync(binary, 0o755);
    fs.renameSync(binary, seaBinaryPath);
    fs.writeFileSync(stampPath, buildInputsDigest());
    return seaBinaryPath;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export function ensureSeaBinary(): string {
  return seaBinaryIsCurrent() ? seaBinaryPath : buildSeaBinary();
}

// `node dist/scripts/build-sea.js [--force]`: the build step; skips an up-to-date binary.
if (require.main === module) {
  try {
    const current = !process.argv.includes('--force') && seaBinaryIsCurrent();
    console.log(current ? `${seaBinaryPath} is up to date` : `built ${buildSeaBinary()}`);
  } catch (err) {
    console.error(`build-sea: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
