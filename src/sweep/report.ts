/** Sweep outputs: per-run CSV and JSON, a per-configuration markdown table, and an SVG plot (Vega-Lite). */
import { summarize as summarizeValues, type Summary } from '../util/stats.js';
import type { Family, RunConfig } from './config.js';
import { configLabel } from './config.js';
import type { RunResult } from './run.js';
import { type TopLevelSpec, renderSvg } from '../plot/index.js';

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

/**
 * Accuracy against accumulator bits as a Vega-Lite spec: every run as a faint dot, every configuration as a marker at
 * its mean with a min–max bar and its number, one colour per configuration family; beside it the numbered list of
 * configurations. Float nets have no accumulator and are left out.
 */
export function plotSpec(records: RunRecord[], title = 'test accuracy vs accumulator bits'): TopLevelSpec {
  const pts = records.filter((r) => r.result.accumulatorBits !== null);
  const summaries = summarize(pts);
  // Small deterministic horizontal offsets (in bits) keep configurations at the same bit width apart.
  const perBits = new Map<number, number>();
  const offset = new Map<string, number>();
  for (const s of summaries) {
    const b = Math.round(s.accumulatorBits!.mean);
    const n = perBits.get(b) ?? 0;
    perBits.set(b, n + 1);
    offset.set(s.label, (n % 5) * 0.08 - 0.16);
  }
  const runs = pts.map((r) => ({ bits: r.result.accumulatorBits! + (offset.get(r.label) ?? 0), accuracy: r.result.testAccuracy, family: r.config.family }));
  const configs = summaries.map((s, i) => ({
    n: i + 1,
    name: `${i + 1}. ${s.label}`,
    family: s.family,
    bits: s.accumulatorBits!.mean + offset.get(s.label)!,
    mean: s.testAccuracy.mean,
    min: s.testAccuracy.min,
    max: s.testAccuracy.max,
    tip: `${s.label}: ${pct(s.testAccuracy.mean)} % at ${bitsFmt(s.accumulatorBits!.mean)} bits`,
  }));
  const families = [...new Set(summaries.map((s) => s.family))];
  const color = { field: 'family', type: 'nominal' as const, title: 'family', scale: { domain: families, range: families.map((f) => COLORS[f]) } };
  const x = { field: 'bits', type: 'quantitative' as const, title: 'accumulator bits (max over layers, signed)', scale: { zero: false, padding: 12 }, axis: { tickMinStep: 1, format: 'd' } };
  const y = { field: 'mean', type: 'quantitative' as const, title: 'test accuracy', scale: { zero: false }, axis: { format: '.0%' } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    hconcat: [
      {
        width: 460,
        height: 380,
        layer: [
          { data: { values: runs }, mark: { type: 'point', filled: true, opacity: 0.3, size: 16 }, encoding: { x, y: { ...y, field: 'accuracy' }, color } },
          { data: { values: configs }, mark: 'rule', encoding: { x, y: { ...y, field: 'min' }, y2: { field: 'max' }, color } },
          { data: { values: configs }, mark: { type: 'point', filled: true, size: 70, stroke: 'black', strokeWidth: 0.5, opacity: 1 }, encoding: { x, y, color, tooltip: { field: 'tip' } } },
          { data: { values: configs }, mark: { type: 'text', dx: 8, dy: -6, fontSize: 9 }, encoding: { x, y, color, text: { field: 'n' } } },
        ],
      },
      {
        width: 320,
        height: { step: 13 },
        view: { stroke: null },
        data: { values: configs },
        mark: { type: 'text', align: 'left', fontSize: 10 },
        encoding: { x: { value: 0 }, y: { field: 'n', type: 'ordinal', axis: null }, text: { field: 'name' }, color },
      },
    ],
  } as TopLevelSpec;
}

/** The sweep plot (plotSpec) as SVG text. */
export function toSvg(records: RunRecord[], title?: string): Promise<string> {
  return renderSvg(plotSpec(records, title));
}

export function recordFor(hash: string, config: RunConfig, result: RunRecord['result'], label = configLabel(config)): RunRecord {
  return { hash, label, config, result, finishedAt: new Date().toISOString() };
}
