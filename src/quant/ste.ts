/**
 * Straight-through estimators. Quantization rounds and clamps, whose true gradients are zero almost everywhere;
 * QAT replaces them in the backward pass (Brevitas semantics):
 * - round: identity gradient (round_ste), forward is round-half-to-even like torch.round;
 * - clamp for weights: identity gradient (tensor_clamp_ste);
 * - clamp for activations: the ordinary clamp gradient (1 inside the range, 0 outside) — plain tf.clipByValue;
 * - ceil (power-of-two scales): identity gradient.
 */
import * as tf from '@tensorflow/tfjs-core';

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/** Wraps an elementwise op so its backward pass is the identity. */
function straightThrough(op: (x: tf.Tensor) => tf.Tensor): (x: tf.Tensor) => tf.Tensor {
  const f = tf.customGrad(((x: tf.Tensor) => ({ value: op(x), gradFunc: (dy: tf.Tensor) => dy })) as unknown as CustomGradFn);
  return (x) => f(x) as tf.Tensor;
}

/** round-half-to-even forward (tfjs `round` is banker's rounding on every backend), identity backward. */
export const roundSte = straightThrough((x) => tf.round(x));

export const ceilSte = straightThrough((x) => tf.ceil(x));

/** Clamp whose backward pass is the identity (used for weights). */
export function clampSte(x: tf.Tensor, lo: number, hi: number): tf.Tensor {
  return straightThrough((t) => tf.clipByValue(t, lo, hi))(x);
}
