/**
 * FashionCnn: the small low-bit CNN for 28×28×1 images of the Fashion-MNIST experiment (experiments/cifar's
 * Fashion-MNIST rows). Its own file: it shares only the fast BatchNorm with the CNV family (cnv.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { AvgPool2d, Flatten, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { Activation } from '../nn/quant-tensor.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../quant/layers.js';
import type { Rng } from '../util/rng.js';
import { FastBatchNorm2d, assignAndFree } from './cnv.js';

export interface FashionCnnOptions {
  /** Weight and activation bit width (2 or 3 in the experiment). */
  bits?: number;
  inputBits?: number;
  channels?: [number, number];
  rng?: Rng;
}

/**
 * A small CNN for 28×28×1 images (Fashion-MNIST) with low-bit weights and activations:
 * QuantIdentity(8-bit input) → QuantConv2d(1→c1, 3×3) → BN → QuantIdentity → AvgPool2d(2) → QuantIdentity →
 * QuantConv2d(c1→c2, 3×3) → BN → QuantIdentity → AvgPool2d(2) → QuantIdentity → Flatten → QuantLinear(c2·5·5→10).
 * Shapes 28 → 26 → 13 → 11 → 5. Weights: abs-max per-tensor scale (Brevitas default at `bits`); activations:
 * signed `bits`-bit with a learned scale; input: unsigned 8-bit, scale 1/255.
 */
export class FashionCnn extends Module {
  readonly features: Sequential;
  readonly flatten: Flatten;
  readonly classifier: QuantLinear;

  constructor(opts: FashionCnnOptions = {}) {
    super();
    const bits = opts.bits ?? 3;
    const [c1, c2] = opts.channels ?? [32, 64];
    // Learned activation scales start from a fixed statistic (2, about two standard deviations after BatchNorm)
    // instead of collecting runtime statistics: fhenet's statistic on tensors above 50,000 values is a top-k
    // percentile, and tfjs has no gradient for TopK, so collection fails inside a training step at these sizes.
    const act = () => {
      const q = new QuantIdentity({ actQuant: { bitWidth: bits, collectSteps: 0 } });
      for (const [, v] of q.namedParameters()) assignAndFree(v, tf.scalar(2));
      return q;
    };
    const rng = opts.rng;
    this.features = this.addModule(
      'features',
      new Sequential(
        // Pixels in [0, 1]: unsigned 8-bit with the constant scale 1/255.
        new QuantIdentity({ actQuant: { bitWidth: opts.inputBits ?? 8, signed: false, narrow: false, scaling: 'const', maxVal: 1 } }),
        new QuantConv2d(1, c1, 3, { weightBitWidth: bits, rng }),
        new FastBatchNorm2d(c1),
        act(),
        new AvgPool2d(2),
        act(),
        new QuantConv2d(c1, c2, 3, { weightBitWidth: bits, rng }),
        new FastBatchNorm2d(c2),
        act(),
        new AvgPool2d(2),
        act(),
      ),
    );
    this.flatten = this.addModule('flatten', new Flatten());
    this.classifier = this.addModule('classifier', new QuantLinear(c2 * 5 * 5, 10, { weightBitWidth: bits, rng }));
  }

  forward(x: Activation): Activation {
    return this.classifier.call(this.flatten.call(this.features.call(x)));
  }
}
