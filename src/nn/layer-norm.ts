/**
 * `LayerNorm` (torch.nn.LayerNorm over the last axis): (x − mean) / √(var + eps) · weight + bias, with the biased
 * variance, as PyTorch computes it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../util/errors.js';
import { Module, expectShape } from './module.js';
import { type Activation, valueOf } from './quant-tensor.js';

export class LayerNorm extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(readonly normalizedShape: number, readonly eps = 1e-5) {
    super();
    if (!Number.isInteger(normalizedShape) || normalizedShape < 1) {
      throw new ConfigError(`LayerNorm: normalizedShape must be a positive integer, got ${normalizedShape}`);
    }
    if (!(eps > 0)) throw new ConfigError(`LayerNorm: eps must be positive, got ${eps}`);
    this.weight = this.addParameter('weight', tf.ones([normalizedShape]));
    this.bias = this.addParameter('bias', tf.zeros([normalizedShape]));
  }

  forward(x: Activation): tf.Tensor {
    const v = valueOf(x);
    expectShape(this.label(), v, [1, 2, 3, 4], { index: -1, size: this.normalizedShape, what: 'features (last axis)' });
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(v, -1, true);
      const normed = tf.mul(tf.sub(v, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return tf.add(tf.mul(normed, this.weight), this.bias);
    });
  }
}
