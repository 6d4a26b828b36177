/**
 * Kernels fhenet registers on the tfjs WASM backend to fill its gaps (see docs/backend.md).
 *
 * - `Conv2DBackpropFilter`: missing from tfjs-backend-wasm 4.22 (a CNN cannot train on WASM without it).
 * - `Conv2DBackpropInput`: tfjs's WASM kernel is a naive loop; fhenet's runs on XNNPACK's forward convolution.
 * - `MaxPoolGrad`: tfjs's WASM kernel is slow; fhenet's is one pass over the windows (same tie-breaking as CPU).
 *
 * `registerWasmKernels()` is idempotent; `unregisterWasmKernels()` restores tfjs's own kernels (for benchmarks and
 * tests that compare against them).
 */
import * as tf from '@tensorflow/tfjs-core';
// Importing the backend registers tfjs's WASM kernels, which must happen before fhenet's replace them.
import '@tensorflow/tfjs-backend-wasm';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2DBackpropInputConfig } from './conv2d-backprop-input.js';
import { maxPoolGradConfig } from './max-pool-grad.js';

/** fhenet's WASM kernels, in registration order. */
export const WASM_KERNELS: readonly tf.KernelConfig[] = [
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  maxPoolGradConfig,
];

/** For each fhenet kernel now registered: tfjs's own kernel it replaced (undefined where tfjs had none). */
const replaced = new Map<string, tf.KernelConfig | undefined>();

/**
 * Registers fhenet's WASM kernels (all of them, or only those named in `only`). Kernels already registered are left
 * alone, so calling this again is harmless.
 */
export function registerWasmKernels(only?: readonly string[]): void {
  for (const config of WASM_KERNELS) {
    if (only && !only.includes(config.kernelName)) continue;
    if (replaced.has(config.kernelName)) continue;
    const existing = tf.getKernel(config.kernelName, 'wasm');
    // Unregister first: registering over an existing kernel prints a warning.
    if (existing) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
    replaced.set(config.kernelName, existing);
  }
}

/** Removes fhenet's WASM kernels and puts tfjs's own back. */
export function unregisterWasmKernels(): void {
  for (const [name, original] of replaced) {
    tf.unregisterKernel(name, 'wasm');
    if (original) tf.registerKernel(original);
  }
  replaced.clear();
}

/** Whether all of fhenet's WASM kernels are currently registered. */
export function wasmKernelsRegistered(): boolean {
  return WASM_KERNELS.every((k) => replaced.has(k.kernelName));
}

