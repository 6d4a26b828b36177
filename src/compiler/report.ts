/**
 * The compile report: per circuit value its kind, shape, calibrated integer range and bit width; totals as the
 * reference reports them (maximum bit width = "accumulator size"), table lookups by input width with the TFHE
 * parameter set each needs, linear work, and an encrypted-latency estimate from the cost model.
 *
 * The precision a lookup needs is its table width, except for an exactly rounded table: fhenet's TFHE executor
 * rounds it exactly by keeping the noise margin of the whole accumulator (docs/tfhe.md), so it costs like a table
 * of the accumulator's width. Approximately rounded tables (`method: 'approximate'`) cost their own width.
 */
import { type Circuit, bitsFor, size } from './circuit.js';
import type { CompiledCircuit } from './compile.js';
import { CostModel } from './cost.js';

export interface NodeReport {
  name: string;
  kind: string;
  shape: number[];
  range: [number, number];
  bits: number;
  /** For tables: input width after rounding, bits rounded away, and the univariate ops fused into it. */
  tluInputBits?: number;
  roundBits?: number;
  /** Per-channel rounding: the fewest bits any channel rounds away (equal to roundBits otherwise). */
  minRoundBits?: number;
  /** Aligned rounding: channels with a non-zero offset. */
  alignedChannels?: number;
  fused?: string[];
}

export interface CircuitReport {
  nodes: NodeReport[];
  /** The widest integer in the circuit (the reference's "accumulator size"). */
  maxBitWidth: number;
  /** The widest table-lookup input (after rounding). */
  maxTluInputBits: number;
  /** Programmable bootstraps per sample, by table input width. */
  tluCountByWidth: Record<number, number>;
  tluCount: number;
  /** Multiply-accumulates with clear weights per sample (non-zero weights only), and additions. */
  linearOps: { macs: number; adds: number };
  /** Lookups grouped by the precision fhenet's TFHE executor needs for them (see above), with the set and cost. */
  parameterSets: { bits: number; set: string; pbs: number; msPerPbs?: number; source: string; exactlyRoundedFrom?: number }[];
  /** Single-thread estimate; undefined when a width has no cost figure. */
  estimatedMsPerSample?: number;
  /**
   * When some tables are exactly rounded: the estimate if they were approximately rounded instead
   * (`--rounding-approximate`), i.e. every lookup at its table's own width.
   */
  approximateMsPerSample?: number;
}

export function circuitReport(compiled: CompiledCircuit, cost = new CostModel()): CircuitReport {
  const c: Circuit = compiled.circuit;
  const shapes = new Map(c.values.map((v) => [v.name, v.shape]));
  const tables = new Map(compiled.tables.map((t) => [t.name, t]));
  const nodes: NodeReport[] = [];
  const rangeOf = (v: string): [number, number] => {
    const r = c.ranges[v];
    return r ? [r.min, r.max] : [0, 0];
  };
  const inR = rangeOf(c.input.name);
  nodes.push({ name: c.input.name, kind: 'input', shape: c.input.shape, range: inR, bits: bitsFor({ min: inR[0], max: inR[1] }) });
  let macs = 0;
  let adds = 0;
  const byWidth: Record<number, number> = {};
  const byPrecision: Record<number, number> = {};
  /** Per precision: the table width of exactly rounded tables costed there (for the report's explanation). */
  const roundedTo: Record<number, number> = {};
  for (const op of c.ops) {
    const r = rangeOf(op.output);
    const row: NodeReport = { name: op.name, kind: op.kind, shape: shapes.get(op.output)!, range: r, bits: bitsFor({ min: r[0], max: r[1] }) };
    const outN = size(row.shape);
    if (op.kind === 'gemm') macs += countNonZero(op.weight);
    if (op.kind === 'conv') macs += (countNonZero(op.weight) * outN) / op.weightDims[0];
    if (op.kind === 'sumpool') adds += outN * (op.kernel[0] * op.kernel[1] - 1);
    if (op.kind === 'add') adds += outN;
    if (op.kind === 'tlu') {
      const t = tables.get(op.name)!;
      row.tluInputBits = op.inputBits;
      row.roundBits = op.roundBits;
      row.minRoundBits = t.minRoundBits;
      row.alignedChannels = t.alignedChannels;
      row.fused = t.fused;
      byWidth[op.inputBits] = (byWidth[op.inputBits] ?? 0) + outN;
      const precision = op.roundBits > 0 && !op.approximate ? op.inputBits + op.roundBits : op.inputBits;
      byPrecision[precision] = (byPrecision[precision] ?? 0) + outN;
      if (precision !== op.inputBits) roundedTo[precision] = op.inputBits;
    }
    nodes.push(row);
  }
  const parameterSets = Object.entries(byPrecision).map(([w, pbs]) => {
    const p = cost.forWidth(Number(w));
    return { bits: Number(w), set: p.set, pbs, msPerPbs: p.msPerPbs, source: p.source, ...(roundedTo[Number(w)] !== undefined ? { exactlyRoundedFrom: roundedTo[Number(w)] } : {}) };
  });
  const known = parameterSets.every((p) => p.msPerPbs !== undefined);
  const ownWidth = Object.entries(byWidth).map(([w, n]) => n * (cost.forWidth(Number(w)).msPerPbs ?? NaN));
  const approximate = ownWidth.reduce((a, b) => a + b, 0);
  return {
    nodes,
    maxBitWidth: Math.max(...nodes.map((n) => n.bits)),
    maxTluInputBits: Math.max(0, ...nodes.map((n) => n.tluInputBits ?? 0)),
    tluCountByWidth: byWidth,
    tluCount: Object.values(byWidth).reduce((a, b) => a + b, 0),
    linearOps: { macs, adds },
    parameterSets,
    estimatedMsPerSample: known ? parameterSets.reduce((a, p) => a + p.pbs * p.msPerPbs!, 0) : undefined,
    ...(Object.keys(roundedTo).length && Number.isFinite(approximate) ? { approximateMsPerSample: approximate } : {}),
  };
}

