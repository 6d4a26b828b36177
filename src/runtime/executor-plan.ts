/**
 * Execution plan of a compiled circuit (src/compiler/circuit.ts) on TFHE ciphertexts: plaintext encodings per value,
 * linear maps as sparse term lists, table polynomials, static noise analysis and the choice of parameter set.
 * Shared by the client (which needs the input/output encodings) and the server (which evaluates); it loads neither
 * node-tfhe nor TensorFlow.js. Design and noise argument: docs/tfhe.md, "Executing circuits".
 *
 * Encodings. Every value v is encoded at its own scale Δ_v = 2^(63 − E_v): an integer x sits at x·Δ_v on the 2^64
 * torus, its plaintext space is Z/2^(E_v+1) (one padding bit on top), and integer linear combinations are exact on
 * it. E is assigned backwards: a table lookup reading B = inputBits + roundBits accumulator bits asks for E = B, a
 * linear op asks its inputs for the E of its output, the circuit output asks for the bits of its worst-case range
 * plus headroom. A value asked for several E's is produced at the largest and multiplied by 2^(E_v − E_c) for a
 * consumer wanting E_c (exact: 2^(E_v−E_c)·Δ_v = Δ_c).
 *
 * Table lookups. The accumulator y = x − lo·2^k (lo = −2^(w−1) for signed tables, else 0; a clear constant added
 * on the torus) lies in [0, 2^B) with the padding bit clear. The table polynomial has 2^w boxes of N/2^w
 * coefficients, box m centred on y = m·2^k, so the PBS returns table[round(y / 2^k)]. For k ≥ 1 half an accumulator
 * unit (2^(62−B)) is added too: every integer y then sits half a unit inside its box, ties included, so the lookup is
 * *exactly* the simulator's floor((x + 2^(k−1)) / 2^k) (round half up) whenever the noise stays below half a unit —
 * the same margin, 2^(62−B), as for k = 0 (half a box of 2^B boxes). The noise check below uses that margin.
 *
 * Approximate rounding (a tlu marked `approximate`): the same layout, checked against half a box, 2^(62−w), instead:
 * an accumulator up to half a box from its box centre plus noise under half a box lands at most one box away, so
 * the index is the simulator's or off by one (near a boundary), never more; the compiler gave such tables a spare
 * entry past each end of their range, so an off-by-one read never wraps. Every value feeding only approximate
 * tables inherits the relaxed margin (the `margin` pass below), which is what lets a wide accumulator run on a set
 * sized for its rounded width.
 */
import { type Circuit, type CircuitOp, type IntRange, bitsFor, size, tluIndex, tluRounding } from '../compiler/circuit.js';
import { TfheNoiseError, TfheParameterError } from '../tfhe/errors.js';
import type { Lut } from '../tfhe/lut.js';
import { reduceWeight } from '../tfhe/lwe.js';
import { type NoiseBudget, log2TailProbability, maxVarianceFor, noiseBudget } from '../tfhe/noise.js';
import { NAMED_PARAMS, namedParams, plaintextModulus, type TfheParams } from '../tfhe/params.js';

type Tlu = Extract<CircuitOp, { kind: 'tlu' }>;

export interface ExecutorPlanOptions {
  /** Failure probability per table lookup and per output decryption, log2 (default −40). */
  log2PError?: number;
  /** Force a parameter set (name or full description); default: the smallest named set that passes the checks. */
  params?: string | TfheParams;
  /** Bits of headroom of the output encoding above its worst-case range (default 1). */
  outputHeadroomBits?: number;
}

/**
 * Candidate named sets (node-tfhe 1.7.0 names), cheapest first by fhenet's measured single-thread KS-PBS
 * (bench/results/tfhe.md): 1_1 ≈ 15 ms, 2_2 ≈ 22 ms, 5_0 ≈ 43 ms (5 bits, N = 4096, one-level PBS), 2_3 ≈ 73 ms
 * (5 bits, N = 4096, two-level PBS: 2^7 less PBS output noise than 5_0, for circuits whose dot products or outputs
 * need it), 3_3 ≈ 200 ms. The plan takes the first that passes every noise check.
 */
export const EXECUTOR_SETS = [
  'V1_7_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M128',
  'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128',
  'V1_6_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128',
  'V1_6_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128',
  'V1_7_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128',
] as const;

