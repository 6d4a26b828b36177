/**
 * CNV — the VGG-like 2-bit network of Concrete ML's CIFAR-10 QAT example (Brevitas bnn_pynq "CNV 2W2A" with average
 * pooling; facts in shared/reference/concrete-ml.md §2), built from fhenet layers, plus a CPU-budget variant (the
 * Fashion-MNIST CNN is fashion-cnn.ts).
 *
 * Layout (names follow the Brevitas model so state-dict keys line up: conv_features.N, linear_features.N):
 *   conv_features:  QuantIdentity(8-bit, power-of-two scale, [−1, 1 − 2⁻⁷])
 *                   6 × [QuantConv2d 3×3 no bias, no padding → BatchNorm2d(eps 1e-4) → QuantIdentity(2-bit)],
 *                   AvgPool2d(2) → QuantIdentity(2-bit) after convs 2 and 4
 *   flatten
 *   linear_features: 2 × [QuantLinear no bias → BatchNorm1d(eps 1e-4) → QuantIdentity(2-bit)],
 *                   QuantLinear(→ classes, no bias) → BatchNorm1d(classes) → QuantIdentity(8-bit, learned scale)
 *                   (the last two stand in for TensorNorm, see below)
 *
 * Shapes: the Brevitas source (bnn_pynq/models/CNV.py, copied into Concrete ML's cifar_brevitas_training/models)
 * creates its QuantConv2d without padding, so a 32×32 image shrinks 32 → 30 → 28 → pool 14 → 12 → 10 → pool 5 →
 * 3 → 1, and the last conv's 256 channels × 1 × 1 feed the 256 → 512 linear layer.
 *
 * Quantizers are Brevitas's CommonWeightQuant / CommonActQuant of that example: signed, narrow range, constant
 * scale with max 1, so at 2 bits weights and activations take the values {−1, 0, 1}; weights are initialised
 * U(−1, 1) and clipped to [−1, 1] after every step (`clipWeights`). The input is expected already mapped to
 * [−1, 1] (x → 2x − 1): Brevitas does that inside forward, but fhenet exports only module calls, so the data
 * loader applies it (datasets/cifar10 `normalization: 'cnv'`).
 *
 * TensorNorm (Brevitas's learned scalar affine normalisation of the logits) has no ONNX translation in fhenet; it is
 * approximated by a BatchNorm1d over the class logits (a per-class affine instead of one scalar pair), followed by an
 * 8-bit output quantizer: the FHE circuit must end on a quantized value, and Concrete ML compiles the reference
 * with 8-bit outputs. Both are part of the exported graph.
 */
import { AvgPool2d, BatchNorm, BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { type Activation, valueOf } from '../nn/quant-tensor.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../quant/layers.js';
import type { QuantizerOptions } from '../quant/quantizer.js';
import { uniform } from '../nn/init.js';
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';
import { ConfigError } from '../util/errors.js';

export interface CnvOptions {
  /** Output channels of the six convolutions (reference: 64, 64, 128, 128, 256, 256). */
  channels?: number[];
  /** Widths of the two hidden linear layers (reference: 512, 512). */
  hidden?: number[];
  weightBits?: number;
  actBits?: number;
  inputBits?: number;
  numClasses?: number;
  inChannels?: number;
  /** Square input side (32 for CIFAR-10). */
  inputSize?: number;
  rng?: Rng;
}

export const CNV_CHANNELS = [64, 64, 128, 128, 256, 256];
export const CNV_HIDDEN = [512, 512];
/** The CPU-budget variant: a quarter of the channels and hidden widths (≈ 1/16 of the convolution work). */
export const CNV_SMALL_CHANNELS = [16, 16, 32, 32, 64, 64];
export const CNV_SMALL_HIDDEN = [128, 128];
const POOL_AFTER = new Set([1, 3]);

/**
 * Training-mode batch normalisation with one fused gradient. tfjs's own path (moments + batchNorm, then their
 * separate gradients) spends most of a CNV step in Tile, Sum and Mean kernels on WASM; here the per-channel sums are
 * single reductions over the leading axis (no Tile; a matMul with a row of ones would be slower because
 * the WASM matMul packs its second operand anew for every new tensor) and the backward pass is the closed form
 *   dβ = Σdy, dγ = Σdy·x̂, dx = γ/(σ·M) · (M·dy − dβ − x̂·dγ).
 * Returns y and the batch mean and biased variance (for the running statistics).
 */
export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const c = x.shape[x.rank - 1]!;
  const m = x.size / c;
  const stats: tf.Tensor[] = [];
  const f = tf.customGrad((xIn, g, b, save) => {
    const x2 = tf.reshape(xIn as tf.Tensor, [m, c]) as tf.Tensor2D;
    const mean = tf.div(tf.sum(x2, 0, true), m);
    const centered = tf.sub(x2, mean);
    const variance = tf.div(tf.sum(tf.square(centered), 0, true), m);
    const invStd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(centered, invStd);
    const y = tf.add(tf.mul(xhat, g as tf.Tensor), b as tf.Tensor);
    stats.push(tf.keep(tf.reshape(mean, [c])), tf.keep(tf.reshape(variance, [c])));
    (save as unknown as tf.GradSaveFunc)([xhat, invStd, g as tf.Tensor]);
    return {
      value: tf.reshape(y, (xIn as tf.Tensor).shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, gm] = saved as [tf.Tensor2D, tf.Tensor, tf.Tensor];
        const dy2 = tf.reshape(dy, [m, c]) as tf.Tensor2D;
        const dBeta = tf.sum(dy2, 0, true);
        const dGamma = tf.sum(tf.mul(dy2, xh), 0, true);
        const k = tf.div(tf.mul(gm, inv), m);
        const dx = tf.mul(k, tf.sub(tf.sub(tf.mul(dy2, m), dBeta), tf.mul(xh, dGamma)));
        return [tf.reshape(dx, dy.shape), tf.reshape(dGamma, [c]), tf.reshape(dBeta, [c])];
      },
    };
  });
  const y = f(x, gamma, beta);
  return { y, mean: stats[0]!, variance: stats[1]! };
}

