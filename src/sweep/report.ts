/** Sweep outputs: per-run CSV and JSON, a per-configuration markdown table, and an SVG plot (hand-written SVG). */
import { summarize as summarizeValues, type Summary } from '../util/stats.js';
import type { Family, RunConfig } from './config.js';
import { configLabel } from './config.js';
import type { RunResult } from './run.js';

export interface RunRecord {
  hash: string;
  label: string;
  config: RunConfig;
  result: RunResult & { backend?: string };
  finishedAt: string;
}

/** Across-seed summary of one quantity: n, mean, sample standard deviation, min, max, 95 % CI of the mean (src/util/stats.ts). */
export type Stat = Summary;

export interface ConfigSummary {
  label: string;
  family: Family;
  runs: number;
  testAccuracy: Stat;
  floatAccuracy: Stat | null;
  accumulatorBits: Stat | null;
  worstCaseBits: Stat | null;
  maxNonZeroPerNeuron: Stat;
  ceiling: number | null;
  seconds: Stat;
}

export function stat(values: number[]): Stat {
  return summarizeValues(values);
}

function statOrNull(values: (number | null)[]): Stat | null {
  const v = values.filter((x): x is number => x !== null);
  return v.length ? stat(v) : null;
}

/** Groups runs by configuration (everything but the seed), in first-appearance order. */
export function summarize(records: RunRecord[]): ConfigSummary[] {
  const groups = new Map<string, RunRecord[]>();
  for (const r of records) {
    const g = groups.get(r.label) ?? [];
    g.push(r);
    groups.set(r.label, g);
  }
  return [...groups.entries()].map(([label, rs]) => ({
    label,
    family: rs[0]!.config.family,
    runs: rs.length,
    testAccuracy: stat(rs.map((r) => r.result.testAccuracy)),
    floatAccuracy: statOrNull(rs.map((r) => r.result.floatAccuracy)),
    accumulatorBits: statOrNull(rs.map((r) => r.result.accumulatorBits)),
    worstCaseBits: statOrNull(rs.map((r) => r.result.worstCaseBits)),
    maxNonZeroPerNeuron: stat(rs.map((r) => r.result.maxNonZeroPerNeuron)),
    ceiling: rs[0]!.result.ceiling,
    seconds: stat(rs.map((r) => r.result.seconds)),
  }));
}

const CSV_COLUMNS = [
  'hash', 'label', 'family', 'hidden', 'bits', 'k', 'strict', 'targetBits', 'input', 'seed', 'data', 'dataSeed', 'epochs', 'batchSize', 'lr',
  'testAccuracy', 'trainAccuracy', 'floatAccuracy', 'accumulatorBits', 'worstCaseBits', 'l1Bits', 'maxNonZeroPerNeuron', 'ceiling', 'seconds', 'backend',
] as const;

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(records: RunRecord[]): string {
  const rows = records.map((r) => {
    const c = r.config;
    const x = r.result;
    const v: Record<(typeof CSV_COLUMNS)[number], unknown> = {
      hash: r.hash, label: r.label, family: c.family, hidden: c.hidden, bits: c.bits, k: c.k, strict: c.strict, targetBits: c.targetBits, input: c.input,
      seed: c.seed, data: c.data.source, dataSeed: c.data.source === 'generated' ? c.data.seed : null, epochs: c.train.epochs, batchSize: c.train.batchSize,
      lr: c.train.lr, testAccuracy: x.testAccuracy, trainAccuracy: x.trainAccuracy, floatAccuracy: x.floatAccuracy, accumulatorBits: x.accumulatorBits,
      worstCaseBits: x.worstCaseBits, l1Bits: x.l1Bits, maxNonZeroPerNeuron: x.maxNonZeroPerNeuron, ceiling: x.ceiling, seconds: x.seconds, backend: x.backend,
    };
    return CSV_COLUMNS.map((k) => csvCell(v[k])).join(',');
  });
  return `${[CSV_COLUMNS.join(','), ...rows].join('\n')}\n`;
}

const pct = (v: number) => (100 * v).toFixed(2);
export const fmtStat = (s: Stat | null, f: (v: number) => string = pct) => (s === null ? '—' : s.min === s.max ? f(s.mean) : `${f(s.mean)} (${f(s.min)}–${f(s.max)})`);
/** Mean ± sample standard deviation, then the 95 % confidence interval of the mean (one run: the value). */
const fmtSpread = (s: Stat, f: (v: number) => string = pct) => (s.ci95 === null || s.min === s.max ? f(s.mean) : `${f(s.mean)} ± ${f(s.std)} [${f(s.ci95[0])}, ${f(s.ci95[1])}]`);
const bitsFmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

