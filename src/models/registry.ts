/**
 * Named model builders, so a checkpoint written by `fhenet train` (whose safetensors metadata records the model
 * name and its options) can be rebuilt by `fhenet export` / `fhenet compile` without the training script.
 */
import * as fs from 'node:fs';
import { loadModule } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import { decodeSafetensors } from '../util/safetensors.js';
import { ConfigError } from '../util/errors.js';
import { QuantSimpleNet, SimpleNet } from './checkerboard.js';
import { EncryptedCnn, type EncryptedCnnOptions } from './encrypted-cnn.js';

export interface ModelSpec {
  build: (meta: Record<string, string>) => Module;
  /** Per-sample input shape (NHWC for images). */
  sampleShape: (meta: Record<string, string>) => number[];
}

const REGISTRY = new Map<string, ModelSpec>([
  ['simple-net', { build: (m) => new SimpleNet(Number(m.hidden ?? 100)), sampleShape: () => [2] }],
  [
    'quant-simple-net',
    {
      build: (m) =>
        new QuantSimpleNet({ hidden: Number(m.hidden ?? 100), bits: Number(m.bits ?? 3), scales: (m.scales as 'notebook' | 'brevitas') ?? 'notebook' }),
      sampleShape: () => [2],
    },
  ],
  [
    // experiments/encrypted-images checkpoints: metadata.config is the experiment's JSON config.
    'encrypted-cnn',
    {
      build: (m) => new EncryptedCnn(encryptedCnnOptions(m)),
      sampleShape: (m) => {
        const o = encryptedCnnOptions(m);
        return [o.inputSize ?? 28, o.inputSize ?? 28, o.inChannels ?? 1];
      },
    },
  ],
]);

function encryptedCnnOptions(meta: Record<string, string>): EncryptedCnnOptions {
  const c = JSON.parse(meta.config ?? '{}') as Partial<EncryptedCnnOptions> & { dataset?: string };
  const image = c.dataset === 'cifar' ? { inChannels: 3, inputSize: 32 } : { inChannels: 1, inputSize: 28 };
  return { channels: c.channels, kernel: c.kernel, stride: c.stride, inputBits: c.inputBits, weightBits: c.weightBits, actBits: c.actBits, ...image };
}

export function modelNames(): string[] {
  return [...REGISTRY.keys()];
}

/** Rebuilds the model a checkpoint describes and loads its weights. */
export function loadCheckpointModel(file: string): { model: Module; sampleShape: number[]; metadata: Record<string, string> } {
  if (!fs.existsSync(file)) throw new ConfigError(`checkpoint ${file} does not exist`);
  const bytes = new Uint8Array(fs.readFileSync(file));
  const { metadata } = decodeSafetensors(bytes);
  const name = metadata.model;
  const spec = name ? REGISTRY.get(name) : undefined;
  if (!spec) {
    throw new ConfigError(`${file}: metadata names model '${name ?? '(none)'}'; known models: ${modelNames().join(', ')}`);
  }
  const model = spec.build(metadata);
  loadModule(file, model);
  model.eval();
  return { model, sampleShape: spec.sampleShape(metadata), metadata };
}
