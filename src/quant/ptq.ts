/**
 * Post-training quantization (the reference's `compile_torch_model(model, inputset, n_bits)` path): a trained float
 * network becomes a quantized twin built from fhenet's QAT layers with constant, calibrated scales, so the clear
 * evaluation, the accumulator analysis, the ONNX export and the compiler all see an ordinary QAT model.
 *
 * - Weights: per-tensor, signed, narrow, symmetric: s_w = max|W| / (2^(n−1) − 1) (pruning masks applied first).
 * - Network input and every activation that feeds a weighted layer: calibrated on a data set from the float
 *   model's values. After a ReLU (or when every calibration value is ≥ −s/2, i.e. rounds to a non-negative integer)
 *   the quantizer is unsigned, s = max / (2^n − 1), integers [0, 2^n − 1]; otherwise signed, symmetric,
 *   s = max|x| / 2^(n−1), integers [−2^(n−1), 2^(n−1) − 1]. fhenet uses zero-point 0 everywhere (the reference's
 *   activation quantizers are asymmetric with a zero point; for the non-negative values of ReLU nets the two agree).
 * - Biases stay float (they fuse into the next table lookup) and the final layer's output stays float (logits).
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
import { QuantConv2d, QuantIdentity, QuantLinear, QuantReLU } from './layers.js';
import type { QuantizerOptions } from './quantizer.js';

export interface PtqOptions {
  /** Bit width of weights, input and activations (the reference's n_bits). */
  bits: number;
  /** Override the weight / activation widths separately. */
  weightBits?: number;
  actBits?: number;
  /** Calibrate on the first n samples only (default all). */
  maxSamples?: number;
  batchSize?: number;
}

interface LeafStats {
  name: string;
  module: Module;
  inMin: number;
  inMax: number;
  outMin: number;
  outMax: number;
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

/** Runs the float model over the calibration data, recording each leaf's input/output range in call order. */
function calibrate(model: Module, data: Dataset, opts: PtqOptions): LeafStats[] {
  const n = Math.min(size(data), opts.maxSamples ?? Infinity);
  if (!(n > 0)) throw new ConfigError('post-training quantization needs a non-empty calibration set');
  const per = sampleSize(data);
  const bs = opts.batchSize ?? 1000;
  const names = new Map<Module, string>(model.namedModules().map(([k, m]) => [m, k]));
  let order: LeafStats[] | undefined;
  const wasTraining = model.training;
  model.eval();
  try {
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const seen: { module: Module; input: Activation; output: Activation; ranges: number[] }[] = [];
      const removers = model.namedModules().filter(([, mod]) => isLeaf(mod)).map(([, mod]) =>
        mod.registerForwardHook((mm, input, output) => {
          const r = tf.tidy(() => [tf.min(valueOf(input)), tf.max(valueOf(input)), tf.min(valueOf(output)), tf.max(valueOf(output))].map((t) => t.dataSync()[0]!));
          seen.push({ module: mm, input, output, ranges: r });
        }),
      );
      try {
        tf.tidy(() => {
          model.call(tf.tensor(data.x.subarray(s * per, (s + m) * per), [m, ...data.sampleShape]));
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
      }
      if (!order) order = seen.map((e) => ({ name: names.get(e.module)!, module: e.module, inMin: Infinity, inMax: -Infinity, outMin: Infinity, outMax: -Infinity }));
      seen.forEach((e, i) => {
        const o = order![i]!;
        o.inMin = Math.min(o.inMin, e.ranges[0]!);
        o.inMax = Math.max(o.inMax, e.ranges[1]!);
        o.outMin = Math.min(o.outMin, e.ranges[2]!);
        o.outMax = Math.max(o.outMax, e.ranges[3]!);
      });
    }
  } finally {
    model.train(wasTraining);
  }
  return order ?? [];
}

/** A constant-scale activation quantizer for values in [min, max]. */
export function calibratedActQuant(min: number, max: number, bits: number, forceUnsigned = false): Partial<QuantizerOptions> {
  const tiny = 1e-8;
  const unsignedScale = Math.max(max, tiny) / (2 ** bits - 1);
  if (forceUnsigned || min >= -unsignedScale / 2) {
    return { bitWidth: bits, signed: false, narrow: false, scaling: 'const', maxVal: Math.max(max, tiny) };
  }
  return { bitWidth: bits, signed: true, narrow: false, scaling: 'const', maxVal: Math.max(Math.abs(min), Math.abs(max), tiny) };
}

function weightQuant(layer: WeightedLayer, bits: number): Partial<QuantizerOptions> {
  const maxAbs = tf.tidy(() => tf.max(tf.abs(layer.effectiveWeight())).dataSync()[0]!);
  return { bitWidth: bits, signed: true, narrow: true, scaling: 'const', maxVal: Math.max(maxAbs, 1e-8), clampSte: true };
}

function copyWeights(from: WeightedLayer, to: WeightedLayer): void {
  to.weight.assign(from.weight);
  if (from.bias && to.bias) to.bias.assign(from.bias);
  if (from.weightMask) to.setWeightMask(from.weightMask);
}

/** Builds the calibrated quantized twin of a float chain model. */
export function quantizePostTraining(model: Module, calibration: Dataset, opts: PtqOptions): QuantChain {
  const wBits = opts.weightBits ?? opts.bits;
  const aBits = opts.actBits ?? opts.bits;
  const stats = calibrate(model, calibration, opts);
  if (!stats.some((s) => s.module instanceof WeightedLayer)) throw new ConfigError(`${model.constructor.name} has no Linear/Conv2d layer to quantize`);
  const entries: [string, Module][] = [];
  let quantized = false;
  const safe = (n: string) => n.replace(/\./g, '_');
  for (const s of stats) {
    const m = s.module;
    const name = safe(s.name);
    if (m instanceof WeightedLayer) {
      if (!quantized) {
        const qname = entries.length === 0 ? 'quant_inp' : `${name}_input_quant`;
        entries.push([qname, new QuantIdentity({ actQuant: calibratedActQuant(s.inMin, s.inMax, aBits) })]);
      }
      const wq = weightQuant(m, wBits);
      let q: WeightedLayer;
      if (m instanceof Conv2d) {
        q = new QuantConv2d(m.inChannels, m.outChannels, m.kernelSize, { stride: m.stride, padding: m.padding, bias: m.bias !== undefined, weightQuant: wq });
      } else if (m instanceof Linear) {
        q = new QuantLinear(m.inFeatures, m.outFeatures, { bias: m.bias !== undefined, weightQuant: wq });
      } else {
        throw new ConfigError(`post-training quantization: unsupported weighted layer ${m.constructor.name} '${s.name}'`);
      }
      copyWeights(m, q);
      entries.push([name, q]);
      quantized = false;
    } else if (m instanceof ReLU) {
      entries.push([name, new QuantReLU({ actQuant: calibratedActQuant(0, s.outMax, aBits, true) })]);
      quantized = true;
    } else if (m instanceof Flatten || m instanceof Identity) {
      entries.push([name, m instanceof Flatten ? new Flatten() : new Identity()]);
    } else if (m instanceof AvgPool2d) {
      entries.push([name, new AvgPool2d(m.kernelSize, m.stride)]);
      quantized = false;
    } else {
      throw new ConfigError(`post-training quantization: unsupported module ${m.constructor.name} '${s.name}' (Linear, Conv2d, ReLU, Flatten, Identity, AvgPool2d)`);
    }
  }
  return new QuantChain(entries).eval();
}
