/**
 * fhenet's WASM convolution-gradient kernels against the CPU backend (the reference), through tf.grads of tf.conv2d.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import {
  registerWasmKernels,
  unregisterWasmKernels,
  wasmKernelsRegistered,
  WASM_KERNELS,
} from '../../src/backend/wasm-kernels/index.js';
import { conv2DBackpropFilterWasm } from '../../src/backend/wasm-kernels/conv2d-backprop-filter.js';
import { conv2DBackpropInputWasm } from '../../src/backend/wasm-kernels/conv2d-backprop-input.js';
import { maxPoolGradWasm } from '../../src/backend/wasm-kernels/max-pool-grad.js';
// Importing the backend module registers tfjs's gradient functions.
import '../../src/backend/index.js';
import { noise, relErr, size } from './helpers.js';

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
interface Case {
  name: string;
  x: [number, number, number, number];
  k: number;
  cout: number;
  stride: 1 | 2 | [number, number];
  pad: Pad;
  round?: 'floor' | 'round' | 'ceil';
}



/** dL/dx and dL/dW of L = Σ conv2d(x, W) ⊙ R on the current backend, as plain arrays. */
function convGrads(c: Case, seed: number): { dx: Float32Array; dw: Float32Array; y: number[] } {
  const wShape: [number, number, number, number] = [c.k, c.k, c.x[3], c.cout];
  const result = tf.tidy(() => {
    const x = tf.tensor4d(noise(size(c.x), seed), c.x);
    const w = tf.tensor4d(noise(size(wShape), seed + 1), wShape);
    const yShape = tf.conv2d(x, w, c.stride, c.pad, 'NHWC', 1, c.round).shape;
    const r = tf.tensor(noise(size(yShape), seed + 2), yShape);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad, 'NHWC', 1, c.round), r)),
    );
    const [dx, dw] = g([x, w]);
    return { dx: dx!, dw: dw!, y: yShape };
  });
  // Read outside tidy (returning typed arrays from tidy is very slow).
  const out = { dx: result.dx.dataSync() as Float32Array, dw: result.dw.dataSync() as Float32Array, y: result.y };
  result.dx.dispose();
  result.dw.dispose();
  return out;
}


const cases: Case[] = [];
for (const k of [1, 3, 5]) {
  for (const stride of [1, 2] as const) {
    for (const pad of ['same', 'valid', 1] as Pad[]) {
      cases.push({ name: `k${k} s${stride} pad=${pad}`, x: [3, 11, 9, 4], k, cout: 6, stride, pad });
    }
  }
}
cases.push(
  { name: 'explicit asymmetric padding, s2', x: [2, 10, 7, 3], k: 3, cout: 5, stride: 2, pad: [[0, 0], [2, 0], [0, 1], [0, 0]] },
  { name: 'explicit padding larger than the kernel, s1', x: [2, 6, 8, 2], k: 3, cout: 3, stride: 1, pad: [[0, 0], [3, 1], [4, 0], [0, 0]] },
  { name: 'explicit padding larger than the kernel, s2', x: [2, 7, 6, 2], k: 3, cout: 3, stride: 2, pad: [[0, 0], [4, 2], [1, 3], [0, 0]] },
  { name: 'mixed strides [1,2], same', x: [2, 9, 12, 3], k: 3, cout: 4, stride: [1, 2], pad: 'same' },
  { name: 'mixed strides [2,1], valid, k5', x: [2, 12, 9, 3], k: 5, cout: 4, stride: [2, 1], pad: 'valid' },
  { name: 'numeric pad with rounding (s2, pad 2)', x: [2, 8, 8, 3], k: 3, cout: 2, stride: 2, pad: 2, round: 'floor' },
  { name: 'single input channel, batch 1', x: [1, 8, 8, 1], k: 3, cout: 4, stride: 1, pad: 'same' },
  { name: 'CIFAR-like layer', x: [8, 32, 32, 16], k: 3, cout: 32, stride: 1, pad: 'same' },
  { name: 'CIFAR-like strided layer', x: [8, 32, 32, 16], k: 3, cout: 32, stride: 2, pad: 'same' },
);

interface PoolCase {
  name: string;
  x: [number, number, number, number];
  k: number | [number, number];
  stride: number | [number, number];
  pad: 'same' | 'valid' | number;
  /** Quantise inputs to few levels (and ReLU them) so that windows hold ties, as after ReLU / quantisers. */
  ties?: boolean;
}
const poolCases: PoolCase[] = [
  { name: '2×2 s2 valid', x: [3, 8, 10, 5], k: 2, stride: 2, pad: 'valid' },
  { name: '2×2 s2 valid, odd size, ties', x: [2, 9, 7, 4], k: 2, stride: 2, pad: 'valid', ties: true },
  { name: '3×3 s2 same (overlapping), ties', x: [2, 9, 11, 3], k: 3, stride: 2, pad: 'same', ties: true },
  { name: '3×3 s1 same', x: [2, 6, 5, 3], k: 3, stride: 1, pad: 'same' },
  { name: '[2,3] [1,2] pad 1', x: [2, 7, 8, 2], k: [2, 3], stride: [1, 2], pad: 1 },
];

