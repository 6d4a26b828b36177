/**
 * Post-training quantization (the reference's `compile_torch_model(model, inputset, n_bits)` path): a trained float
 * network becomes a quantized twin built from fhenet's QAT layers with constant, calibrated scales, so the clear
 * evaluation, the accumulator analysis, the ONNX export and the compiler all see an ordinary QAT model.
 *
 * The default (`calibration: 'minmax'`, `weightCalibration: 'absmax'`, `sequential: true`) follows Concrete ML's
 * `PostTrainingAffineQuantization` (src/concrete/ml/quantization/post_training.py and quantized_array.py /
 * quantizers.py; read at commit 1c6f571e of June 2022, when the guide's PTQ table was written, and at the current
 * head). With an integer n_bits = n it quantizes:
 * - weights (`op_weights` = n): per tensor, symmetric, scale s = max|W| / (2^(n−1) − 1), integers clipped to
 *   [−2^(n−1), 2^(n−1) − 1] — never below −(2^(n−1) − 1) since |W|/s ≤ 2^(n−1) − 1, i.e. narrow in effect;
 *   round half to even (numpy.rint). (Pruning masks are applied first.) The current head makes a weight tensor
 *   asymmetric when its 3rd/97th percentiles are skewed (`_check_distribution_is_symmetric_around_zero`); fhenet
 *   has no zero points and keeps it symmetric.
 * - the input of every layer that mixes encrypted values (`op_inputs` = n) — the network input of its first layer
 *   included — with min/max calibration, *asymmetric*: s = (max − min) / (2^n − 1), zero point
 *   z = round(−min·(2^n − 1) / (max − min)), integers [0, 2^n − 1]. After a ReLU (min = 0), and for data in
 *   [≈ 0, 1] with a little noise (−min·(2^n − 1) < (max − min)/2), z = 0: an unsigned quantizer of scale
 *   (max − min)/(2^n − 1), which is what fhenet builds. Where z ≠ 0 fhenet (no zero points in its quantizers or its
 *   circuit) falls back to a zero-point-free quantizer (`calibratedActQuant`) and `ptqReport` says so.
 * - calibration data for each layer: the *quantized* network's values up to that layer (Concrete ML calibrates
 *   layer by layer on the de-quantized outputs of the already quantized ops), not the float network's.
 * - biases stay float (they fuse into the next table lookup).
 * - the network's outputs (`model_outputs` = max(5, n)): asymmetric, calibrated; they are decrypted and
 *   de-quantized in the clear, so they change nothing in the circuit. The chain's logits stay float here;
 *   `quantizeOutputs` applies that quantizer (ties in the argmax are its only effect on accuracy).
 *
 * fhenet's own options: `calibration: 'mse'` (the activation clipping range that minimises the mean squared
 * quantization error on the calibration values) or `{ percentile: p }`; `weightCalibration: 'mse'` (the clipping
 * range of the weights that minimises their squared quantization error); `perChannelWeights` (one scale per output
 * neuron / channel; the compiler folds per-channel scales into the table lookups).
 *
 * Supported models are chains: every leaf module's input is the previous leaf's output (Sequential, SimpleNet,
 * …) made of Linear, Conv2d, ReLU, Flatten, Identity and AvgPool2d.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AvgPool2d, Conv2d, Flatten, Identity, Linear, ReLU, WeightedLayer } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { type Activation, valueOf } from '../nn/quant-tensor.js';
import { type Dataset, sampleSize, size } from '../train/dataset.js';
import { ConfigError } from '../util/errors.js';
import { analyzeAccumulators } from '../analysis/accumulator.js';
import { referenceActParams, rint } from '../util/int-quant.js';

export { referenceActParams, rint };
import { QuantConv2d, QuantIdentity, QuantLinear, QuantReLU } from '../quant/layers.js';
import type { QuantizerOptions } from '../quant/quantizer.js';

export interface PtqOptions {
  /** Bit width of weights, input and activations (the reference's n_bits). */
  bits: number;
  /** Override the weight / activation widths separately. */
  weightBits?: number;
  actBits?: number;
  /** Calibrate on the first n samples only (default all). */
  maxSamples?: number;
  batchSize?: number;
  /**
   * Activation (and input) range: 'minmax' (the reference's), 'mse' (the clipping range minimising the squared
   * quantization error over the calibration values) or a percentile of them (e.g. `{ percentile: 99.9 }`).
   */
  calibration?: 'minmax' | 'mse' | { percentile: number };
  /** Weight range: 'absmax' (the reference's max|W|) or 'mse' (the clip minimising the weights' squared error). */
  weightCalibration?: 'absmax' | 'mse';
  /** One weight scale per output neuron / channel (default per tensor, as the reference). */
  perChannelWeights?: boolean;
  /**
   * Calibrate each quantizer on the values of the already quantized network before it (the reference's way,
   * default true); false: on the float network's values.
   */
  sequential?: boolean;
  /**
   * fhenet's accuracy-driven refinement (off by default): coordinate descent over one clipping factor per activation
   * quantizer and per per-tensor weight quantizer (fractions `grid` of the calibrated range, default 1 … 0.2),
   * keeping the factor with the best accuracy on `samples` calibration samples (cross-entropy breaks ties), `passes`
   * sweeps over the quantizers in network order.
   */
  search?: {
    samples?: number;
    passes?: number;
    grid?: number[];
    /**
     * Accept a candidate only if the chain's observed accumulator width over the whole calibration set stays within
     * this many bits ('initial': the width of the chain before the search).
     */
    maxAccumulatorBits?: number | 'initial';
  };
}