export function toMarkdown(summaries: ConfigSummary[]): string {
  const lines = [
    '| configuration | runs | test accuracy % mean (min–max) | test accuracy % mean ± sd [95 % CI] | float accuracy % | accumulator bits mean (min–max) | worst-case bits | max non-zero / neuron | s / run |',
    '|---|---|---|---|---|---|---|---|---|',
    ...summaries.map(
      (s) =>
        `| ${s.label} | ${s.runs} | ${fmtStat(s.testAccuracy)} | ${fmtSpread(s.testAccuracy)} | ${fmtStat(s.floatAccuracy)} | ${fmtStat(s.accumulatorBits, bitsFmt)} | ${fmtStat(s.worstCaseBits, bitsFmt)} | ${fmtStat(s.maxNonZeroPerNeuron, bitsFmt)} | ${s.seconds.mean.toFixed(1)} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

const COLORS: Record<Family, string> = { float: '#7f7f7f', ptq: '#d62728', qat: '#1f77b4', 'qat-brevitas': '#9467bd', a2q: '#2ca02c' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Accuracy against accumulator bits: every run as a faint dot, every configuration as a marker at its mean with a
 * min–max bar, one colour (series) per configuration family. Float nets have no accumulator and are left out.
 */
export function toSvg(records: RunRecord[], title = 'test accuracy vs accumulator bits'): string {
  const pts = records.filter((r) => r.result.accumulatorBits !== null);
  const summaries = summarize(pts);
  const W = 760;
  const H = 480;
  const m = { l: 60, r: 250, t: 40, b: 50 };
  const bits = pts.map((r) => r.result.accumulatorBits!);
  const accs = pts.map((r) => r.result.testAccuracy);
  const xMin = bits.length ? Math.min(...bits) - 1 : 4;
  const xMax = bits.length ? Math.max(...bits) + 1 : 10;
  const yMin = accs.length ? Math.max(0, Math.floor(Math.min(...accs) * 20) / 20 - 0.05) : 0.4;
  const yMax = 1;
  const X = (v: number) => m.l + ((v - xMin) / (xMax - xMin)) * (W - m.l - m.r);
  const Y = (v: number) => H - m.b - ((v - yMin) / (yMax - yMin)) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="15">${esc(title)}</text>`,
  ];
  for (let b = Math.ceil(xMin); b <= xMax; b++) {
    out.push(`<line x1="${X(b)}" y1="${Y(yMin)}" x2="${X(b)}" y2="${Y(yMax)}" stroke="#eee"/>`, `<text x="${X(b)}" y="${H - m.b + 18}" text-anchor="middle">${b}</text>`);
  }
  for (let a = Math.ceil(yMin * 20) / 20; a <= yMax + 1e-9; a += 0.05) {
    out.push(`<line x1="${m.l}" y1="${Y(a)}" x2="${W - m.r}" y2="${Y(a)}" stroke="#eee"/>`, `<text x="${m.l - 6}" y="${Y(a) + 4}" text-anchor="end">${Math.round(a * 100)}%</text>`);
  }
  out.push(
    `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#333"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">accumulator bits (max over layers, signed)</text>`,
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">test accuracy</text>`,
  );
  // Small deterministic horizontal offsets keep configurations at the same bit width apart.
  const offsets = new Map<number, number>();
  summaries.forEach((s, i) => {
    const color = COLORS[s.family];
    const bx = s.accumulatorBits!.mean;
    const n = offsets.get(Math.round(bx)) ?? 0;
    offsets.set(Math.round(bx), n + 1);
    const dx = (n % 5) * 6 - 12;
    for (const r of pts.filter((p) => p.label === s.label)) {
      out.push(`<circle cx="${(X(r.result.accumulatorBits!) + dx).toFixed(1)}" cy="${Y(r.result.testAccuracy).toFixed(1)}" r="2" fill="${color}" fill-opacity="0.3"/>`);
    }
    const cx = X(bx) + dx;
    out.push(
      `<line x1="${cx.toFixed(1)}" y1="${Y(s.testAccuracy.min).toFixed(1)}" x2="${cx.toFixed(1)}" y2="${Y(s.testAccuracy.max).toFixed(1)}" stroke="${color}"/>`,
      `<circle cx="${cx.toFixed(1)}" cy="${Y(s.testAccuracy.mean).toFixed(1)}" r="4.5" fill="${color}" stroke="black" stroke-width="0.5"><title>${esc(s.label)}: ${pct(s.testAccuracy.mean)}% at ${bitsFmt(s.accumulatorBits!.mean)} bits</title></circle>`,
      `<text x="${(cx + 7).toFixed(1)}" y="${(Y(s.testAccuracy.mean) - 5).toFixed(1)}" font-size="9" fill="${color}">${i + 1}</text>`,
    );
  });
  // Legend: families, then numbered configurations.
  let ly = m.t + 8;
  const fams = [...new Set(summaries.map((s) => s.family))];
  for (const f of fams) {
    out.push(`<circle cx="${W - m.r + 20}" cy="${ly}" r="5" fill="${COLORS[f]}"/>`, `<text x="${W - m.r + 30}" y="${ly + 4}">${esc(f)}</text>`);
    ly += 16;
  }
  ly += 6;
  summaries.forEach((s, i) => {
    out.push(`<text x="${W - m.r + 14}" y="${ly}" font-size="10" fill="${COLORS[s.family]}">${i + 1}. ${esc(s.label)}</text>`);
    ly += 13;
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function recordFor(hash: string, config: RunConfig, result: RunRecord['result'], label = configLabel(config)): RunRecord {
  return { hash, label, config, result, finishedAt: new Date().toISOString() };
}
