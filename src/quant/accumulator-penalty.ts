/**
 * A soft accumulator constraint evaluated on a finite input domain.
 *
 * Accumulator-aware training by projection (`a2q.ts`) bounds every neuron's weight L1 norm so that *any* input
 * vector of the quantizers' ranges fits the target: the bound multiplies the largest input integer by Σ|w|, which is
 * far from what real inputs reach once a ReLU sits between layers. When the network's quantized input can take only
 * a few values — the checkerboard's 3-bit input on a 1/3 grid takes 4 × 4 = 16 — every accumulator the network can
 * ever compute is found by running those few inputs through it. This module turns that into a training term:
 *
 *   penalty = weight · Σ_layers mean over (domain inputs × neurons) of relu(|acc| − T)²,  T = 2^(b−1) − 1 − margin
 *
 * where `acc` is the integer accumulator Σ x_int·w_int (bias excluded, as the circuit computes it), made
 * differentiable by the quantizers' straight-through rounding. `bits()` measures the exact accumulator width over
 * the domain, so a caller can keep only states that meet the target: over the domain the result is then exact, not
 * an estimate (the domain must hold every quantized input the deployment can see).
 *
 * Inputs of layers: the same capture as the accumulator analysis (`forEachQuantLayerCall`), in eval mode so
 * BatchNorm statistics and quantizer statistics are not disturbed by the domain batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { signedBits } from './bits.js';
import { forEachQuantLayerCall } from './layer-calls.js';
import { conv2d, linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { ConfigError } from '../util/errors.js';
import { QuantConv2d } from './layers.js';

export interface AccumulatorPenaltyOptions {
  /** Signed accumulator width to stay within (the integers [−2^(b−1), 2^(b−1) − 1]). */
  targetBits: number;
  /** Multiplier of the penalty (default 1). */
  weight?: number;
  /** The hinge starts `margin` below the largest allowed integer (default 0.5). */
  margin?: number;
  /** Only these QuantLinear/QuantConv2d layers (names as in `namedModules`); default: every one. */
  layers?: string[];
}

export interface AccumulatorPenalty {
  /** The penalty on the domain (a scalar to add to the loss inside the gradient tape). */
  loss(): tf.Scalar;
  /** Exact signed accumulator width per constrained layer over the domain (no gradient). */
  bits(): { layer: string; min: number; max: number; bits: number }[];
  readonly targetBits: number;
  dispose(): void;
}

/**
 * `domain`: a batch holding every quantized input the network can receive (e.g. each point of the input
 * quantizer's grid), shaped like a training batch. It is kept (not disposed) until `dispose()`.
 */
export function accumulatorPenalty(model: Module, domain: tf.Tensor, opts: AccumulatorPenaltyOptions): AccumulatorPenalty {
  const { targetBits, weight = 1, margin = 0.5 } = opts;
  if (!Number.isInteger(targetBits) || targetBits < 2 || targetBits > 24) throw new ConfigError(`accumulator penalty: targetBits must be an integer in [2, 24], got ${targetBits}`);
  if (!(weight >= 0)) throw new ConfigError(`accumulator penalty: weight must be ≥ 0, got ${weight}`);
  if (!(margin >= 0 && margin < 2 ** (targetBits - 1) - 1)) throw new ConfigError(`accumulator penalty: margin must be in [0, ${2 ** (targetBits - 1) - 1}), got ${margin}`);
  if (domain.shape[0] === 0) throw new ConfigError('accumulator penalty: the input domain is empty');
  const wanted = opts.layers ? new Set(opts.layers) : undefined;
  const limit = 2 ** (targetBits - 1) - 1 - margin;
  const kept = tf.keep(domain.clone());

  /** Differentiable integer accumulators of every constrained layer on the domain (eval mode). */
  const accumulators = (): { name: string; acc: tf.Tensor }[] => {
    const out: { name: string; acc: tf.Tensor }[] = [];
    const wasTraining = model.training;
    model.eval();
    try {
      forEachQuantLayerCall(model, kept, (c) => {
        if (wanted && !wanted.has(c.name)) return;
        // value / scale (+ zero point) is an integer tensor whose gradient is the quantizers' straight-through one.
        const xi = tf.add(tf.div(c.input.value, c.input.scale), c.input.zeroPoint);
        const w = c.layer.quantWeight();
        const wi = tf.add(tf.div(w.value, w.scale), w.zeroPoint);
        const acc = c.layer instanceof QuantConv2d ? conv2d(xi, wi, undefined, c.layer.stride, c.layer.padding) : linear(xi, wi);
        out.push({ name: c.name, acc });
      });
    } finally {
      model.train(wasTraining);
    }
    if (wanted) {
      const missing = [...wanted].filter((n) => !out.some((o) => o.name === n));
      if (missing.length) throw new ConfigError(`accumulator penalty: no QuantLinear/QuantConv2d layer named ${missing.map((n) => `'${n}'`).join(', ')} ran on the domain`);
    }
    if (!out.length) throw new ConfigError(`accumulator penalty: ${model.constructor.name} has no QuantLinear/QuantConv2d layer`);
    return out;
  };

  return {
    targetBits,
    loss: () =>
      tf.tidy(() => {
        const terms = accumulators().map(({ acc }) => tf.mean(tf.square(tf.relu(tf.sub(tf.abs(acc), limit)))));
        return tf.mul(tf.addN(terms), weight) as tf.Scalar;
      }),
    bits: () =>
      tf.tidy(() =>
        accumulators().map(({ name, acc }) => {
          const r = tf.round(acc);
          const min = tf.min(r).dataSync()[0]!;
          const max = tf.max(r).dataSync()[0]!;
          return { layer: name, min, max, bits: signedBits(Math.min(min, 0), Math.max(max, 0)) };
        }),
      ),
    dispose: () => kept.dispose(),
  };
}

/**
 * Every point of a per-feature integer grid times `scale`: the inputs an input quantizer can produce when each of
 * `features` values takes the integers lo…hi (e.g. 0…3 at scale 1/3 for the checkerboard's data in [0, 1]).
 */
export function quantizerGrid(features: number, lo: number, hi: number, scale: number): tf.Tensor2D {
  if (!Number.isInteger(features) || features < 1) throw new ConfigError(`quantizer grid: features must be a positive integer, got ${features}`);
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) throw new ConfigError(`quantizer grid: need integers lo ≤ hi, got ${lo}, ${hi}`);
  const n = (hi - lo + 1) ** features;
  if (n > 1_000_000) throw new ConfigError(`quantizer grid: ${n} points is too many to enumerate`);
  const data = new Float32Array(n * features);
  for (let i = 0; i < n; i++) {
    let r = i;
    for (let f = features - 1; f >= 0; f--) {
      data[i * features + f] = (lo + (r % (hi - lo + 1))) * scale;
      r = Math.floor(r / (hi - lo + 1));
    }
  }
  return tf.tensor2d(data, [n, features]);
}