/** How each activation quantizer of a PTQ chain was set, for reports and tests. */
export interface PtqQuantizerInfo {
  name: string;
  min: number;
  max: number;
  /** Concrete ML's zero point for [min, max] (0 where fhenet's quantizer is the reference's exactly). */
  referenceZeroPoint: number;
  signed: boolean;
  scale: number;
  /** The clipping range actually used (differs from max with mse / percentile calibration). */
  clip: number;
}

/** A chain of modules run in order; the quantized twin of a float chain. */
export class QuantChain extends Module {
  constructor(entries: [string, Module][]) {
    super();
    for (const [n, m] of entries) this.addModule(n, m);
  }

  forward(x: Activation): Activation {
    let y = x;
    for (const [, m] of this.namedChildren()) y = m.call(y);
    return y;
  }
}

function isLeaf(m: Module): boolean {
  return m.namedChildren().length === 0;
}

/** The leaves of a chain model in call order (checked on a small batch: each leaf takes the previous one's output). */
function chainLeaves(model: Module, data: Dataset): { name: string; module: Module }[] {
  const per = sampleSize(data);
  const names = new Map<Module, string>(model.namedModules().map(([k, m]) => [m, k]));
  const seen: { module: Module; input: Activation; output: Activation }[] = [];
  const wasTraining = model.training;
  model.eval();
  const removers = model.namedModules().filter(([, mod]) => isLeaf(mod)).map(([, mod]) =>
    mod.registerForwardHook((mm, input, output) => {
      seen.push({ module: mm, input, output });
    }),
  );
  try {
    tf.tidy(() => {
      const m = Math.min(size(data), 2);
      model.call(tf.tensor(data.x.subarray(0, m * per), [m, ...data.sampleShape]));
      for (let i = 1; i < seen.length; i++) {
        if (seen[i]!.input !== seen[i - 1]!.output) {
          throw new ConfigError(
            `post-training quantization supports chain models only: '${names.get(seen[i]!.module)}' does not take the output of '${names.get(seen[i - 1]!.module)}'`,
          );
        }
      }
    });
  } finally {
    for (const r of removers) r();
    model.train(wasTraining);
  }
  return seen.map((e) => ({ name: names.get(e.module)!, module: e.module }));
}

/** A constant-scale activation quantizer for values in [min, max] (zero point 0). */
export function calibratedActQuant(min: number, max: number, bits: number, forceUnsigned = false): Partial<QuantizerOptions> {
  const tiny = 1e-8;
  const unsignedScale = Math.max(max, tiny) / (2 ** bits - 1);
  if (forceUnsigned || min >= -unsignedScale / 2) {
    return { bitWidth: bits, signed: false, narrow: false, scaling: 'const', maxVal: Math.max(max, tiny) };
  }
  return { bitWidth: bits, signed: true, narrow: false, scaling: 'const', maxVal: Math.max(Math.abs(min), Math.abs(max), tiny) };
}

