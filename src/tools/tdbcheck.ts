// Structural checker like `tdbtool FILE check`: exit 0 and the same message when the file is
// sound, exit 1 naming the first problem otherwise.
import { TdbFile } from '../store';
import { runTool } from './run-tool';

runTool('tdbcheck', 'tdbcheck FILE', (argv, out) => {
  if (argv.length !== 1 || argv[0].startsWith('-')) return 'usage';
  const db = TdbFile.open(argv[0], { access: 'r' });
  try {
    const report = db.check();
    if (!report.ok) {
      out(`Integrity check for ${argv[0]} failed: ${report.problem}\n`);
      return 1;
    }
    out(`Database integrity is OK and has ${report.records} records.\n`);
    return 0;
  } finally {
    db.close();
  }
});
