/**
 * Parameter initialisation. Like PyTorch, layers draw from a process-wide generator unless given their own `Rng`;
 * `manualSeed(n)` resets it (torch.manual_seed), so building the same model after the same seed gives the same
 * weights. Values are generated in JavaScript (not by tfjs random ops) so they do not depend on the backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng.js';

let globalRng = new Rng(0);

export function manualSeed(seed: number): void {
  globalRng = new Rng(seed);
}

/** The generator `manualSeed` seeds: what modules without their own Rng draw from (Dropout's masks). */
export function defaultRng(): Rng {
  return globalRng;
}

export function uniform(shape: number[], lo: number, hi: number, rng: Rng = globalRng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.uniform(lo, hi);
  return tf.tensor(data, shape, 'float32');
}

/**
 * PyTorch's default for Linear/Conv weights and biases: kaiming_uniform(a=√5), which reduces to
 * U(−1/√fan_in, 1/√fan_in) for both.
 */
export function defaultUniform(shape: number[], fanIn: number, rng?: Rng): tf.Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return uniform(shape, -bound, bound, rng);
}

/** N(0, std²) values, as Hugging Face initialises transformer weights (`normal_(mean=0, std=initializer_range)`). */
export function normal(shape: number[], std: number, rng: Rng = globalRng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = std * rng.normal();
  return tf.tensor(data, shape, 'float32');
}
