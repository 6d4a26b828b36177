/** Saving and loading a module's state dict (and training state) as .safetensors files. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type SafeTensor, decodeSafetensors, encodeSafetensors } from '../util/safetensors.js';
import { StateDictError } from '../util/errors.js';
import type { Module } from './module.js';

export function toSafeTensor(t: tf.Tensor): SafeTensor {
  const data = t.dataSync();
  if (t.dtype === 'float32') return { dtype: 'F32', shape: t.shape, data: data as Float32Array };
  if (t.dtype === 'int32') return { dtype: 'I32', shape: t.shape, data: data as Int32Array };
  if (t.dtype === 'bool') return { dtype: 'U8', shape: t.shape, data: Uint8Array.from(data as Uint8Array) };
  throw new StateDictError(`cannot save a ${t.dtype} tensor`);
}

export function fromSafeTensor(name: string, t: SafeTensor): tf.Tensor {
  switch (t.dtype) {
    case 'F32':
      return tf.tensor(t.data as Float32Array, t.shape, 'float32');
    case 'F64':
      return tf.tensor(Float32Array.from(t.data as Float64Array), t.shape, 'float32');
    case 'I32':
      return tf.tensor(t.data as Int32Array, t.shape, 'int32');
    case 'I64':
      return tf.tensor(Int32Array.from(t.data as BigInt64Array, (v) => Number(v)), t.shape, 'int32');
    case 'I8':
    case 'U8':
    case 'I16':
    case 'U16':
      return tf.tensor(Int32Array.from(t.data as ArrayLike<number>), t.shape, 'int32');
    default:
      throw new StateDictError(`tensor '${name}': unsupported dtype ${String(t.dtype)}`);
  }
}

export function encodeTensors(tensors: Map<string, tf.Tensor>, metadata?: Record<string, string>): Uint8Array {
  const safe = new Map<string, SafeTensor>();
  for (const [k, t] of tensors) safe.set(k, toSafeTensor(t));
  return encodeSafetensors(safe, metadata);
}

export function decodeTensors(bytes: Uint8Array): { tensors: Map<string, tf.Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const out = new Map<string, tf.Tensor>();
  for (const [k, t] of tensors) out.set(k, fromSafeTensor(k, t));
  return { tensors: out, metadata };
}

/** Writes atomically (temp file + rename) so a crash never leaves a half-written checkpoint. */
export function writeFileAtomic(file: string, bytes: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
}

export function saveModule(file: string, module: Module, metadata?: Record<string, string>): void {
  writeFileAtomic(file, encodeTensors(module.stateDict(), metadata));
}

/** Loads a .safetensors state dict into `module` (strict: names and shapes must match) and returns its metadata. */
export function loadModule(file: string, module: Module, opts: { strict?: boolean } = {}): Record<string, string> {
  const { tensors, metadata } = decodeTensors(new Uint8Array(fs.readFileSync(file)));
  try {
    module.loadStateDict(tensors, opts);
  } catch (e) {
    if (e instanceof StateDictError) throw new StateDictError(`${file}: ${e.message}`);
    throw e;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return metadata;
}
