/**
 * The value a quantizer hands to the next layer: the fake-quantized float tensor plus everything needed to
 * recover its exact integers (Brevitas's QuantTensor). `int = value / scale + zeroPoint` is an integer in
 * [minInt, maxInt] by construction, so later stages (accumulator analysis, the compiler) can work on integers.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface QuantMeta {
  /** Scale: a scalar, or per-channel values broadcastable against `value`. */
  scale: tf.Tensor;
  zeroPoint: number;
  bitWidth: number;
  signed: boolean;
  narrow: boolean;
}

export class QuantTensor implements QuantMeta {
  constructor(
    readonly value: tf.Tensor,
    readonly scale: tf.Tensor,
    readonly zeroPoint: number,
    readonly bitWidth: number,
    readonly signed: boolean,
    readonly narrow: boolean,
  ) {}

  get shape(): number[] {
    return this.value.shape;
  }

  /** The integer tensor (as float32 holding exact integers). */
  int(): tf.Tensor {
    return tf.tidy(() => tf.round(tf.add(tf.div(this.value, this.scale), this.zeroPoint)));
  }

  /** Same quantization metadata on a reshaped/re-laid-out value (index maps keep integers intact). */
  withValue(value: tf.Tensor): QuantTensor {
    return new QuantTensor(value, this.scale, this.zeroPoint, this.bitWidth, this.signed, this.narrow);
  }
}

/** What flows between modules: a plain tensor or a quantized one. */
export type Activation = tf.Tensor | QuantTensor;

export function isQuantTensor(x: Activation): x is QuantTensor {
  return x instanceof QuantTensor;
}

/** The float value of an activation (layers that are not quantization-aware use this). */
export function valueOf(x: Activation): tf.Tensor {
  return x instanceof QuantTensor ? x.value : x;
}
