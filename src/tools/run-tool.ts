// Shared frame of the small store CLIs: buffered stdout, usage and error reporting, exit code.
import fs from 'node:fs';

export type ToolMain = (argv: string[], out: (text: string) => void) => number | 'usage';

export function runTool(name: string, usage: string, main: ToolMain): void {
  const chunks: string[] = [];
  let pending = 0;
  const flush = (): void => {
    if (chunks.length > 0) fs.writeSync(1, chunks.join(''));
    chunks.length = 0;
    pending = 0;
  };
  const out = (text: string): void => {
    chunks.push(text);
    pending += text.length;
    if (pending > 1 << 20) flush();
  };
  let code: number;
  try {
    const result = main(process.argv.slice(2), out);
    if (result === 'usage') {
      process.stderr.write(`Usage: ${usage}\n`);
      code = 1;
    } else {
      code = result;
    }
  } catch (err) {
    flush();
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    code = 1;
  }
  flush();
  process.exitCode = code;
}
