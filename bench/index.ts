// `npm run bench`: runs every suite in bench/suites (or the ones named on the command
// line), prints each suite's table and writes the results as JSON under bench/results/.
import fs from 'node:fs';
import path from 'node:path';
import type { BenchSuite, SuiteResult } from './suite';
import { formatTable } from './suite';

async function main(): Promise<void> {
  const dir = path.join(__dirname, 'suites');
  const wanted = process.argv.slice(2);
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
    .sort();
  const resultsDir = path.join(__dirname, '..', '..', 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const all: SuiteResult[] = [];
  for (const file of files) {
    const suite = (require(path.join(dir, file)) as { default: BenchSuite }).default;
    process.stdout.write(`\n== ${suite.name}: ${suite.description}\n`);
    const result = await suite.run();
    process.stdout.write(formatTable(result) + '\n');
    for (const note of result.notes ?? []) process.stdout.write(`  ${note}\n`);
    all.push(result);
  }
  const out = path.join(resultsDir, `bench-${stamp}.json`);
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), host: process.version, suites: all }, null, 2));
  process.stdout.write(`\nresults: ${out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
