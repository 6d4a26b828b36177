/**
 * `Dropout` (torch.nn.Dropout): in training, zeroes each element with probability p and scales the rest by
 * 1/(1 − p); the identity in eval mode. The mask's seed comes from the layer's `Rng` (by default the process-wide
 * generator that `manualSeed` resets), so a seeded run drops the same elements again.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { defaultRng } from './init.js';
import { Module } from './module.js';
import { type Activation, valueOf } from './quant-tensor.js';

export class Dropout extends Module {
  constructor(readonly p = 0.5, private readonly rng?: Rng) {
    super();
    if (!(p >= 0 && p < 1)) throw new ConfigError(`Dropout: p must be in [0, 1), got ${p}`);
  }

  forward(x: Activation): tf.Tensor {
    const v = valueOf(x);
    if (!this.training || this.p === 0) return v;
    return tf.dropout(v, this.p, undefined, (this.rng ?? defaultRng()).seed());
  }
}