/** out[j] = Σ_t w[t]·in[src[t]] for t in [offsets[j], offsets[j+1]); sources index the op's inputs concatenated. */
export interface LinearTerms {
  offsets: Int32Array;
  src: Int32Array;
  w: Float64Array;
}

export type PlanStep =
  | {
      kind: 'linear';
      op: string;
      inputs: string[];
      output: string;
      /** Encoding of inputs and output. */
      E: number;
      /** log2 of the error the output must stay under (62 − E unless only approximate tables read it). */
      margin: number;
      terms: LinearTerms;
    }
  | {
      kind: 'tlu';
      op: string;
      input: string;
      output: string;
      /** Accumulator bits B = inputBits + roundBits (the input's encoding). */
      B: number;
      /** Approximate rounding: the index may be off by one near a rounding boundary (noise margin of inputBits). */
      approximate: boolean;
      /** Output encoding. */
      E: number;
      /**
       * Per channel: the ciphertext is multiplied by 2^scaleLog2[ch] (per-channel rounding keeps more low bits of a
       * narrow channel) and then the torus constant shifts[ch] is added (offset of signed tables, half a unit when
       * rounding, and the channel's rounding offset) before the PBS.
       */
      shifts: bigint[];
      scaleLog2: Int32Array;
      /** One table per channel. */
      luts: Lut[];
      /** Table row per element. */
      channelOf: Int32Array;
      /**
       * Per element: the standard deviation of the error at the PBS input (after the channel scaling, keyswitch and
       * modulus switch), in units of the B-bit accumulator; 0 for elements evaluated in clear. simulateWithNoise
       * (./noisy-simulate.ts) draws the lookup errors from it.
       */
      sigma: Float64Array;
    };

export interface TluNoise {
  op: string;
  /** The op that computed the table's input. */
  producer: string;
  B: number;
  /** Approximate rounding: the budget is half a box of the rounded table, and log2PFail is P(index off by > 1). */
  approximate: boolean;
  /** Largest estimated input variance over the elements, and the allowed one. */
  variance: number;
  budget: number;
  /** log2 of the estimated failure probability per lookup (worst element). */
  log2PFail: number;
}

export interface CircuitPlan {
  params: TfheParams;
  log2PError: number;
  /** Encoding of every computed value (absent: dead value). */
  E: Map<string, number>;
  inputE: number;
  outputE: number;
  steps: PlanStep[];
  /**
   * Elements evaluated in clear at plan time: value → per-element constant or NaN. Constants come from pruned
   * neurons (constant accumulators), table rows that are constant, and table elements no output depends on (0).
   */
  constants: Map<string, Float64Array>;
  /** KS-PBS per sample (excluded: constant table inputs, constant table rows, elements no output depends on). */
  pbsPerSample: number;
  noise: TluNoise[];
  /** Worst-case output range (interval analysis) used for the output encoding. */
  outputRange: IntRange;
}

// -------------------------------------------------------------------------------------------- linear term lists

