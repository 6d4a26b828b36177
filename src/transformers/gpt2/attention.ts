/**
 * `GPT2Attention`: causal multi-head self-attention with a key/value cache, as transformers' GPT-2 computes it:
 * c_attn (Conv1D, n_embd → 3·n_embd) splits into query, key, value; heads attend with scores q·kᵀ/√d (optionally
 * also /(layer+1)), an additive mask (causal + padding), softmax, attn_dropout; heads merge; c_proj; resid_dropout.
 * The module names (c_attn, c_proj, attn_dropout, resid_dropout) are PyTorch's. The causal mask is built per call,
 * not stored: the `attn.bias` / `attn.masked_bias` buffers of older checkpoints are not parameters and are ignored.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv1D } from '../../nn/conv1d.js';
import { Dropout } from '../../nn/dropout.js';
import { Module } from '../../nn/module.js';
import type { Activation } from '../../nn/quant-tensor.js';
import { valueOf } from '../../nn/quant-tensor.js';
import type { Rng } from '../../util/rng.js';
import { type LayerSteps, runSync } from '../layer-calls.js';
import type { GPT2Config } from './config.js';

/** One layer's cached keys and values, each [batch, heads, pastLength, headDim]. */
export type LayerPast = {
  key: tf.Tensor;
  value: tf.Tensor;
};

export class GPT2Attention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  readonly attn_dropout: Dropout;
  readonly resid_dropout: Dropout;
  private readonly nHead: number;
  private readonly scale: number;

  constructor(config: GPT2Config, readonly layerIdx: number, init: { std: number; projStd: number; rng?: Rng }) {
    super();
    const e = config.n_embd;
    this.nHead = config.n_head;
    this.c_attn = this.addModule('c_attn', new Conv1D(3 * e, e, { std: init.std, rng: init.rng }));
    this.c_proj = this.addModule('c_proj', new Conv1D(e, e, { std: init.projStd, rng: init.rng }));
    this.attn_dropout = this.addModule('attn_dropout', new Dropout(config.attn_pdrop));
    this.resid_dropout = this.addModule('resid_dropout', new Dropout(config.resid_pdrop));
    let scale = config.scale_attn_weights ? 1 / Math.sqrt(config.headDim) : 1;
    if (config.scale_attn_by_inverse_layer_idx) scale /= layerIdx + 1;
    this.scale = scale;
  }

  /** Full causal self-attention over x [batch, seq, n_embd], no cache, no padding. */
  forward(x: Activation): tf.Tensor {
    const v = valueOf(x);
    return tf.tidy(() => runSync(this.steps(v, undefined, causalMask(v.shape[1]!, 0))).output);
  }

  /**
   * x [batch, seq, n_embd]; `past` the cached keys/values of earlier positions; `mask` additive, broadcastable to
   * [batch, heads, seq, past + seq], or undefined when every key is visible (one new token, no padding).
   * Yields the two linear-layer calls; returns the output and the new cache.
   */
  *steps(x: tf.Tensor, past: LayerPast | undefined, mask: tf.Tensor | undefined): LayerSteps<{ output: tf.Tensor; present: LayerPast }> {
    const [b, s, e] = x.shape as [number, number, number];
    const h = this.nHead;
    const d = e / h;
    const qkv = yield { module: this.child('c_attn'), input: tf.reshape(x, [b * s, e]) };
    const [q, k, v] = tf.split(tf.reshape(qkv, [b, s, 3 * e]), 3, 2).map((t) => tf.transpose(tf.reshape(t, [b, s, h, d]), [0, 2, 1, 3]));
    const key = past ? tf.concat([past.key, k!], 2) : k!;
    const value = past ? tf.concat([past.value, v!], 2) : v!;
    const scaled = tf.mul(tf.matMul(q!, key, false, true), this.scale);
    const scores = mask ? tf.add(scaled, mask) : scaled;
    const probs = this.child('attn_dropout').call(tf.softmax(scores)) as tf.Tensor;
    const merged = tf.reshape(tf.transpose(tf.matMul(probs, value), [0, 2, 1, 3]), [b * s, e]);
    const projected = yield { module: this.child('c_proj'), input: merged };
    const output = this.child('resid_dropout').call(tf.reshape(projected, [b, s, e])) as tf.Tensor;
    return { output, present: { key, value } };
  }
}

/** Large enough that exp(score + MASKED − max) is exactly 0 in float32, small enough that no row becomes NaN. */
export const MASKED = -1e9;

/**
 * The additive mask for `seq` new positions after `past` cached ones: [1, 1, seq, past + seq], 0 where a query may
 * attend (key position ≤ its own) and MASKED elsewhere; with `keep` (one 0/1 row per batch element over all
 * past + seq positions, 0 = padding) also MASKED at padded keys: [batch, 1, seq, past + seq].
 */
export function causalMask(seq: number, past: number, keep?: number[][]): tf.Tensor {
  const total = past + seq;
  const rows = keep ?? [undefined];
  const data = new Float32Array(rows.length * seq * total);
  rows.forEach((row, r) => {
    for (let i = 0; i < seq; i++) {
      for (let j = 0; j < total; j++) {
        const visible = j <= past + i && (row === undefined || row[j] !== 0);
        data[(r * seq + i) * total + j] = visible ? 0 : MASKED;
      }
    }
  });
  return tf.tensor4d(data, [rows.length, 1, seq, total]);
}
