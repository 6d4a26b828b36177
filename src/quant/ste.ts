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
export function straightThrough(op: (x: tf.Tensor) => tf.Tensor): (x: tf.Tensor) => tf.Tensor {
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

/**
 * Brevitas's ScalarClampMinSte: forward max(x, min), backward the identity (so a scale pushed below the floor still
 * receives the gradient that can bring it back).
 */
export function clampMinSte(x: tf.Tensor, min: number): tf.Tensor {
  return straightThrough((t) => tf.maximum(t, min))(x);
}

/**
 * Brevitas's abs_binary_sign_grad: forward |x|, backward dy·sign(x) with sign(0) = +1 (tf.abs's gradient is 0 at 0,
 * which would freeze a scale that lands exactly on zero).
 */
export const absBinarySignGrad: (x: tf.Tensor) => tf.Tensor = (() => {
  const f = tf.customGrad(((x: tf.Tensor, save: (ts: tf.Tensor[]) => void) => {
    save([x]);
    return {
      value: tf.abs(x),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.where(tf.greaterEqual(saved[0]!, 0), tf.onesLike(saved[0]!), tf.onesLike(saved[0]!).neg())),
    };
  }) as unknown as CustomGradFn);
  return (x: tf.Tensor) => f(x) as tf.Tensor;
})();
