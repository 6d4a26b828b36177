/**
 * Optional native accelerator for the tfjs WASM backend: Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput and
 * BatchMatMul as im2col + OpenBLAS `cblas_sgemm` in a small C Node-API addon (native/kernels.c), multi-threaded,
 * working in place on the WASM heap (inputs and outputs stay ordinary WASM-backend tensors). The same addon also
 * runs the memory-bound kernels that dominate a QAT step once convolutions are fast — element-wise arithmetic and
 * comparisons with scalar / last-axis broadcasting, Round / ClipByValue / Square / Abs / Neg / Relu, LogicalAnd, Select,
 * Sum over leading or trailing axes,
 * AvgPoolGrad without padding — on all threads, and Identity shares its input's buffer instead of copying it.
 * Tensors under NATIVE_MIN_ELEMENTS elements stay on the WASM kernels.
 *
 * The addon is compiled at first use with the system C compiler against the Node-API headers and OpenBLAS
 * (Debian: `libopenblas-dev`), and cached (src/util/native-addon.ts). When anything is missing — compiler, headers,
 * OpenBLAS — or `FHENET_NATIVE_KERNELS=0`, nothing is registered and the WASM kernels are used; `nativeStatus()`
 * says why. Threads (process-wide): `FHENET_NATIVE_THREADS`, else `OPENBLAS_NUM_THREADS`, else every core (one in
 * worker threads); `setNativeThreads(n)`. fhenet's C code runs the threads, each calling a single-threaded sgemm
 * (OpenBLAS's own threading is set to 1), so im2col / col2im are parallel too.
 *
 * Unsupported cases (non-float32 data, NCHW, empty tensors, batch shapes that do not broadcast simply) fall back to
 * the kernel that was registered before (tfjs's, or fhenet's WASM convolution-gradient kernels).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { isMainThread } from 'node:worker_threads';
import { envDisabled, findOpenBlas, findSource, loadNativeAddon } from '../../util/native-addon.js';
import { conv2DBackpropFilterWasm } from '../wasm-kernels/conv2d-backprop-filter.js';
import { conv2DBackpropInputWasm } from '../wasm-kernels/conv2d-backprop-input.js';
import type { BackendWasm, TensorInfo } from '../wasm-kernels/util.js';

type Heap = Uint8Array;
/** The addon's interface (offsets are byte offsets into `heap`). */
export interface NativeKernelsAddon {
  conv2d(heap: Heap, xOff: number, wOff: number, yOff: number, ...geom: number[]): void;
  conv2dBackpropFilter(heap: Heap, xOff: number, dyOff: number, dwOff: number, ...geom: number[]): void;
  conv2dBackpropInput(heap: Heap, dyOff: number, wOff: number, dxOff: number, ...geom: number[]): void;
  matmul(heap: Heap, aOff: number, bOff: number, cOff: number, batchA: number, batchB: number, M: number, N: number, K: number, transA: number, transB: number): void;
  binary(heap: Heap, op: number, aOff: number, bOff: number, outOff: number, n: number, mode: number, inner: number): void;
  unary(heap: Heap, op: number, xOff: number, outOff: number, n: number, p0: number, p1: number): void;
  select(heap: Heap, condOff: number, tOff: number, eOff: number, outOff: number, n: number): void;
  sum(heap: Heap, xOff: number, outOff: number, rows: number, cols: number, leading: number): void;
  avgPoolGrad(heap: Heap, dyOff: number, dxOff: number, B: number, H: number, W: number, C: number, OH: number, OW: number, fh: number, fw: number, sh: number, sw: number): void;
  setThreads(n: number): void;
  threads(): number;
  setChunk(floats: number): void;
  info(): string;
}

export interface NativeStatus {
  /** Whether the addon loaded (kernels may still be unregistered). */
  available: boolean;
  /** Kernel names currently registered natively on 'wasm'. */
  kernels: string[];
  /** Threads the kernels use. */
  threads?: number;
  /** BLAS description (OpenBLAS config and core). */
  blas?: string;
  /** Why the addon is unavailable. */
  reason?: string;
}

