/**
 * Exact integer execution of a circuit in clear ("simulate" mode): the same integers an encrypted run decrypts to,
 * batched. Values are Float64Arrays holding exact integers (|v| < 2^53), laid out [batch, ...shape].
 */
import { roundHalfEven, stridesOf as strides } from '../onnx/interpret.js';
import { type Circuit, type CircuitOp, CircuitError, type TluOp, size, tluIndex } from './circuit.js';
import { type SimulateKernel, loadSimulateKernel } from './native.js';

export { roundHalfEven };

export type IntBatch = Float64Array;

export interface SimulateOptions {
  /** Replaces table lookups (the compiler evaluates the fused float function directly during calibration). */
  tlu?: (op: TluOp, x: IntBatch, batch: number) => IntBatch;
  /** Sees every value as computed (for ranges and comparisons). */
  onValue?: (name: string, data: IntBatch, batch: number) => void;
  /**
   * Run the linear ops on the native float64 BLAS kernel when it is available (default true; src/compiler/native.ts).
   * Exact either way: the results are identical integers.
   */
  native?: boolean;
}

export interface SimulateResult {
  /** Output integers [batch, ...output shape]. */
  output: IntBatch;
  /** Values that fell outside a table's input domain and wrapped (what TFHE would do), per TLU op. */
  overflows: Record<string, number>;
}

/** Quantizes float inputs with the circuit's input quantizer (what the client does before encrypting). */
export function quantizeInput(c: Circuit, x: ArrayLike<number>): IntBatch {
  const { scale, bitWidth, signed, narrow } = c.input;
  const half = 2 ** (bitWidth - 1);
  const lo = signed ? (narrow ? -half + 1 : -half) : 0;
  const hi = signed ? half - 1 : narrow ? 2 ** bitWidth - 2 : 2 ** bitWidth - 1;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = Math.fround(x[i]! / scale);
    out[i] = Math.min(hi, Math.max(lo, roundHalfEven(v)));
  }
  return out;
}

/** Applies the output's affine dequantization. */
export function dequantizeOutput(c: Circuit, q: ArrayLike<number>): Float32Array {
  const { a, c: off, channels, channelStride } = c.output;
  const per = size(c.output.shape);
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) {
    const ch = Math.floor((i % per) / channelStride) % channels;
    out[i] = Math.fround(Math.fround(a[ch]! * q[i]!) + off[ch]!);
  }
  return out;
}


/** Index of a TLU input after rounding away `k` low bits: (x + 2^(k−1)) >> k, i.e. nearest, ties up. */
export function roundedIndex(x: number, k: number): number {
  return k > 0 ? Math.floor((x + 2 ** (k - 1)) / 2 ** k) : x;
}

export function simulate(c: Circuit, xInt: IntBatch, batch: number, opts: SimulateOptions = {}): SimulateResult {
  const shapes = new Map(c.values.map((v) => [v.name, v.shape]));
  const env = new Map<string, IntBatch>();
  if (xInt.length !== batch * size(c.input.shape)) {
    throw new CircuitError(`input has ${xInt.length} values, expected ${batch} × [${c.input.shape}]`);
  }
  env.set(c.input.name, xInt);
  opts.onValue?.(c.input.name, xInt, batch);
  const overflows: Record<string, number> = {};
  const get = (v: string) => env.get(v)!;
  const kernel = opts.native === false ? null : loadSimulateKernel();
  for (const op of c.ops) {
    const outShape = shapes.get(op.output)!;
    let y: IntBatch;
    switch (op.kind) {
      case 'gemm':
        y = gemm(get(op.input), batch, op.weight, op.outFeatures, op.inFeatures, kernel);
        break;
      case 'conv':
        y = conv(get(op.input), batch, shapes.get(op.input)!, op, outShape, kernel);
        break;
      case 'sumpool':
        y = sumpool(get(op.input), batch, shapes.get(op.input)!, op.kernel, op.strides, outShape);
        break;
      case 'pad':
        y = pad(get(op.input), batch, shapes.get(op.input)!, op.pads, outShape);
        break;
      case 'reshape':
        y = get(op.input);
        break;
      case 'transpose':
        y = transpose(get(op.input), batch, shapes.get(op.input)!, op.perm);
        break;
      case 'add': {
        const [a, b] = [get(op.inputs[0]), get(op.inputs[1])];
        y = new Float64Array(a.length);
        for (let i = 0; i < a.length; i++) y[i] = a[i]! + b[i]!;
        break;
      }
      case 'mulconst': {
        const a = get(op.input);
        y = new Float64Array(a.length);
        for (let i = 0; i < a.length; i++) y[i] = a[i]! * op.factor;
        break;
      }
      case 'tlu':
        if (opts.tlu) y = opts.tlu(op, get(op.input), batch);
        else {
          const r = lookup(op, get(op.input), size(outShape));
          y = r.y;
          if (r.overflow) overflows[op.name] = (overflows[op.name] ?? 0) + r.overflow;
        }
        break;
    }
    env.set(op.output, y);
    opts.onValue?.(op.output, y, batch);
  }
  return { output: get(c.output.value), overflows };
}

