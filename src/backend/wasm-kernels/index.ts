/**
 * Kernels fhenet registers on the tfjs WASM backend to fill its gaps (see docs/backend.md).
 *
 * - `Conv2DBackpropFilter`: missing from tfjs-backend-wasm 4.22 (a CNN cannot train on WASM without it).
 * - `Conv2DBackpropInput`: tfjs's WASM kernel is a naive loop; fhenet's runs on XNNPACK's forward convolution.
 *
 * `registerWasmKernels()` is idempotent; `unregisterWasmKernels()` restores tfjs's own kernels (for benchmarks and
 * tests that compare against them).
 */
import * as tf from '@tensorflow/tfjs-core';
// Importing the backend registers tfjs's WASM kernels, which must happen before fhenet's replace them.
import '@tensorflow/tfjs-backend-wasm';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2DBackpropInputConfig } from './conv2d-backprop-input.js';

/** fhenet's WASM kernels, in registration order. */
export const WASM_KERNELS: readonly tf.KernelConfig[] = [conv2DBackpropFilterConfig, conv2DBackpropInputConfig];

/** tfjs's own kernels that fhenet's replaced (undefined where tfjs had none). */
const replaced = new Map<string, tf.KernelConfig | undefined>();
let registered = false;

export function registerWasmKernels(): void {
  if (registered) return;
  for (const config of WASM_KERNELS) {
    const existing = tf.getKernel(config.kernelName, 'wasm');
    replaced.set(config.kernelName, existing);
    // Unregister first: registering over an existing kernel prints a warning.
    if (existing) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  registered = true;
}

/** Removes fhenet's WASM kernels and puts tfjs's own back. */
export function unregisterWasmKernels(): void {
  if (!registered) return;
  for (const config of WASM_KERNELS) {
    tf.unregisterKernel(config.kernelName, 'wasm');
    const original = replaced.get(config.kernelName);
    if (original) tf.registerKernel(original);
  }
  replaced.clear();
  registered = false;
}

/** Whether fhenet's WASM kernels are currently registered. */
export function wasmKernelsRegistered(): boolean {
  return registered;
}