let addonResult: { addon: NativeKernelsAddon | null; reason?: string } | undefined;

/** The addon (building it on first call), or null with the reason in `nativeStatus()`. */
export function loadNativeKernelsAddon(): NativeKernelsAddon | null {
  if (addonResult) return addonResult.addon;
  const disable = 'FHENET_NATIVE_KERNELS';
  if (envDisabled(process.env[disable])) {
    addonResult = { addon: null, reason: `disabled by ${disable}=${process.env[disable]}` };
    return null;
  }
  try {
    const { include, libs } = findOpenBlas();
    const r = loadNativeAddon<NativeKernelsAddon>({
      name: 'fhenet-native-kernels',
      sources: [findSource(import.meta.url, ['kernels.c', 'native/kernels.c', '../../../src/backend/native/kernels.c'])],
      flags: ['-O3', '-march=native', '-std=gnu11'],
      includeDirs: [include],
      libs: [...libs, '-lpthread', '-lm'],
      disableEnv: disable,
      exports: ['conv2d', 'conv2dBackpropFilter', 'conv2dBackpropInput', 'matmul', 'binary', 'unary', 'select', 'sum', 'avgPoolGrad', 'setThreads', 'threads', 'info'],
    });
    addonResult = { addon: r.addon, reason: r.error };
    if (r.addon) {
      const env = process.env.FHENET_NATIVE_THREADS ?? process.env.OPENBLAS_NUM_THREADS;
      const n = env === undefined ? NaN : Number.parseInt(env, 10);
      if (Number.isInteger(n) && n > 0) r.addon.setThreads(n);
      // Worker threads (parallel sweeps) already use the cores: one thread each unless configured. The setting is
      // process-wide (one addon instance per process).
      else if (!isMainThread) r.addon.setThreads(1);
      const chunk = Number.parseInt(process.env.FHENET_NATIVE_CHUNK ?? '', 10);
      if (Number.isInteger(chunk) && chunk >= 1024) r.addon.setChunk(chunk);
    }
  } catch (e) {
    addonResult = { addon: null, reason: (e as Error).message.split('\n')[0] };
  }
  return addonResult.addon;
}

/** Sets the number of threads the native kernels use (no-op when the addon is unavailable). */
export function setNativeThreads(n: number): void {
  loadNativeKernelsAddon()?.setThreads(Math.max(1, Math.floor(n)));
}

// ─── helpers ──────────────────────────────────────────────────────────────────────────────────────────────────────

interface DataEntry {
  memoryOffset: number;
}

function offsetOf(backend: BackendWasm, t: TensorInfo): number {
  const entry = (backend as unknown as { dataIdMap: { get(id: unknown): DataEntry | undefined } }).dataIdMap.get(t.dataId);
  if (!entry) throw new Error('fhenet native kernels: tensor data not found on the WASM backend');
  return entry.memoryOffset;
}

/** The heap view, taken after the last allocation (memory growth replaces the buffer). */
function heap(backend: BackendWasm): Heap {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
}

