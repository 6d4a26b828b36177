/**
 * Accumulator-aware training (the idea of A2Q, Colbert et al., "A2Q: Accumulator-Aware Quantization with Guaranteed
 * Overflow Avoidance", ICCV 2023): keep every output neuron's integer weights small enough that its accumulator
 * Σ w_int·x_int fits a signed P-bit register for EVERY input the input quantizer can produce — a guarantee, not an
 * observation on a calibration set. Derivation and conventions: docs/accumulators.md.
 *
 * For a neuron with integer weights q and integer inputs x_i ∈ [a, b] (a ≤ 0 ≤ b), with P⁺ = Σ_{q>0} q and
 * N = Σ_{q<0} |q|, the accumulator lies in [−(|a|·P⁺ + b·N), b·P⁺ + |a|·N]. It fits [−2^(P−1), 2^(P−1) − 1] when
 * - a = 0 (input from a QuantReLU or an unsigned quantizer):  P⁺ ≤ ⌊(2^(P−1) − 1)/b⌋ and N ≤ ⌊2^(P−1)/b⌋;
 * - a < 0 (signed input), with M = max(|a|, b):               ‖q‖₁ ≤ ⌊(2^(P−1) − 1)/M⌋ (the A2Q L1 bound).
 *
 * Enforcement is a projection after every optimizer step (`afterStep`) and once before training. It works on the
 * integers the layer's own weight quantizer produces (round half to even, clamp), so rounding cannot break the
 * bound: for each violating neuron (or sign group), the clamped real-valued integers u = w/s are projected onto the
 * L1 ball of the budget (soft thresholding, the Euclidean projection, Duchi et al. 2008), rounded to integers
 * whose sum stays within the budget (floor, then +1 to the largest fractional parts while budget is left), and the
 * latent float weight is moved to a value that the quantizer rounds to exactly those integers. Neurons already
 * within budget are untouched. Pruning masks are respected (masked weights count as zero and are left alone).
 *
 * Input ranges: by default a layer's budget uses the integer range its input quantizer can produce (signed → the L1
 * bound). `inputRanges` overrides that per layer with the integer range its inputs really take, e.g.
 * `inputRanges: { fc1: [0, 3] }` for the notebook's signed 3-bit input quantizer fed data in [0, 1] (scale 1/3 maps
 * it onto 0…3 only), which gives fc1 the split budgets of a non-negative input (Σq⁺ ≤ 5 and Σ|q⁻| ≤ 5 at P = 5,
 * instead of ‖q‖₁ ≤ 5). The guarantee then holds for inputs in that range only: an input quantized outside it can
 * overflow the target. Check the data (e.g. the range `analyzeAccumulators` observes) before relying on it.
 *
 * `retarget(P)` changes the target of a built constraint (budgets recomputed, weights projected), so a schedule can
 * start loose and tighten over epochs; the guarantee is the one of the target in force at the last projection.
 *
 * Requires weight quantizers with a constant scale (`scaling: 'const'`, as in the notebook's nets and fhenet's
 * post-training twins): with an abs-max scale the integer grid moves with the weights themselves.
 */
import * as tf from '@tensorflow/tfjs-core';
import { accumulatorRange, signedBits } from './bits.js';
import { type InputIntRange, type QuantWeightLayer, forEachQuantLayerCall, quantWeightLayers } from './layer-calls.js';
import type { Module } from '../nn/module.js';
import { ConfigError, FhenetError } from '../util/errors.js';

export interface AccumulatorTarget {
  /** Target signed accumulator bit width P. */
  targetBits: number;
  /** Shape of one input sample (a probe forward pass finds each layer's input quantizer). */
  sampleShape: number[];
  /** Only these layers (dotted names); default every QuantLinear / QuantConv2d. */
  layers?: string[];
  /**
   * Per-layer integer input range [min, max] to budget for, overriding the range of the layer's input quantizer
   * (e.g. `{ fc1: [0, 3] }`). The accumulator guarantee holds for inputs within this range only.
   */
  inputRanges?: Record<string, [number, number]>;
}

/** The integer input range a budget is computed for: the quantizer's (`format` / `relu`) or a user override. */
export type BudgetInputRange = Omit<InputIntRange, 'source'> & { source: InputIntRange['source'] | 'override' };

/** Integer budgets of one layer. `l1` when inputs can be negative, else separate positive / negative budgets. */
export interface LayerBudget {
  layer: string;
  input: BudgetInputRange;
  kind: 'l1' | 'split';
  /** `l1`: budget on ‖q‖₁; `split`: budget on Σ positive q. */
  budget: number;
  /** `split`: budget on Σ |negative q|. */
  negBudget: number;
}

/** The integer budgets that guarantee a P-bit accumulator for inputs in [a, b]. */
export function neuronBudget(targetBits: number, a: number, b: number): Omit<LayerBudget, 'layer' | 'input'> {
  const { min, max } = accumulatorRange(targetBits);
  if (a >= 0) {
    const top = Math.max(b, 1);
    return { kind: 'split', budget: Math.floor(max / top), negBudget: Math.floor(-min / top) };
  }
  const m = Math.max(-a, b);
  const l1 = Math.floor(max / m);
  return { kind: 'l1', budget: l1, negBudget: l1 };
}

