/**
 * Integer-packed checkpoints: a trained QAT model stored as the integers its weight quantizers produce, bit-packed,
 * plus their scales; every other tensor (BatchNorm, biases, activation scales) stays float32.
 *
 * Why: a float32 state dict spends 32 bits on a weight the quantizer maps onto 3 (2-bit) or 7 (3-bit) integers.
 * The full CNV's 1.54 M weights take 6.2 MB as float32 and ≈ 385 KB packed at 2 bits — small enough to commit, so
 * notebooks and demos use a trained net without retraining.
 *
 * Exactness: loading sets each latent weight to int·scale, and the check after loading re-runs the layer's weight
 * quantizer and requires the same integers. That holds for constant scales and for abs-max scales (the largest
 * |int| reproduces the scale), i.e. every quantizer fhenet's nets use; a quantizer that would not reproduce them is
 * reported by name, never silently altered. Pruning masks stay in the state dict, so a pruned model stays pruned.
 *
 * Format: a .safetensors file. A packed weight `name` is stored as `name.packed` (U8: values int − min, `bits` bits
 * each, least significant bit first) and `name.scale` (F32, the quantizer's scale, per-tensor or per-channel); the
 * metadata key `fhenet.packed` maps each packed name to { shape, bits, min }. Decoding checks all of it against the
 * model before touching a variable.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { type QuantWeightLayer, quantWeightLayers } from './layer-calls.js';
import { fromSafeTensor, toSafeTensor, writeFileAtomic } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import { type SafeTensor, decodeSafetensors, encodeSafetensors } from '../util/safetensors.js';
import { StateDictError } from '../util/errors.js';

export const PACKED_FORMAT = 'fhenet-packed/1';
const PACKED_KEY = 'fhenet.packed';

interface PackedEntry {
  shape: number[];
  bits: number;
  min: number;
}

/** Bits needed to store integers in [min, max] as unsigned offsets. */
function bitsFor(min: number, max: number): number {
  return Math.max(1, Math.ceil(Math.log2(max - min + 1)));
}

/** Packs integers (offset by −min) into `bits`-bit fields, least significant bit first. */
export function packInts(values: ArrayLike<number>, bits: number, min: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((values.length * bits) / 8));
  let bit = 0;
  for (let i = 0; i < values.length; i++) {
    const u = values[i]! - min;
    for (let b = 0; b < bits; b++, bit++) if ((u >> b) & 1) out[bit >> 3]! |= 1 << (bit & 7);
  }
  return out;
}

export function unpackInts(bytes: Uint8Array, count: number, bits: number, min: number): Int32Array {
  if (bytes.length !== Math.ceil((count * bits) / 8)) {
    throw new StateDictError(`packed data holds ${bytes.length} bytes, ${count} values of ${bits} bits need ${Math.ceil((count * bits) / 8)}`);
  }
  const out = new Int32Array(count);
  let bit = 0;
  for (let i = 0; i < count; i++) {
    let u = 0;
    for (let b = 0; b < bits; b++, bit++) u |= ((bytes[bit >> 3]! >> (bit & 7)) & 1) << b;
    out[i] = u + min;
  }
  return out;
}

/** The weights a layer's quantizer produces, as exact integers and the scale that maps them back. */
function layerInts(layer: QuantWeightLayer): { ints: Int32Array; scale: { data: Float32Array; shape: number[] }; zeroPoint: number } {
  let out: ReturnType<typeof layerInts> | undefined;
  tf.tidy(() => {
    const q = layer.quantWeight();
    out = { ints: Int32Array.from(q.int().dataSync()), scale: { data: Float32Array.from(q.scale.dataSync()), shape: q.scale.shape }, zeroPoint: q.zeroPoint };
  });
  return out!;
}

