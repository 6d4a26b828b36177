/**
 * Activations of transformer MLPs, named as Hugging Face's `activation_function` config values name them.
 * `gelu_new` / `gelu_pytorch_tanh` are GPT-2's tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)));
 * `gelu` is the exact erf form.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../util/errors.js';
import { Module } from './module.js';
import { type Activation, valueOf } from './quant-tensor.js';

export type GeluApproximate = 'none' | 'tanh';

/** torch.nn.GELU(approximate=…). */
export class GELU extends Module {
  constructor(readonly approximate: GeluApproximate = 'none') {
    super();
  }

  forward(x: Activation): tf.Tensor {
    const v = valueOf(x);
    return this.approximate === 'tanh' ? geluTanh(v) : geluErf(v);
  }
}

/**
 * Computed as x·σ(2z), z = √(2/π)·(x + 0.044715·x³) — the same function, since 0.5·(1 + tanh z) = σ(2z) — because
 * the WASM backend's Sigmoid is a vectorised XNNPACK kernel while its Tanh and Pow call libm per element (≈ 10× slower
 * on GPT-2's MLP activations here); x³ is x·x·x for the same reason.
 */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const cube = tf.mul(tf.mul(x, x), x);
    const twoZ = tf.mul(tf.add(x, tf.mul(cube, 0.044715)), 2 * Math.sqrt(2 / Math.PI));
    return tf.mul(x, tf.sigmoid(twoZ));
  });
}

export function geluErf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

class ReLUActivation extends Module {
  forward(x: Activation): tf.Tensor {
    return tf.relu(valueOf(x));
  }
}

/** The activation module for a Hugging Face `activation_function` name (the subset GPT-2-family configs use). */
export function activationFromName(name: string): Module {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return new GELU('tanh');
    case 'gelu':
      return new GELU('none');
    case 'relu':
      return new ReLUActivation();
    default:
      throw new ConfigError(
        `unsupported activation_function '${name}'; fhenet supports gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu`,
      );
  }
}
