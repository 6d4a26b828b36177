/**
 * `IntQuantizer`: Brevitas-compatible fake quantization, y = clamp(round(x/s + z), minInt, maxInt), out = (y − z)·s,
 * with z = 0 (fhenet, like Brevitas's defaults and Concrete ML, uses zero-point 0).
 *
 * Scale sources (`scaling`):
 * - `const`: s = maxVal / threshold (the checkerboard notebook's CONST quantizers).
 * - `absmax`: s = max|x| / threshold, recomputed every call, per tensor or per output channel; the gradient flows
 *   through the max (Brevitas's default weight quantizer).
 * - `learned`: runtime statistics then a learned parameter (Brevitas ParameterFromRuntimeStats): during the first
 *   `collectSteps` training forwards s = stat(x)/threshold with stat = max|x| (a 99.999th percentile above 50,000
 *   values), while a buffer tracks the statistic (first batch as is, then an exponential average with
 *   `momentum`); eval before that uses the buffer; at step `collectSteps` the buffer becomes the parameter.
 * `absmax` and `learned` scales have a floor, `scalingMinVal` (Brevitas `scaling_min_val`, default 1e-10), applied with a
 * straight-through gradient; the learned parameter enters as |clampMin(value / threshold)| with a binary-sign
 * gradient (sign(0) = +1), as Brevitas's abs_binary_sign_grad.
 * `powerOfTwo` restricts s to 2^ceil(log2 stat) / 2^ceil(log2 threshold) (ceil with a straight-through gradient).
 * Gradients: round is straight-through; the clamp is straight-through for weights and zero outside the range for
 * activations; the learned scale receives round(x/s) − x/s inside the range and maxInt / minInt above / below, ×
 * 1/threshold — exactly what autodiff gives through these primitives.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../nn/module.js';
import { type Activation, QuantTensor, valueOf } from '../nn/quant-tensor.js';
import { ConfigError } from '../util/errors.js';
import { type IntFormat, checkFormat, intRange, threshold } from './int-range.js';
import { absBinarySignGrad, ceilSte, clampMinSte, clampSte, roundSte } from './ste.js';

export type ScalingKind = 'const' | 'absmax' | 'learned';

export interface QuantizerOptions extends IntFormat {
  scaling: ScalingKind;
  /** `const` scaling: the largest magnitude represented (s = maxVal / threshold). */
  maxVal?: number;
  /** `absmax` scaling: one scale per output channel (axis 0 of a PyTorch-layout weight). */
  perChannel?: boolean;
  powerOfTwo?: boolean;
  /** `learned` scaling: statistics-collection steps (Brevitas default 300) and the running-average momentum. */
  collectSteps?: number;
  momentum?: number;
  /** Straight-through clamp gradient (weights) instead of zero outside the range (activations). */
  clampSte?: boolean;
  /**
   * Floor on the scale, applied with a straight-through gradient (Brevitas `scaling_min_val`, a clamp_min STE in its
   * scaling implementations). Default 1e-10 for `absmax` and `learned` — the value of Brevitas's MaxStatsScaling and
   * ParamFromRuntimePercentileScaling, which Int8WeightPerTensorFloat / Int8ActPerTensorFloat / Uint8ActPerTensorFloat
   * inherit — and none for `const`. 0 turns it off. Without it an all-zero tensor (a batch of dead ReLUs, a fully
   * pruned weight row) gives scale 0 and 0/0 = NaN, and a learned parameter that crosses zero gives a zero scale.
   */
  scalingMinVal?: number;
}

/** Brevitas's default `scaling_min_val` for statistics-based and learned scales. */
export const DEFAULT_SCALING_MIN_VAL = 1e-10;

/** Brevitas Int8WeightPerTensorFloat. */
export const INT8_WEIGHT: QuantizerOptions = { bitWidth: 8, signed: true, narrow: true, scaling: 'absmax', clampSte: true };
/** Brevitas Int8ActPerTensorFloat (QuantIdentity's default). */
export const INT8_ACT: QuantizerOptions = { bitWidth: 8, signed: true, narrow: false, scaling: 'learned' };
/** Brevitas Uint8ActPerTensorFloat (QuantReLU's default). */
export const UINT8_ACT: QuantizerOptions = { bitWidth: 8, signed: false, narrow: false, scaling: 'learned' };

const PERCENTILE_ABOVE = 50_000;
const HIGH_PERCENTILE = 99.999;

