/**
 * A clear (unencrypted) reference interpreter for fhenet graphs.
 *
 * - Tensors are {@link TensorData} (row-major typed arrays). Float work is float32 like PyTorch/Brevitas: every
 *   stored value is rounded to float32, dot products are accumulated in float64 and rounded once.
 * - Batched: the leading dimension of a graph input may differ from the one written in the file.
 * - QONNX `Quant` / `BipolarQuant` follow Brevitas exactly (round half to even, integer clamp bounds from
 *   signed/narrow/bit width); `QuantizeLinear` / `DequantizeLinear` follow ONNX (saturation, per-axis).
 * - Every intermediate value can be kept (`keep`) or observed (`onValue`), e.g. for calibration ranges.
 *
 * Errors: an {@link OnnxRuntimeError} naming the node for shape mismatches and size limits.
 */
import {
  allocate,
  elementCount,
  type Graph,
  type Node,
  type TensorData,
  type TypedArray,
  type DType,
  INT_RANGE,
  getAttrFloat,
  getAttrInt,
  getAttrInts,
  getAttrString,
  getAttrTensor,
  getAttrFloats,
  topologicalOrder,
  QUANT_DOMAINS,
  opsetVersion,
  isFloatDType,
} from './graph.js';
import { OnnxError, OnnxInternalError, OnnxRuntimeError } from './errors.js';
import { quantBounds, roundHalfEven } from '../util/int-quant.js';

export interface InterpreterOptions {
  /** Largest element count of any tensor the interpreter will allocate (default 2^27). */
  maxElements?: number;
}

export interface RunOptions {
  /** Keep intermediate values in the result: true for all, or a list of names. Default: outputs only. */
  keep?: boolean | readonly string[];
  /** Called for every value computed (and for the feeds), in evaluation order. */
  onValue?: (name: string, value: TensorData, producer: Node | undefined) => void;
}

export interface RunResult {
  /** Graph outputs by name. */
  outputs: Map<string, TensorData>;
  /** Kept values by name (graph inputs and node outputs; see RunOptions.keep). */
  values: Map<string, TensorData>;
}

/** A feed: a full TensorData, or just dims and float32 data. */
export type Feed = TensorData | { dims: number[]; data: Float32Array | number[] };

// ---------------------------------------------------------------------------------------------------------------
// Numeric helpers
// ---------------------------------------------------------------------------------------------------------------

const f32 = Math.fround;

export { roundHalfEven, quantBounds };

function fail(node: Node, message: string, kind: 'shape' | 'size' | 'unsupported' | 'attribute' | 'quant' = 'shape'): never {
  throw new OnnxRuntimeError(kind, message, { node: node.name });
}

function asFloat32(t: TensorData): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]!);
  return out;
}

function numbersOf(t: TensorData): number[] {
  const out = new Array<number>(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]!);
  return out;
}

/** Row-major strides of a shape. */
export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i]!;
  }
  return s;
}

/** Multidirectional (numpy) broadcast of shapes. */
function broadcastShapes(node: Node, shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) {
        fail(node, `cannot broadcast shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(' and ')}`);
      }
    }
  }
  return out;
}

/** For each flat output index, the flat index into a tensor of `inDims` broadcast to `outDims` (null: same shape). */
function broadcastIndex(outDims: readonly number[], inDims: readonly number[]): Int32Array | null {
  if (outDims.length === inDims.length && outDims.every((d, i) => d === inDims[i])) return null;
  const n = elementCount(outDims);
  const rank = outDims.length;
  const inStr = stridesOf(inDims);
  const eff = new Array<number>(rank).fill(0); // stride per output axis (0 where broadcast)
  for (let i = 0; i < inDims.length; i++) {
    const o = rank - inDims.length + i;
    eff[o] = inDims[i] === 1 ? 0 : inStr[i]!;
  }
  const idx = new Int32Array(n);
  const counter = new Array<number>(rank).fill(0);
  let off = 0;
  for (let k = 0; k < n; k++) {
    idx[k] = off;
    for (let a = rank - 1; a >= 0; a--) {
      counter[a]!++;
      off += eff[a]!;
      if (counter[a]! < outDims[a]!) break;
      off -= eff[a]! * outDims[a]!;
      counter[a] = 0;
    }
  }
  return idx;
}

// ---------------------------------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------------------------------

interface Ctx {
  graph: Graph;
  maxElements: number;
  defaultOpset: number;
}

type Kernel = (node: Node, inputs: (TensorData | undefined)[], ctx: Ctx) => TensorData[];

function need(node: Node, inputs: (TensorData | undefined)[], i: number): TensorData {
  const t = inputs[i];
  if (!t) fail(node, `${node.opType} needs input #${i}`, 'attribute');
  return t;
}

function checkSize(node: Node, dims: readonly number[], ctx: Ctx): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) fail(node, `invalid output dimension ${d} in [${dims.join(', ')}]`);
    n *= d;
  }
  if (n > ctx.maxElements) fail(node, `output [${dims.join(', ')}] has ${n} elements, more than the limit ${ctx.maxElements}`, 'size');
  return n;
}

function floatOut(dims: number[], data: Float32Array): TensorData {
  return { dtype: 'float32', dims, data };
}

