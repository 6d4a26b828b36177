/**
 * fhenet's native WASM-heap kernels (src/backend/native: im2col + OpenBLAS) against tfjs's CPU backend and against the
 * WASM kernels they replace. Skipped, with the reason printed, when the addon cannot be built (no compiler or no
 * OpenBLAS); `FHENET_REQUIRE_NATIVE=1` turns that skip into a failure (CI installs OpenBLAS).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Importing the backend module registers tfjs's gradient functions.
import '../../src/backend/index.js';
import { registerWasmKernels } from '../../src/backend/wasm-kernels/index.js';
import {
  describeNative,
  loadNativeKernelsAddon,
  NATIVE_KERNEL_NAMES,
  nativeStatus,
  registerNativeKernels,
  unregisterNativeKernels,
} from '../../src/backend/native/index.js';
import { envDisabled, loadNativeAddon } from '../../src/util/native-addon.js';
import { noise, relErr, size } from './helpers.js';

const addon = loadNativeKernelsAddon();
const status = nativeStatus();
if (!addon) {
  const msg = `native kernels unavailable, tests skipped: ${status.reason}`;
  if (process.env.FHENET_REQUIRE_NATIVE === '1') throw new Error(msg);
  console.warn(msg);
}



type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
interface ConvCase {
  name: string;
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  stride: number | [number, number];
  pad: Pad;
  dilation?: number | [number, number];
  round?: 'floor' | 'round' | 'ceil';
}

/** y = conv2d(x, W), dx and dW of L = Σ y ⊙ R, computed by running the three kernels on the current backend. */
function convAll(c: ConvCase, seed: number): { y: Float32Array; dx?: Float32Array; dw?: Float32Array; yShape: number[] } {
  const wShape: [number, number, number, number] = [c.k[0], c.k[1], c.x[3], c.cout];
  const x = tf.tensor4d(noise(size(c.x), seed), c.x);
  const w = tf.tensor4d(noise(size(wShape), seed + 1), wShape);
  const y = tf.conv2d(x, w, c.stride as [number, number], c.pad, 'NHWC', c.dilation ?? 1, c.round);
  const out: ReturnType<typeof convAll> = { y: y.dataSync() as Float32Array, yShape: y.shape };
  if (c.dilation === undefined || c.dilation === 1) {
    const r = tf.tensor(noise(size(y.shape), seed + 2), y.shape);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride as [number, number], c.pad, 'NHWC', 1, c.round), r)),
    );
    const [dx, dw] = g([x, w]);
    out.dx = dx!.dataSync() as Float32Array;
    out.dw = dw!.dataSync() as Float32Array;
    tf.dispose([r, dx!, dw!]);
  }
  tf.dispose([x, w, y]);
  return out;
}

const cases: ConvCase[] = [];
for (const k of [1, 3, 5]) {
  for (const stride of [1, 2]) {
    for (const pad of ['same', 'valid', 1] as Pad[]) {
      for (const batch of [1, 3]) cases.push({ name: `k${k} s${stride} pad=${pad} batch ${batch}`, x: [batch, 11, 9, 4], k: [k, k], cout: 6, stride, pad });
    }
  }
}
cases.push(
  { name: 'explicit asymmetric padding, s2', x: [2, 10, 7, 3], k: [3, 3], cout: 5, stride: 2, pad: [[0, 0], [2, 0], [0, 1], [0, 0]] },
  { name: 'explicit padding larger than the kernel, s2', x: [2, 7, 6, 2], k: [3, 3], cout: 3, stride: 2, pad: [[0, 0], [4, 2], [1, 3], [0, 0]] },
  { name: 'mixed strides [1,2], same, non-square kernel', x: [2, 9, 12, 3], k: [3, 2], cout: 4, stride: [1, 2], pad: 'same' },
  { name: 'numeric pad with rounding (s2, pad 2)', x: [2, 8, 8, 3], k: [3, 3], cout: 2, stride: 2, pad: 2, round: 'floor' },
  { name: 'forward with dilation 2, same', x: [2, 11, 10, 3], k: [3, 3], cout: 4, stride: 1, pad: 'same', dilation: 2 },
  { name: 'forward with dilation [2,3], valid', x: [2, 11, 12, 3], k: [3, 3], cout: 4, stride: 1, pad: 'valid', dilation: [2, 3] },
  { name: 'CNV conv 1 (3→64, 32×32, valid), batch 2', x: [2, 32, 32, 3], k: [3, 3], cout: 64, stride: 1, pad: 'valid' },
  { name: 'CNV conv 2 (64→64, 30×30, valid), batch 2', x: [2, 30, 30, 64], k: [3, 3], cout: 64, stride: 1, pad: 'valid' },
  { name: 'CNV conv 5 (128→256, 5×5, valid), batch 2', x: [2, 5, 5, 128], k: [3, 3], cout: 256, stride: 1, pad: 'valid' },
  { name: 'CNV conv 6 (256→256, 3×3, valid), batch 3', x: [3, 3, 3, 256], k: [3, 3], cout: 256, stride: 1, pad: 'valid' },
);

