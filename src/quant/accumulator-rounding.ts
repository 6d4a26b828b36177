/**
 * Rounding-aware fine-tuning: the accumulator rounding a compiled circuit applies before its table lookups
 * (`roundingThresholdBits`, src/compiler/rounding.ts), simulated in the training graph so that QAT learns weights and
 * BatchNorm thresholds that survive it.
 *
 * A QuantConv2d / QuantLinear with `accumulatorRounding` set replaces its integer accumulator a = y / (s_in·s_w) by
 * the value its table entry stands for, 2^k·round((a + o)/2^k) − o, per output channel (k and o as the circuit's
 * `channelRoundBits` / `roundOffsets`); the backward pass is the identity (straight-through, like Brevitas's round).
 * It acts in training mode only unless `inEval` is set, so the model's ordinary evaluation stays the QAT row. Values
 * past a table's domain, which the circuit wraps around, are not wrapped here (training should not learn from them).
 *
 * The rounding comes from a compiled circuit of the model itself (`attachAccumulatorRounding`,
 * src/analysis/circuit-rounding.ts, which reads the circuit so that this quantizer layer does not depend on the
 * compiler).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../util/errors.js';
import { straightThrough } from './ste.js';

export interface AccumulatorRounding {
  /** Bits rounded away, per output channel. */
  k: Int32Array;
  /** Offset added before rounding, per output channel. */
  offsets: Int32Array;
  /** Also round in eval mode (to compare the model with the circuit); training mode always rounds. */
  inEval?: boolean;
}

/**
 * y (channels on the last axis) at accumulator scale `scale` (s_in·s_w, a scalar tensor), rounded as the circuit's
 * table index rounds it; identity gradient.
 */
export function roundAccumulator(y: tf.Tensor, scale: tf.Tensor, r: AccumulatorRounding): tf.Tensor {
  const c = y.shape[y.rank - 1]!;
  if (r.k.length !== c || r.offsets.length !== c) throw new ConfigError(`accumulator rounding for ${r.k.length} channels applied to ${c} channels`);
  return straightThrough((x) => {
    const step = tf.tensor1d(Float32Array.from(r.k, (k) => 2 ** k));
    const o = tf.tensor1d(Float32Array.from(r.offsets));
    // The accumulator is an integer up to float error; floor(v + 1/2) is the circuit's round-half-up.
    const acc = tf.round(tf.div(x, scale));
    const index = tf.floor(tf.add(tf.div(tf.add(acc, o), step), 0.5));
    return tf.mul(tf.sub(tf.mul(index, step), o), scale);
  })(y);
}
