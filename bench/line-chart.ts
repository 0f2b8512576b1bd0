// A dependency-free SVG line chart for benchmark results (log axes, one line per series), written
// next to the JSON under bench/results/.
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../src/native';

export interface ChartSeries {
  name: string;
  points: Array<[number, number]>;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Log-scale axes (every value must then be > 0). */
  xLog?: boolean;
  yLog?: boolean;
  /** Text shown for an x tick instead of the number. */
  xTickLabel?: (x: number) => string;
  series: ChartSeries[];
}

const WIDTH = 760;
const HEIGHT = 440;
const MARGIN = { left: 80, right: 190, top: 40, bottom: 60 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function scale(values: number[], log: boolean, from: number, to: number): (v: number) => number {
  const f = log ? Math.log10 : (v: number): number => v;
  const lo = Math.min(...values.map(f));
  const hi = Math.max(...values.map(f));
  const span = hi - lo || 1;
  return (v) => from + ((f(v) - lo) / span) * (to - from);
}

function yTicks(values: number[], log: boolean): number[] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (log) {
    const ticks: number[] = [];
    for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) ticks.push(10 ** p);
    return ticks.filter((t) => t >= lo / 10 && t <= hi * 10);
  }
  return Array.from({ length: 6 }, (_, i) => lo + ((hi - lo) * i) / 5);
}

export function renderLineChart(chart: LineChart): string {
  const xs = chart.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = chart.series.flatMap((s) => s.points.map((p) => p[1]));
  const ticksY = yTicks(ys, chart.yLog ?? false);
  const x = scale(xs, chart.xLog ?? false, MARGIN.left, WIDTH - MARGIN.right);
  const y = scale([...ys, ...ticksY], chart.yLog ?? false, HEIGHT - MARGIN.bottom, MARGIN.top);
  const label = chart.xTickLabel ?? ((v: number): string => v.toLocaleString('en-US'));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escape(chart.title)}</text>`,
    `<text x="${(MARGIN.left + WIDTH - MARGIN.right) / 2}" y="${HEIGHT - 15}" text-anchor="middle">${escape(chart.xLabel)}</text>`,
    `<text transform="translate(18 ${HEIGHT / 2}) rotate(-90)" text-anchor="middle">${escape(chart.yLabel)}</text>`,
  ];
  for (const tick of ticksY) {
    const ty = y(tick).toFixed(1);
    out.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${ty}" y2="${ty}" stroke="#ddd"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle">${escape(tick.toPrecision(3).replace(/\.?0+$/, ''))}</text>`);
  }
  for (const tick of [...new Set(xs)]) {
    const tx = x(tick).toFixed(1);
    out.push(`<line x1="${tx}" x2="${tx}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="#eee"/>`);
    out.push(`<text x="${tx}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle">${escape(label(tick))}</text>`);
  }
  chart.series.forEach((series, i) => {
    const color = COLORS[i % COLORS.length];
    const points = series.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.join(' ')}"/>`);
    for (const point of points) {
      const [cx, cy] = point.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`);
    }
    const ly = MARGIN.top + 10 + i * 20;
    out.push(`<line x1="${WIDTH - MARGIN.right + 12}" x2="${WIDTH - MARGIN.right + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${WIDTH - MARGIN.right + 38}" y="${ly}" dominant-baseline="middle">${escape(series.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Writes bench/results/<name>-<timestamp>.svg and returns its path. */
export function writeLineChart(name: string, chart: LineChart): string {
  const dir = path.join(projectRoot, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.svg`);
  fs.writeFileSync(file, renderLineChart(chart));
  return file;
}