/** The full CNV layers at a training batch, checked against the WASM kernels (the CPU backend is too slow here). */
const cnvLayers: ConvCase[] = [
  { name: 'CNV conv 1, batch 16', x: [16, 32, 32, 3], k: [3, 3], cout: 64, stride: 1, pad: 'valid' },
  { name: 'CNV conv 2, batch 16', x: [16, 30, 30, 64], k: [3, 3], cout: 64, stride: 1, pad: 'valid' },
  { name: 'CNV conv 3, batch 16', x: [16, 14, 14, 64], k: [3, 3], cout: 128, stride: 1, pad: 'valid' },
  { name: 'CNV conv 4, batch 16', x: [16, 12, 12, 128], k: [3, 3], cout: 128, stride: 1, pad: 'valid' },
  { name: 'CNV conv 5, batch 16', x: [16, 5, 5, 128], k: [3, 3], cout: 256, stride: 1, pad: 'valid' },
  { name: 'CNV conv 6, batch 16', x: [16, 3, 3, 256], k: [3, 3], cout: 256, stride: 1, pad: 'valid' },
];

interface MatMulCase {
  name: string;
  a: number[];
  b: number[];
  ta: boolean;
  tb: boolean;
}
const matmulCases: MatMulCase[] = [];
for (const ta of [false, true]) {
  for (const tb of [false, true]) {
    matmulCases.push({ name: `2-D ta=${ta} tb=${tb}`, a: ta ? [37, 19] : [19, 37], b: tb ? [23, 37] : [37, 23], ta, tb });
    matmulCases.push({ name: `batched ta=${ta} tb=${tb}`, a: ta ? [3, 13, 7] : [3, 7, 13], b: tb ? [3, 5, 13] : [3, 13, 5], ta, tb });
  }
}
matmulCases.push(
  { name: 'CNV fc 1 (batch 100, 256→512, weight transposed)', a: [100, 256], b: [512, 256], ta: false, tb: true },
  { name: 'CNV fc 1 weight gradient (dyᵀ · x)', a: [100, 512], b: [100, 256], ta: true, tb: false },
  { name: 'broadcast: one matrix times a batch', a: [1, 6, 9], b: [4, 9, 5], ta: false, tb: false },
  { name: 'broadcast: batch times one matrix (rank 4)', a: [2, 3, 6, 9], b: [9, 5], ta: false, tb: false },
  { name: 'fallback: batch shapes that broadcast both ways', a: [2, 1, 4, 6], b: [1, 3, 6, 5], ta: false, tb: false },
  { name: 'vector-like (M = 1)', a: [1, 300], b: [300, 40], ta: false, tb: false },
  { name: 'M = 1 (sgemv), weight transposed (GPT-2 lm_head form)', a: [1, 300], b: [40, 300], ta: false, tb: true },
  { name: 'M = 1 (sgemv), columns split over threads', a: [1, 512], b: [512, 5000], ta: false, tb: false },
  { name: 'M = 1 (sgemv), weight transposed, rows split over threads', a: [1, 512], b: [5000, 512], ta: false, tb: true },
  { name: 'M = 1 with A transposed (sgemm)', a: [300, 1], b: [300, 40], ta: true, tb: false },
);

