/**
 * Float layers with PyTorch semantics. Image tensors are NHWC (channels last: TensorFlow.js's native layout, and
 * what its fast WASM/XNNPACK kernels use), while weights are stored in PyTorch's layouts (Linear [out, in],
 * Conv2d [out, in, kh, kw]) so checkpoints and ONNX exports line up with PyTorch/Brevitas.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { defaultUniform } from './init.js';
import { Module, expectShape } from './module.js';
import { type Activation, isQuantTensor, valueOf } from './quant-tensor.js';

export type Padding = number | 'same' | 'valid';

function positiveInt(who: string, what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new ConfigError(`${who}: ${what} must be a positive integer, got ${v}`);
  return v;
}

/**
 * Shared by Linear-like layers: weight, optional bias, and an optional pruning mask multiplied into the weight on
 * every forward pass (so pruned weights stay exactly zero while training moves the others).
 */
export abstract class WeightedLayer extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | undefined;
  private mask: tf.Variable | undefined;

  protected constructor(weightShape: number[], fanIn: number, bias: boolean, rng?: Rng, sharedWeight?: tf.Variable) {
    super();
    // A shared (tied) weight belongs to the module that registered it; it is not registered twice, so parameters()
    // and optimizers see it once, as PyTorch's parameters() does for GPT-2's lm_head/wte.
    this.weight = sharedWeight ?? this.addParameter('weight', defaultUniform(weightShape, fanIn, rng));
    this.bias = bias ? this.addParameter('bias', defaultUniform([weightShape[0]!], fanIn, rng)) : undefined;
  }

  /** Fan-out × fan-in view sizes: [out, in·kh·kw]. */
  get fanIn(): number {
    return this.weight.size / this.weight.shape[0]!;
  }

  get fanOut(): number {
    return this.weight.shape[0]!;
  }

  /** Installs (or replaces) a 0/1 mask of the weight's shape; saved as the buffer `weight_mask`. */
  setWeightMask(mask: tf.Tensor): void {
    if (mask.shape.join() !== this.weight.shape.join()) {
      throw new ConfigError(`${this.label()}: mask shape [${mask.shape}] differs from weight shape [${this.weight.shape}]`);
    }
    if (this.mask) this.mask.assign(mask);
    else this.mask = this.addBuffer('weight_mask', mask.clone());
  }

  /** Makes the mask permanent: multiplies it into the weight and drops the `weight_mask` buffer. */
  removeWeightMask(): void {
    if (!this.mask) return;
    const masked = tf.mul(this.weight, this.mask);
    this.weight.assign(masked);
    masked.dispose(); // assign copies into the variable
    this.mask = undefined;
    this.removeBuffer('weight_mask');
  }

  get weightMask(): tf.Tensor | undefined {
    return this.mask;
  }

  /** The weight as used by forward: masked when a mask is installed. */
  effectiveWeight(): tf.Tensor {
    return this.mask ? tf.mul(this.weight, this.mask) : this.weight;
  }
}

export class Linear extends WeightedLayer {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    /** `tiedWeight`: use this [out, in] variable as the weight (weight tying, e.g. GPT-2's lm_head = wte). */
    opts: { bias?: boolean; rng?: Rng; tiedWeight?: tf.Variable } = {},
  ) {
    positiveInt('Linear', 'inFeatures', inFeatures);
    positiveInt('Linear', 'outFeatures', outFeatures);
    if (opts.tiedWeight && opts.tiedWeight.shape.join() !== [outFeatures, inFeatures].join()) {
      throw new ConfigError(`Linear: tied weight has shape [${opts.tiedWeight.shape}], expected [${outFeatures},${inFeatures}]`);
    }
    super([outFeatures, inFeatures], inFeatures, opts.bias ?? true, opts.rng, opts.tiedWeight);
  }

  forward(x: Activation): Activation {
    const v = valueOf(x);
    expectShape(this.label(), v, 2, { index: -1, size: this.inFeatures, what: 'input features' });
    return linear(v, this.effectiveWeight(), this.bias);
  }
}

/** y = x·Wᵀ + b with W in PyTorch's [out, in] layout. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const y = tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D, false, true);
  return b ? tf.add(y, b) : y;
}

export interface Conv2dOptions {
  stride?: number;
  padding?: Padding;
  bias?: boolean;
  rng?: Rng;
}

export class Conv2d extends WeightedLayer {
  readonly stride: number;
  readonly padding: Padding;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv2dOptions = {},
  ) {
    positiveInt('Conv2d', 'inChannels', inChannels);
    positiveInt('Conv2d', 'outChannels', outChannels);
    positiveInt('Conv2d', 'kernelSize', kernelSize);
    super([outChannels, inChannels, kernelSize, kernelSize], inChannels * kernelSize * kernelSize, opts.bias ?? true, opts.rng);
    this.stride = positiveInt('Conv2d', 'stride', opts.stride ?? 1);
    this.padding = opts.padding ?? 0;
    if (typeof this.padding === 'number' && (!Number.isInteger(this.padding) || this.padding < 0)) {
      throw new ConfigError(`Conv2d: padding must be a non-negative integer, 'same' or 'valid', got ${this.padding}`);
    }
  }

  forward(x: Activation): Activation {
    const v = valueOf(x);
    expectShape(this.label(), v, 4, { index: 3, size: this.inChannels, what: 'input channels (NHWC)' });
    return conv2d(v, this.effectiveWeight(), this.bias, this.stride, this.padding);
  }
}

/** NHWC convolution with an OIHW (PyTorch-layout) weight. */
export function conv2d(x: tf.Tensor, wOihw: tf.Tensor, b: tf.Tensor | undefined, stride: number, padding: Padding): tf.Tensor {
  const w = tf.transpose(wOihw, [2, 3, 1, 0]) as tf.Tensor4D;
  const pad = padding === 0 ? 'valid' : padding;
  const y = tf.conv2d(x as tf.Tensor4D, w, stride, pad);
  return b ? tf.add(y, b) : y;
}

