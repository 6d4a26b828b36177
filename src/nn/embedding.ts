/**
 * `Embedding` (torch.nn.Embedding): a lookup table `weight` [numEmbeddings, embeddingDim]; the input is a tensor of
 * int32 indices of any shape and the output appends the embedding axis.
 *
 * The gradient is a scatter-add of the output gradient into the rows that were looked up. tfjs's own gradient for
 * Gather uses UnsortedSegmentSum, which the WASM backend does not have, so the lookup carries its own gradient
 * built on ScatterNd (which sums repeated indices on every backend).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, ShapeError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { normal } from './init.js';
import { Module } from './module.js';
import { type Activation, valueOf } from './quant-tensor.js';

export class Embedding extends Module {
  readonly weight: tf.Variable;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    /** PyTorch draws N(0, 1); GPT-2 re-initialises with N(0, 0.02). `std: 0` starts from zeros (before loading). */
    opts: { std?: number; rng?: Rng } = {},
  ) {
    super();
    for (const [what, v] of [['numEmbeddings', numEmbeddings], ['embeddingDim', embeddingDim]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ConfigError(`Embedding: ${what} must be a positive integer, got ${v}`);
    }
    const std = opts.std ?? 1;
    const init = std === 0 ? tf.zeros([numEmbeddings, embeddingDim]) : normal([numEmbeddings, embeddingDim], std, opts.rng);
    this.weight = this.addParameter('weight', init);
  }

  forward(x: Activation): tf.Tensor {
    const ids = valueOf(x);
    if (ids.dtype !== 'int32') throw new ShapeError(`${this.label()} expects int32 indices, got ${ids.dtype}`);
    return embeddingLookup(this.weight, ids);
  }
}

/** Rows of `weight` at `ids` (int32, any shape) → [...ids.shape, dim], with a scatter-add gradient for `weight`. */
export function embeddingLookup(weight: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [vocab, dim] = weight.shape as [number, number];
  const flat = tf.reshape(ids, [-1]) as tf.Tensor1D;
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const w = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([flat]);
    return {
      value: tf.gather(w, flat),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const idx = saved[0]!;
        return tf.scatterND(tf.reshape(idx, [-1, 1]), dy, [vocab, dim]);
      },
    };
  });
  const rows = lookup(weight);
  const out = tf.reshape(rows, [...ids.shape, dim]);
  return out;
}