/** Mixin body shared by the fast BatchNorm classes: the fused training path, eval unchanged. */
function fastBnForward(bn: BatchNorm, x: Activation): tf.Tensor {
  const v = valueOf(x);
  if (!bn.training) return BatchNorm.prototype.forward.call(bn, x);
  const { y, mean, variance } = batchNormTrain(v, bn.weight, bn.bias, bn.eps);
  const n = v.size / bn.numFeatures;
  tf.tidy(() => {
    const mo = bn.momentum;
    const unbiased = tf.mul(variance, n / Math.max(n - 1, 1));
    bn.runningMean.assign(tf.add(tf.mul(bn.runningMean, 1 - mo), tf.mul(mean, mo)));
    bn.runningVar.assign(tf.add(tf.mul(bn.runningVar, 1 - mo), tf.mul(unbiased, mo)));
    bn.numBatchesTracked.assign(tf.add(bn.numBatchesTracked, tf.scalar(1, 'int32')));
  });
  tf.dispose([mean, variance]);
  return y;
}

/** BatchNorm2d with the fused training gradient (same parameters, buffers, export and eval as BatchNorm2d). */
export class FastBatchNorm2d extends BatchNorm2d {
  override forward(x: Activation): tf.Tensor {
    return fastBnForward(this, x);
  }
}

/** BatchNorm1d with the fused training gradient. */
export class FastBatchNorm1d extends BatchNorm1d {
  override forward(x: Activation): tf.Tensor {
    return fastBnForward(this, x);
  }
}

/** Brevitas CommonActQuant / CommonWeightQuant: signed, narrow, constant scale with max 1. */
function commonQuant(bits: number): Partial<QuantizerOptions> {
  return { bitWidth: bits, signed: true, narrow: true, scaling: 'const', maxVal: 1 };
}

/** Spatial size after the CNV feature extractor for a square input of side `s` (unpadded 3×3 convs, two pools). */
export function cnvFeatureSide(s: number): number {
  let side = s;
  for (let i = 0; i < 6; i++) {
    side -= 2;
    if (POOL_AFTER.has(i)) side = Math.floor(side / 2);
  }
  return side;
}

export class CNV extends Module {
  readonly conv_features: Sequential;
  readonly flatten: Flatten;
  readonly linear_features: Sequential;
  readonly opts: Required<Omit<CnvOptions, 'rng'>>;