function lookup(op: TluOp, x: IntBatch, per: number): { y: IntBatch; overflow: number } {
  const width = 2 ** op.inputBits;
  const lo = op.inputSigned ? -(width / 2) : 0;
  const y = new Float64Array(x.length);
  let overflow = 0;
  const perChannel = op.channelRoundBits !== undefined || op.roundOffsets !== undefined;
  for (let i = 0; i < x.length; i++) {
    const ch = Math.floor((i % per) / op.channelStride) % op.channels;
    let idx = (perChannel ? tluIndex(op, x[i]!, ch) : roundedIndex(x[i]!, op.roundBits)) - lo;
    if (idx < 0 || idx >= width) {
      overflow++;
      idx = ((idx % width) + width) % width;
    }
    y[i] = op.tables[ch * width + idx]!;
  }
  return { y, overflow };
}

/** Float64 copies of integer weights for the BLAS kernel, made once per op. */
const weightsF64 = new WeakMap<Int32Array, Float64Array>();
function f64(w: Int32Array): Float64Array {
  let f = weightsF64.get(w);
  if (!f) weightsF64.set(w, (f = Float64Array.from(w)));
  return f;
}

/** Below this many multiply-adds the call overhead outweighs BLAS. */
const NATIVE_MIN_WORK = 4096;

function gemm(x: IntBatch, batch: number, w: Int32Array, out: number, inF: number, kernel: SimulateKernel | null): IntBatch {
  const y = new Float64Array(batch * out);
  if (kernel && batch * out * inF >= NATIVE_MIN_WORK) {
    kernel.dgemm(x, f64(w), y, batch, out, inF, 1);
    return y;
  }
  for (let n = 0; n < batch; n++) {
    const xo = n * inF;
    for (let o = 0; o < out; o++) {
      const wo = o * inF;
      let s = 0;
      for (let i = 0; i < inF; i++) {
        const wi = w[wo + i]!;
        if (wi !== 0) s += wi * x[xo + i]!;
      }
      y[n * out + o] = s;
    }
  }
  return y;
}

/**
 * Weight-stationary direct convolution: for every non-zero weight, one multiply-add sweep over the output rows it
 * reaches. Skipping zero weights matters here (2-bit nets are ternary, pruned nets sparse), and the inner loop runs
 * over contiguous output columns with no bounds checks: the valid output window of each kernel tap is computed
 * once. Integer sums in float64 are exact in any order, so this equals the textbook loop bit for bit.
 */