/** The reference's quantizer where fhenet can express it exactly (zero point 0), else `calibratedActQuant`. */
export function referenceActQuant(min: number, max: number, bits: number): Partial<QuantizerOptions> {
  const { zeroPoint } = referenceActParams(min, max, bits);
  if (zeroPoint === 0 && max - min >= 1e-6) {
    // Integers [0, 2^n − 1] at s = (max − min)/(2^n − 1): maxVal = (max − min).
    return { bitWidth: bits, signed: false, narrow: false, scaling: 'const', maxVal: max - min };
  }
  return calibratedActQuant(min, max, bits);
}

/** Squared error of quantizing `v` with scale s onto integers [lo, hi] (round half to even as tf.round). */
function quantError(v: Float32Array, s: number, lo: number, hi: number): number {
  let e = 0;
  for (let i = 0; i < v.length; i++) {
    let q = rint(v[i]! / s);
    q = q < lo ? lo : q > hi ? hi : q;
    const d = v[i]! - q * s;
    e += d * d;
  }
  return e;
}

/**
 * The clipping magnitude c ∈ (0, max|v|] (scale c / threshold) minimising the squared quantization error of `v`
 * on integers [lo, hi], over a grid of 200 fractions of max|v|.
 */
export function mseClip(v: Float32Array, threshold: number, lo: number, hi: number): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
  if (!(m > 0)) return 0;
  // Subsample large tensors (the error curve is smooth in c).
  let w = v;
  if (v.length > 200_000) {
    const stride = Math.ceil(v.length / 200_000);
    w = new Float32Array(Math.ceil(v.length / stride));
    for (let i = 0, j = 0; i < v.length; i += stride) w[j++] = v[i]!;
  }
  let best = m;
  let bestErr = quantError(w, m / threshold, lo, hi);
  for (let k = 1; k < 200; k++) {
    const c = (m * k) / 200;
    const e = quantError(w, c / threshold, lo, hi);
    if (e < bestErr) {
      bestErr = e;
      best = c;
    }
  }
  return best;
}

function percentileOf(v: Float32Array, p: number): number {
  const a = Float32Array.from(v).sort();
  const i = Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1));
  return a[i]!;
}

function minMax(v: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < v.length; i++) {
    if (v[i]! < lo) lo = v[i]!;
    if (v[i]! > hi) hi = v[i]!;
  }
  return [lo, hi];
}

/** The activation quantizer for calibration values `v` (after the ReLU when `relu`). */
function actQuantFor(v: Float32Array, bits: number, relu: boolean, calib: PtqOptions['calibration'], name: string): { q: Partial<QuantizerOptions>; info: PtqQuantizerInfo } {
  const [min0, max] = minMax(v);
  const min = relu ? 0 : min0;
  const ref = referenceActParams(min, max, bits);
  let q: Partial<QuantizerOptions> = relu ? calibratedActQuant(0, max, bits, true) : referenceActQuant(min, max, bits);
  if (calib && calib !== 'minmax' && q.signed === false) {
    // Unsigned (zero-point-free) quantizer: clip its top at the calibrated value.
    const levels = 2 ** bits - 1;
    let c: number;
    if (calib === 'mse') {
      c = mseClip(v, levels, 0, levels);
    } else {
      if (!(calib.percentile > 0 && calib.percentile <= 100)) throw new ConfigError(`ptq: percentile must be in (0, 100], got ${calib.percentile}`);
      c = percentileOf(v, calib.percentile);
    }
    q = { ...q, maxVal: Math.max(c, 1e-8) };
  } else if (calib && calib !== 'minmax') {
    // Signed fallback: symmetric clip.
    const t = 2 ** (bits - 1);
    const c = calib === 'mse' ? mseClip(v, t, -t, t - 1) : Math.max(Math.abs(percentileOf(v, 100 - calib.percentile)), Math.abs(percentileOf(v, calib.percentile)));
    q = { ...q, maxVal: Math.max(c, 1e-8) };
  }
  const threshold = q.signed ? 2 ** (bits - 1) : 2 ** bits - 1;
  return { q, info: { name, min, max, referenceZeroPoint: ref.zeroPoint, signed: q.signed === true, scale: q.maxVal! / threshold, clip: q.maxVal! } };
}