/**
 * Euclidean projection of non-negative magnitudes onto {v ≥ 0, Σv ≤ B}, then rounding to integers with Σ ≤ B.
 * Returns the real projection and the integers.
 */
export function projectMagnitudes(mag: number[], budget: number): { real: number[]; int: number[] } {
  if (!(budget > 0)) return { real: mag.map(() => 0), int: mag.map(() => 0) };
  const total = mag.reduce((s, v) => s + v, 0);
  let theta = 0;
  if (total > budget) {
    const sorted = [...mag].sort((x, y) => y - x);
    let cum = 0;
    for (let j = 0; j < sorted.length; j++) {
      cum += sorted[j]!;
      const t = (cum - budget) / (j + 1);
      if (sorted[j]! - t > 0) theta = t;
    }
  }
  const real = mag.map((v) => Math.max(v - theta, 0));
  const int = real.map((v) => Math.floor(v + 1e-9));
  let left = budget - int.reduce((s, v) => s + v, 0);
  if (left > 0) {
    const order = real.map((v, i) => [v - int[i]!, i] as const).filter(([f]) => f > 1e-9).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
    for (const [, i] of order) {
      if (left <= 0) break;
      int[i]! += 1;
      left--;
    }
  }
  return { real, int };
}

export class AccumulatorConstraint {
  private target: number;
  readonly budgets: LayerBudget[];
  private readonly layers: { name: string; layer: QuantWeightLayer; budget: LayerBudget }[];

  constructor(model: Module, opts: AccumulatorTarget) {
    const P = opts.targetBits;
    if (!Number.isInteger(P) || P < 2 || P > 24) throw new ConfigError(`accumulator-aware training: targetBits must be an integer in [2, 24], got ${P}`);
    this.target = P;
    const all = quantWeightLayers(model);
    if (all.length === 0) throw new ConfigError(`${model.constructor.name} has no QuantLinear/QuantConv2d layer to constrain`);
    const wanted = opts.layers ? new Set(opts.layers) : undefined;
    if (wanted) for (const n of wanted) model.getModule(n); // unknown names: ConfigError listing them
    const overrides = new Map(Object.entries(opts.inputRanges ?? {}));
    for (const [n, r] of overrides) {
      if (!Array.isArray(r) || r.length !== 2 || !r.every(Number.isInteger) || r[0] > r[1]) {
        throw new ConfigError(`accumulator-aware training: inputRanges.${n} must be [min, max] with integers min ≤ max, got ${JSON.stringify(r)}`);
      }
      if (wanted && !wanted.has(n)) throw new ConfigError(`accumulator-aware training: inputRanges names '${n}', which is not among the constrained layers (${[...wanted].join(', ')})`);
    }
    const ranges = new Map<string, InputIntRange>();
    const wasTraining = model.training;
    model.eval();
    try {
      tf.tidy(() => {
        forEachQuantLayerCall(model, tf.zeros([1, ...opts.sampleShape]), (c) => ranges.set(c.name, c.range));
      });
    } finally {
      model.train(wasTraining);
    }
    this.layers = [];
    for (const [name, layer] of all) {
      if (wanted && !wanted.has(name)) continue;
      const wq = layer.weightQuant;
      if (wq.opts.scaling !== 'const') {
        throw new ConfigError(
          `layer '${name}': accumulator-aware training needs a constant weight scale (scaling 'const'), but its weight quantizer uses '${wq.opts.scaling}'`,
        );
      }
      const probed = ranges.get(name);
      if (!probed) throw new ConfigError(`layer '${name}' was not called by a forward pass of shape [1, ${opts.sampleShape}]`);
      const o = overrides.get(name);
      overrides.delete(name);
      const input: BudgetInputRange = o ? { ...probed, min: o[0], max: o[1], signed: o[0] < 0, source: 'override' } : probed;
      const budget: LayerBudget = { layer: name, input, ...neuronBudget(P, input.min, input.max) };
      this.layers.push({ name, layer, budget });
    }
    if (overrides.size > 0) {
      throw new ConfigError(`accumulator-aware training: inputRanges names ${[...overrides.keys()].map((n) => `'${n}'`).join(', ')}, not a QuantLinear/QuantConv2d layer of ${model.constructor.name}`);
    }
    this.budgets = this.layers.map((l) => l.budget);
  }

  /** The target signed accumulator bit width currently enforced. */
  get targetBits(): number {
    return this.target;
  }