function elementwiseFloat(node: Node, inputs: TensorData[], ctx: Ctx, fn: (args: number[]) => number): TensorData {
  const outDims = broadcastShapes(node, inputs.map((t) => t.dims));
  const n = checkSize(node, outDims, ctx);
  const datas = inputs.map(asFloat32);
  const idxs = inputs.map((t) => broadcastIndex(outDims, t.dims));
  const out = new Float32Array(n);
  const args = new Array<number>(inputs.length);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < inputs.length; j++) {
      const ix = idxs[j];
      args[j] = datas[j]![ix ? ix[k]! : k]!;
    }
    out[k] = fn(args);
  }
  return floatOut(outDims, out);
}

const binary = (fn: (a: number, b: number) => number): Kernel => (node, inputs, ctx) => [
  elementwiseFloat(node, [need(node, inputs, 0), need(node, inputs, 1)], ctx, (v) => fn(v[0]!, v[1]!)),
];

function gemm(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const A = need(node, inputs, 0);
  const B = need(node, inputs, 1);
  const C = inputs[2];
  if (A.dims.length !== 2 || B.dims.length !== 2) fail(node, `Gemm needs 2-D inputs, got [${A.dims}] and [${B.dims}]`);
  const transA = getAttrInt(node, 'transA', 0) !== 0;
  const transB = getAttrInt(node, 'transB', 0) !== 0;
  const alpha = getAttrFloat(node, 'alpha', 1);
  const beta = getAttrFloat(node, 'beta', 1);
  const [M, K] = transA ? [A.dims[1]!, A.dims[0]!] : [A.dims[0]!, A.dims[1]!];
  const [K2, N] = transB ? [B.dims[1]!, B.dims[0]!] : [B.dims[0]!, B.dims[1]!];
  if (K !== K2) fail(node, `Gemm inner dimensions differ: A is [${A.dims}]${transA ? 'ᵀ' : ''}, B is [${B.dims}]${transB ? 'ᵀ' : ''}`);
  const n = checkSize(node, [M, N], ctx);
  const a = asFloat32(A);
  const b = asFloat32(B);
  const out = new Float32Array(n);
  let cData: Float32Array | undefined;
  let cIdx: Int32Array | null = null;
  if (C) {
    broadcastShapes(node, [[M, N], C.dims]);
    if (C.dims.length > 2 || elementCount(C.dims) > n) fail(node, `Gemm bias [${C.dims}] does not broadcast to [${M}, ${N}]`);
    cData = asFloat32(C);
    cIdx = broadcastIndex([M, N], C.dims);
  }
  const aRow = transA ? 1 : K; // stride between rows of op(A)
  const aCol = transA ? M : 1;
  const bRow = transB ? 1 : N; // stride between k of op(B)
  const bCol = transB ? K : 1;
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[m * aRow + k * aCol]! * b[k * bRow + j * bCol]!;
      let v = f32(s);
      if (alpha !== 1) v = f32(alpha * v);
      if (cData) {
        const c = cData[cIdx ? cIdx[m * N + j]! : m * N + j]!;
        v = f32(v + (beta === 1 ? c : f32(beta * c)));
      }
      out[m * N + j] = v;
    }
  }
  return [floatOut([M, N], out)];
}

function matmul(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const A = need(node, inputs, 0);
  const B = need(node, inputs, 1);
  if (A.dims.length === 0 || B.dims.length === 0) fail(node, 'MatMul inputs must have rank ≥ 1');
  const aDims = A.dims.length === 1 ? [1, A.dims[0]!] : A.dims;
  const bDims = B.dims.length === 1 ? [B.dims[0]!, 1] : B.dims;
  const M = aDims[aDims.length - 2]!;
  const K = aDims[aDims.length - 1]!;
  const K2 = bDims[bDims.length - 2]!;
  const N = bDims[bDims.length - 1]!;
  if (K !== K2) fail(node, `MatMul inner dimensions differ: [${A.dims}] × [${B.dims}]`);
  const batch = broadcastShapes(node, [aDims.slice(0, -2), bDims.slice(0, -2)]);
  const nb = elementCount(batch);
  const full = [...batch, M, N];
  checkSize(node, full, ctx);
  const aIdx = broadcastIndex(batch, aDims.slice(0, -2));
  const bIdx = broadcastIndex(batch, bDims.slice(0, -2));
  const a = asFloat32(A);
  const b = asFloat32(B);
  const out = new Float32Array(nb * M * N);
  for (let p = 0; p < nb; p++) {
    const ao = (aIdx ? aIdx[p]! : p) * M * K;
    const bo = (bIdx ? bIdx[p]! : p) * K * N;
    const oo = p * M * N;
    for (let m = 0; m < M; m++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ao + m * K + k]! * b[bo + k * N + j]!;
        out[oo + m * N + j] = f32(s);
      }
    }
  }
  let outDims = full;
  if (A.dims.length === 1) outDims = [...batch, N];
  if (B.dims.length === 1) outDims = A.dims.length === 1 ? [...batch] : [...batch, M];
  return [floatOut(outDims, out)];
}

/** Spatial geometry of Conv / pooling along one axis. */
interface Axis {
  inSize: number;
  k: number;
  stride: number;
  dil: number;
  padBegin: number;
  padEnd: number;
  outSize: number;
}