function countNonZero(w: Int32Array): number {
  let n = 0;
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) n++;
  return n;
}

export function formatReport(r: CircuitReport): string {
  const lines: string[] = [];
  lines.push('node                          kind       shape          range                bits  table');
  for (const n of r.nodes) {
    const rounded = !n.roundBits
      ? ''
      : ` (${n.minRoundBits !== undefined && n.minRoundBits !== n.roundBits ? `${n.minRoundBits}–${n.roundBits} per channel` : n.roundBits} rounded away${n.alignedChannels ? `, ${n.alignedChannels} channels aligned` : ''})`;
    const table = n.tluInputBits !== undefined ? `${n.tluInputBits}-bit input${rounded}${n.fused?.length ? ` ← ${n.fused.join(' → ')}` : ''}` : '';
    lines.push(
      `${n.name.slice(0, 29).padEnd(30)}${n.kind.padEnd(11)}${`[${n.shape}]`.padEnd(15)}${`[${n.range[0]}, ${n.range[1]}]`.padEnd(21)}${String(n.bits).padEnd(6)}${table}`,
    );
  }
  lines.push('');
  lines.push(`max bit width (accumulator size): ${r.maxBitWidth}`);
  lines.push(`widest table input:               ${r.maxTluInputBits} bits`);
  lines.push(`table lookups per sample:         ${r.tluCount} (${Object.entries(r.tluCountByWidth).map(([w, n]) => `${n} × ${w}-bit`).join(', ')})`);
  lines.push(`linear work per sample:           ${r.linearOps.macs} multiply-accumulates, ${r.linearOps.adds} additions`);
  for (const p of r.parameterSets) {
    lines.push(`  ${p.bits}-bit lookups → ${p.set}: ${p.pbs} PBS × ${p.msPerPbs ?? '?'} ms (${p.source})`);
    if (p.exactlyRoundedFrom !== undefined) {
      lines.push(
        `    (includes ${p.exactlyRoundedFrom}-bit tables exactly rounded from ${p.bits}-bit accumulators: fhenet's TFHE executor rounds exactly by ` +
          `reading the whole accumulator, so they cost ${p.bits}-bit lookups; --rounding-approximate makes them ${p.exactlyRoundedFrom}-bit lookups)`,
      );
    }
  }
  lines.push(`estimated latency:                ${r.estimatedMsPerSample !== undefined ? `${(r.estimatedMsPerSample / 1000).toFixed(2)} s per sample, one thread` : 'unknown (a width has no cost figure)'}`);
  if (r.approximateMsPerSample !== undefined) {
    lines.push(`  with --rounding-approximate:    ${(r.approximateMsPerSample / 1000).toFixed(2)} s per sample (every lookup at its table's width)`);
  }
  return lines.join('\n');
}
