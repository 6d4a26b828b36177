/**
 * Finding the quantized layers of a model and the integer inputs they receive.
 *
 * Every QuantLinear / QuantConv2d multiplies integer weights by the integers of its quantized input; that sum is
 * the accumulator the encrypted circuit computes. Its input is either a QuantTensor handed over by the previous
 * quantizer or the output of the layer's own input quantizer. The *provable* input range is the quantizer's integer
 * range, narrowed to [max(0, min), max] when the input comes straight from a QuantReLU (its output is ReLU'd before
 * quantization, so it can never be negative, even when the quantizer's format is signed, as in the notebook).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module.js';
import { type Activation, type QuantTensor, isQuantTensor, valueOf } from '../nn/quant-tensor.js';
import { QuantConv2d, QuantLinear, QuantReLU } from './layers.js';
import { intRange } from './int-range.js';
import { ConfigError } from '../util/errors.js';

export type QuantWeightLayer = QuantLinear | QuantConv2d;

export function isQuantWeightLayer(m: Module): m is QuantWeightLayer {
  return m instanceof QuantLinear || m instanceof QuantConv2d;
}

export function quantWeightLayers(model: Module): [string, QuantWeightLayer][] {
  return model.namedModules().filter((e): e is [string, QuantWeightLayer] => isQuantWeightLayer(e[1]));
}

/** The integer interval a layer's input integers provably lie in, and where that comes from. */
export interface InputIntRange {
  min: number;
  max: number;
  bitWidth: number;
  signed: boolean;
  /** `format`: the quantizer's integer range; `relu`: the range of a QuantReLU (negative part removed). */
  source: 'format' | 'relu';
}

export interface LayerCall {
  name: string;
  layer: QuantWeightLayer;
  /** The quantized input as the layer uses it (after its own input quantizer, if any). */
  input: QuantTensor;
  range: InputIntRange;
}

/**
 * Runs `model` on `x` (eval mode, inside the caller's tidy) and calls `onLayer` for every QuantLinear/QuantConv2d
 * call with its quantized input. Layers that get a float input and have no input quantizer are an error: their
 * accumulator is not an integer computation.
 */
export function forEachQuantLayerCall(model: Module, x: tf.Tensor, onLayer: (c: LayerCall) => void): Activation {
  const names = new Map<Module, string>(model.namedModules().map(([n, m]) => [m, n]));
  const producer = new Map<Activation, Module>();
  const removers: (() => void)[] = [];
  for (const [, m] of model.namedModules()) {
    removers.push(
      m.registerForwardHook((mod, input, output) => {
        if (isQuantWeightLayer(mod)) {
          const name = names.get(mod) ?? mod.constructor.name;
          let xq: Activation = input;
          let source: InputIntRange['source'] = 'format';
          if (mod.inputQuant) xq = mod.inputQuant.forward(valueOf(input));
          else if (producer.get(input) instanceof QuantReLU) source = 'relu';
          if (!isQuantTensor(xq)) {
            throw new ConfigError(
              `layer '${name}' receives a float input and has no input quantizer, so its accumulator is not an integer sum; put a QuantIdentity (or inputQuant) before it`,
            );
          }
          const r = intRange(xq);
          const range: InputIntRange = { min: source === 'relu' ? Math.max(0, r.min) : r.min, max: r.max, bitWidth: xq.bitWidth, signed: xq.signed, source };
          onLayer({ name, layer: mod, input: xq, range });
        }
        // The innermost producer wins (a container returns its last child's output object), except that a
        // QuantReLU claims the output of its own quantizer: that output is known to be non-negative.
        if (!producer.has(output) || mod instanceof QuantReLU) producer.set(output, mod);
      }),
    );
  }
  try {
    return model.call(x);
  } finally {
    for (const r of removers) r();
  }
}

/** The integer weight of a layer as a flat array in PyTorch layout ([out, fanIn] rows). */
export function intWeight(layer: QuantWeightLayer): { data: Float32Array; fanIn: number; fanOut: number; scale: tf.Tensor } {
  return tf.tidy(() => {
    const q = layer.quantWeight();
    const data = Float32Array.from(q.int().dataSync());
    return { data, fanIn: layer.fanIn, fanOut: layer.fanOut, scale: tf.keep(q.scale.clone()) };
  });
}