function spatialAxes(
  node: Node,
  inSpatial: number[],
  kernel: number[],
  ceil: boolean,
): Axis[] {
  const r = inSpatial.length;
  const strides = getAttrInts(node, 'strides', new Array(r).fill(1));
  const dil = getAttrInts(node, 'dilations', new Array(r).fill(1));
  let pads = getAttrInts(node, 'pads', new Array(2 * r).fill(0));
  const autoPad = getAttrString(node, 'auto_pad', 'NOTSET');
  if (strides.length !== r || dil.length !== r || pads.length !== 2 * r || kernel.length !== r) {
    fail(node, `strides/dilations/pads/kernel_shape do not match ${r} spatial dimension(s)`, 'attribute');
  }
  if ([...strides, ...dil].some((v) => !Number.isInteger(v) || v < 1) || [...kernel].some((v) => !Number.isInteger(v) || v < 1)) {
    fail(node, 'strides, dilations and kernel sizes must be positive integers', 'attribute');
  }
  if (pads.some((p) => !Number.isInteger(p) || p < 0)) fail(node, `pads must be non-negative integers, got [${pads}]`, 'attribute');
  if (autoPad === 'VALID') pads = new Array(2 * r).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const out = Math.ceil(inSpatial[i]! / strides[i]!);
      const total = Math.max(0, (out - 1) * strides[i]! + (kernel[i]! - 1) * dil[i]! + 1 - inSpatial[i]!);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + r] = total - pads[i]!;
    }
  } else if (autoPad !== 'NOTSET') fail(node, `auto_pad '${autoPad}' is not supported`, 'attribute');
  return inSpatial.map((inSize, i) => {
    const padBegin = pads[i]!;
    const padEnd = pads[i + r]!;
    const span = (kernel[i]! - 1) * dil[i]! + 1;
    const avail = inSize + padBegin + padEnd - span;
    if (avail < 0) fail(node, `kernel ${kernel[i]} (dilation ${dil[i]}) is larger than the padded input ${inSize + padBegin + padEnd}`);
    let outSize = (ceil ? Math.ceil(avail / strides[i]!) : Math.floor(avail / strides[i]!)) + 1;
    // With ceil_mode, a last window that would start in the end padding is dropped (ONNX / PyTorch rule).
    if (ceil && (outSize - 1) * strides[i]! >= inSize + padBegin) outSize--;
    return { inSize, k: kernel[i]!, stride: strides[i]!, dil: dil[i]!, padBegin, padEnd, outSize };
  });
}

/** Views a 1-D spatial op as 2-D (H = 1) so that one loop handles both. */
function as2d(node: Node, dims: readonly number[]): { N: number; C: number; H: number; W: number; oneD: boolean } {
  if (dims.length === 4) return { N: dims[0]!, C: dims[1]!, H: dims[2]!, W: dims[3]!, oneD: false };
  if (dims.length === 3) return { N: dims[0]!, C: dims[1]!, H: 1, W: dims[2]!, oneD: true };
  return fail(node, `${node.opType} supports 1-D and 2-D inputs (rank 3 or 4), got rank ${dims.length}`, 'unsupported');
}

function axes2d(ax: Axis[], oneD: boolean): [Axis, Axis] {
  if (!oneD) return [ax[0]!, ax[1]!];
  return [{ inSize: 1, k: 1, stride: 1, dil: 1, padBegin: 0, padEnd: 0, outSize: 1 }, ax[0]!];
}

function conv(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const X = need(node, inputs, 0);
  const Wt = need(node, inputs, 1);
  const B = inputs[2];
  const { N, C, H, W, oneD } = as2d(node, X.dims);
  if (Wt.dims.length !== X.dims.length) fail(node, `weight rank ${Wt.dims.length} differs from input rank ${X.dims.length}`);
  const group = getAttrInt(node, 'group', 1);
  const M = Wt.dims[0]!;
  const Cg = Wt.dims[1]!;
  if (group < 1 || C % group !== 0 || M % group !== 0 || Cg !== C / group) {
    fail(node, `weight [${Wt.dims}] does not fit input channels ${C} with group ${group}`);
  }
  const kernel = getAttrInts(node, 'kernel_shape', Wt.dims.slice(2));
  if (kernel.some((k, i) => k !== Wt.dims[2 + i])) fail(node, `kernel_shape [${kernel}] differs from weight [${Wt.dims}]`, 'attribute');
  const [ah, aw] = axes2d(spatialAxes(node, oneD ? [W] : [H, W], kernel, false), oneD);
  const outDims = oneD ? [N, M, aw.outSize] : [N, M, ah.outSize, aw.outSize];
  const n = checkSize(node, outDims, ctx);
  if (B && (B.dims.length !== 1 || B.dims[0] !== M)) fail(node, `bias [${B.dims}] should be [${M}]`);
  const x = asFloat32(X);
  const w = asFloat32(Wt);
  const b = B ? asFloat32(B) : undefined;
  const out = new Float32Array(n);
  const kh = ah.k;
  const kw = aw.k;
  const Mg = M / group;
  let o = 0;
  for (let nn = 0; nn < N; nn++) {
    for (let m = 0; m < M; m++) {
      const g = Math.floor(m / Mg);
      for (let oh = 0; oh < ah.outSize; oh++) {
        for (let ow = 0; ow < aw.outSize; ow++) {
          let s = 0;
          for (let c = 0; c < Cg; c++) {
            const xc = ((nn * C + g * Cg + c) * H) * W;
            const wc = ((m * Cg + c) * kh) * kw;
            for (let i = 0; i < kh; i++) {
              const ih = oh * ah.stride - ah.padBegin + i * ah.dil;
              if (ih < 0 || ih >= H) continue;
              for (let j = 0; j < kw; j++) {
                const iw = ow * aw.stride - aw.padBegin + j * aw.dil;
                if (iw < 0 || iw >= W) continue;
                s += x[xc + ih * W + iw]! * w[wc + i * kw + j]!;
              }
            }
          }
          out[o++] = b ? f32(f32(s) + b[m]!) : f32(s);
        }
      }
    }
  }
  return [floatOut(outDims, out)];
}

