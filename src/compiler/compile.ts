/**
 * compileGraph: QONNX graph + calibration inputs → circuit with materialised tables, and its report.
 *
 * 1. lower the graph (lower.ts): linear ops become circuit ops, univariate chains become symbolic table lookups;
 * 2. calibrate: run the circuit on the calibration set with each table evaluated from its fused function, recording
 *    the integer range of every value;
 * 3. for each table: its input width from the calibrated range, optionally rounded to `roundingThresholdBits`
 *    (the accumulator keeps its top bits: k = width − bits low bits are rounded away, as Concrete ML does), then the
 *    table itself over the whole domain of that width, per channel.
 */
import type { Graph } from '../onnx/graph.js';
import { type Circuit, CIRCUIT_FORMAT, type IntRange, bitsFor, size, validateCircuit } from './circuit.js';
import { CompileError } from './errors.js';
import { type PendingTlu, evalTlu, lower } from './lower.js';
import { quantizeInput, roundedIndex, simulate } from './simulate.js';

export type RoundingOption = number | { bits: number; method?: 'exact' | 'approximate' };

export interface CompileOptions {
  /** Round every table input to this many bits (Concrete ML's rounding_threshold_bits). */
  roundingThresholdBits?: RoundingOption;
  /** Largest table input width allowed (Concrete's limit is 16). */
  maxTluBits?: number;
  /** Calibration batch size (memory bound). */
  batchSize?: number;
}

export interface Calibration {
  /** Float inputs, [n, ...input shape] row-major (NCHW for images). */
  data: ArrayLike<number>;
  n: number;
}

export interface CompiledCircuit {
  circuit: Circuit;
  /** Graph node → circuit value (for per-quantizer comparisons). */
  nodeValues: Map<string, string>;
  /** Per-table details: accumulator range before rounding, bits removed. */
  tables: { name: string; accRange: IntRange; accBits: number; roundBits: number; inputBits: number; fused: string[] }[];
}

export function roundingBits(opt: RoundingOption | undefined): { bits: number; method: 'exact' | 'approximate' } | undefined {
  if (opt === undefined) return undefined;
  const r = typeof opt === 'number' ? { bits: opt, method: 'exact' as const } : { bits: opt.bits, method: opt.method ?? 'exact' };
  if (!Number.isInteger(r.bits) || r.bits < 1 || r.bits > 16) throw new CompileError('options', `roundingThresholdBits must be an integer in [1, 16], got ${r.bits}`);
  return r;
}

export function compileGraph(graph: Graph, calib: Calibration, opts: CompileOptions = {}): CompiledCircuit {
  const maxBits = opts.maxTluBits ?? 16;
  const rounding = roundingBits(opts.roundingThresholdBits);
  const lowered = lower(graph);
  const per = size(lowered.input.shape);
  if (calib.n < 1) throw new CompileError('calibration', 'the calibration set is empty');
  if (calib.data.length !== calib.n * per) {
    throw new CompileError('calibration', `${calib.data.length} values do not make ${calib.n} inputs of shape [${lowered.input.shape}]`);
  }
  const draft: Circuit = {
    format: CIRCUIT_FORMAT,
    input: lowered.input,
    values: lowered.values,
    ops: lowered.ops,
    output: lowered.output,
    ranges: {},
    metadata: { graph: graph.name },
  };
  const pendingByName = new Map<string, PendingTlu>(lowered.tlus.map((t) => [t.op.name, t]));
  const ranges = new Map<string, IntRange>();
  const record = (name: string, data: Float64Array) => {
    let r = ranges.get(name);
    if (!r) ranges.set(name, (r = { min: Infinity, max: -Infinity }));
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < r.min) r.min = v;
      if (v > r.max) r.max = v;
    }
  };
  const batch = opts.batchSize ?? 256;
  for (let s = 0; s < calib.n; s += batch) {
    const b = Math.min(batch, calib.n - s);
    const x = quantizeInput(draft, Array.prototype.slice.call(calib.data, s * per, (s + b) * per));
    simulate(draft, x, b, {
      onValue: (name, data) => record(name, data),
      tlu: (op, xin, nb) => {
        const t = pendingByName.get(op.name)!;
        const outPer = xin.length / nb;
        const y = new Float64Array(xin.length);
        for (let i = 0; i < xin.length; i++) y[i] = evalTlu(t, xin[i]!, Math.floor((i % outPer) / op.channelStride) % op.channels);
        return y;
      },
    });
  }
  const tables: CompiledCircuit['tables'] = [];
  for (const t of lowered.tlus) {
    const accRange = ranges.get(t.op.input)!;
    const accBits = bitsFor(accRange);
    const k = rounding && accBits > rounding.bits ? accBits - rounding.bits : 0;
    const idxRange = { min: roundedIndex(accRange.min, k), max: roundedIndex(accRange.max, k) };
    const inputBits = bitsFor(idxRange);
    if (inputBits > maxBits) {
      throw new CompileError(
        t.op.name,
        `table lookup input needs ${inputBits} bits (accumulator range [${accRange.min}, ${accRange.max}] after ${t.source.fused.join(' → ') || 'the linear layer'}), over the ${maxBits}-bit limit`,
        `set roundingThresholdBits ≤ ${maxBits}, prune the preceding layer (fewer non-zero weights per neuron), or lower its weight/activation bit widths`,
      );
    }
    const signed = idxRange.min < 0;
    const width = 2 ** inputBits;
    const lo = signed ? -(width / 2) : 0;
    const table = new Int32Array(t.op.channels * width);
    for (let ch = 0; ch < t.op.channels; ch++) {
      for (let j = 0; j < width; j++) table[ch * width + j] = evalTlu(t, (lo + j) * 2 ** k, ch);
    }
    Object.assign(t.op, { roundBits: k, inputBits, inputSigned: signed, tables: table });
    tables.push({ name: t.op.name, accRange, accBits, roundBits: k, inputBits, fused: t.source.fused });
  }
  draft.ranges = Object.fromEntries(ranges);
  if (rounding) draft.metadata.rounding = `${rounding.bits} bits (${rounding.method})`;
  validateCircuit(draft);
  return { circuit: draft, nodeValues: lowered.nodeValues, tables };
}
