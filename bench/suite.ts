// The shape every benchmark suite returns, and the one table printer they share.

export interface SuiteResult {
  suite: string;
  columns: string[];
  rows: Array<Array<string | number>>;
  /** Free-form lines printed under the table (ratios, verdicts against targets). */
  notes?: string[];
}

export interface BenchSuite {
  name: string;
  description: string;
  run(): Promise<SuiteResult>;
}

function cell(v: string | number): string {
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(3);
}

export function formatTable(result: SuiteResult): string {
  const cells = [result.columns, ...result.rows.map((r) => r.map(cell))];
  const widths = result.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