const usable = new WeakMap<object, boolean>();
/** Whether the backend's heap is a plain ArrayBuffer (a threaded WASM build's SharedArrayBuffer is left to WASM). */
function heapUsable(backend: BackendWasm): boolean {
  let ok = usable.get(backend);
  if (ok === undefined) {
    const h = (backend.wasm as unknown as { HEAPU8?: Uint8Array } | undefined)?.HEAPU8;
    ok = h !== undefined && h.buffer instanceof ArrayBuffer;
    usable.set(backend, ok);
  }
  return ok;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type Kernel = (args: KernelArgs) => TensorInfo | TensorInfo[];

function geomArgs(info: tf.backend_util.Conv2DInfo): number[] {
  return [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels,
    info.outHeight, info.outWidth, info.outChannels,
    info.filterHeight, info.filterWidth,
    info.strideHeight, info.strideWidth,
    info.padInfo.top, info.padInfo.left,
    info.dilationHeight, info.dilationWidth,
  ];
}

function nhwc(dataFormat: unknown): boolean {
  return dataFormat === undefined || dataFormat === 'NHWC' || dataFormat === 'channelsLast';
}

function geometryOk(info: tf.backend_util.Conv2DInfo): boolean {
  return info.dataFormat === 'channelsLast' && info.padInfo.top >= 0 && info.padInfo.left >= 0 && info.outHeight > 0 && info.outWidth > 0;
}

// ─── kernels ──────────────────────────────────────────────────────────────────────────────────────────────────────

function conv2DNative(addon: NativeKernelsAddon, fallback: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const a = args.attrs as unknown as tf.Conv2DAttrs;
    if (x.dtype !== 'float32' || filter.dtype !== 'float32' || !nhwc(a.dataFormat) || size(x.shape) === 0 || size(filter.shape) === 0) return fallback(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
      a.strides, a.dilations, a.pad, a.dimRoundingMode, false, 'channelsLast',
    );
    if (!geometryOk(info)) return fallback(args);
    const out = backend.makeOutput(info.outShape, 'float32');
    addon.conv2d(heap(backend), offsetOf(backend, x), offsetOf(backend, filter), offsetOf(backend, out), ...geomArgs(info));
    return out;
  };
}

function conv2DBackpropFilterNative(addon: NativeKernelsAddon, fallback: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const a = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (x.dtype !== 'float32' || dy.dtype !== 'float32' || !nhwc(a.dataFormat) || size(x.shape) === 0 || size(dy.shape) === 0) return fallback(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast',
    );
    if (!geometryOk(info) || dy.shape.join() !== info.outShape.join()) return fallback(args);
    const out = backend.makeOutput([...a.filterShape], 'float32');
    addon.conv2dBackpropFilter(heap(backend), offsetOf(backend, x), offsetOf(backend, dy), offsetOf(backend, out), ...geomArgs(info));
    return out;
  };
}

function conv2DBackpropInputNative(addon: NativeKernelsAddon, fallback: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if (dy.dtype !== 'float32' || filter.dtype !== 'float32' || !nhwc(a.dataFormat) || size(a.inputShape) === 0 || size(dy.shape) === 0) return fallback(args);
    const info = tf.backend_util.computeConv2DInfo(
      [...a.inputShape] as [number, number, number, number], filter.shape as [number, number, number, number],
      a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast',
    );
    if (!geometryOk(info) || dy.shape.join() !== info.outShape.join()) return fallback(args);
    const out = backend.makeOutput([...a.inputShape], 'float32');
    addon.conv2dBackpropInput(heap(backend), offsetOf(backend, dy), offsetOf(backend, filter), offsetOf(backend, out), ...geomArgs(info));
    return out;
  };
}

function batchMatMulNative(addon: NativeKernelsAddon, fallback: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || ra < 2 || rb < 2) return fallback(args);
    const K = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
    const kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
    const M = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
    const N = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = size(outerA);
    const batchB = size(outerB);
    // Simple broadcasting only: equal batch shapes, or one side a single matrix.
    let outer: number[];
    if (batchA === 1 && batchB === 1) outer = outerA.length >= outerB.length ? outerA : outerB;
    else if (batchB === 1 && outerB.length <= outerA.length) outer = outerA;
    else if (batchA === 1 && outerA.length <= outerB.length) outer = outerB;
    else if (outerA.join() === outerB.join()) outer = outerA;
    else return fallback(args);
    if (K !== kb || M === 0 || N === 0 || K === 0 || batchA === 0 || batchB === 0) return fallback(args);
    const out = backend.makeOutput([...outer, M, N], 'float32');
    addon.matmul(heap(backend), offsetOf(backend, a), offsetOf(backend, b), offsetOf(backend, out), batchA, batchB, M, N, K, transposeA ? 1 : 0, transposeB ? 1 : 0);
    return out;
  };
}

