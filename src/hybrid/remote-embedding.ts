/**
 * Remote embeddings: an embedding lookup is a matrix product with a one-hot vector, E[id] = Eᵀ · onehot(id), so a
 * remote `Embedding` (GPT-2's `transformer.wte` and `transformer.wpe`) is computed by the same dynamically quantized
 * linear machinery as every remote Linear/Conv1D (dynamic-quant.ts, linear-calls.ts, linear-backend.ts) — one more
 * integer layer of d_in = numEmbeddings, d_out = embeddingDim, whose "weight" is Eᵀ.
 *
 * - Client: the token (or position) ids become one-hot rows [tokens, numEmbeddings]; per-token dynamic quantization
 *   of a one-hot row is exact (range [0, 1] → scale 1/255, zero point 0, the hot entry 255, every other 0), so the
 *   only loss is the weights' int8 rounding.
 * - Weights: per output channel = per embedding dimension c, across the vocabulary: s_w[c] = max_id |E[id, c]| / 127.
 * - Server: the same encrypted product as any remote linear layer; it sees an encrypted vector of numEmbeddings
 *   entries, not which one is hot.
 *
 * A remote `wpe` protects the position-embedding matrix; it hides nothing about positions (the number of positions
 * processed per call is visible from the request count and size anyway).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module.js';
import { Embedding } from '../nn/embedding.js';
import { ShapeError } from '../util/errors.js';
import { HybridError } from './errors.js';
import { quantizeLinear } from './dynamic-quant.js';
import type { CalibrationRecord } from './calibration.js';
import type { RemoteLayer } from './remote-layer.js';

export function isEmbeddingModule(m: Module): m is Embedding {
  return m instanceof Embedding;
}

/** Every `Embedding` of `model`, in `namedModules()` order (GPT-2: transformer.wte, transformer.wpe). */
export function embeddingModuleNames(model: Module): string[] {
  return model.namedModules().filter(([name, m]) => name !== '' && isEmbeddingModule(m)).map(([name]) => name);
}

/** The embedding matrix as the [out = embeddingDim, in = numEmbeddings] row-major weight of the equivalent linear layer. */
export function embeddingAsLinearWeight(m: Embedding): Float32Array {
  const { numEmbeddings: v, embeddingDim: d } = m;
  const e = m.weight.dataSync() as Float32Array;
  const w = new Float32Array(v * d);
  for (let id = 0; id < v; id++) for (let c = 0; c < d; c++) w[c * v + id] = e[id * d + c]!;
  return w;
}

/** One-hot rows [ids.length, numEmbeddings] (float, what the linear path quantizes per token: exactly). */
export function oneHotRows(ids: ArrayLike<number>, numEmbeddings: number, name: string): Float32Array {
  const out = new Float32Array(ids.length * numEmbeddings);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (!Number.isInteger(id) || id < 0 || id >= numEmbeddings) throw new ShapeError(`remote embedding '${name}': id ${id} at position ${t} is outside 0..${numEmbeddings - 1}`);
    out[t * numEmbeddings + id] = 1;
  }
  return out;
}

/** An id tensor of a remote embedding as the linear path's [tokens, numEmbeddings] input; the output keeps the ids' shape. */
export function idsAsOneHot(v: tf.Tensor, numEmbeddings: number, name: string): { tokens: number; input: Float32Array; lead: number[] } {
  if (v.dtype !== 'int32') throw new ShapeError(`remote embedding '${name}' expects int32 ids, got ${v.dtype} [${v.shape}]`);
  const ids = v.dataSync() as Int32Array;
  return { tokens: ids.length, input: oneHotRows(ids, numEmbeddings, name), lead: [...v.shape] };
}

/** compileModel's dynamic-quantization step for a remote Embedding: Eᵀ as per-channel int8 (no bias). */
export function compileEmbeddingLayer(layer: RemoteLayer, record: CalibrationRecord): void {
  if (!record.byShape.size) throw new HybridError(`remote module '${layer.name}' was never called during calibration`);
  const original = layer.original;
  if (!original) throw new HybridError(`module '${layer.name}' has no weights on this side (private info was cleared); compile on the model owner's side`);
  if (!isEmbeddingModule(original)) throw new HybridError(`remote module '${layer.name}' is a ${original.constructor.name}, not an Embedding`);
  layer.compiled.clear();
  layer.linear = quantizeLinear(embeddingAsLinearWeight(original), original.embeddingDim, original.numEmbeddings);
}