export class IntQuantizer extends Module {
  readonly opts: Readonly<QuantizerOptions>;
  readonly minInt: number;
  readonly maxInt: number;
  readonly threshold: number;
  /** `learned`: the running statistic (buffer), the step counter, and the learned parameter. */
  private statBuffer: tf.Variable | undefined;
  private counter: tf.Variable | undefined;
  private steps = 0;
  private scaleParam: tf.Variable | undefined;

  constructor(opts: QuantizerOptions) {
    super();
    checkFormat(opts, 'IntQuantizer');
    if (!['const', 'absmax', 'learned'].includes(opts.scaling)) {
      throw new ConfigError(`IntQuantizer: unknown scaling '${opts.scaling}' (const, absmax or learned)`);
    }
    if (opts.scaling === 'const' && !(typeof opts.maxVal === 'number' && opts.maxVal > 0 && Number.isFinite(opts.maxVal))) {
      throw new ConfigError(`IntQuantizer: const scaling needs a positive maxVal, got ${opts.maxVal}`);
    }
    const collectSteps = opts.collectSteps ?? 300;
    if (!Number.isInteger(collectSteps) || collectSteps < 0) {
      throw new ConfigError(`IntQuantizer: collectSteps must be a non-negative integer, got ${collectSteps}`);
    }
    const scalingMinVal = opts.scalingMinVal ?? (opts.scaling === 'const' ? 0 : DEFAULT_SCALING_MIN_VAL);
    if (!(scalingMinVal >= 0 && Number.isFinite(scalingMinVal))) {
      throw new ConfigError(`IntQuantizer: scalingMinVal must be a finite number ≥ 0, got ${opts.scalingMinVal}`);
    }
    this.opts = { ...opts, collectSteps, momentum: opts.momentum ?? 0.1, scalingMinVal };
    const { min, max } = intRange(opts);
    this.minInt = min;
    this.maxInt = max;
    this.threshold = threshold(opts);
    if (opts.scaling === 'learned') {
      this.statBuffer = this.addBuffer('stat', tf.scalar(1));
      this.counter = this.addBuffer('counter', tf.scalar(0, 'int32'));
      this.scaleParam = this.addParameter('value', tf.scalar(1));
    }
  }

  get bitWidth(): number {
    return this.opts.bitWidth;
  }

  /** Whether the learned scale is still collecting statistics. */
  get collecting(): boolean {
    return this.opts.scaling === 'learned' && this.stepCount() < this.opts.collectSteps!;
  }

  private stepCount(): number {
    // The counter lives in a buffer so checkpoints carry it; a JS mirror avoids a device read on every call.
    if (this.counter && this.steps === 0) this.steps = this.counter.dataSync()[0]!;
    return this.steps;
  }

  forward(x: Activation): QuantTensor {
    const v = valueOf(x);
    const scale = this.scale(v);
    return this.quantizeWith(v, scale);
  }

  /** Fake-quantizes `x` with a given scale (zero-point 0). */
  quantizeWith(x: tf.Tensor, scale: tf.Tensor): QuantTensor {
    const q = roundSte(tf.div(x, scale));
    const clamped = this.opts.clampSte ? clampSte(q, this.minInt, this.maxInt) : tf.clipByValue(q, this.minInt, this.maxInt);
    const value = tf.mul(clamped, scale);
    return new QuantTensor(value, scale, 0, this.opts.bitWidth, this.opts.signed, this.opts.narrow);
  }

  /** The scale for this input (updates statistics in training mode for `learned`). */
  scale(x: tf.Tensor): tf.Tensor {
    switch (this.opts.scaling) {
      case 'const':
        return this.restrict(tf.scalar(this.opts.maxVal!));
      case 'absmax':
        // Brevitas _StatsScaling: stat / threshold, then the floor (before the log for power-of-two scales).
        return this.opts.powerOfTwo ? this.restrict(this.clampMin(this.absMax(x))) : this.clampMin(this.restrict(this.absMax(x)));
      case 'learned':
        return this.learnedScale(x);
    }
  }

  private absMax(x: tf.Tensor): tf.Tensor {
    const a = tf.abs(x);
    if (!this.opts.perChannel || x.rank < 2) return tf.max(a);
    // One scale per output channel (axis 0), shaped to broadcast over the weight: [out, 1, …].
    const perCh = tf.max(tf.reshape(a, [x.shape[0]!, -1]), 1);
    return tf.reshape(perCh, [x.shape[0]!, ...Array(x.rank - 1).fill(1)]);
  }