function pool(kind: 'avg' | 'max'): Kernel {
  return (node, inputs, ctx) => {
    const X = need(node, inputs, 0);
    const { N, C, H, W, oneD } = as2d(node, X.dims);
    const kernel = getAttrInts(node, 'kernel_shape');
    if (!kernel) fail(node, `${node.opType} needs kernel_shape`, 'attribute');
    const ceil = getAttrInt(node, 'ceil_mode', 0) !== 0;
    const includePad = getAttrInt(node, 'count_include_pad', 0) !== 0;
    const [ah, aw] = axes2d(spatialAxes(node, oneD ? [W] : [H, W], kernel, ceil), oneD);
    const outDims = oneD ? [N, C, aw.outSize] : [N, C, ah.outSize, aw.outSize];
    const n = checkSize(node, outDims, ctx);
    const x = asFloat32(X);
    const out = new Float32Array(n);
    let o = 0;
    for (let p = 0; p < N * C; p++) {
      const base = p * H * W;
      for (let oh = 0; oh < ah.outSize; oh++) {
        for (let ow = 0; ow < aw.outSize; ow++) {
          let s = kind === 'max' ? -Infinity : 0;
          let count = 0;
          let padCount = 0;
          for (let i = 0; i < ah.k; i++) {
            const ih = oh * ah.stride - ah.padBegin + i * ah.dil;
            const inPadH = ih >= -ah.padBegin && ih < H + ah.padEnd;
            for (let j = 0; j < aw.k; j++) {
              const iw = ow * aw.stride - aw.padBegin + j * aw.dil;
              if (inPadH && iw >= -aw.padBegin && iw < W + aw.padEnd) padCount++;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const v = x[base + ih * W + iw]!;
              if (kind === 'max') {
                if (v > s) s = v;
              } else s += v;
              count++;
            }
          }
          if (kind === 'max') out[o++] = count > 0 ? s : 0;
          else {
            const d = includePad ? padCount : count;
            out[o++] = d > 0 ? f32(f32(s) / d) : 0;
          }
        }
      }
    }
    return [floatOut(outDims, out)];
  };
}

function globalPool(kind: 'avg' | 'max'): Kernel {
  return (node, inputs, ctx) => {
    const X = need(node, inputs, 0);
    if (X.dims.length < 3) fail(node, `${node.opType} needs rank ≥ 3, got [${X.dims}]`);
    const [N, C] = [X.dims[0]!, X.dims[1]!];
    const S = elementCount(X.dims.slice(2));
    const outDims = [N, C, ...X.dims.slice(2).map(() => 1)];
    checkSize(node, outDims, ctx);
    const x = asFloat32(X);
    const out = new Float32Array(N * C);
    for (let p = 0; p < N * C; p++) {
      let s = kind === 'max' ? -Infinity : 0;
      for (let i = 0; i < S; i++) {
        const v = x[p * S + i]!;
        if (kind === 'max') s = v > s ? v : s;
        else s += v;
      }
      out[p] = kind === 'max' ? s : f32(f32(s) / S);
    }
    return [floatOut(outDims, out)];
  };
}

function batchNorm(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const X = need(node, inputs, 0);
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => asFloat32(need(node, inputs, i)));
  if (getAttrInt(node, 'training_mode', 0) !== 0) fail(node, 'BatchNormalization with training_mode=1 is not supported', 'unsupported');
  const eps = getAttrFloat(node, 'epsilon', 1e-5);
  if (X.dims.length < 2) fail(node, `BatchNormalization input must have rank ≥ 2, got [${X.dims}]`);
  const C = X.dims[1]!;
  for (const [name, t] of [['scale', scale], ['B', bias], ['mean', mean], ['var', variance]] as const) {
    if (t!.length !== C) fail(node, `${name} has ${t!.length} values for ${C} channels`);
  }
  const n = checkSize(node, X.dims, ctx);
  const S = elementCount(X.dims.slice(2));
  const x = asFloat32(X);
  const out = new Float32Array(n);
  // PyTorch's inference form: alpha = gamma / sqrt(var + eps), beta' = beta - mean * alpha, y = x * alpha + beta'.
  for (let c = 0; c < C; c++) {
    const invStd = f32(1 / f32(Math.sqrt(f32(variance[c]! + f32(eps)))));
    const alpha = f32(invStd * scale[c]!);
    const beta = f32(bias[c]! - f32(mean[c]! * alpha));
    for (let nn = 0; nn < X.dims[0]!; nn++) {
      const base = (nn * C + c) * S;
      for (let i = 0; i < S; i++) out[base + i] = f32(f32(x[base + i]! * alpha) + beta);
    }
  }
  return [floatOut([...X.dims], out)];
}

function copyTensor(t: TensorData, dims: number[]): TensorData {
  return { dtype: t.dtype, dims, data: t.data };
}

function flatten(node: Node, inputs: (TensorData | undefined)[]): TensorData[] {
  const X = need(node, inputs, 0);
  const r = X.dims.length;
  let axis = getAttrInt(node, 'axis', 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis > r) fail(node, `Flatten axis ${getAttrInt(node, 'axis', 1)} is out of range for rank ${r}`, 'attribute');
  return [copyTensor(X, [elementCount(X.dims.slice(0, axis)), elementCount(X.dims.slice(axis))])];
}