/** dL/dx of L = Σ maxPool(x) ⊙ R on the current backend. */
function poolGrad(c: PoolCase, seed: number): Float32Array {
  const dx = tf.tidy(() => {
    let x = tf.tensor4d(noise(size(c.x), seed), c.x);
    if (c.ties) x = tf.relu(tf.round(tf.mul(x, 2))) as tf.Tensor4D;
    const yShape = tf.maxPool(x, c.k, c.stride, c.pad).shape;
    const r = tf.tensor(noise(size(yShape), seed + 1), yShape);
    return tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.k, c.stride, c.pad), r)))(x);
  });
  const out = dx.dataSync() as Float32Array;
  dx.dispose();
  return out;
}

describe('fhenet WASM convolution-gradient kernels', () => {
  const reference = new Map<string, ReturnType<typeof convGrads>>();
  const poolReference = new Map<string, Float32Array>();

  beforeAll(async () => {
    // The CPU backend is the reference.
    await tf.setBackend('cpu');
    (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false; // no "install tfjs-node" banner
    cases.forEach((c, i) => reference.set(c.name, convGrads(c, 1000 + 7 * i)));
    poolCases.forEach((c, i) => poolReference.set(c.name, poolGrad(c, 500 + 3 * i)));
    registerWasmKernels();
    expect(await tf.setBackend('wasm')).toBe(true);
  });

  afterAll(() => {
    registerWasmKernels();
  });

  it('are registered on the wasm backend, replacing tfjs\'s Conv2DBackpropInput', () => {
    expect(wasmKernelsRegistered()).toBe(true);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')?.kernelFunc).toBe(conv2DBackpropFilterWasm);
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc).toBe(conv2DBackpropInputWasm);
    expect(tf.getKernel('MaxPoolGrad', 'wasm')?.kernelFunc).toBe(maxPoolGradWasm);
    expect(WASM_KERNELS.map((k) => k.kernelName)).toEqual(['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad']);
  });

  it.each(cases.map((c, i) => [c.name, c, i] as const))('match the CPU backend: %s', (_name, c, i) => {
    expect(tf.getBackend()).toBe('wasm');
    const ref = reference.get(c.name)!;
    const got = convGrads(c, 1000 + 7 * i);
    expect(got.y).toEqual(ref.y);
    expect(relErr(got.dx, ref.dx)).toBeLessThanOrEqual(1e-4);
    expect(relErr(got.dw, ref.dw)).toBeLessThanOrEqual(1e-4);
  });

  it.each(poolCases.map((c, i) => [c.name, c, i] as const))('MaxPoolGrad matches the CPU backend (same tie-breaking): %s', (_name, c, i) => {
    const got = poolGrad(c, 500 + 3 * i);
    // Overlapping windows sum in a different order than the CPU backend: equal up to float rounding. A tie broken
    // differently would move a whole dy value (relative error ≈ 1).
    expect(relErr(got, poolReference.get(c.name)!)).toBeLessThanOrEqual(1e-6);
  });

  it('free their intermediates (no leaked tensors or WASM buffers)', () => {
    const c = cases.find((k) => k.name.startsWith('explicit padding larger than the kernel, s2'))!;
    convGrads(c, 1); // warm-up
    const backend = tf.backend() as BackendWasm;
    const tensors = tf.memory().numTensors;
    const dataIds = backend.numDataIds();
    convGrads(c, 2);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(dataIds);
  });

  it('reject NCHW and dilations other than 1 with a clear error', () => {
    const backend = tf.backend();
    const x = tf.zeros([1, 5, 5, 2]);
    const dy = tf.zeros([1, 5, 5, 3]);
    const w = tf.zeros([3, 3, 2, 3]);
    try {
      const common = { strides: 1, pad: 'same', dimRoundingMode: undefined };
      expect(() =>
        conv2DBackpropFilterWasm({ inputs: { x, dy }, backend, attrs: { ...common, dataFormat: 'NCHW', filterShape: [3, 3, 2, 3] } as unknown as tf.NamedAttrMap }),
      ).toThrow(/NCHW/);
      expect(() =>
        conv2DBackpropInputWasm({ inputs: { dy, filter: w }, backend, attrs: { ...common, dataFormat: 'NCHW', inputShape: [1, 5, 5, 2] } as unknown as tf.NamedAttrMap }),
      ).toThrow(/NCHW/);
      // tfjs itself refuses gradients through dilated convolutions before reaching a kernel.
      const f = tf.grad((a: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, w as tf.Tensor4D, 1, 'same', 'NHWC', 2)));
      expect(() => f(x)).toThrow(/dilation/);
    } finally {
      tf.dispose([x, dy, w]);
    }
  });

  it('can be removed and put back, restoring tfjs\'s own kernels without warnings', () => {
    const warn = console.warn;
    const warnings: unknown[] = [];
    console.warn = (...a: unknown[]) => warnings.push(a);
    try {
      unregisterWasmKernels();
      expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
      const tfjsOwn = tf.getKernel('Conv2DBackpropInput', 'wasm');
      expect(tfjsOwn).toBeDefined();
      expect(tfjsOwn!.kernelFunc).not.toBe(conv2DBackpropInputWasm);
      registerWasmKernels();
      registerWasmKernels(); // idempotent
      expect(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc).toBe(conv2DBackpropInputWasm);
    } finally {
      console.warn = warn;
    }
    expect(warnings).toEqual([]);
  });
});