function termsOf(op: CircuitOp, shapes: Map<string, number[]>): LinearTerms {
  const outShape = shapes.get(op.output)!;
  const nOut = size(outShape);
  const offsets = new Int32Array(nOut + 1);
  const src: number[] = [];
  const w: number[] = [];
  const row = (j: number) => (offsets[j + 1] = src.length);
  const push = (s: number, v: number) => {
    if (v !== 0) {
      src.push(s);
      w.push(v);
    }
  };
  switch (op.kind) {
    case 'gemm':
      for (let o = 0; o < op.outFeatures; o++) {
        for (let i = 0; i < op.inFeatures; i++) push(i, op.weight[o * op.inFeatures + i]!);
        row(o);
      }
      break;
    case 'conv': {
      const [C, H, W] = shapes.get(op.input)! as [number, number, number];
      const [O, , KH, KW] = op.weightDims;
      const [, OH, OW] = outShape as [number, number, number];
      for (let o = 0; o < O; o++)
        for (let oy = 0; oy < OH; oy++)
          for (let ox = 0; ox < OW; ox++) {
            for (let c = 0; c < C; c++)
              for (let ky = 0; ky < KH; ky++) {
                const iy = oy * op.strides[0] + ky - op.pads[0];
                if (iy < 0 || iy >= H) continue;
                for (let kx = 0; kx < KW; kx++) {
                  const ix = ox * op.strides[1] + kx - op.pads[1];
                  if (ix < 0 || ix >= W) continue;
                  push((c * H + iy) * W + ix, op.weight[((o * C + c) * KH + ky) * KW + kx]!);
                }
              }
            row((o * OH + oy) * OW + ox);
          }
      break;
    }
    case 'sumpool': {
      const [C, , W] = shapes.get(op.input)! as [number, number, number];
      const H = shapes.get(op.input)![1]!;
      const [, OH, OW] = outShape as [number, number, number];
      for (let c = 0; c < C; c++)
        for (let oy = 0; oy < OH; oy++)
          for (let ox = 0; ox < OW; ox++) {
            for (let ky = 0; ky < op.kernel[0]; ky++)
              for (let kx = 0; kx < op.kernel[1]; kx++) push((c * H + oy * op.strides[0] + ky) * W + ox * op.strides[1] + kx, 1);
            row((c * OH + oy) * OW + ox);
          }
      break;
    }
    case 'pad': {
      const [C, H, W] = shapes.get(op.input)! as [number, number, number];
      const [, OH, OW] = outShape as [number, number, number];
      const from = new Int32Array(nOut).fill(-1);
      for (let c = 0; c < C; c++)
        for (let iy = 0; iy < H; iy++) for (let ix = 0; ix < W; ix++) from[(c * OH + iy + op.pads[0]) * OW + ix + op.pads[1]] = (c * H + iy) * W + ix;
      for (let j = 0; j < nOut; j++) {
        if (from[j]! >= 0) push(from[j]!, 1);
        row(j);
      }
      break;
    }
    case 'reshape':
      for (let j = 0; j < nOut; j++) {
        push(j, 1);
        row(j);
      }
      break;
    case 'transpose': {
      const inShape = shapes.get(op.input)!;
      const st = (s: number[]) => s.map((_, d) => s.slice(d + 1).reduce((a, b) => a * b, 1));
      const inStrides = st(inShape);
      const tShape = op.perm.map((p) => inShape[p]!);
      const outStrides = st(tShape);
      for (let j = 0; j < nOut; j++) {
        let rem = j;
        let s = 0;
        for (let d = 0; d < tShape.length; d++) {
          const coord = Math.floor(rem / outStrides[d]!);
          rem -= coord * outStrides[d]!;
          s += coord * inStrides[op.perm[d]!]!;
        }
        push(s, 1);
        row(j);
      }
      break;
    }
    case 'add':
      for (let j = 0; j < nOut; j++) {
        push(j, 1);
        push(nOut + j, 1);
        row(j);
      }
      break;
    case 'mulconst':
      for (let j = 0; j < nOut; j++) {
        push(j, op.factor);
        row(j);
      }
      break;
    case 'tlu':
      throw new TfheParameterError('termsOf: a table lookup is not linear');
  }
  return { offsets, src: Int32Array.from(src), w: Float64Array.from(w) };
}

function opInputs(op: CircuitOp): string[] {
  return op.kind === 'add' ? [...op.inputs] : [op.input];
}

// -------------------------------------------------------------------------------------------- interval analysis

function inputRange(c: Circuit): IntRange {
  const { bitWidth, signed, narrow } = c.input;
  const half = 2 ** (bitWidth - 1);
  return signed ? { min: narrow ? -half + 1 : -half, max: half - 1 } : { min: 0, max: narrow ? 2 ** bitWidth - 2 : 2 ** bitWidth - 1 };
}

/** Worst-case range of every value over every input the input quantizer can produce (scalar per value). */
function worstCaseRanges(c: Circuit, shapes: Map<string, number[]>, terms: Map<string, LinearTerms>): Map<string, IntRange> {
  const r = new Map<string, IntRange>([[c.input.name, inputRange(c)]]);
  for (const op of c.ops) {
    if (op.kind === 'tlu') {
      let min = Infinity;
      let max = -Infinity;
      for (const v of op.tables) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      r.set(op.output, { min, max });
      continue;
    }
    const ins = opInputs(op);
    const sizes = ins.map((v) => size(shapes.get(v)!));
    const t = terms.get(op.name)!;
    let lo = Infinity;
    let hi = -Infinity;
    for (let j = 0; j + 1 < t.offsets.length; j++) {
      let a = 0;
      let b = 0;
      for (let q = t.offsets[j]!; q < t.offsets[j + 1]!; q++) {
        const s = t.src[q]!;
        const ri = r.get(s < sizes[0]! ? ins[0]! : ins[1]!)!;
        const w = t.w[q]!;
        a += w > 0 ? w * ri.min : w * ri.max;
        b += w > 0 ? w * ri.max : w * ri.min;
      }
      lo = Math.min(lo, a);
      hi = Math.max(hi, b);
    }
    r.set(op.output, { min: lo, max: hi });
  }
  return r;
}