  private statistic(x: tf.Tensor): tf.Tensor {
    if (x.size <= PERCENTILE_ABOVE) return tf.max(tf.abs(x));
    // The 99.999th percentile of |x|. tfjs's topk has no gradient, so the order statistic is found in JavaScript
    // and then sliced out of the tensor: the gradient flows to the selected element, as through a kthvalue.
    const flat = tf.reshape(tf.abs(x), [-1]);
    const k = Math.max(1, x.size - Math.floor((HIGH_PERCENTILE / 100) * (x.size - 1)));
    const index = kthLargestIndex(flat.dataSync() as Float32Array, k);
    return tf.reshape(tf.slice(flat, [index], [1]), []);
  }

  /**
   * Brevitas ParameterFromRuntimeStatsScaling (restrict_scaling FP): while collecting, scale = clampMin(stat) / threshold
   * and the buffer tracks clampMin(stat); afterwards scale = absBinarySignGrad(clampMin(value / threshold)) — the
   * floor is applied before the absolute value, so a parameter pushed below zero gives the floor, not its mirror
   * image, and still gets a gradient (both steps are straight-through) that can bring it back.
   */
  private learnedScale(x: tf.Tensor): tf.Tensor {
    const steps = this.stepCount();
    const limit = this.opts.collectSteps!;
    if (this.training && steps < limit) {
      const stat = this.clampMin(this.statistic(x));
      const m = this.opts.momentum!;
      const detached = tf.tidy(() => (steps === 0 ? stat.clone() : tf.add(tf.mul(this.statBuffer!, 1 - m), tf.mul(stat, m))));
      this.statBuffer!.assign(detached);
      detached.dispose();
      this.advance();
      if (this.steps === limit) this.scaleParam!.assign(this.statBuffer!);
      return this.restrict(stat);
    }
    if (steps < limit) return this.restrict(this.statBuffer!);
    return this.parameterScale();
  }

  private parameterScale(): tf.Tensor {
    if (this.opts.powerOfTwo) return this.restrict(this.clampMin(absBinarySignGrad(this.scaleParam!)));
    return absBinarySignGrad(this.clampMin(tf.div(this.scaleParam!, this.threshold)));
  }

  private clampMin(x: tf.Tensor): tf.Tensor {
    return this.opts.scalingMinVal! > 0 ? clampMinSte(x, this.opts.scalingMinVal!) : x;
  }

  private advance(): void {
    this.steps += 1;
    const next = tf.scalar(this.steps, 'int32');
    this.counter!.assign(next);
    next.dispose();
  }

  /** stat → scale: divide by the threshold, rounding both to powers of two when asked. */
  private restrict(stat: tf.Tensor): tf.Tensor {
    if (!this.opts.powerOfTwo) return tf.div(stat, this.threshold);
    const pow2Stat = tf.pow(2, ceilSte(tf.div(tf.log(stat), Math.LN2)));
    return tf.div(pow2Stat, 2 ** Math.ceil(Math.log2(this.threshold)));
  }

  /**
   * The scale this quantizer uses at evaluation time, when it does not depend on the input (`const` and
   * `learned`); `undefined` for `absmax`, whose scale follows the tensor it is given.
   */
  evalScale(): number | undefined {
    if (this.opts.scaling === 'absmax') return undefined;
    return tf.tidy(() => {
      if (this.opts.scaling === 'const') return this.restrict(tf.scalar(this.opts.maxVal!)).dataSync()[0]!;
      return (this.collecting ? this.restrict(this.statBuffer!) : this.parameterScale()).dataSync()[0]!;
    });
  }

  /** Resynchronises the JS step mirror after a state dict load. */
  protected override afterLoad(): void {
    this.steps = 0;
  }
}

/** Index of the k-th largest value (1-based k) by selection on a copy of the indices: O(n) expected. */
export function kthLargestIndex(values: Float32Array, k: number): number {
  const idx = new Int32Array(values.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  let lo = 0;
  let hi = idx.length - 1;
  const target = k - 1; // position in descending order
  while (lo < hi) {
    const pivot = values[idx[(lo + hi) >> 1]!]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[idx[i]!]! > pivot) i++;
      while (values[idx[j]!]! < pivot) j--;
      if (i <= j) {
        const t = idx[i]!;
        idx[i] = idx[j]!;
        idx[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return idx[target]!;
}