  constructor(opts: CnvOptions = {}) {
    super();
    const o = {
      channels: opts.channels ?? CNV_CHANNELS,
      hidden: opts.hidden ?? CNV_HIDDEN,
      weightBits: opts.weightBits ?? 2,
      actBits: opts.actBits ?? 2,
      inputBits: opts.inputBits ?? 8,
      numClasses: opts.numClasses ?? 10,
      inChannels: opts.inChannels ?? 3,
      inputSize: opts.inputSize ?? 32,
    };
    if (o.channels.length !== 6) throw new ConfigError(`CNV: channels needs 6 entries, got ${o.channels.length}`);
    if (o.hidden.length !== 2) throw new ConfigError(`CNV: hidden needs 2 entries, got ${o.hidden.length}`);
    const side = cnvFeatureSide(o.inputSize);
    if (side < 1) throw new ConfigError(`CNV: a ${o.inputSize}×${o.inputSize} input is too small (needs ≥ 22)`);
    this.opts = o;
    const rng = opts.rng;
    const act = () => new QuantIdentity({ actQuant: commonQuant(o.actBits) });
    const weightQuant = { ...commonQuant(o.weightBits), clampSte: true };
    const conv: Module[] = [
      new QuantIdentity({
        actQuant: { bitWidth: o.inputBits, signed: true, narrow: false, scaling: 'const', maxVal: 1, powerOfTwo: true },
      }),
    ];
    let cin = o.inChannels;
    o.channels.forEach((cout, i) => {
      conv.push(new QuantConv2d(cin, cout, 3, { bias: false, weightQuant, rng }), new FastBatchNorm2d(cout, { eps: 1e-4 }), act());
      if (POOL_AFTER.has(i)) conv.push(new AvgPool2d(2), act());
      cin = cout;
    });
    const lin: Module[] = [];
    let fin = cin * side * side;
    for (const h of o.hidden) {
      lin.push(new QuantLinear(fin, h, { bias: false, weightQuant, rng }), new FastBatchNorm1d(h, { eps: 1e-4 }), act());
      fin = h;
    }
    lin.push(
      new QuantLinear(fin, o.numClasses, { bias: false, weightQuant, rng }),
      new FastBatchNorm1d(o.numClasses, { eps: 1e-4 }),
      new QuantIdentity({ bitWidth: 8 }),
    );
    this.conv_features = this.addModule('conv_features', new Sequential(...conv));
    this.flatten = this.addModule('flatten', new Flatten());
    this.linear_features = this.addModule('linear_features', new Sequential(...lin));
    // Brevitas CNV initialises every quantized weight U(−1, 1), matching the constant weight range.
    for (const w of this.quantWeights()) assignAndFree(w.weight, uniform(w.weight.shape, -1, 1, rng));
  }

  private quantWeights(): (QuantConv2d | QuantLinear)[] {
    return this.namedModules()
      .map(([, m]) => m)
      .filter((m): m is QuantConv2d | QuantLinear => m instanceof QuantConv2d || m instanceof QuantLinear);
  }

  /** Clamps every quantized weight to [min, max] (Brevitas CNV.clip_weights; call after each optimizer step). */
  clipWeights(min = -1, max = 1): void {
    for (const m of this.quantWeights()) assignAndFree(m.weight, tf.clipByValue(m.weight, min, max));
  }

  forward(x: Activation): Activation {
    return this.linear_features.call(this.flatten.call(this.conv_features.call(x)));
  }
}

/** `v.assign(t)` keeps `t` alive as a separate tensor; free it so a per-step assignment does not leak. */
export function assignAndFree(v: tf.Variable, t: tf.Tensor): void {
  v.assign(t);
  t.dispose();
}

/**
 * CNV's float twin: the same convolutions, BatchNorm and pools with ReLU instead of the quantizers and no input
 * quantizer. A distillation teacher for the QAT CNV (`fit({ distill })`) and the float row of the training benchmark.
 */
export class FloatCnv extends Module {
  readonly body: Sequential;
  constructor() {
    super();
    const layers: Module[] = [];
    let cin = 3;
    CNV_CHANNELS.forEach((c, i) => {
      layers.push(new Conv2d(cin, c, 3, { bias: false }), new FastBatchNorm2d(c, { eps: 1e-4 }), new ReLU());
      if (i === 1 || i === 3) layers.push(new AvgPool2d(2));
      cin = c;
    });
    layers.push(new Flatten(), new Linear(256, 512, { bias: false }), new FastBatchNorm1d(512, { eps: 1e-4 }), new ReLU());
    layers.push(new Linear(512, 512, { bias: false }), new FastBatchNorm1d(512, { eps: 1e-4 }), new ReLU(), new Linear(512, 10, { bias: false }));
    this.body = this.addModule('body', new Sequential(...layers));
  }

  forward(x: Activation): Activation {
    return this.body.call(x);
  }
}

export type CnvVariant = 'full' | 'small';

/** The reference CNV (`full`) or the CPU-budget variant (`small`). */
export function createCnv(variant: CnvVariant, opts: Omit<CnvOptions, 'channels' | 'hidden'> = {}): CNV {
  if (variant === 'full') return new CNV(opts);
  if (variant === 'small') return new CNV({ ...opts, channels: CNV_SMALL_CHANNELS, hidden: CNV_SMALL_HIDDEN });
  throw new ConfigError(`unknown CNV variant '${String(variant)}' (full or small)`);
}