function reshape(node: Node, inputs: (TensorData | undefined)[]): TensorData[] {
  const X = need(node, inputs, 0);
  const shapeT = need(node, inputs, 1);
  if (shapeT.dims.length !== 1) fail(node, 'Reshape shape must be 1-D');
  const allowZero = getAttrInt(node, 'allowzero', 0) !== 0;
  const shape = numbersOf(shapeT);
  const total = elementCount(X.dims);
  let infer = -1;
  const out = shape.map((d, i) => {
    if (d === 0 && !allowZero) {
      if (i >= X.dims.length) fail(node, `Reshape dimension ${i} is 0 (copy) but the input has rank ${X.dims.length}`);
      return X.dims[i]!;
    }
    if (d === -1) {
      if (infer >= 0) fail(node, 'Reshape shape has more than one -1');
      infer = i;
      return 1;
    }
    if (!Number.isInteger(d) || d < 0) fail(node, `invalid Reshape dimension ${d}`);
    return d;
  });
  const known = elementCount(out);
  if (infer >= 0) {
    if (known === 0 || total % known !== 0) fail(node, `cannot reshape [${X.dims}] to [${shape}]`);
    out[infer] = total / known;
  }
  if (elementCount(out) !== total) fail(node, `cannot reshape [${X.dims}] (${total} elements) to [${out}]`);
  return [copyTensor(X, out)];
}

function transpose(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const X = need(node, inputs, 0);
  const r = X.dims.length;
  const perm = getAttrInts(node, 'perm', [...Array(r).keys()].reverse());
  if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    fail(node, `perm [${perm}] is not a permutation of ${r} axes`, 'attribute');
  }
  const outDims = perm.map((p) => X.dims[p]!);
  const n = checkSize(node, outDims, ctx);
  const inStr = stridesOf(X.dims);
  const permStr = perm.map((p) => inStr[p]!);
  const out = allocate(X.dtype, n);
  const counter = new Array<number>(r).fill(0);
  let off = 0;
  for (let k = 0; k < n; k++) {
    (out as unknown as unknown[])[k] = X.data[off];
    for (let a = r - 1; a >= 0; a--) {
      counter[a]!++;
      off += permStr[a]!;
      if (counter[a]! < outDims[a]!) break;
      off -= permStr[a]! * outDims[a]!;
      counter[a] = 0;
    }
  }
  return [{ dtype: X.dtype, dims: outDims, data: out }];
}

function pad(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const X = need(node, inputs, 0);
  const r = X.dims.length;
  const mode = getAttrString(node, 'mode', 'constant');
  let pads: number[];
  let value = 0;
  if (ctx.defaultOpset < 11 || inputs[1] === undefined) {
    pads = getAttrInts(node, 'pads', new Array(2 * r).fill(0));
    value = getAttrFloat(node, 'value', 0);
  } else {
    pads = numbersOf(inputs[1]);
    if (inputs[2]) {
      if (inputs[2].data.length !== 1) fail(node, 'Pad constant_value must be a scalar');
      value = Number(inputs[2].data[0]!);
    }
  }
  let axes = [...Array(r).keys()];
  if (inputs[3]) {
    axes = numbersOf(inputs[3]).map((a) => (a < 0 ? a + r : a));
    if (axes.some((a) => a < 0 || a >= r)) fail(node, `Pad axes out of range for rank ${r}`);
  }
  if (pads.length !== 2 * axes.length) fail(node, `Pad has ${pads.length} pads for ${axes.length} axes`);
  const begin = new Array<number>(r).fill(0);
  const end = new Array<number>(r).fill(0);
  axes.forEach((a, i) => {
    begin[a] = pads[i]!;
    end[a] = pads[i + axes.length]!;
  });
  if (![...begin, ...end].every(Number.isInteger)) fail(node, 'Pad amounts must be integers');
  if (!['constant', 'edge', 'reflect'].includes(mode)) fail(node, `Pad mode '${mode}' is not supported`, 'unsupported');
  const outDims = X.dims.map((d, i) => d + begin[i]! + end[i]!);
  const n = checkSize(node, outDims, ctx);
  // Per-axis source index (-1 = padding value).
  const maps = outDims.map((od, a) => {
    const m = new Int32Array(od);
    const d = X.dims[a]!;
    for (let o = 0; o < od; o++) {
      let i = o - begin[a]!;
      if (i < 0 || i >= d) {
        if (mode === 'constant' || d === 0) i = -1;
        else if (mode === 'edge') i = i < 0 ? 0 : d - 1;
        else {
          if (d === 1) i = 0;
          else {
            const period = 2 * (d - 1);
            i = ((i % period) + period) % period;
            if (i >= d) i = period - i;
          }
        }
      }
      m[o] = i;
    }
    return m;
  });
  const out = allocate(X.dtype, n);
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  const fill = big ? BigInt(Math.trunc(value)) : value;
  const inStr = stridesOf(X.dims);
  const counter = new Array<number>(r).fill(0);
  for (let k = 0; k < n; k++) {
    let off = 0;
    let isPad = false;
    for (let a = 0; a < r; a++) {
      const s = maps[a]![counter[a]!]!;
      if (s < 0) {
        isPad = true;
        break;
      }
      off += s * inStr[a]!;
    }
    (out as unknown as unknown[])[k] = isPad ? fill : X.data[off];
    for (let a = r - 1; a >= 0; a--) {
      if (++counter[a]! < outDims[a]!) break;
      counter[a] = 0;
    }
  }
  return [{ dtype: X.dtype, dims: outDims, data: out }];
}

