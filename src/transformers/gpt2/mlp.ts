/** `GPT2MLP`: c_fc (n_embd → n_inner), the activation, c_proj (n_inner → n_embd), dropout — PyTorch's names. */
import * as tf from '@tensorflow/tfjs-core';
import { activationFromName } from '../../nn/activations.js';
import { Conv1D } from '../../nn/conv1d.js';
import { Dropout } from '../../nn/dropout.js';
import { Module } from '../../nn/module.js';
import { type Activation, valueOf } from '../../nn/quant-tensor.js';
import type { Rng } from '../../util/rng.js';
import { type LayerSteps, runSync } from '../layer-calls.js';
import type { GPT2Config } from './config.js';

export class GPT2MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  readonly act: Module;
  readonly dropout: Dropout;

  constructor(config: GPT2Config, init: { std: number; projStd: number; rng?: Rng }) {
    super();
    const e = config.n_embd;
    const inner = config.innerDim;
    this.c_fc = this.addModule('c_fc', new Conv1D(inner, e, { std: init.std, rng: init.rng }));
    this.c_proj = this.addModule('c_proj', new Conv1D(e, inner, { std: init.projStd, rng: init.rng }));
    this.act = this.addModule('act', activationFromName(config.activation_function));
    this.dropout = this.addModule('dropout', new Dropout(config.resid_pdrop));
  }

  forward(x: Activation): tf.Tensor {
    return tf.tidy(() => runSync(this.steps(valueOf(x))));
  }

  /** x [tokens, n_embd] → [tokens, n_embd]. */
  *steps(x: tf.Tensor): LayerSteps<tf.Tensor> {
    const hidden = yield { module: this.child('c_fc'), input: x };
    const activated = this.child('act').call(hidden) as tf.Tensor;
    const out = yield { module: this.child('c_proj'), input: activated };
    return this.child('dropout').call(out) as tf.Tensor;
  }
}
