// The script embedded in the ctdbd single executable (scripts/build-sea.ts). A SEA's own
// require() sees only built-in modules, so this loads the package's compiled ctdbd.js with a
// require rooted next to the binary: <package>/dist/ctdbd runs <package>/dist/src/bin/ctdbd.js.
// process.execPath is the resolved binary, so /usr/sbin/ctdbd may be a symlink to it.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

interface CtdbdEntry {
  run(args: readonly string[], self: readonly string[]): void;
}

const entry = path.join(path.dirname(process.execPath), 'src', 'bin', 'ctdbd.js');
if (!fs.existsSync(entry)) {
  process.stderr.write(`ctdbd: ${entry} is missing: this binary must stay in (or be symlinked from) the built package's dist/ directory\n`);
  process.exit(1);
}
const ctdbd = createRequire(entry)(entry) as CtdbdEntry;
// In a SEA argv is [binary, argv0, ...arguments]; the binary alone re-runs this program.
ctdbd.run(process.argv.slice(2), [process.execPath]);