function concat(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const xs = inputs.filter((t): t is TensorData => t !== undefined);
  if (xs.length === 0) fail(node, 'Concat needs at least one input');
  const r = xs[0]!.dims.length;
  let axis = getAttrInt(node, 'axis', 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) fail(node, `Concat axis out of range for rank ${r}`, 'attribute');
  for (const t of xs) {
    if (t.dtype !== xs[0]!.dtype) fail(node, 'Concat inputs have different types');
    if (t.dims.length !== r || t.dims.some((d, i) => i !== axis && d !== xs[0]!.dims[i])) {
      fail(node, `Concat inputs [${xs[0]!.dims}] and [${t.dims}] differ outside axis ${axis}`);
    }
  }
  const outDims = [...xs[0]!.dims];
  outDims[axis] = xs.reduce((s, t) => s + t.dims[axis]!, 0);
  const n = checkSize(node, outDims, ctx);
  const outer = elementCount(outDims.slice(0, axis));
  const inner = elementCount(outDims.slice(axis + 1));
  const out = allocate(xs[0]!.dtype, n);
  let o = 0;
  for (let p = 0; p < outer; p++) {
    for (const t of xs) {
      const chunk = t.dims[axis]! * inner;
      (out as Int32Array).set((t.data as Int32Array).subarray(p * chunk, (p + 1) * chunk), o);
      o += chunk;
    }
  }
  return [{ dtype: xs[0]!.dtype, dims: outDims, data: out }];
}

function clip(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const X = need(node, inputs, 0);
  let lo = -Infinity;
  let hi = Infinity;
  if (ctx.defaultOpset < 11) {
    lo = getAttrFloat(node, 'min', -Infinity);
    hi = getAttrFloat(node, 'max', Infinity);
  } else {
    for (const [i, which] of [[1, 'min'], [2, 'max']] as const) {
      const t = inputs[i];
      if (!t) continue;
      if (t.data.length !== 1) fail(node, `Clip ${which} must be a scalar`);
      const v = Number(t.data[0]!);
      if (which === 'min') lo = v;
      else hi = v;
    }
  }
  const n = X.data.length;
  const out = allocate(X.dtype, n);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) {
      const v = Number(X.data[i]!);
      out[i] = BigInt(Math.min(Math.max(v, lo), hi));
    }
  } else {
    const x = X.data as Float32Array;
    const o = out as Float32Array;
    // ONNX Clip: min(max(x, lo), hi); NaN stays NaN.
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      o[i] = v < lo ? lo : v > hi ? hi : v;
    }
  }
  void ctx;
  return [{ dtype: X.dtype, dims: [...X.dims], data: out }];
}

/** The flat index → channel mapping of a per-axis parameter (length 1 = per tensor). */
function perAxis(node: Node, X: TensorData, param: TensorData, axisAttr: number, what: string): (k: number) => number {
  if (param.data.length === 1) return () => 0;
  if (param.dims.length !== 1) fail(node, `${what} must be a scalar or 1-D, got [${param.dims}]`);
  const r = X.dims.length;
  const axis = axisAttr < 0 ? axisAttr + r : axisAttr;
  if (axis < 0 || axis >= r) fail(node, `axis ${axisAttr} is out of range for rank ${r}`, 'attribute');
  if (X.dims[axis] !== param.dims[0]) fail(node, `${what} has ${param.dims[0]} values but axis ${axis} of [${X.dims}] has ${X.dims[axis]}`);
  const inner = elementCount(X.dims.slice(axis + 1));
  const C = X.dims[axis]!;
  return (k) => Math.floor(k / inner) % C;
}

function quantizeLinear(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const X = need(node, inputs, 0);
  const S = need(node, inputs, 1);
  const Z = inputs[2];
  if ((getAttrInt(node, 'block_size', 0) ?? 0) !== 0) fail(node, 'blocked quantization is not supported', 'unsupported');
  const outType: DType = Z ? Z.dtype : 'uint8';
  const range = INT_RANGE[outType];
  if (!range || outType === 'uint32' || outType === 'bool') fail(node, `QuantizeLinear to ${outType} is not supported`, 'unsupported');
  const axis = getAttrInt(node, 'axis', 1);
  const ch = perAxis(node, X, S, axis, 'y_scale');
  const zch = Z ? perAxis(node, X, Z, axis, 'y_zero_point') : () => 0;
  const x = asFloat32(X);
  const s = asFloat32(S);
  const n = checkSize(node, X.dims, ctx);
  const out = allocate(outType, n) as Int32Array;
  for (let k = 0; k < n; k++) {
    const z = Z ? Number(Z.data[zch(k)]!) : 0;
    let v = roundHalfEven(f32(x[k]! / s[ch(k)]!)) + z;
    if (v < range[0]) v = range[0];
    else if (v > range[1]) v = range[1];
    else if (Number.isNaN(v)) v = 0;
    out[k] = v;
  }
  return [{ dtype: outType, dims: [...X.dims], data: out }];
}

function dequantizeLinear(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const X = need(node, inputs, 0);
  const S = need(node, inputs, 1);
  const Z = inputs[2];
  if ((getAttrInt(node, 'block_size', 0) ?? 0) !== 0) fail(node, 'blocked quantization is not supported', 'unsupported');
  const axis = getAttrInt(node, 'axis', 1);
  const ch = perAxis(node, X, S, axis, 'x_scale');
  const zch = Z ? perAxis(node, X, Z, axis, 'x_zero_point') : () => 0;
  const s = asFloat32(S);
  const n = checkSize(node, X.dims, ctx);
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const z = Z ? Number(Z.data[zch(k)]!) : 0;
    out[k] = f32((Number(X.data[k]!) - z) * s[ch(k)]!);
  }
  return [floatOut([...X.dims], out)];
}