/** The weight quantizer of a layer; may clip the layer's weights (mse) so that absmax / const give the chosen scale. */
function weightQuantFor(layer: WeightedLayer, bits: number, opts: PtqOptions): { wq: Partial<QuantizerOptions>; weight?: tf.Tensor } {
  const L = 2 ** (bits - 1) - 1;
  const eff = layer.effectiveWeight();
  const rows = eff.shape[0]!;
  const data = eff.dataSync() as Float32Array;
  const per = data.length / rows;
  if (!opts.perChannelWeights && opts.weightCalibration !== 'mse') {
    let maxAbs = 0;
    for (let i = 0; i < data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(data[i]!));
    return { wq: { bitWidth: bits, signed: true, narrow: true, scaling: 'const', maxVal: Math.max(maxAbs, 1e-8), clampSte: true } };
  }
  const groups = opts.perChannelWeights ? Array.from({ length: rows }, (_, r) => data.subarray(r * per, (r + 1) * per)) : [data];
  const clips = groups.map((g) => (opts.weightCalibration === 'mse' ? mseClip(g, L, -L, L) : minMaxAbs(g)));
  const clipped = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const c = clips[opts.perChannelWeights ? Math.floor(i / per) : 0]!;
    clipped[i] = Math.min(c, Math.max(-c, data[i]!));
  }
  const weight = tf.tensor(clipped, eff.shape);
  if (opts.perChannelWeights) {
    // absmax per channel of the clipped weights = the chosen clip per channel.
    return { wq: { bitWidth: bits, signed: true, narrow: true, scaling: 'absmax', perChannel: true, clampSte: true }, weight };
  }
  return { wq: { bitWidth: bits, signed: true, narrow: true, scaling: 'const', maxVal: Math.max(clips[0]!, 1e-8), clampSte: true }, weight };
}

function minMaxAbs(v: Float32Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
  return m;
}

function copyWeights(from: WeightedLayer, to: WeightedLayer, weight?: tf.Tensor): void {
  if (weight) {
    // The clipped effective weight (mask already applied); the mask itself is kept so pruned entries stay zero.
    to.weight.assign(weight.reshape(to.weight.shape));
  } else {
    to.weight.assign(from.weight);
  }
  if (from.bias && to.bias) to.bias.assign(from.bias);
  if (from.weightMask) to.setWeightMask(from.weightMask);
}

/** Runs `m` over `x` in batches (the calibration set may be large), returning a new tensor. */
function runBatched(m: Module, x: tf.Tensor, bs: number): tf.Tensor {
  const n = x.shape[0]!;
  const parts: tf.Tensor[] = [];
  for (let s = 0; s < n; s += bs) {
    parts.push(tf.tidy(() => valueOf(m.call(tf.slice(x, s, Math.min(bs, n - s))))));
  }
  const out = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
  if (parts.length > 1) for (const p of parts) p.dispose();
  return out;
}

/** Builds the calibrated quantized twin of a float chain model. */
export function quantizePostTraining(model: Module, calibration: Dataset, opts: PtqOptions): QuantChain {
  return quantizePostTrainingWithReport(model, calibration, opts).model;
}