// -------------------------------------------------------------------------------------------- tables

/**
 * Table polynomial with `boxes` boxes of N/boxes coefficients (box m centred on m·N/boxes after the modulus switch),
 * holding values[m] at the scale 2^(63 − E): the generalization of buildLut to any box count and output encoding
 * (values are reduced to their signed representative mod 2^(E+1), exact for the consumer's linear region).
 */
export function buildScaledLut(N: number, boxes: number, E: number, values: ArrayLike<number>): Lut {
  if (N % boxes !== 0 || N / boxes < 2) throw new TfheParameterError(`polynomial size ${N} cannot hold ${boxes} boxes of ≥ 2 coefficients`);
  if (values.length !== boxes) throw new TfheParameterError(`table has ${values.length} values for ${boxes} boxes`);
  const box = N / boxes;
  const half = box / 2;
  const mod = 2 ** (E + 1);
  const scale = 2 ** (63 - E);
  const plain = new Float64Array(N);
  const reduced: number[] = [];
  for (let m = 0; m < boxes; m++) {
    const raw = values[m]!;
    if (!Number.isSafeInteger(raw)) throw new TfheParameterError(`table value ${raw} is not an integer`);
    let v = raw % mod;
    if (v < 0) v += mod;
    if (v >= mod / 2) v -= mod;
    reduced.push(v);
    plain.fill(v * scale, m * box, (m + 1) * box);
  }
  const poly = new Float64Array(N);
  for (let j = 0; j < N - half; j++) poly[j] = plain[j + half]!;
  for (let j = 0; j < half; j++) poly[N - half + j] = -plain[j]!;
  return { poly, degree: 0, values: reduced };
}

// -------------------------------------------------------------------------------------------- budgets

export class RegionBudgets {
  private readonly cache = new Map<number, number>();
  readonly base: NoiseBudget;
  constructor(
    readonly params: TfheParams,
    readonly log2PError: number,
  ) {
    this.base = noiseBudget(params, log2PError);
  }

  /** Largest variance that still decodes a value encoded with E bits (margin 2^(62−E)). */
  maxDecrypt(E: number): number {
    let v = this.cache.get(E);
    if (v === undefined) this.cache.set(E, (v = maxVarianceFor(2 ** (62 - E), this.log2PError)));
    return v;
  }

  /** Largest variance whose error stays below 2^m (at p_error). */
  maxForMargin(m: number): number {
    return this.maxDecrypt(62 - m);
  }

  /**
   * Largest PBS input variance (before keyswitch and modulus switch) for a lookup whose error must stay under 2^m:
   * m = 62 − B for an exact B-bit accumulator, 62 − w for an approximately rounded w-bit table.
   */
  maxPbsInput(m: number): number {
    return Math.max(0, this.maxForMargin(m) - this.base.keyswitchVariance - this.base.modulusSwitchVariance);
  }

  /** log2 P(fail) of a lookup with margin 2^m whose input has variance `v` (Gaussian tail). */
  log2PFail(m: number, v: number): number {
    const sigma = Math.sqrt(v + this.base.keyswitchVariance + this.base.modulusSwitchVariance);
    return log2TailProbability(2 ** m, sigma);
  }

  /** Context of a linear op producing a value encoded with E bits whose error must stay under 2^m (default exact). */
  linearContext(E: number, m = 62 - E): { plaintextModulus: number; budget: NoiseBudget } {
    return { plaintextModulus: 2 ** E, budget: { ...this.base, maxDecryptVariance: this.maxForMargin(m) } };
  }
}

// -------------------------------------------------------------------------------------------- the plan