/** Brevitas / QONNX Quant: y = (clamp(round_half_even(x/scale + zp), min, max) − zp) · scale. */
function quant(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const X = need(node, inputs, 0);
  const S = need(node, inputs, 1);
  const Z = need(node, inputs, 2);
  const BW = need(node, inputs, 3);
  if (BW.data.length !== 1) fail(node, 'Quant bit width must be a scalar', 'quant');
  const bw = Number(BW.data[0]!);
  if (!Number.isInteger(bw) || bw < 1 || bw > 32) fail(node, `Quant bit width must be an integer in [1, 32], got ${bw}`, 'quant');
  const signed = getAttrInt(node, 'signed', 1) !== 0;
  const narrow = getAttrInt(node, 'narrow', 0) !== 0;
  const mode = getAttrString(node, 'rounding_mode', 'ROUND');
  if (mode !== 'ROUND') fail(node, `rounding_mode '${mode}' is not supported (only ROUND)`, 'quant');
  const [lo, hi] = quantBounds(bw, signed, narrow);
  return [elementwiseFloat(node, [X, S, Z], ctx, ([x, s, z]) => {
    const v = f32(f32(x! / s!) + z!);
    let q = roundHalfEven(v);
    if (q < lo) q = lo;
    else if (q > hi) q = hi;
    return f32(f32(q - z!) * s!);
  })];
}

/** QONNX BipolarQuant: y = (x ≥ 0 ? +1 : −1) · scale. */
function bipolarQuant(node: Node, inputs: (TensorData | undefined)[], ctx: Ctx): TensorData[] {
  const X = need(node, inputs, 0);
  const S = need(node, inputs, 1);
  return [elementwiseFloat(node, [X, S], ctx, ([x, s]) => (x! >= 0 ? s! : -s!))];
}

function constant(node: Node): TensorData[] {
  const t = getAttrTensor(node, 'value');
  if (t) return [t];
  const vf = getAttrFloat(node, 'value_float');
  if (vf !== undefined) return [{ dtype: 'float32', dims: [], data: Float32Array.of(vf) }];
  const vfs = getAttrFloats(node, 'value_floats');
  if (vfs) return [{ dtype: 'float32', dims: [vfs.length], data: Float32Array.from(vfs) }];
  const vi = getAttrInt(node, 'value_int');
  if (vi !== undefined) return [{ dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(vi)) }];
  const vis = getAttrInts(node, 'value_ints');
  if (vis) return [{ dtype: 'int64', dims: [vis.length], data: BigInt64Array.from(vis.map((v) => BigInt(v))) }];
  return fail(node, 'Constant needs a value, value_float(s) or value_int(s) attribute', 'attribute');
}

const KERNELS: Record<string, Kernel> = {
  Gemm: gemm,
  MatMul: matmul,
  Add: binary((a, b) => f32(a + b)),
  Sub: binary((a, b) => f32(a - b)),
  Mul: binary((a, b) => f32(a * b)),
  Div: binary((a, b) => f32(a / b)),
  Conv: conv,
  BatchNormalization: batchNorm,
  AveragePool: pool('avg'),
  MaxPool: pool('max'),
  GlobalAveragePool: globalPool('avg'),
  GlobalMaxPool: globalPool('max'),
  Relu: (node, inputs, ctx) => [elementwiseFloat(node, [need(node, inputs, 0)], ctx, ([x]) => (x! > 0 ? x! : 0))],
  Sigmoid: (node, inputs, ctx) => [elementwiseFloat(node, [need(node, inputs, 0)], ctx, ([x]) => f32(1 / (1 + Math.exp(-x!))))],
  Flatten: flatten,
  Reshape: reshape,
  Identity: (node, inputs) => [need(node, inputs, 0)],
  Clip: clip,
  Transpose: transpose,
  Pad: pad,
  Concat: concat,
  Constant: constant,
  QuantizeLinear: quantizeLinear,
  DequantizeLinear: dequantizeLinear,
};

const CUSTOM_KERNELS: Record<string, Kernel> = {
  Quant: quant,
  BipolarQuant: bipolarQuant,
};

/** Default-domain operators the interpreter runs. */
export const SUPPORTED_OPS: readonly string[] = Object.keys(KERNELS);
/** QONNX operators (domains onnx.brevitas and qonnx.custom_op.general) the interpreter runs. */
export const SUPPORTED_QONNX_OPS: readonly string[] = Object.keys(CUSTOM_KERNELS);

