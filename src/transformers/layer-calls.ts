/**
 * How a transformer's forward pass calls its linear layers. The pass is written once, as a generator that yields
 * each linear-layer call ({ module, input }) and receives the layer's output, and two drivers run it:
 *
 * - `runSync` calls `module.call(input)` at once (training, clear inference; works inside tf.tidy and gradients);
 * - `runAsync` awaits `module.forwardAsync(input)` where a module has one (a hybrid model's remote layer that
 *   sends the activations to a server), and calls the module directly otherwise.
 *
 * So replacing `transformer.h.0.attn.c_attn` by a remote module needs no second copy of the attention code.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module.js';

/** One linear-layer call: `input` is [tokens, inFeatures]; the answer must be [tokens, outFeatures]. */
export interface LayerCall {
  module: Module;
  input: tf.Tensor;
}

/** A module whose forward can also run asynchronously (e.g. on a server). */
export interface AsyncForward {
  forwardAsync(input: tf.Tensor): Promise<tf.Tensor>;
}

export type LayerSteps<T> = Generator<LayerCall, T, tf.Tensor>;

export function hasForwardAsync(m: Module): m is Module & AsyncForward {
  return typeof (m as Partial<AsyncForward>).forwardAsync === 'function';
}

export function runSync<T>(steps: LayerSteps<T>): T {
  let r = steps.next();
  while (!r.done) r = steps.next(r.value.module.call(r.value.input) as tf.Tensor);
  return r.value;
}

/**
 * Runs the pass awaiting asynchronous layers. Intermediate tensors are released when the pass ends (an engine
 * scope spans the awaits), except those in the result. One asynchronous pass at a time per process: scopes are a
 * stack, so two interleaved passes would release each other's tensors.
 */
export async function runAsync<T>(steps: LayerSteps<T>): Promise<T> {
  const engine = tf.engine();
  engine.startScope('fhenet.runAsync');
  let result: T | undefined;
  try {
    let r = steps.next();
    while (!r.done) {
      const { module, input } = r.value;
      const out = hasForwardAsync(module) ? await module.forwardAsync(input) : (module.call(input) as tf.Tensor);
      r = steps.next(out);
    }
    result = r.value;
    return result;
  } finally {
    engine.endScope(result as tf.TensorContainer);
  }
}
