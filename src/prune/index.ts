/**
 * Weight pruning with persistent masks (the `torch.nn.utils.prune` habits, on fhenet's `WeightedLayer` mask).
 *
 * - `pruneL1Unstructured(model, layer, amount)`: zero the `amount` smallest-|w| weights of one layer. The mask is
 *   installed with `setWeightMask`, multiplied into the weight on every forward pass and saved as `weight_mask`,
 *   so pruned weights stay zero while the optimizer moves the others. Pruning a layer again prunes among the
 *   weights that are still alive (the amount, when a fraction, is a fraction of those), like PyTorch's
 *   PruningContainer.
 * - `removePruning(model, layer?)`: makes masks permanent (weight ← weight·mask, the buffer disappears).
 * - `pruneKNonZero(model, k)`: the reference's "max non-zero per neuron" helper — each weighted layer with
 *   fan-in > k loses (fan_in − k) × fan_out weights, chosen by L1 over the whole layer, so neurons keep k inputs
 *   *on average*. With `strict: true`, every output neuron keeps its k largest-|w| inputs and loses the rest, which
 *   bounds every neuron's fan-in (and so its accumulator) by k.
 * - `sparsityReport(model)`: achieved sparsity and non-zero inputs per neuron for every weighted layer.
 *
 * Ties in |w| are broken by position (the lower flat index is pruned first) so results do not depend on the
 * backend's sort.
 */
import * as tf from '@tensorflow/tfjs-core';
import { WeightedLayer } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { ConfigError } from '../util/errors.js';

/** How much to prune: a number of weights or a fraction of them (of those still unpruned). */
export type PruneAmount = number | { count: number } | { fraction: number };

export interface LayerSparsity {
  layer: string;
  type: string;
  fanIn: number;
  fanOut: number;
  weights: number;
  /** Weights that are exactly zero in the weight the layer uses (masked or trained to zero). */
  zeros: number;
  sparsity: number;
  /** Whether a pruning mask is installed. */
  masked: boolean;
  /** Non-zero inputs per output neuron. */
  nonZeroPerNeuron: { min: number; mean: number; max: number };
}

/** Every weighted layer (Linear, Conv2d and their quantized versions) by dotted name. */
export function weightedLayers(model: Module): [string, WeightedLayer][] {
  return model.namedModules().filter((e): e is [string, WeightedLayer] => e[1] instanceof WeightedLayer);
}

function layerByName(model: Module, name: string): WeightedLayer {
  const m = model.getModule(name); // unknown names: ConfigError listing the valid ones
  if (!(m instanceof WeightedLayer)) {
    const valid = weightedLayers(model).map(([n]) => n);
    throw new ConfigError(`module '${name}' is a ${m.constructor.name}, which has no weight to prune; weighted layers are: ${valid.join(', ') || '(none)'}`);
  }
  return m;
}

/** Resolves an amount against `alive` unpruned weights into a count; out-of-range amounts are errors. */
export function resolveAmount(amount: PruneAmount, alive: number, who: string): number {
  if (typeof amount === 'number') {
    // PyTorch convention: an integer is a count, a non-integer a fraction.
    return Number.isInteger(amount) ? resolveAmount({ count: amount }, alive, who) : resolveAmount({ fraction: amount }, alive, who);
  }
  if ('count' in amount) {
    const c = amount.count;
    if (!Number.isInteger(c) || c < 0 || c > alive) {
      throw new ConfigError(`${who}: amount ${c} must be an integer count in [0, ${alive}] (the weights still unpruned)`);
    }
    return c;
  }
  const f = amount.fraction;
  if (!(typeof f === 'number' && f >= 0 && f <= 1)) {
    throw new ConfigError(`${who}: fraction ${f} must be in [0, 1]`);
  }
  // PyTorch rounds the fraction of the number of units to the nearest integer.
  return Math.round(f * alive);
}

function currentMask(layer: WeightedLayer): Float32Array {
  const m = layer.weightMask;
  return m ? Float32Array.from(m.dataSync()) : new Float32Array(layer.weight.size).fill(1);
}

/** Indices of `candidates` sorted by |w| ascending, ties by index. */
function byMagnitude(w: ArrayLike<number>, candidates: number[]): number[] {
  return candidates.sort((a, b) => Math.abs(w[a]!) - Math.abs(w[b]!) || a - b);
}

function install(layer: WeightedLayer, mask: Float32Array): void {
  const t = tf.tensor(mask, layer.weight.shape, 'float32');
  layer.setWeightMask(t);
  t.dispose();
}