/** `quantizePostTraining` plus how each activation quantizer was set. */
export function quantizePostTrainingWithReport(model: Module, calibration: Dataset, opts: PtqOptions): { model: QuantChain; quantizers: PtqQuantizerInfo[] } {
  const wBits = opts.weightBits ?? opts.bits;
  const aBits = opts.actBits ?? opts.bits;
  const sequential = opts.sequential ?? true;
  const n = Math.min(size(calibration), opts.maxSamples ?? Infinity);
  if (!(n > 0)) throw new ConfigError('post-training quantization needs a non-empty calibration set');
  const bs = opts.batchSize ?? 1000;
  const leaves = chainLeaves(model, calibration);
  if (!leaves.some((s) => s.module instanceof WeightedLayer)) throw new ConfigError(`${model.constructor.name} has no Linear/Conv2d layer to quantize`);
  const entries: [string, Module][] = [];
  const infos: PtqQuantizerInfo[] = [];
  /** The clipping ranges the search may shrink: the module's name, its calibrated range and how to rebuild it. */
  const knobs: { name: string; base: number; make: (maxVal: number) => Module }[] = [];
  const keep: tf.Tensor[] = [];
  let quantized = false;
  const safe = (s: string) => s.replace(/\./g, '_');
  const wasTraining = model.training;
  model.eval();
  // The calibration values entering the current leaf: of the quantized chain so far (sequential) or the float model.
  let cur: tf.Tensor = tf.tensor(calibration.x.subarray(0, n * sampleSize(calibration)), [n, ...calibration.sampleShape]);
  const advance = (m: Module) => {
    const next = runBatched(m, cur, bs);
    cur.dispose();
    cur = next;
  };
  try {
    for (const s of leaves) {
      const m = s.module;
      const name = safe(s.name);
      let q: Module;
      if (m instanceof WeightedLayer) {
        if (!quantized) {
          const qname = entries.length === 0 ? 'quant_inp' : `${name}_input_quant`;
          const { q: aq, info } = actQuantFor(cur.dataSync() as Float32Array, aBits, false, opts.calibration, qname);
          const iq = new QuantIdentity({ actQuant: aq }).eval();
          knobs.push({ name: qname, base: aq.maxVal!, make: (maxVal) => new QuantIdentity({ actQuant: { ...aq, maxVal } }) });
          entries.push([qname, iq]);
          infos.push(info);
          if (sequential) advance(iq);
        }
        const { wq, weight } = weightQuantFor(m, wBits, opts);
        if (weight) keep.push(weight);
        const make = (w: Partial<QuantizerOptions>): Module => {
          let l: WeightedLayer;
          if (m instanceof Conv2d) {
            l = new QuantConv2d(m.inChannels, m.outChannels, m.kernelSize, { stride: m.stride, padding: m.padding, bias: m.bias !== undefined, weightQuant: w });
          } else if (m instanceof Linear) {
            l = new QuantLinear(m.inFeatures, m.outFeatures, { bias: m.bias !== undefined, weightQuant: w });
          } else {
            throw new ConfigError(`post-training quantization: unsupported weighted layer ${m.constructor.name} '${s.name}'`);
          }
          copyWeights(m, l, weight);
          return l;
        };
        q = make(wq);
        if (wq.scaling === 'const') knobs.push({ name, base: wq.maxVal!, make: (maxVal) => make({ ...wq, maxVal }) });
        quantized = false;
      } else if (m instanceof ReLU) {
        const relu = tf.tidy(() => tf.relu(cur));
        const { q: aq, info } = actQuantFor(relu.dataSync() as Float32Array, aBits, true, opts.calibration, name);
        relu.dispose();
        q = new QuantReLU({ actQuant: aq });
        knobs.push({ name, base: aq.maxVal!, make: (maxVal) => new QuantReLU({ actQuant: { ...aq, maxVal } }) });
        infos.push(info);
        quantized = true;
      } else if (m instanceof Flatten || m instanceof Identity) {
        q = m instanceof Flatten ? new Flatten() : new Identity();
      } else if (m instanceof AvgPool2d) {
        q = new AvgPool2d(m.kernelSize, m.stride);
        quantized = false;
      } else {
        throw new ConfigError(`post-training quantization: unsupported module ${m.constructor.name} '${s.name}' (Linear, Conv2d, ReLU, Flatten, Identity, AvgPool2d)`);
      }
      q.eval();
      entries.push([name, q]);
      advance(sequential ? q : m);
    }
  } finally {
    cur.dispose();
    model.train(wasTraining);
  }
  const chain = new QuantChain(entries).eval();
  try {
    if (opts.search) searchClips(chain, knobs, calibration, opts.search, infos);
  } finally {
    for (const t of keep) t.dispose();
  }
  return { model: chain, quantizers: infos };
}

/** Accuracy, then mean cross-entropy, of `chain` on `d`. */
function scoreOn(chain: Module, d: Dataset): [number, number] {
  const wasTraining = chain.training;
  chain.eval();
  try {
    return scoreOnEval(chain, d);
  } finally {
    chain.train(wasTraining);
  }
}

