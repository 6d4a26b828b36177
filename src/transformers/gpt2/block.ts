/** `GPT2Block`: pre-norm residual block, x + attn(ln_1(x)) then + mlp(ln_2(·)) — PyTorch's names ln_1, attn, ln_2, mlp. */
import * as tf from '@tensorflow/tfjs-core';
import { LayerNorm } from '../../nn/layer-norm.js';
import { Module } from '../../nn/module.js';
import { type Activation, valueOf } from '../../nn/quant-tensor.js';
import type { Rng } from '../../util/rng.js';
import { type LayerSteps, runSync } from '../layer-calls.js';
import { GPT2Attention, type LayerPast, causalMask } from './attention.js';
import type { GPT2Config } from './config.js';
import { GPT2MLP } from './mlp.js';

export class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;

  constructor(config: GPT2Config, layerIdx: number, init: { std: number; projStd: number; rng?: Rng }) {
    super();
    this.ln_1 = this.addModule('ln_1', new LayerNorm(config.n_embd, config.layer_norm_epsilon));
    this.attn = this.addModule('attn', new GPT2Attention(config, layerIdx, init));
    this.ln_2 = this.addModule('ln_2', new LayerNorm(config.n_embd, config.layer_norm_epsilon));
    this.mlp = this.addModule('mlp', new GPT2MLP(config, init));
  }

  /** x [batch, seq, n_embd], causal, no cache. */
  forward(x: Activation): tf.Tensor {
    const v = valueOf(x);
    return tf.tidy(() => runSync(this.steps(v, undefined, causalMask(v.shape[1]!, 0))).output);
  }

  *steps(x: tf.Tensor, past: LayerPast | undefined, mask: tf.Tensor | undefined): LayerSteps<{ output: tf.Tensor; present: LayerPast }> {
    const [b, s, e] = x.shape as [number, number, number];
    const attn = yield* (this.child('attn') as GPT2Attention).steps(this.child('ln_1').call(x) as tf.Tensor, past, mask);
    const h = tf.add(x, attn.output);
    const normed = tf.reshape(this.child('ln_2').call(h) as tf.Tensor, [b * s, e]);
    const m = yield* (this.child('mlp') as GPT2MLP).steps(normed);
    return { output: tf.add(h, tf.reshape(m, [b, s, e])), present: attn.present };
  }
}