function kernelFor(node: Node): Kernel | undefined {
  if (node.domain === '' || node.domain === 'ai.onnx') return KERNELS[node.opType];
  if (QUANT_DOMAINS.includes(node.domain)) return CUSTOM_KERNELS[node.opType];
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Interpreter
// ---------------------------------------------------------------------------------------------------------------

function toTensor(name: string, f: Feed): TensorData {
  if ('dtype' in f) return f;
  const data = f.data instanceof Float32Array ? f.data : Float32Array.from(f.data);
  if (data.length !== elementCount(f.dims)) {
    throw new OnnxRuntimeError('shape', `feed has ${data.length} values for dims [${f.dims}]`, { tensor: name });
  }
  return { dtype: 'float32', dims: [...f.dims], data };
}

/** Evaluates a graph in clear. Build once per graph; `run` may be called many times. */
export class Interpreter {
  readonly order: Node[];
  private readonly ctx: Ctx;
  /** For each value, the index in `order` of its last reader (to free memory early). */
  private readonly lastUse = new Map<string, number>();

  constructor(readonly graph: Graph, opts: InterpreterOptions = {}) {
    this.order = topologicalOrder(graph);
    for (const node of this.order) {
      if (!kernelFor(node)) {
        throw new OnnxRuntimeError('unsupported', `operator ${node.domain ? node.domain + '::' : ''}${node.opType} is not supported`, {
          node: node.name,
        });
      }
    }
    this.order.forEach((node, i) => node.inputs.forEach((v) => this.lastUse.set(v, i)));
    this.ctx = { graph, maxElements: opts.maxElements ?? 2 ** 27, defaultOpset: opsetVersion(graph, '') ?? 14 };
  }

  run(feeds: Record<string, Feed>, opts: RunOptions = {}): RunResult {
    const { graph } = this;
    const env = new Map<string, TensorData>();
    const keepAll = opts.keep === true;
    const keepSet = new Set(Array.isArray(opts.keep) ? opts.keep : []);
    const outputNames = new Set(graph.outputs.map((o) => o.name));
    const values = new Map<string, TensorData>();
    const record = (name: string, t: TensorData, producer: Node | undefined) => {
      env.set(name, t);
      if (keepAll || keepSet.has(name)) values.set(name, t);
      opts.onValue?.(name, t, producer);
    };
    for (const input of graph.inputs) {
      const f = feeds[input.name];
      if (f === undefined) throw new OnnxRuntimeError('missing', 'no value fed for graph input', { tensor: input.name });
      const t = toTensor(input.name, f);
      if (input.shape) {
        const ok =
          t.dims.length === input.shape.length &&
          input.shape.every((d, i) => i === 0 || typeof d !== 'number' || d === t.dims[i]);
        if (!ok) {
          throw new OnnxRuntimeError('shape', `fed dims [${t.dims}] do not match the declared shape [${input.shape.map((d) => d ?? '?')}] (the first dimension is the batch and may differ)`, {
            tensor: input.name,
          });
        }
      }
      if (!isFloatDType(t.dtype) && isFloatDType(input.elemType)) {
        throw new OnnxRuntimeError('shape', `fed ${t.dtype} for a ${input.elemType} input`, { tensor: input.name });
      }
      record(input.name, t, undefined);
    }
    const lookup = (name: string): TensorData | undefined => env.get(name) ?? graph.initializers.get(name);
    this.order.forEach((node, idx) => {
      const inputs = node.inputs.map((v) => (v === '' ? undefined : lookup(v)));
      let outs: TensorData[];
      try {
        outs = kernelFor(node)!(node, inputs, this.ctx);
      } catch (e) {
        if (e instanceof OnnxError) {
          if (e.node === undefined) throw new OnnxRuntimeError(e.kind, e.message, { node: node.name });
          throw e;
        }
        // A kernel bug or an input the kernel did not anticipate: located and typed for the user, but an internal
        // error (its own class), never disguised as the input's fault.
        const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        throw new OnnxInternalError(`${node.opType} failed inside fhenet's interpreter (${msg}); please report it`, { node: node.name }, e);
      }
      node.outputs.forEach((name, i) => {
        if (name === '') return;
        const t = outs[i];
        if (!t) throw new OnnxRuntimeError('unsupported', `${node.opType} output #${i} is not produced by fhenet's interpreter`, { node: node.name });
        record(name, t, node);
      });
      // Free values nobody reads any more.
      if (!keepAll) {
        for (const v of node.inputs) {
          if (this.lastUse.get(v) === idx && !outputNames.has(v) && !keepSet.has(v)) env.delete(v);
        }
      }
    });
    const outputs = new Map<string, TensorData>();
    for (const o of graph.outputs) {
      const t = lookup(o.name);
      if (!t) throw new OnnxRuntimeError('missing', 'graph output was not computed', { tensor: o.name });
      outputs.set(o.name, t);
    }
    return { outputs, values };
  }
}

/** One-shot helper: `runGraph(graph, { x: { dims: [5, 2], data } }).outputs`. */
export function runGraph(graph: Graph, feeds: Record<string, Feed>, opts: RunOptions & InterpreterOptions = {}): RunResult {
  return new Interpreter(graph, opts).run(feeds, opts);
}

/**
 * Shapes of every value for a given batch size, found by running the graph on zeros (symbolic or unknown
 * dimensions of the inputs other than the first must be fixed for this to work).
 */
export function inferShapes(graph: Graph, batch = 1, opts: InterpreterOptions = {}): Map<string, number[]> {
  const feeds: Record<string, Feed> = {};
  for (const input of graph.inputs) {
    if (!input.shape) throw new OnnxRuntimeError('shape', 'input shape unknown', { tensor: input.name });
    const dims = input.shape.map((d, i) => (i === 0 ? batch : typeof d === 'number' ? d : 1));
    feeds[input.name] = { dtype: input.elemType, dims, data: allocate(input.elemType, elementCount(dims)) };
  }
  const shapes = new Map<string, number[]>();
  new Interpreter(graph, opts).run(feeds, { onValue: (name, t) => shapes.set(name, [...t.dims]) });
  for (const [name, t] of graph.initializers) shapes.set(name, [...t.dims]);
  return shapes;
}

/** Exposed for tests and the compiler. */
export const _internal = { broadcastIndex, broadcastShapes };
export type { TypedArray };