function scoreOnEval(chain: Module, d: Dataset): [number, number] {
  const logits = tf.tidy(() => {
    const x = tf.tensor(d.x, [d.y.length, ...d.sampleShape]);
    const out = runBatched(chain, x, 1000);
    return out;
  });
  const lv = logits.dataSync() as Float32Array;
  logits.dispose();
  return scoreLogits(lv, d);
}

function scoreLogits(logits: Float32Array, d: Dataset): [number, number] {
  const c = d.numClasses;
  let ok = 0;
  let ce = 0;
  for (let i = 0; i < d.y.length; i++) {
    let best = 0;
    let mx = -Infinity;
    for (let j = 0; j < c; j++) if (logits[i * c + j]! > mx) [mx, best] = [logits[i * c + j]!, j];
    if (best === d.y[i]) ok++;
    let z = 0;
    for (let j = 0; j < c; j++) z += Math.exp(logits[i * c + j]! - mx);
    ce += mx + Math.log(z) - logits[i * c + d.y[i]!]!;
  }
  return [ok / d.y.length, ce / d.y.length];
}

function searchClips(
  chain: QuantChain,
  knobs: { name: string; base: number; make: (maxVal: number) => Module }[],
  calibration: Dataset,
  o: NonNullable<PtqOptions['search']>,
  infos: PtqQuantizerInfo[],
): void {
  const grid = o.grid ?? [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2];
  if (!grid.every((g) => g > 0 && Number.isFinite(g))) throw new ConfigError(`ptq: search grid values must be positive, got ${grid}`);
  const nS = Math.min(size(calibration), o.samples ?? 2000);
  // An evenly strided subset (the calibration set may be sorted).
  const per = sampleSize(calibration);
  const stride = size(calibration) / nS;
  const x = new Float32Array(nS * per);
  const y = new Int32Array(nS);
  for (let i = 0; i < nS; i++) {
    const j = Math.floor(i * stride);
    x.set(calibration.x.subarray(j * per, (j + 1) * per), i * per);
    y[i] = calibration.y[j]!;
  }
  const sub: Dataset = { ...calibration, x, y };
  const better = (a: [number, number], b: [number, number]) => a[0] > b[0] + 1e-12 || (Math.abs(a[0] - b[0]) <= 1e-12 && a[1] < b[1] - 1e-9);
  let best = scoreOn(chain, sub);
  const chosen = knobs.map(() => 1);
  const budget = o.maxAccumulatorBits === 'initial' ? analyzeAccumulators(chain, calibration).bits : o.maxAccumulatorBits;
  const fits = () => budget === undefined || analyzeAccumulators(chain, calibration).bits <= budget;
  for (let pass = 0; pass < (o.passes ?? 2); pass++) {
    knobs.forEach((k, i) => {
      for (const g of grid) {
        if (g === chosen[i]) continue;
        const old = chain.getModule(k.name);
        const cand = k.make(k.base * g).eval();
        chain.setModule(k.name, cand);
        const sc = scoreOn(chain, sub);
        if (better(sc, best) && fits()) {
          best = sc;
          chosen[i] = g;
          old.dispose();
        } else {
          chain.setModule(k.name, old);
          cand.dispose();
        }
      }
    });
  }
  for (const info of infos) {
    const i = knobs.findIndex((k) => k.name === info.name);
    if (i >= 0 && chosen[i] !== 1) {
      info.clip *= chosen[i]!;
      info.scale *= chosen[i]!;
    }
  }
}

/**
 * The reference's output quantizer applied to logits (`model_outputs` = max(5, n) bits, asymmetric, calibrated on
 * `calib` logits): returns the de-quantized logits. Only ties in the argmax can change a prediction.
 */
export function quantizeOutputs(logits: Float32Array, calib: Float32Array, bits: number): Float32Array {
  const [min, max] = minMax(calib);
  const { scale, zeroPoint } = referenceActParams(min, max, bits);
  const hi = 2 ** bits - 1;
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) {
    let q = rint(logits[i]! / scale + zeroPoint);
    q = q < 0 ? 0 : q > hi ? hi : q;
    out[i] = scale * (q - zeroPoint);
  }
  return out;
}