function conv(x: IntBatch, batch: number, inShape: number[], op: Extract<CircuitOp, { kind: 'conv' }>, outShape: number[], kernel: SimulateKernel | null): IntBatch {
  const [C, H, W] = inShape as [number, number, number];
  const [O, , KH, KW] = op.weightDims;
  const [, OH, OW] = outShape as [number, number, number];
  const [sh, sw] = op.strides;
  const [pt, pl] = op.pads;
  const plane = OH * OW;
  const y = new Float64Array(batch * O * plane);
  const w = op.weight;
  // Output rows/columns whose tap ky (kx) lands inside the input: iy = oy·sh + ky − pt ∈ [0, H).
  const first = (k: number, p: number, s: number) => Math.max(0, Math.ceil((p - k) / s));
  const last = (k: number, p: number, s: number, n: number, on: number) => Math.min(on - 1, Math.floor((n - 1 + p - k) / s));
  const K = C * KH * KW;
  if (kernel && O * plane * K >= NATIVE_MIN_WORK) {
    // im2col per image (rows: c, ky, kx; columns: output pixels; taps outside the input stay 0), then one product.
    const cols = new Float64Array(K * plane);
    const wf = f64(w);
    for (let n = 0; n < batch; n++) {
      const xb = n * C * H * W;
      if (pt || pl || op.pads[2] || op.pads[3]) cols.fill(0);
      for (let c = 0; c < C; c++) {
        for (let ky = 0; ky < KH; ky++) {
          const oy0 = first(ky, pt, sh);
          const oy1 = last(ky, pt, sh, H, OH);
          for (let kx = 0; kx < KW; kx++) {
            const row = ((c * KH + ky) * KW + kx) * plane;
            const ox0 = first(kx, pl, sw);
            const ox1 = last(kx, pl, sw, W, OW);
            for (let oy = oy0; oy <= oy1; oy++) {
              const xr = xb + (c * H + oy * sh + ky - pt) * W + kx - pl;
              const cr = row + oy * OW;
              for (let ox = ox0; ox <= ox1; ox++) cols[cr + ox] = x[xr + ox * sw]!;
            }
          }
        }
      }
      kernel.dgemm(wf, cols, y.subarray(n * O * plane, (n + 1) * O * plane), O, plane, K, 0);
    }
    return y;
  }
  for (let n = 0; n < batch; n++) {
    const xb = n * C * H * W;
    for (let o = 0; o < O; o++) {
      const yo = (n * O + o) * plane;
      for (let c = 0; c < C; c++) {
        for (let ky = 0; ky < KH; ky++) {
          const oy0 = first(ky, pt, sh);
          const oy1 = last(ky, pt, sh, H, OH);
          for (let kx = 0; kx < KW; kx++) {
            const wv = w[((o * C + c) * KH + ky) * KW + kx]!;
            if (wv === 0) continue;
            const ox0 = first(kx, pl, sw);
            const ox1 = last(kx, pl, sw, W, OW);
            for (let oy = oy0; oy <= oy1; oy++) {
              const xr = xb + (c * H + oy * sh + ky - pt) * W + kx - pl;
              const yr = yo + oy * OW;
              if (sw === 1) for (let ox = ox0; ox <= ox1; ox++) y[yr + ox] += wv * x[xr + ox]!;
              else for (let ox = ox0; ox <= ox1; ox++) y[yr + ox] += wv * x[xr + ox * sw]!;
            }
          }
        }
      }
    }
  }
  return y;
}

function sumpool(x: IntBatch, batch: number, inShape: number[], k: [number, number], s: [number, number], outShape: number[]): IntBatch {
  const [C, H, W] = inShape as [number, number, number];
  const [, OH, OW] = outShape as [number, number, number];
  const y = new Float64Array(batch * C * OH * OW);
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < C; c++) {
      const xb = (n * C + c) * H * W;
      const yb = (n * C + c) * OH * OW;
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) {
          let acc = 0;
          for (let ky = 0; ky < k[0]; ky++) for (let kx = 0; kx < k[1]; kx++) acc += x[xb + (oy * s[0] + ky) * W + ox * s[1] + kx]!;
          y[yb + oy * OW + ox] = acc;
        }
      }
    }
  }
  return y;
}

function pad(x: IntBatch, batch: number, inShape: number[], p: [number, number, number, number], outShape: number[]): IntBatch {
  const [C, H, W] = inShape as [number, number, number];
  const [, OH, OW] = outShape as [number, number, number];
  const y = new Float64Array(batch * C * OH * OW);
  for (let n = 0; n < batch; n++)
    for (let c = 0; c < C; c++)
      for (let iy = 0; iy < H; iy++)
        for (let ix = 0; ix < W; ix++) y[((n * C + c) * OH + iy + p[0]) * OW + ix + p[1]] = x[((n * C + c) * H + iy) * W + ix]!;
  return y;
}

function transpose(x: IntBatch, batch: number, inShape: number[], perm: number[]): IntBatch {
  const per = size(inShape);
  const outShape = perm.map((p) => inShape[p]!);
  const inStrides = strides(inShape);
  const outStrides = strides(outShape);
  const y = new Float64Array(x.length);
  for (let n = 0; n < batch; n++) {
    for (let i = 0; i < per; i++) {
      let rem = i;
      let src = 0;
      for (let d = 0; d < outShape.length; d++) {
        const coord = Math.floor(rem / outStrides[d]!);
        rem -= coord * outStrides[d]!;
        src += coord * inStrides[perm[d]!]!;
      }
      y[n * per + i] = x[n * per + src]!;
    }
  }
  return y;
}
