/**
 * How a transformer's forward pass calls its linear layers. The pass is written once, as a generator that yields
 * each linear-layer call ({ module, input }) and receives the layer's output, and two drivers run it:
 *
 * - `runSync` calls `module.call(input)` at once (training, clear inference; works inside tf.tidy and gradients);
 * - `runAsync` awaits `module.callAsync(input)` (a hybrid model's remote layer answers asynchronously: it
 *   sends the activations to a server); other modules answer at once.
 *
 * So replacing `transformer.h.0.attn.c_attn` by a remote module needs no second copy of the attention code.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module.js';
import { valueOf } from '../nn/quant-tensor.js';
import { tidyAsync } from '../nn/tidy-async.js';

/** One layer call: `input` is [tokens, inFeatures] (an embedding's: int32 ids); the answer [tokens, outFeatures] (ids' shape + [dim]). */
export interface LayerCall {
  module: Module;
  input: tf.Tensor;
}

/** A module whose forward can also run asynchronously (e.g. on a server). */
export interface AsyncForward {
  forwardAsync(input: tf.Tensor): Promise<tf.Tensor>;
}

export type LayerSteps<T> = Generator<LayerCall, T, tf.Tensor>;

/** A leaf module that answers asynchronously (its own `forwardAsync`, e.g. a hybrid model's remote layer). */
export function hasForwardAsync(m: Module): m is Module & AsyncForward {
  return m.namedChildren().length === 0 && m.hasOwnForwardAsync();
}

export function runSync<T>(steps: LayerSteps<T>): T {
  let r = steps.next();
  while (!r.done) r = steps.next(r.value.module.call(r.value.input) as tf.Tensor);
  return r.value;
}

/**
 * Runs the pass awaiting every layer's `callAsync` (a hybrid model's remote layers answer asynchronously). Intermediate
 * tensors are released when the pass ends, except those in the result; one asynchronous pass at a time per process
 * (`tidyAsync`: scopes are a stack, so two interleaved passes would release each other's tensors).
 */
export function runAsync<T>(steps: LayerSteps<T>): Promise<T> {
  return tidyAsync(async () => {
    let r = steps.next();
    while (!r.done) r = steps.next(valueOf(await r.value.module.callAsync(r.value.input)));
    return r.value as T & tf.TensorContainer;
  });
}