// ─── element-wise ops, reductions, pooling gradient, identity ─────────────────────────────────────────────────────

/** Below this many elements the WASM kernel is used (a native call costs about as much as a small WASM op). */
export const NATIVE_MIN_ELEMENTS = 4096;

const OP = { add: 0, sub: 1, mul: 2, div: 3, ge: 4, le: 5, gt: 6, lt: 7, and: 8, max: 9, min: 10 } as const;
const BC = { same: 0, bScalar: 1, aScalar: 2, bInner: 3, aInner: 4 } as const;

/** Whether `s` (leading 1s dropped) equals the trailing dimensions of `out`. */
function trailing(s: readonly number[], out: readonly number[]): boolean {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  const t = s.slice(i);
  return t.length <= out.length && t.every((d, j) => d === out[out.length - t.length + j]);
}

function binaryNative(op: number, kind: 'arith' | 'compare' | 'and') {
  return (addon: NativeKernelsAddon, fallback: Kernel): Kernel =>
    (args) => {
      const backend = args.backend as BackendWasm;
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      const want = kind === 'and' ? 'bool' : 'float32';
      if (a.dtype !== want || b.dtype !== want) return fallback(args);
      let outShape: number[];
      try {
        outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      } catch {
        return fallback(args);
      }
      const n = size(outShape);
      const na = size(a.shape);
      const nb = size(b.shape);
      if (n < NATIVE_MIN_ELEMENTS) return fallback(args);
      let mode: number;
      let inner = 1;
      if (na === n && nb === n) mode = BC.same;
      else if (nb === 1 && na === n) mode = BC.bScalar;
      else if (na === 1 && nb === n) mode = BC.aScalar;
      else if (na === n && trailing(b.shape, outShape)) [mode, inner] = [BC.bInner, nb];
      else if (nb === n && trailing(a.shape, outShape)) [mode, inner] = [BC.aInner, na];
      else return fallback(args);
      const out = backend.makeOutput(outShape, kind === 'arith' ? 'float32' : 'bool');
      addon.binary(heap(backend), op, offsetOf(backend, a), offsetOf(backend, b), offsetOf(backend, out), n, mode, inner);
      return out;
    };
}

const UOP = { round: 0, clip: 1, square: 2, abs: 3, neg: 4, relu: 5 } as const;

function unaryNative(op: number) {
  return (addon: NativeKernelsAddon, fallback: Kernel): Kernel =>
    (args) => {
      const backend = args.backend as BackendWasm;
      const { x } = args.inputs as { x: TensorInfo };
      const n = size(x.shape);
      if (x.dtype !== 'float32' || n < NATIVE_MIN_ELEMENTS) return fallback(args);
      let p0 = 0;
      let p1 = 0;
      if (op === UOP.clip) {
        const a = args.attrs as unknown as tf.ClipByValueAttrs;
        [p0, p1] = [a.clipValueMin, a.clipValueMax];
        // Bounds that float32 cannot hold exactly would clip differently from tfjs: leave those to WASM.
        if (Math.fround(p0) !== p0 || Math.fround(p1) !== p1 || !(p0 <= p1)) return fallback(args);
      }
      const out = backend.makeOutput([...x.shape], 'float32');
      addon.unary(heap(backend), op, offsetOf(backend, x), offsetOf(backend, out), n, p0, p1);
      return out;
    };
}

function selectNative(addon: NativeKernelsAddon, fallback: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { condition, t, e } = args.inputs as { condition: TensorInfo; t: TensorInfo; e: TensorInfo };
    const n = size(t.shape);
    if (condition.dtype !== 'bool' || t.dtype !== 'float32' || e.dtype !== 'float32' || n < NATIVE_MIN_ELEMENTS) return fallback(args);
    if (condition.shape.join() !== t.shape.join() || e.shape.join() !== t.shape.join()) return fallback(args);
    const out = backend.makeOutput([...t.shape], 'float32');
    addon.select(heap(backend), offsetOf(backend, condition), offsetOf(backend, t), offsetOf(backend, e), offsetOf(backend, out), n);
    return out;
  };
}

