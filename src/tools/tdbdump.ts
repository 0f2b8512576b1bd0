// tdbdump-compatible dumper: `tdbdump [-k key] [--ltdb [--empty]] FILE`. Same output as
// Debian's tdbdump; --ltdb decodes CTDB's record header like `ltdbtool dump`.
import { parseArgs } from 'node:util';
import { TdbFile, escapeTdbData, formatDumpRecord, formatLtdbValue } from '../store';
import { runTool } from './run-tool';

runTool('tdbdump', 'tdbdump [-k keyname] [--ltdb [--empty]] FILE', (argv, out) => {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { k: { type: 'string' }, ltdb: { type: 'boolean' }, empty: { type: 'boolean' } },
  });
  if (positionals.length !== 1) return 'usage';
  // Read-only opens take no locks (as tdbdump does), so this also works on mutex files.
  const db = TdbFile.open(positionals[0], { access: 'r' });
  try {
    if (values.k !== undefined) {
      const value = db.fetch(values.k);
      if (value === undefined) return 1;
      out(escapeTdbData(value));
      return 0;
    }
    db.traverseRead((key, data) => {
      const text = values.ltdb ? formatLtdbValue(key, data, values.empty === true) : formatDumpRecord(key, data);
      if (text !== undefined) out(text);
    });
    return 0;
  } finally {
    db.close();
  }
});