/** Plan for a given parameter set; throws TfheParameterError / TfheNoiseError naming the op when it does not fit. */
export function planCircuitWith(c: Circuit, params: TfheParams, opts: ExecutorPlanOptions = {}): CircuitPlan {
  const log2PError = opts.log2PError ?? -40;
  const headroom = opts.outputHeadroomBits ?? 1;
  const shapes = new Map(c.values.map((v) => [v.name, v.shape]));
  shapes.set(c.input.name, c.input.shape);
  const terms = new Map<string, LinearTerms>();
  for (const op of c.ops) if (op.kind !== 'tlu') terms.set(op.name, termsOf(op, shapes));
  const producer = new Map<string, string>(c.ops.map((o) => [o.output, o.name]));

  // Output encoding from the worst case over the whole input domain (and the calibrated range).
  const wc = worstCaseRanges(c, shapes, terms);
  const outWc = wc.get(c.output.value)!;
  const cal = c.ranges[c.output.value];
  const outputRange = { min: Math.min(outWc.min, cal?.min ?? Infinity), max: Math.max(outWc.max, cal?.max ?? -Infinity) };
  const outputE = bitsFor(outputRange) + headroom;

  // Backward pass: demanded encodings.
  const E = new Map<string, number>();
  const demand = (v: string, e: number) => E.set(v, Math.max(E.get(v) ?? 0, e));
  demand(c.output.value, outputE);
  for (let i = c.ops.length - 1; i >= 0; i--) {
    const op = c.ops[i]!;
    if (op.kind === 'tlu') {
      if (E.has(op.output)) demand(op.input, op.inputBits + op.roundBits);
    } else {
      const e = E.get(op.output);
      if (e !== undefined) for (const v of opInputs(op)) demand(v, e);
    }
  }
  for (const [v, e] of E) {
    if (e > 52) throw new TfheParameterError(`value '${v}' needs a ${e}-bit encoding; at most 52 bits are supported`);
  }

  // Backward pass: the error each value must stay under, log2, at its own encoding. A consumer reading v at
  // encoding e < E_v multiplies it by 2^(E_v − e), so its margin 2^m is 2^(m − (E_v − e)) for v. For exact tables
  // and outputs this is 2^(62 − E_v) everywhere (half a unit); approximate tables relax it for what feeds them.
  const margin = new Map<string, number>();
  const needMargin = (v: string, m: number, readAt: number) => {
    const own = m - (E.get(v)! - readAt);
    margin.set(v, Math.min(margin.get(v) ?? Infinity, own));
  };
  needMargin(c.output.value, 62 - outputE, outputE);
  for (let i = c.ops.length - 1; i >= 0; i--) {
    const op = c.ops[i]!;
    const eOut = E.get(op.output);
    if (eOut === undefined) continue;
    if (op.kind === 'tlu') {
      const B = op.inputBits + op.roundBits;
      needMargin(op.input, tableMargin(op), B);
    } else {
      const m = margin.get(op.output) ?? 62 - eOut; // ?? : a value nothing reads keeps the exact margin
      for (const v of opInputs(op)) needMargin(v, m, eOut);
    }
  }

  // Backward pass, per element: an element is live when the output depends on it through a non-zero weight
  // (term lists hold non-zero weights only) or a table lookup. A table element that is not live needs no PBS.
  const live = new Map<string, Uint8Array>();
  const liveOf = (v: string) => {
    let l = live.get(v);
    if (!l) live.set(v, (l = new Uint8Array(size(v === c.input.name ? c.input.shape : shapes.get(v)!))));
    return l;
  };
  liveOf(c.output.value).fill(1);
  for (let i = c.ops.length - 1; i >= 0; i--) {
    const op = c.ops[i]!;
    const lo = liveOf(op.output);
    if (op.kind === 'tlu') {
      const li = liveOf(op.input);
      for (let j = 0; j < lo.length; j++) if (lo[j]) li[j] = 1;
    } else {
      const t = terms.get(op.name)!;
      const ins = opInputs(op);
      const l0 = liveOf(ins[0]!);
      const l1 = ins[1] !== undefined ? liveOf(ins[1]) : undefined;
      for (let j = 0; j < lo.length; j++) {
        if (!lo[j]) continue;
        for (let q = t.offsets[j]!; q < t.offsets[j + 1]!; q++) {
          const sIdx = t.src[q]!;
          if (sIdx < l0.length) l0[sIdx] = 1;
          else l1![sIdx - l0.length] = 1;
        }
      }
    }
  }

  const budgets = new RegionBudgets(params, log2PError);
  const N = params.polynomialSize;
  const pbsVar = budgets.base.pbsOutputVariance;

  // Forward pass: steps, per-element variances and clear constants.
  const variance = new Map<string, Float64Array>();
  const constants = new Map<string, Float64Array>();
  const inputE = E.get(c.input.name) ?? 1;
  const nIn = size(c.input.shape);
  variance.set(c.input.name, new Float64Array(nIn).fill(budgets.base.freshVariance));
  constants.set(c.input.name, new Float64Array(nIn).fill(NaN));
  /** Variance of v as seen by a consumer at encoding e (rescaled by 2^(E_v − e)). */
  const varAt = (v: string, e: number) => {
    const d = E.get(v)! - e;
    if (d < 0) throw new TfheParameterError(`internal: value '${v}' encoded with ${E.get(v)} bits read at ${e}`);
    return { vars: variance.get(v)!, f: 4 ** d };
  };
  const steps: PlanStep[] = [];
  const noise: TluNoise[] = [];
  let pbsPerSample = 0;
  for (const op of c.ops) {
    const eOut = E.get(op.output);
    if (eOut === undefined) continue; // dead value
    const nOut = size(shapes.get(op.output)!);
    const outVar = new Float64Array(nOut);
    const outConst = new Float64Array(nOut).fill(NaN);
    if (op.kind === 'tlu') {
      const B = op.inputBits + op.roundBits;
      const boxes = 2 ** op.inputBits;
      if (N / boxes < 2) {
        throw new TfheParameterError(`op '${op.name}': a ${op.inputBits}-bit table needs ${boxes} boxes, polynomial size ${N} of '${params.name}' holds fewer`);
      }
      const { vars, f } = varAt(op.input, B);
      const inConst = constants.get(op.input)!;
      const approximate = isApproximate(op);
      const lookupMargin = tableMargin(op);
      const budget = budgets.maxPbsInput(lookupMargin);
      let worst = 0;
      const lo = op.inputSigned ? -(boxes / 2) : 0;
      const channelOf = new Int32Array(nOut);
      // A channel whose table row is one constant over its whole domain (e.g. a ReLU neuron whose bias keeps it
      // off for every accumulator the width allows) is that constant for every input, in TFHE as in simulate.
      const rowConst = new Float64Array(op.channels).fill(NaN);
      for (let ch = 0; ch < op.channels; ch++) {
        const row = op.tables.subarray(ch * boxes, (ch + 1) * boxes);
        if (row.every((v) => v === row[0])) rowConst[ch] = row[0]!;
      }
      const outLive = live.get(op.output)!;
      const sigma = new Float64Array(nOut);
      const unit = 2 ** (63 - B);
      const afterPbsInput = budgets.base.keyswitchVariance + budgets.base.modulusSwitchVariance;
      for (let j = 0; j < nOut; j++) {
        const ch = Math.floor(j / op.channelStride) % op.channels;
        channelOf[j] = ch;
        if (!Number.isNaN(inConst[j]!)) {
          outConst[j] = clearLookup(op, inConst[j]!, ch, lo);
          continue;
        }
        if (!Number.isNaN(rowConst[ch]!)) {
          outConst[j] = rowConst[ch]!;
          continue;
        }
        if (!outLive[j]) {
          // No consumer reads it with a non-zero weight: any value will do; a trivial 0 instead of a PBS.
          outConst[j] = 0;
          continue;
        }
        pbsPerSample++;
        const scaled = vars[j]! * f * 4 ** (op.roundBits - tluRounding(op, ch).k);
        worst = Math.max(worst, scaled);
        sigma[j] = Math.sqrt(scaled + afterPbsInput) / unit;
        outVar[j] = pbsVar;
      }
      const plaintextBits = Math.log2(plaintextModulus(params));
      if (worst > budget && B > plaintextBits) {
        // The usual cause on a plain QAT net: the accumulator is wider than the set's plaintext space, so no weight
        // change short of narrowing it helps. Say that, not only the noise figures it shows up as.
        throw Object.assign(
          new TfheNoiseError(
            `op '${op.name}' (table on the output of '${producer.get(op.input) ?? op.input}'): its ${B}-bit accumulator is wider than the ${plaintextBits}-bit plaintext space of ` +
              `'${params.name}' (message ${Math.log2(params.messageModulus)} + carry ${Math.log2(params.carryModulus)} bits), so a bootstrap cannot read it ` +
              `(input noise σ = 2^${(Math.log2(worst) / 2).toFixed(2)} against a budget σ ≤ 2^${(Math.log2(Math.max(budget, 1)) / 2).toFixed(2)} at p_error 2^${log2PError}); ` +
              `fix: narrow the table input to at most ${plaintextBits} bits — approximate rounding (fhenet compile --rounding ${plaintextBits} --rounding-approximate), ` +
              `or accumulator-aware training (fhenet train --fhe-ready), or pruning`,
          ),
          { accumulatorBits: B, plaintextBits },
        );
      }
      if (worst > budget) {
        const norm = Math.sqrt(worst / pbsVar);
        const allowed = Math.sqrt(budget / pbsVar);
        throw new TfheNoiseError(
          `op '${op.name}' (table on the output of '${producer.get(op.input) ?? op.input}', ${B}-bit accumulator${approximate ? `, approximately rounded to ${op.inputBits} bits` : ''}): input noise σ = 2^${(Math.log2(worst) / 2).toFixed(2)} ` +
            `exceeds the budget σ ≤ 2^${(Math.log2(Math.max(budget, 1)) / 2).toFixed(2)} of '${params.name}' at p_error 2^${log2PError} — ` +
            `the dot product has an effective weight 2-norm of ${norm.toFixed(1)} (in units of bootstrapped inputs), ${allowed.toFixed(1)} allowed; ` +
            `fix: fewer non-zero weights per neuron (pruning) or smaller weights, fewer accumulator bits (roundingThresholdBits, accumulator-aware training), or a larger parameter set`,
        );
      }
      noise.push({ op: op.name, producer: producer.get(op.input) ?? op.input, B, approximate, variance: worst, budget, log2PFail: budgets.log2PFail(lookupMargin, worst) });
      const luts: Lut[] = [];
      for (let ch = 0; ch < op.channels; ch++) luts.push(buildScaledLut(N, boxes, eOut, op.tables.subarray(ch * boxes, (ch + 1) * boxes)));
      // After scaling by 2^(roundBits − k_ch), a channel's accumulator x reads as x·2^(roundBits − k_ch) in B bits,
      // and the rounding over roundBits bits gives round((x + o)/2^k_ch), the simulator's index.
      const base = (BigInt(-lo) << BigInt(63 - op.inputBits)) + (op.roundBits > 0 ? 1n << BigInt(62 - B) : 0n);
      const shifts: bigint[] = [];
      const scaleLog2 = new Int32Array(op.channels);
      for (let ch = 0; ch < op.channels; ch++) {
        const { k, offset } = tluRounding(op, ch);
        scaleLog2[ch] = op.roundBits - k;
        shifts.push(base + (BigInt(offset * 2 ** scaleLog2[ch]!) << BigInt(63 - B)));
      }
      steps.push({ kind: 'tlu', op: op.name, input: op.input, output: op.output, B, approximate, E: eOut, shifts, scaleLog2, luts, channelOf, sigma });
    } else {
      const t = terms.get(op.name)!;
      const ins = opInputs(op);
      const n0 = size(shapes.get(ins[0]!)!);
      const views = ins.map((v) => ({ ...varAt(v, eOut), c: constants.get(v)! }));
      const p = 2 ** eOut;
      let worst = 0;
      for (let j = 0; j < nOut; j++) {
        let v = 0;
        let cst = 0;
        let allConst = true;
        for (let q = t.offsets[j]!; q < t.offsets[j + 1]!; q++) {
          const s = t.src[q]!;
          const which = s < n0 ? 0 : 1;
          const i = which === 0 ? s : s - n0;
          const w = reduceWeight(t.w[q]!, p);
          if (Math.abs(w) > 2 ** 20) throw new TfheParameterError(`op '${op.name}': weight ${t.w[q]} exceeds 2^20 after reduction mod 2^${eOut + 1}`);
          const view = views[which]!;
          v += w * w * view.vars[i]! * view.f;
          const ci = view.c[i]!;
          if (Number.isNaN(ci)) allConst = false;
          else cst += t.w[q]! * ci;
        }
        outVar[j] = v;
        if (allConst) outConst[j] = cst;
        worst = Math.max(worst, v);
      }
      const m = margin.get(op.output) ?? 62 - eOut;
      if (worst > budgets.maxForMargin(m)) {
        throw new TfheNoiseError(
          `op '${op.name}': noise σ = 2^${(Math.log2(worst) / 2).toFixed(2)} exceeds the budget of its ${eOut}-bit encoding (error < 2^${m} for its consumers) at p_error 2^${log2PError}; ` +
            `fix: fewer or smaller weights, or a larger parameter set`,
        );
      }
      steps.push({ kind: 'linear', op: op.name, inputs: ins, output: op.output, E: eOut, margin: m, terms: t });
    }
    variance.set(op.output, outVar);
    constants.set(op.output, outConst);
  }
  // The circuit output must decode.
  const outVar = variance.get(c.output.value)!;
  const worstOut = outVar.reduce((a, b) => Math.max(a, b), 0) * 4 ** (E.get(c.output.value)! - outputE);
  if (worstOut > budgets.maxDecrypt(outputE)) {
    throw new TfheNoiseError(`circuit output '${c.output.value}': noise σ = 2^${(Math.log2(worstOut) / 2).toFixed(2)} exceeds its decoding budget (${outputE}-bit encoding)`);
  }
  return { params, log2PError, E, inputE, outputE, steps, constants, pbsPerSample, noise, outputRange };
}