  /**
   * Changes the target (budgets recomputed from each layer's input range, overrides kept) and projects the model;
   * returns how many neurons had to be changed. For schedules that start at a loose target and tighten.
   */
  retarget(targetBits: number): number {
    if (!Number.isInteger(targetBits) || targetBits < 2 || targetBits > 24) throw new ConfigError(`accumulator-aware training: targetBits must be an integer in [2, 24], got ${targetBits}`);
    this.target = targetBits;
    for (const l of this.layers) Object.assign(l.budget, neuronBudget(targetBits, l.budget.input.min, l.budget.input.max));
    return this.project();
  }

  /** Projects every layer; returns how many neurons had to be changed. */
  project(): number {
    let changed = 0;
    for (const l of this.layers) changed += this.projectLayer(l.layer, l.budget);
    return changed;
  }

  /** A hook for `fit({ afterStep })`. */
  readonly afterStep = (): void => {
    this.project();
  };

  /** Worst-case accumulator bits per layer from the current integer weights (all ≤ targetBits after `project`). */
  worstCaseBits(): { layer: string; bits: number }[] {
    return this.layers.map(({ name, layer, budget }) => {
      const q = intWeights(layer);
      const { min, max } = worstCase(q, layer.fanIn, layer.fanOut, budget.input);
      return { layer: name, bits: signedBits(min, max) };
    });
  }

  private projectLayer(layer: QuantWeightLayer, b: LayerBudget): number {
    const q = intWeights(layer);
    const fanIn = layer.fanIn;
    const bad: number[] = [];
    for (let o = 0; o < layer.fanOut; o++) if (!withinBudget(q, o * fanIn, fanIn, b)) bad.push(o);
    if (bad.length === 0) return 0;
    const s = layer.weightQuant.evalScale()!;
    const { minInt, maxInt } = layer.weightQuant;
    const w = Float32Array.from(layer.weight.dataSync());
    const mask = layer.weightMask?.dataSync();
    for (const o of bad) {
      const idx: number[] = [];
      for (let i = o * fanIn; i < (o + 1) * fanIn; i++) if (!mask || mask[i] !== 0) idx.push(i);
      const u = idx.map((i) => Math.min(maxInt, Math.max(minInt, w[i]! / s)));
      const groups: [number[], number][] =
        b.kind === 'l1'
          ? [[idx.map((_, j) => j), b.budget]]
          : [
              [idx.map((_, j) => j).filter((j) => u[j]! > 0), b.budget],
              [idx.map((_, j) => j).filter((j) => u[j]! < 0), b.negBudget],
            ];
      for (const [members, budget] of groups) {
        const { real, int } = projectMagnitudes(members.map((j) => Math.abs(u[j]!)), budget);
        members.forEach((j, k) => {
          const sign = u[j]! < 0 ? -1 : 1;
          // A latent value the quantizer rounds to exactly int[k]: the projection, kept within ±0.49 of it.
          const mag = Math.min(Math.max(real[k]!, int[k]! - 0.49), int[k]! + 0.49);
          w[idx[j]!] = sign * Math.max(mag, 0) * s;
        });
      }
    }
    // assign() keeps a reference to the new value's data: dispose the temporary, or every projection leaks a copy
    // of the layer's weights (WASM memory ran out after ~13 batch-8 runs in one process).
    const next = tf.tensor(w, layer.weight.shape, 'float32');
    layer.weight.assign(next);
    next.dispose();
    const after = intWeights(layer);
    for (const o of bad) {
      if (!withinBudget(after, o * fanIn, fanIn, b)) {
        throw new FhenetError(`accumulator projection failed for neuron ${o} of '${b.layer}' (internal error)`);
      }
    }
    return bad.length;
  }
}

function intWeights(layer: QuantWeightLayer): Float32Array {
  return tf.tidy(() => Float32Array.from(layer.quantWeight().int().dataSync()));
}

function withinBudget(q: ArrayLike<number>, start: number, n: number, b: LayerBudget): boolean {
  let pos = 0;
  let neg = 0;
  for (let i = start; i < start + n; i++) {
    const v = q[i]!;
    if (v > 0) pos += v;
    else neg -= v;
  }
  return b.kind === 'l1' ? pos + neg <= b.budget : pos <= b.budget && neg <= b.negBudget;
}

function worstCase(q: ArrayLike<number>, fanIn: number, fanOut: number, r: { min: number; max: number }): { min: number; max: number } {
  let lo = 0;
  let hi = 0;
  for (let o = 0; o < fanOut; o++) {
    let nLo = 0;
    let nHi = 0;
    for (let i = o * fanIn; i < (o + 1) * fanIn; i++) {
      const v = q[i]!;
      nLo += v > 0 ? v * r.min : v * r.max;
      nHi += v > 0 ? v * r.max : v * r.min;
    }
    lo = Math.min(lo, nLo);
    hi = Math.max(hi, nHi);
  }
  return { min: lo, max: hi };
}

/** Builds the constraint, projects the model once, and returns it (pass `afterStep` to `fit`). */
export function accumulatorAware(model: Module, opts: AccumulatorTarget): AccumulatorConstraint {
  const c = new AccumulatorConstraint(model, opts);
  c.project();
  return c;
}
