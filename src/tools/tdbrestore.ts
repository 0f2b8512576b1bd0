// tdbrestore-compatible loader: `tdbrestore [--hash-size N] [--jenkins] DBNAME < dump`.
// Creates a new file (never overwrites) and inserts every record of a tdbdump or
// ltdbtool dump (headers are re-encoded) in one transaction.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { TdbFile, TdbFlag, StoreMode, TDB_DEFAULT_HASH_SIZE, parseDump } from '../store';
import { runTool } from './run-tool';

runTool('tdbrestore', 'tdbrestore [--hash-size N] [--jenkins] DBNAME < tdbdump_output', (argv) => {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'hash-size': { type: 'string' }, jenkins: { type: 'boolean' } },
  });
  if (positionals.length !== 1) return 'usage';
  const hashSize = values['hash-size'] === undefined ? TDB_DEFAULT_HASH_SIZE : Number(values['hash-size']);
  const records = [...parseDump(fs.readFileSync(0))];
  const db = TdbFile.open(positionals[0], {
    exclusive: true,
    hashSize,
    flags: values.jenkins ? TdbFlag.INCOMPATIBLE_HASH : TdbFlag.DEFAULT,
    mode: 0o666 & ~process.umask(),
  });
  try {
    db.transaction(() => {
      for (const { key, data } of records) db.store(key, data, StoreMode.INSERT);
    });
  } finally {
    db.close();
  }
  return 0;
});
