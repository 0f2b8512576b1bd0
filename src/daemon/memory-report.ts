// The text DUMP_MEMORY and the MEM_DUMP message return. ctdbd prints a talloc report;
// the tool only prints whatever string comes back, so we report the V8/native heaps.
export function memoryReport(): string {
  const usage = process.memoryUsage();
  const lines = Object.entries(usage).map(([name, bytes]) => `${name.padEnd(14)} ${bytes} bytes`);
  return `ctdbd memory usage (pid ${process.pid})\n${lines.join('\n')}\n`;
}