function sumNative(addon: NativeKernelsAddon, fallback: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const n = size(x.shape);
    if (x.dtype !== 'float32' || n < NATIVE_MIN_ELEMENTS) return fallback(args);
    const rank = x.shape.length;
    const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((p, q) => p - q);
    const k = axes.length;
    const isLeading = k > 0 && axes.every((v, i) => v === i);
    const isTrailing = k > 0 && axes.every((v, i) => v === rank - k + i);
    if (!isLeading && !isTrailing) return fallback(args);
    const leading = isLeading && k < rank;
    const kept = x.shape.filter((_, i) => !axes.includes(i));
    const outShape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : kept;
    const rows = leading ? size(x.shape.slice(0, k)) : size(x.shape.slice(0, rank - k));
    const cols = n / rows;
    const out = backend.makeOutput(outShape, 'float32');
    addon.sum(heap(backend), offsetOf(backend, x), offsetOf(backend, out), rows, cols, leading ? 1 : 0);
    return out;
  };
}

function avgPoolGradNative(addon: NativeKernelsAddon, fallback: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const a = args.attrs as unknown as tf.AvgPoolGradAttrs;
    if (dy.dtype !== 'float32' || input.shape.length !== 4 || size(input.shape) < NATIVE_MIN_ELEMENTS) return fallback(args);
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad,
    );
    const p = info.padInfo;
    if (p.top !== 0 || p.left !== 0 || p.bottom !== 0 || p.right !== 0 || info.dilationHeight !== 1 || info.dilationWidth !== 1) return fallback(args);
    if (dy.shape.join() !== info.outShape.join()) return fallback(args);
    const out = backend.makeOutput([...input.shape], 'float32');
    addon.avgPoolGrad(
      heap(backend), offsetOf(backend, dy), offsetOf(backend, out),
      info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
      info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth,
    );
    return out;
  };
}

