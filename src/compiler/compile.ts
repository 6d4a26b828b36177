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
import { ChannelStats, type RoundingOption, planTableRounding, roundingSpec } from './rounding.js';
import { quantizeInput, simulate } from './simulate.js';

export type { RoundingOption };

export interface CompileOptions {
  /**
   * Round every table input to this many bits (Concrete ML's rounding_threshold_bits). The object form adds
   * fhenet's refinements (src/compiler/rounding.ts): `perChannel` (each channel rounds away only what its own range
   * needs) and `align` (per-channel offsets put the rounding steps on the table's steps).
   */
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
  tables: {
    name: string;
    accRange: IntRange;
    accBits: number;
    /** Bits rounded away: the most over channels, and the fewest (they differ with per-channel rounding). */
    roundBits: number;
    minRoundBits: number;
    /** Channels whose rounding has a non-zero offset (aligned rounding). */
    alignedChannels: number;
    inputBits: number;
    fused: string[];
  }[];
}

export function compileGraph(graph: Graph, calib: Calibration, opts: CompileOptions = {}): CompiledCircuit {
  const maxBits = opts.maxTluBits ?? 16;
  const rounding = roundingSpec(opts.roundingThresholdBits);
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
  // Per-channel ranges (and histograms for aligned rounding) of every table input, when a refinement needs them.
  const channelStats = new Map<string, ChannelStats>();
  if (rounding && (rounding.perChannel || rounding.align)) {
    for (const t of lowered.tlus) channelStats.set(t.op.name, new ChannelStats(t.op.channels, t.op.channelStride, rounding.align));
  }
  const batch = opts.batchSize ?? 256;
  for (let s = 0; s < calib.n; s += batch) {
    const b = Math.min(batch, calib.n - s);
    const x = quantizeInput(draft, Array.prototype.slice.call(calib.data, s * per, (s + b) * per));
    simulate(draft, x, b, {
      onValue: (name, data) => record(name, data),
      tlu: (op, xin, nb) => {
        const t = pendingByName.get(op.name)!;
        channelStats.get(op.name)?.add(xin, nb);
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
    const plan = planTableRounding(rounding, accRange, channelStats.get(t.op.name), (acc, ch) => evalTlu(t, acc, ch), t.op.channels);
    const k = plan.k;
    const idxRange = plan.indexRange;
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
      // Entry j stands for the accumulators that round to j: centred on j·2^k_ch − o_ch.
      const kc = plan.channelK[ch]!;
      const o = plan.offsets[ch]!;
      for (let j = 0; j < width; j++) table[ch * width + j] = evalTlu(t, (lo + j) * 2 ** kc - o, ch);
    }
    Object.assign(t.op, { roundBits: k, inputBits, inputSigned: signed, tables: table });
    if (plan.channelK.some((kc) => kc !== k)) t.op.channelRoundBits = plan.channelK;
    const alignedChannels = plan.offsets.reduce((n, o) => n + (o !== 0 ? 1 : 0), 0);
    if (alignedChannels > 0) t.op.roundOffsets = plan.offsets;
    if (k > 0 && rounding?.method === 'approximate') t.op.approximate = true;
    const minRoundBits = plan.channelK.reduce((a, b) => Math.min(a, b), k);
    tables.push({ name: t.op.name, accRange, accBits, roundBits: k, minRoundBits, alignedChannels, inputBits, fused: t.source.fused });
  }
  draft.ranges = Object.fromEntries(ranges);
  if (rounding) {
    const extra = [rounding.perChannel ? 'per channel' : '', rounding.align ? 'aligned' : ''].filter(Boolean).join(', ');
    draft.metadata.rounding = `${rounding.bits} bits (${rounding.method}${extra ? `; ${extra}` : ''})`;
  }
  validateCircuit(draft);
  return { circuit: draft, nodeValues: lowered.nodeValues, tables };
}