function matmulOn(c: MatMulCase, seed: number): Float32Array {
  const a = tf.tensor(noise(size(c.a), seed), c.a);
  const b = tf.tensor(noise(size(c.b), seed + 1), c.b);
  const y = tf.matMul(a, b, c.ta, c.tb);
  const out = y.dataSync() as Float32Array;
  tf.dispose([a, b, y]);
  return out;
}

/** A small conv net: conv 3×3 s2 same → ReLU → conv 3×3 valid → avgpool 2 → flatten → dense; softmax CE. */
function smallNetStep(seed: number): { loss: number; grads: Float32Array[]; updated: Float32Array[] } {
  const batch = 4;
  const shapes = [
    [3, 3, 3, 8],
    [3, 3, 8, 12],
    [3 * 3 * 12, 10],
  ];
  const vars = shapes.map((s, i) => tf.variable(tf.tensor(noise(size(s), seed + 10 * i), s).mul(0.4)));
  const x = tf.tensor4d(noise(batch * 16 * 16 * 3, seed + 99), [batch, 16, 16, 3]);
  const labels = tf.oneHot(tf.tensor1d([1, 4, 7, 2], 'int32'), 10);
  const lossFn = () =>
    tf.tidy(() => {
      let h = tf.relu(tf.conv2d(x, vars[0] as tf.Tensor4D, 2, 'same')); // 8×8×8
      h = tf.conv2d(h as tf.Tensor4D, vars[1] as tf.Tensor4D, 1, 'valid'); // 6×6×12
      h = tf.avgPool(h as tf.Tensor4D, 2, 2, 'valid'); // 3×3×12
      const logits = tf.matMul(tf.reshape(h, [batch, -1]), vars[2] as tf.Tensor2D);
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    });
  const { value, grads } = tf.variableGrads(lossFn, vars);
  const g = vars.map((v) => grads[v.name]!.dataSync() as Float32Array);
  const opt = tf.train.sgd(0.1);
  opt.applyGradients(grads);
  const out = { loss: value.dataSync()[0]!, grads: g, updated: vars.map((v) => v.dataSync() as Float32Array) };
  tf.dispose([value, x, labels, ...vars, ...Object.values(grads)]);
  opt.dispose();
  return out;
}

describe('native-addon loader (src/util/native-addon.ts)', () => {
  it('reads the disabling environment values', () => {
    expect(envDisabled('0')).toBe(true);
    expect(envDisabled('off')).toBe(true);
    expect(envDisabled('1')).toBe(false);
    expect(envDisabled(undefined)).toBe(false);
  });

  it('reports a failing build as a reason instead of throwing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fhenet-addon-test-'));
    const src = join(dir, 'broken.c');
    writeFileSync(src, 'this is not C;\n');
    const r = loadNativeAddon({ name: 'fhenet-test-broken', sources: [src] });
    expect(r.addon).toBeNull();
    expect(r.error).toMatch(/error/i);
  });

  it('honours the disabling environment variable', () => {
    process.env.FHENET_TEST_ADDON_OFF = '0';
    try {
      const r = loadNativeAddon({ name: 'fhenet-test-off', sources: ['/nonexistent.c'], disableEnv: 'FHENET_TEST_ADDON_OFF' });
      expect(r.addon).toBeNull();
      expect(r.error).toBe('disabled by FHENET_TEST_ADDON_OFF=0');
    } finally {
      delete process.env.FHENET_TEST_ADDON_OFF;
    }
  });

  it('FHENET_NATIVE_KERNELS=0 disables the native kernels (in a fresh process)', () => {
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '-e', "import('./src/backend/native/index.ts').then(m => console.log(JSON.stringify(m.registerNativeKernels())))"],
      { env: { ...process.env, FHENET_NATIVE_KERNELS: '0' }, encoding: 'utf8' },
    );
    const s = JSON.parse(out.trim().split('\n').pop()!);
    expect(s).toEqual({ available: false, kernels: [], reason: 'disabled by FHENET_NATIVE_KERNELS=0' });
  });
});