/** Identity without a copy: the output shares the input's buffer (as tfjs's CPU backend and WASM Reshape do). */
function identityShared(_addon: NativeKernelsAddon, fallback: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return fallback(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

// ─── registration ─────────────────────────────────────────────────────────────────────────────────────────────────

interface NativeKernelDef {
  name: string;
  make(addon: NativeKernelsAddon, fallback: Kernel): Kernel;
  /** fhenet's own WASM version, the fallback in preference to whatever was registered. */
  wasm?: Kernel;
}

const DEFS: readonly NativeKernelDef[] = [
  { name: tf.Conv2D, make: conv2DNative },
  { name: tf.Conv2DBackpropFilter, make: conv2DBackpropFilterNative, wasm: conv2DBackpropFilterWasm as unknown as Kernel },
  { name: tf.Conv2DBackpropInput, make: conv2DBackpropInputNative, wasm: conv2DBackpropInputWasm as unknown as Kernel },
  { name: tf.BatchMatMul, make: batchMatMulNative },
  { name: tf.Add, make: binaryNative(OP.add, 'arith') },
  { name: tf.Sub, make: binaryNative(OP.sub, 'arith') },
  { name: tf.Multiply, make: binaryNative(OP.mul, 'arith') },
  { name: tf.RealDiv, make: binaryNative(OP.div, 'arith') },
  { name: tf.Maximum, make: binaryNative(OP.max, 'arith') },
  { name: tf.Minimum, make: binaryNative(OP.min, 'arith') },
  { name: tf.GreaterEqual, make: binaryNative(OP.ge, 'compare') },
  { name: tf.LessEqual, make: binaryNative(OP.le, 'compare') },
  { name: tf.Greater, make: binaryNative(OP.gt, 'compare') },
  { name: tf.Less, make: binaryNative(OP.lt, 'compare') },
  { name: tf.LogicalAnd, make: binaryNative(OP.and, 'and') },
  { name: tf.Select, make: selectNative },
  { name: tf.Round, make: unaryNative(UOP.round) },
  { name: tf.ClipByValue, make: unaryNative(UOP.clip) },
  { name: tf.Square, make: unaryNative(UOP.square) },
  { name: tf.Abs, make: unaryNative(UOP.abs) },
  { name: tf.Neg, make: unaryNative(UOP.neg) },
  { name: tf.Relu, make: unaryNative(UOP.relu) },
  { name: tf.Sum, make: sumNative },
  { name: tf.AvgPoolGrad, make: avgPoolGradNative },
  { name: tf.Identity, make: identityShared },
];

/** Names of the kernels this module can register. */
export const NATIVE_KERNEL_NAMES: readonly string[] = DEFS.map((d) => d.name);

/** For each kernel registered here: the config it replaced. */
const replaced = new Map<string, tf.KernelConfig | undefined>();

/** Runs a replaced kernel, calling its setup function first (tfjs's WASM kernels bind their C entry point there). */
function fallbackFor(def: NativeKernelDef, original: tf.KernelConfig | undefined): Kernel {
  if (def.wasm) return def.wasm;
  if (!original) return () => { throw new Error(`fhenet native kernels: no fallback for ${def.name}`); };
  const ready = new WeakSet<object>();
  return (args) => {
    const backend = args.backend as object;
    if (!ready.has(backend)) {
      original.setupFunc?.(backend as tf.KernelBackend);
      ready.add(backend);
    }
    return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
  };
}

/**
 * Registers the native kernels on 'wasm' (all, or those named in `only`) when the addon loads; returns the status.
 * Register after fhenet's WASM kernels (registerWasmKernels) and unregister before them.
 */
export function registerNativeKernels(only?: readonly string[]): NativeStatus {
  const addon = loadNativeKernelsAddon();
  if (!addon) return nativeStatus();
  for (const def of DEFS) {
    if (only && !only.includes(def.name)) continue;
    if (replaced.has(def.name)) continue;
    const existing = tf.getKernel(def.name, 'wasm');
    if (existing) tf.unregisterKernel(def.name, 'wasm');
    const fallback = fallbackFor(def, existing);
    const native = def.make(addon, fallback);
    const kernelFunc: Kernel = (args) => (heapUsable(args.backend as BackendWasm) ? native(args) : fallback(args));
    tf.registerKernel({ kernelName: def.name, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
    replaced.set(def.name, existing);
  }
  return nativeStatus();
}

/** Removes the native kernels and restores what they replaced. */
export function unregisterNativeKernels(): void {
  const wasm = tf.findBackend('wasm');
  for (const [name, original] of replaced) {
    tf.unregisterKernel(name, 'wasm');
    if (original) {
      tf.registerKernel(original);
      // An already-initialised backend does not run setup functions of kernels registered later.
      if (wasm) original.setupFunc?.(wasm);
    }
  }
  replaced.clear();
}

/** Whether the addon is available, which kernels are registered, threads, BLAS, or why it is unavailable. */
export function nativeStatus(): NativeStatus {
  const addon = loadNativeKernelsAddon();
  if (!addon) return { available: false, kernels: [], reason: addonResult?.reason ?? 'unknown' };
  return { available: true, kernels: [...replaced.keys()], threads: addon.threads(), blas: addon.info() };
}

/** One line for logs: which kernels are native, or why none are. */
export function describeNative(s: NativeStatus = nativeStatus()): string {
  if (!s.available) return `native kernels unavailable (${s.reason})`;
  if (s.kernels.length === 0) return 'native kernels available but not registered';
  const blas = s.blas?.split(' ').slice(0, 2).join(' ') ?? 'BLAS';
  return `native kernels (${blas}, ${s.threads} threads): ${s.kernels.join(', ')}`;
}
