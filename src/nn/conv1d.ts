/**
 * `Conv1D`: Hugging Face's GPT-2 linear layer (transformers.pytorch_utils.Conv1D). Despite the name it is a dense
 * layer y = x·W + b whose weight is stored [in, out] (`nx`, `nf`) — the transpose of torch.nn.Linear — which is how
 * GPT-2 checkpoints hold `c_attn`, `c_proj` and `c_fc`. The constructor takes (nf, nx) in Hugging Face's order.
 *
 * `forward` is one matrix product of its input and nothing else, so a hybrid model can swap the module for a
 * remote one with the same contract.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { normal } from './init.js';
import { Module, expectShape } from './module.js';
import { type Activation, valueOf } from './quant-tensor.js';

export class Conv1D extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(
    /** Output features. */
    readonly nf: number,
    /** Input features. */
    readonly nx: number,
    /** Hugging Face initialises N(0, 0.02) with a zero bias; `std: 0` starts from zeros (before loading). */
    opts: { std?: number; rng?: Rng } = {},
  ) {
    super();
    for (const [what, v] of [['nf', nf], ['nx', nx]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ConfigError(`Conv1D: ${what} must be a positive integer, got ${v}`);
    }
    const std = opts.std ?? 0.02;
    this.weight = this.addParameter('weight', std === 0 ? tf.zeros([nx, nf]) : normal([nx, nf], std, opts.rng));
    this.bias = this.addParameter('bias', tf.zeros([nf]));
  }

  /** [..., nx] → [..., nf]. */
  forward(x: Activation): tf.Tensor {
    const v = valueOf(x);
    expectShape(this.label(), v, [1, 2, 3, 4], { index: -1, size: this.nx, what: 'input features' });
    return conv1d(v, this.weight, this.bias);
  }
}

/** x·W + b over the last axis with W stored [in, out]. */
export function conv1d(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [nx, nf] = w.shape as [number, number];
    const flat = x.rank === 2 ? x : tf.reshape(x, [-1, nx]);
    const y = tf.add(tf.matMul(flat as tf.Tensor2D, w as tf.Tensor2D), b);
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), nf]);
  });
}