export class ReLU extends Module {
  /** ReLU keeps a quantized input on its integer grid, so the quantization metadata passes through. */
  forward(x: Activation): Activation {
    return isQuantTensor(x) ? x.withValue(tf.relu(x.value)) : tf.relu(x);
  }
}

export class Identity extends Module {
  forward(x: Activation): Activation {
    return x;
  }
}

/** Flattens all but the batch axis. For NHWC images the order is H, W, C (the ONNX export accounts for it). */
export class Flatten extends Module {
  forward(x: Activation): Activation {
    const v = valueOf(x);
    if (v.rank < 2) throw new ConfigError(`${this.label()} expects a batched input, got shape [${v.shape}]`);
    const flat = tf.reshape(v, [v.shape[0]!, -1]);
    return isQuantTensor(x) ? x.withValue(flat) : flat;
  }
}

export class AvgPool2d extends Module {
  readonly stride: number;

  constructor(readonly kernelSize: number, stride?: number) {
    super();
    positiveInt('AvgPool2d', 'kernelSize', kernelSize);
    this.stride = positiveInt('AvgPool2d', 'stride', stride ?? kernelSize);
  }

  forward(x: Activation): tf.Tensor {
    const v = valueOf(x);
    expectShape(this.label(), v, 4);
    return tf.avgPool(v as tf.Tensor4D, this.kernelSize, this.stride, 'valid');
  }
}

/**
 * BatchNorm over the last axis (features for [N, C], channels for NHWC images), PyTorch semantics: batch
 * statistics in training (biased variance to normalise, unbiased for the running estimate), running statistics in
 * eval; momentum 0.1, eps 1e-5 by default.
 */
export class BatchNorm extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  readonly numBatchesTracked: tf.Variable;

  constructor(
    readonly numFeatures: number,
    private readonly rank: number,
    readonly opts: { eps?: number; momentum?: number } = {},
  ) {
    super();
    positiveInt('BatchNorm', 'numFeatures', numFeatures);
    this.weight = this.addParameter('weight', tf.ones([numFeatures]));
    this.bias = this.addParameter('bias', tf.zeros([numFeatures]));
    this.runningMean = this.addBuffer('running_mean', tf.zeros([numFeatures]));
    this.runningVar = this.addBuffer('running_var', tf.ones([numFeatures]));
    this.numBatchesTracked = this.addBuffer('num_batches_tracked', tf.scalar(0, 'int32'));
  }

  get eps(): number {
    return this.opts.eps ?? 1e-5;
  }

  get momentum(): number {
    return this.opts.momentum ?? 0.1;
  }

  forward(x: Activation): tf.Tensor {
    const v = valueOf(x);
    expectShape(this.label(), v, this.rank, { index: -1, size: this.numFeatures, what: 'features/channels (last axis)' });
    if (!this.training) {
      return tf.batchNorm(v, this.runningMean, this.runningVar, this.bias, this.weight, this.eps);
    }
    const axes = [...Array(v.rank - 1).keys()];
    const { mean, variance } = tf.moments(v, axes);
    const n = v.size / this.numFeatures;
    tf.tidy(() => {
      const m = this.momentum;
      const unbiased = tf.mul(variance, n / Math.max(n - 1, 1));
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(unbiased, m)));
      this.numBatchesTracked.assign(tf.add(this.numBatchesTracked, tf.scalar(1, 'int32')));
    });
    return tf.batchNorm(v, mean, variance, this.bias, this.weight, this.eps);
  }
}

export class BatchNorm1d extends BatchNorm {
  constructor(numFeatures: number, opts: { eps?: number; momentum?: number } = {}) {
    super(numFeatures, 2, opts);
  }
}

export class BatchNorm2d extends BatchNorm {
  constructor(numFeatures: number, opts: { eps?: number; momentum?: number } = {}) {
    super(numFeatures, 4, opts);
  }
}

export class Sequential extends Module {
  private readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.addModule(String(i), m));
  }

  get length(): number {
    return this.layers.length;
  }

  at(i: number): Module {
    return this.getModule(String(i));
  }

  forward(x: Activation): Activation {
    let y = x;
    for (const [, m] of this.namedChildren()) y = m.call(y);
    return y;
  }

  override async forwardAsync(x: Activation): Promise<Activation> {
    let y = x;
    for (const [, m] of this.namedChildren()) y = await m.callAsync(y);
    return y;
  }
}