const isApproximate = (op: Tlu) => op.approximate === true && op.roundBits > 0;

/** log2 of the error a lookup's input must stay under: half an accumulator unit, or half a box when approximate. */
const tableMargin = (op: Tlu) => (isApproximate(op) ? 62 - op.inputBits : 62 - (op.inputBits + op.roundBits));

/** The simulator's lookup for a clear input (pruned neurons whose accumulator is a constant). */
function clearLookup(op: Tlu, x: number, ch: number, lo: number): number {
  const width = 2 ** op.inputBits;
  let idx = tluIndex(op, x, ch) - lo;
  idx = ((idx % width) + width) % width;
  return op.tables[ch * width + idx]!;
}

/** Plan with the given set, or with the smallest named set that fits (errors name the op that does not fit). */
/**
 * Why the executor did not pick a cheaper set: each candidate before the one `planCircuit` chooses, with the message
 * of the check that refused it (every candidate when none passes).
 */
export function refusedSets(c: Circuit, opts: Omit<ExecutorPlanOptions, 'params'> = {}): { name: string; reason: string }[] {
  const out: { name: string; reason: string }[] = [];
  for (const name of EXECUTOR_SETS) {
    try {
      planCircuitWith(c, NAMED_PARAMS[name]!, opts);
      break;
    } catch (e) {
      if (!(e instanceof TfheNoiseError || e instanceof TfheParameterError)) throw e;
      out.push({ name, reason: e.message });
    }
  }
  return out;
}

export function planCircuit(c: Circuit, opts: ExecutorPlanOptions = {}): CircuitPlan {
  if (opts.params !== undefined) return planCircuitWith(c, typeof opts.params === 'string' ? namedParams(opts.params) : opts.params, opts);
  let last: unknown;
  for (const name of EXECUTOR_SETS) {
    try {
      return planCircuitWith(c, NAMED_PARAMS[name]!, opts);
    } catch (e) {
      if (!(e instanceof TfheNoiseError || e instanceof TfheParameterError)) throw e;
      last = e;
    }
  }
  const msg = last instanceof Error ? last.message : String(last);
  const width = last as { accumulatorBits?: number; plaintextBits?: number };
  const why =
    width.accumulatorBits !== undefined
      ? `: a table input of ${width.accumulatorBits} bits is wider than the plaintext space of every set (at most ${width.plaintextBits} bits)`
      : '';
  throw new TfheNoiseError(`no named parameter set runs circuit '${c.metadata.graph ?? 'circuit'}' at p_error 2^${opts.log2PError ?? -40}${why}; with the largest (${EXECUTOR_SETS.at(-1)}): ${msg}`);
}