describe.skipIf(!addon)('native WASM-heap kernels (OpenBLAS)', () => {
  const cpuRef = new Map<string, ReturnType<typeof convAll>>();
  const mmRef = new Map<string, Float32Array>();
  let netRef: ReturnType<typeof smallNetStep>;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
    cases.forEach((c, i) => cpuRef.set(c.name, convAll(c, 100 + 11 * i)));
    matmulCases.forEach((c, i) => mmRef.set(c.name, matmulOn(c, 900 + 5 * i)));
    netRef = smallNetStep(7);
    registerWasmKernels();
    registerNativeKernels();
    expect(await tf.setBackend('wasm')).toBe(true);
  });

  afterAll(() => {
    registerNativeKernels();
  });

  it('are registered on wasm and described', () => {
    const s = nativeStatus();
    expect(s.available).toBe(true);
    expect([...s.kernels].sort()).toEqual([...NATIVE_KERNEL_NAMES].sort());
    expect(s.threads).toBeGreaterThanOrEqual(1);
    expect(s.blas).toMatch(/OpenBLAS/);
    expect(describeNative(s)).toMatch(/^native kernels \(OpenBLAS [\d.]+, \d+ threads?\): Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput, BatchMatMul, /);
  });

  it.each(cases.map((c, i) => [c.name, c, i] as const))('convolution and both gradients match the CPU backend: %s', (_n, c, i) => {
    const ref = cpuRef.get(c.name)!;
    const got = convAll(c, 100 + 11 * i);
    expect(got.yShape).toEqual(ref.yShape);
    expect(relErr(got.y, ref.y)).toBeLessThanOrEqual(1e-4);
    if (ref.dx) {
      expect(relErr(got.dx!, ref.dx)).toBeLessThanOrEqual(1e-4);
      expect(relErr(got.dw!, ref.dw!)).toBeLessThanOrEqual(1e-4);
    }
  });

  it.each(cnvLayers.map((c, i) => [c.name, c, i] as const))('full-size CNV layer matches the WASM kernels: %s', (_n, c, i) => {
    const got = convAll(c, 300 + i);
    unregisterNativeKernels();
    try {
      const ref = convAll(c, 300 + i);
      expect(relErr(got.y, ref.y)).toBeLessThanOrEqual(1e-4);
      expect(relErr(got.dx!, ref.dx!)).toBeLessThanOrEqual(1e-4);
      expect(relErr(got.dw!, ref.dw!)).toBeLessThanOrEqual(1e-4);
    } finally {
      registerNativeKernels();
    }
  });

  it.each(matmulCases.map((c, i) => [c.name, c, i] as const))('BatchMatMul matches the CPU backend: %s', (_n, c, i) => {
    expect(relErr(matmulOn(c, 900 + 5 * i), mmRef.get(c.name)!)).toBeLessThanOrEqual(1e-4);
  });

  /** `fn` on the CPU backend and on wasm (native kernels): the two outputs as plain arrays, and their dtypes. */
  async function onBoth(fn: () => tf.Tensor): Promise<{ cpu: Float32Array; wasm: Float32Array; dtype: string; shape: number[] }> {
    const read = () => {
      const t = fn();
      const out = { data: Float32Array.from(t.dataSync() as ArrayLike<number>), dtype: t.dtype, shape: t.shape };
      t.dispose();
      return out;
    };
    await tf.setBackend('cpu');
    const c = read();
    await tf.setBackend('wasm');
    const w = read();
    expect(w.dtype).toBe(c.dtype);
    expect(w.shape).toEqual(c.shape);
    return { cpu: c.data, wasm: w.data, dtype: w.dtype, shape: w.shape };
  }

  const binaryOps: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['Add', tf.add], ['Sub', tf.sub], ['Multiply', tf.mul], ['RealDiv', tf.div], ['Maximum', tf.maximum], ['Minimum', tf.minimum],
    ['GreaterEqual', tf.greaterEqual], ['LessEqual', tf.lessEqual], ['Greater', tf.greater], ['Less', tf.less],
  ];
  const broadcasts: [string, number[], number[]][] = [
    ['same shape', [50, 40, 8], [50, 40, 8]],
    ['b scalar', [50, 40, 8], []],
    ['a scalar', [], [50, 40, 8]],
    ['b over the last axis', [50, 40, 8], [8]],
    ['b [1, C]', [2000, 8], [1, 8]],
    ['a over the last two axes', [40, 8], [50, 40, 8]],
    ['fallback: middle-axis broadcast', [50, 40, 8], [50, 1, 8]],
    ['small (WASM kernel)', [10, 8], [10, 8]],
  ];
  it.each(binaryOps.flatMap(([op, f]) => broadcasts.map(([bn, sa, sb], j) => [`${op}, ${bn}`, f, sa, sb, j] as const)))(
    'element-wise %s matches the CPU backend',
    async (_n, f, sa, sb, j) => {
      const r = await onBoth(() => {
        const a = tf.tensor(noise(size(sa), 70 + j), sa);
        const b = tf.tensor(noise(size(sb), 80 + j), sb);
        const y = f(a, b);
        tf.dispose([a, b]);
        return y;
      });
      if (r.dtype === 'bool') expect(r.wasm).toEqual(r.cpu);
      else expect(relErr(r.wasm, r.cpu)).toBeLessThanOrEqual(1e-6);
    },
  );

  const unaryOps: [string, (x: tf.Tensor) => tf.Tensor][] = [
    ['Round (half to even, exact .5 ties)', (x) => tf.round(tf.mul(tf.round(tf.mul(x, 8)), 0.5))],
    ['ClipByValue [-1, 1]', (x) => tf.clipByValue(tf.mul(x, 3), -1, 1)],
    ['ClipByValue with bounds float32 cannot hold (WASM fallback)', (x) => tf.clipByValue(x, -0.1, 0.3)],
    ['Square', tf.square],
    ['Abs', tf.abs],
    ['Neg', tf.neg],
    ['Relu', tf.relu],
  ];
  it.each(unaryOps.map(([n, f]) => [n, f] as const))('unary %s matches the CPU backend', async (_n, f) => {
    for (const shape of [[40, 30, 8], [7, 3]]) {
      const r = await onBoth(() => tf.tidy(() => f(tf.tensor(noise(size(shape), 21), shape))));
      expect(relErr(r.wasm, r.cpu)).toBeLessThanOrEqual(1e-6);
    }
  });

  it('LogicalAnd and Select (the clamp gradient chain) match the CPU backend', async () => {
    for (const shape of [[100, 30, 8], [6, 5]]) {
      const r = await onBoth(() =>
        tf.tidy(() => {
          const x = tf.tensor(noise(size(shape), 5), shape);
          const dy = tf.tensor(noise(size(shape), 6), shape);
          const mask = tf.logicalAnd(tf.greaterEqual(x, -0.5), tf.lessEqual(x, 0.5));
          return tf.add(tf.where(mask, dy, tf.zerosLike(dy)), tf.cast(tf.logicalAnd(mask, tf.greater(dy, 0)), 'float32'));
        }),
      );
      expect(r.wasm).toEqual(r.cpu);
    }
  });

  it.each([
    ['leading axes [0, 1]', [0, 1], false],
    ['leading axis 0, keepDims', [0], true],
    ['trailing axis', [2], false],
    ['trailing axes [1, 2], keepDims', [1, 2], true],
    ['all axes', null, false],
    ['fallback: middle axis', [1], false],
  ] as const)('Sum over %s matches the CPU backend', async (_n, axis, keepDims) => {
    const shape = [30, 20, 16];
    const r = await onBoth(() => {
      const x = tf.tensor(noise(size(shape), 9), shape);
      const y = tf.sum(x, axis === null ? undefined : [...axis], keepDims);
      x.dispose();
      return y;
    });
    expect(relErr(r.wasm, r.cpu)).toBeLessThanOrEqual(1e-5);
  });

  it.each([
    ['2×2 s2 valid (CNV)', [4, 28, 28, 16], 2, 2, 'valid'],
    ['2×2 s2 valid, odd size', [3, 11, 9, 40], 2, 2, 'valid'],
    ['3×3 s2 valid (overlapping)', [2, 15, 13, 64], 3, 2, 'valid'],
    ['3×3 s1 valid', [2, 12, 12, 32], 3, 1, 'valid'],
    ['fallback: 3×3 s2 same (padding)', [2, 15, 13, 64], 3, 2, 'same'],
  ] as const)('AvgPoolGrad %s matches the CPU backend', async (_n, shape, k, st, pad) => {
    const r = await onBoth(() =>
      tf.tidy(() => {
        const x = tf.tensor4d(noise(size(shape), 3), [...shape] as [number, number, number, number]);
        const yShape = tf.avgPool(x, k, st, pad).shape;
        const dy = tf.tensor(noise(size(yShape), 4), yShape);
        return tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(a as tf.Tensor4D, k, st, pad), dy)))(x);
      }),
    );
    expect(relErr(r.wasm, r.cpu)).toBeLessThanOrEqual(1e-5);
  });

  it('Identity shares the buffer and keeps reference counts right', () => {
    const backend = tf.backend() as BackendWasm;
    const ids = backend.numDataIds();
    const x = tf.tensor(noise(5000, 1), [50, 100]);
    const c = tf.clone(x);
    expect(backend.numDataIds()).toBe(ids + 1);
    x.dispose();
    expect(relErr(c.dataSync() as Float32Array, noise(5000, 1))).toBe(0);
    c.dispose();
    expect(backend.numDataIds()).toBe(ids);
  });

  it('a small conv net training step (loss, gradients, SGD update) matches the CPU backend', () => {
    const got = smallNetStep(7);
    expect(Math.abs(got.loss - netRef.loss)).toBeLessThanOrEqual(1e-4 * Math.abs(netRef.loss));
    got.grads.forEach((g, i) => expect(relErr(g, netRef.grads[i]!)).toBeLessThanOrEqual(1e-4));
    got.updated.forEach((u, i) => expect(relErr(u, netRef.updated[i]!)).toBeLessThanOrEqual(1e-4));
  });

  it('leak no tensors or WASM buffers', () => {
    const c = cases.find((k) => k.name.startsWith('explicit padding larger'))!;
    convAll(c, 1);
    const backend = tf.backend() as BackendWasm;
    const tensors = tf.memory().numTensors;
    const ids = backend.numDataIds();
    convAll(c, 2);
    matmulOn(matmulCases[0]!, 3);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(ids);
  });

  it('survive WASM memory growth (heap view taken after allocation)', () => {
    const backend = tf.backend() as BackendWasm;
    const before = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer.byteLength;
    // Hold enough data that the next allocations must grow the heap, then convolve.
    const hold = tf.zeros([Math.ceil(before / 4) + 1_000_000]);
    const c: ConvCase = { name: 'grow', x: [2, 9, 9, 3], k: [3, 3], cout: 4, stride: 1, pad: 'same' };
    const got = convAll(c, 55);
    expect((backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer.byteLength).toBeGreaterThan(before);
    hold.dispose();
    unregisterNativeKernels();
    try {
      const ref = convAll(c, 55);
      expect(relErr(got.y, ref.y)).toBeLessThanOrEqual(1e-4);
      expect(relErr(got.dx!, ref.dx!)).toBeLessThanOrEqual(1e-4);
    } finally {
      registerNativeKernels();
    }
  });

  it('unregistering restores the WASM kernels (tfjs Conv2D, fhenet gradients) and re-registering is idempotent', () => {
    const native = tf.getKernel('Conv2D', 'wasm')!.kernelFunc;
    unregisterNativeKernels();
    expect(tf.getKernel('Conv2D', 'wasm')!.kernelFunc).not.toBe(native);
    expect(nativeStatus().kernels).toEqual([]);
    const c: ConvCase = { name: 'restore', x: [1, 6, 6, 2], k: [3, 3], cout: 3, stride: 1, pad: 'same' };
    expect(convAll(c, 5).y.length).toBe(36 * 3);
    registerNativeKernels();
    registerNativeKernels();
    expect(nativeStatus().kernels.length).toBe(NATIVE_KERNEL_NAMES.length);
  });
});