/** L1-unstructured pruning of one layer by dotted name; returns the layer's sparsity afterwards. */
export function pruneL1Unstructured(model: Module, layerName: string, amount: PruneAmount): LayerSparsity {
  const layer = layerByName(model, layerName);
  pruneLayerL1(layer, amount, `prune '${layerName}'`);
  return layerSparsity(layerName, layer);
}

/** L1-unstructured pruning of a layer object. */
export function pruneLayerL1(layer: WeightedLayer, amount: PruneAmount, who = 'prune'): void {
  const w = layer.weight.dataSync();
  const mask = currentMask(layer);
  const alive: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) alive.push(i);
  const count = resolveAmount(amount, alive.length, who);
  for (const i of byMagnitude(w, alive).slice(0, count)) mask[i] = 0;
  install(layer, mask);
}

/** Makes masks permanent on one layer (by name) or on every masked layer. */
export function removePruning(model: Module, layerName?: string): void {
  const layers = layerName === undefined ? weightedLayers(model).map(([, l]) => l) : [layerByName(model, layerName)];
  for (const l of layers) l.removeWeightMask();
}

export interface KNonZeroOptions {
  /** Every output neuron keeps at most k inputs (instead of k on average over the layer). */
  strict?: boolean;
  /** Only these layers (dotted names); default every weighted layer. */
  layers?: string[];
}

/**
 * The reference's k-non-zero pruning. Layers whose fan-in (in_features, or in_channels·kh·kw) is ≤ k are left
 * alone. Returns the sparsity report of every layer considered.
 */
export function pruneKNonZero(model: Module, k: number, opts: KNonZeroOptions = {}): LayerSparsity[] {
  if (!Number.isInteger(k) || k < 1) throw new ConfigError(`k non-zero: k must be a positive integer, got ${k}`);
  const layers = opts.layers ? opts.layers.map((n) => [n, layerByName(model, n)] as [string, WeightedLayer]) : weightedLayers(model);
  const out: LayerSparsity[] = [];
  for (const [name, layer] of layers) {
    const fanIn = layer.fanIn;
    if (fanIn > k) {
      if (opts.strict) prunePerNeuron(layer, k);
      else pruneLayerL1(layer, { count: (fanIn - k) * layer.fanOut }, `k non-zero '${name}'`);
    }
    out.push(layerSparsity(name, layer));
  }
  return out;
}

/** Keeps the k largest-|w| (among unpruned) inputs of every output neuron. */
function prunePerNeuron(layer: WeightedLayer, k: number): void {
  const w = layer.weight.dataSync();
  const mask = currentMask(layer);
  const fanIn = layer.fanIn;
  for (let o = 0; o < layer.fanOut; o++) {
    const alive: number[] = [];
    for (let i = o * fanIn; i < (o + 1) * fanIn; i++) if (mask[i] !== 0) alive.push(i);
    const drop = alive.length - k;
    if (drop > 0) for (const i of byMagnitude(w, alive).slice(0, drop)) mask[i] = 0;
  }
  install(layer, mask);
}

export function layerSparsity(name: string, layer: WeightedLayer): LayerSparsity {
  const eff = layer.effectiveWeight();
  const w = eff.dataSync();
  if (eff !== layer.weight) eff.dispose();
  const fanIn = layer.fanIn;
  const fanOut = layer.fanOut;
  let zeros = 0;
  let min = Infinity;
  let max = 0;
  for (let o = 0; o < fanOut; o++) {
    let nz = 0;
    for (let i = o * fanIn; i < (o + 1) * fanIn; i++) if (w[i] !== 0) nz++;
    zeros += fanIn - nz;
    min = Math.min(min, nz);
    max = Math.max(max, nz);
  }
  return {
    layer: name,
    type: layer.constructor.name,
    fanIn,
    fanOut,
    weights: w.length,
    zeros,
    sparsity: zeros / w.length,
    masked: layer.weightMask !== undefined,
    nonZeroPerNeuron: { min, mean: (w.length - zeros) / fanOut, max },
  };
}

export function sparsityReport(model: Module): LayerSparsity[] {
  return weightedLayers(model).map(([n, l]) => layerSparsity(n, l));
}

export function formatSparsity(rows: LayerSparsity[]): string {
  const head = 'layer        type           weights   zeros  sparsity  non-zero/neuron min/mean/max';
  const lines = rows.map(
    (r) =>
      `${r.layer.padEnd(12)} ${r.type.padEnd(14)} ${String(r.weights).padStart(7)} ${String(r.zeros).padStart(7)}  ${(100 * r.sparsity).toFixed(1).padStart(6)}%  ${r.nonZeroPerNeuron.min}/${r.nonZeroPerNeuron.mean.toFixed(1)}/${r.nonZeroPerNeuron.max}`,
  );
  return [head, ...lines].join('\n');
}