/** Encodes `module` with its quantized weights bit-packed (see the file comment). */
export function encodePackedModule(module: Module, metadata: Record<string, string> = {}): Uint8Array {
  const state = module.stateDict();
  const safe = new Map<string, SafeTensor>();
  const packed: Record<string, PackedEntry> = {};
  const handled = new Set<string>();
  for (const [name, layer] of quantWeightLayers(module)) {
    const key = name ? `${name}.weight` : 'weight';
    const weight = state.get(key);
    if (!weight) continue;
    const { ints, scale, zeroPoint } = layerInts(layer);
    if (zeroPoint !== 0) {
      throw new StateDictError(`layer '${name}': packed checkpoints need zero-point-free weight quantizers (zero point ${zeroPoint})`);
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ints) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (ints.length === 0) [lo, hi] = [0, 0];
    const bits = bitsFor(lo, hi);
    safe.set(`${key}.packed`, { dtype: 'U8', shape: [Math.ceil((ints.length * bits) / 8)], data: packInts(ints, bits, lo) });
    safe.set(`${key}.scale`, { dtype: 'F32', shape: scale.shape, data: scale.data });
    packed[key] = { shape: weight.shape, bits, min: lo };
    handled.add(key);
  }
  for (const [k, t] of state) if (!handled.has(k)) safe.set(k, toSafeTensor(t));
  return encodeSafetensors(safe, { ...metadata, format: PACKED_FORMAT, [PACKED_KEY]: JSON.stringify(packed) });
}

export function savePackedModule(file: string, module: Module, metadata?: Record<string, string>): void {
  writeFileAtomic(file, encodePackedModule(module, metadata));
}

/**
 * Loads a packed checkpoint into `module` (names and shapes must match, like `loadModule`), then re-quantizes every
 * packed weight and throws if an integer differs from the stored one. Returns the file's metadata.
 */
export function decodePackedModule(bytes: Uint8Array, module: Module): Record<string, string> {
  const { tensors, metadata } = decodeSafetensors(bytes);
  if (metadata.format !== PACKED_FORMAT) {
    throw new StateDictError(`not a packed checkpoint (format '${metadata.format ?? '(none)'}', expected '${PACKED_FORMAT}'); use loadModule for float checkpoints`);
  }
  let packed: Record<string, PackedEntry>;
  try {
    packed = JSON.parse(metadata[PACKED_KEY] ?? '{}');
  } catch (e) {
    throw new StateDictError(`metadata '${PACKED_KEY}' is not valid JSON: ${(e as Error).message}`);
  }
  const state = new Map<string, tf.Tensor>();
  const stored = new Map<string, Int32Array>();
  try {
    for (const [key, e] of Object.entries(packed)) {
      const data = tensors.get(`${key}.packed`);
      const scale = tensors.get(`${key}.scale`);
      if (!data || !scale) throw new StateDictError(`packed weight '${key}' lacks its '.packed' or '.scale' tensor`);
      const ok = Array.isArray(e.shape) && e.shape.every((d) => Number.isSafeInteger(d) && d >= 0) && Number.isInteger(e.bits) && e.bits >= 1 && e.bits <= 16 && Number.isSafeInteger(e.min);
      if (!ok || data.dtype !== 'U8' || scale.dtype !== 'F32') throw new StateDictError(`packed weight '${key}': malformed entry ${JSON.stringify(e)}`);
      const count = e.shape.reduce((a, b) => a * b, 1);
      const ints = unpackInts(data.data as Uint8Array, count, e.bits, e.min);
      stored.set(key, ints);
      state.set(key, tf.tidy(() => tf.mul(tf.tensor(Float32Array.from(ints), e.shape), tf.tensor(scale.data as Float32Array, scale.shape))));
      tensors.delete(`${key}.packed`);
      tensors.delete(`${key}.scale`);
    }
    for (const [k, t] of tensors) state.set(k, fromSafeTensor(k, t));
    module.loadStateDict(state);
  } finally {
    for (const t of state.values()) t.dispose();
  }
  for (const [name, layer] of quantWeightLayers(module)) {
    const key = name ? `${name}.weight` : 'weight';
    const want = stored.get(key);
    if (!want) continue;
    const { ints } = layerInts(layer);
    const bad = ints.findIndex((v, i) => v !== want[i]);
    if (bad >= 0) {
      throw new StateDictError(`layer '${name}': its weight quantizer does not reproduce the stored integers (index ${bad}: ${ints[bad]} ≠ ${want[bad]}); this quantizer's scale depends on more than the weights`);
    }
  }
  return metadata;
}

export function loadPackedModule(file: string, module: Module): Record<string, string> {
  try {
    return decodePackedModule(new Uint8Array(fs.readFileSync(file)), module);
  } catch (e) {
    if (e instanceof StateDictError) throw new StateDictError(`${file}: ${e.message}`);
    throw e;
  }
}
