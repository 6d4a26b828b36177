/**
 * Exact integer execution of a circuit in clear ("simulate" mode): the same integers an encrypted run decrypts to,
 * batched. Values are Float64Arrays holding exact integers (|v| < 2^53), laid out [batch, ...shape].
 */
import { roundHalfEven, stridesOf as strides } from '../onnx/interpret.js';
import { type Circuit, type CircuitOp, CircuitError, size } from './circuit.js';

export { roundHalfEven };

export type IntBatch = Float64Array;

export interface SimulateOptions {
  /** Replaces table lookups (the compiler evaluates the fused float function directly during calibration). */
  tlu?: (op: Extract<CircuitOp, { kind: 'tlu' }>, x: IntBatch, batch: number) => IntBatch;
  /** Sees every value as computed (for ranges and comparisons). */
  onValue?: (name: string, data: IntBatch, batch: number) => void;
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
  for (const op of c.ops) {
    const outShape = shapes.get(op.output)!;
    let y: IntBatch;
    switch (op.kind) {
      case 'gemm':
        y = gemm(get(op.input), batch, op.weight, op.outFeatures, op.inFeatures);
        break;
      case 'conv':
        y = conv(get(op.input), batch, shapes.get(op.input)!, op, outShape);
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

function lookup(op: Extract<CircuitOp, { kind: 'tlu' }>, x: IntBatch, per: number): { y: IntBatch; overflow: number } {
  const width = 2 ** op.inputBits;
  const lo = op.inputSigned ? -(width / 2) : 0;
  const y = new Float64Array(x.length);
  let overflow = 0;
  for (let i = 0; i < x.length; i++) {
    let idx = roundedIndex(x[i]!, op.roundBits) - lo;
    if (idx < 0 || idx >= width) {
      overflow++;
      idx = ((idx % width) + width) % width;
    }
    const ch = Math.floor((i % per) / op.channelStride) % op.channels;
    y[i] = op.tables[ch * width + idx]!;
  }
  return { y, overflow };
}

function gemm(x: IntBatch, batch: number, w: Int32Array, out: number, inF: number): IntBatch {
  const y = new Float64Array(batch * out);
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

function conv(x: IntBatch, batch: number, inShape: number[], op: Extract<CircuitOp, { kind: 'conv' }>, outShape: number[]): IntBatch {
  const [C, H, W] = inShape as [number, number, number];
  const [O, , KH, KW] = op.weightDims;
  const [, OH, OW] = outShape as [number, number, number];
  const [sh, sw] = op.strides;
  const [pt, pl] = op.pads;
  const y = new Float64Array(batch * O * OH * OW);
  const w = op.weight;
  for (let n = 0; n < batch; n++) {
    const xb = n * C * H * W;
    const yb = n * O * OH * OW;
    for (let o = 0; o < O; o++) {
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) {
          let s = 0;
          for (let c = 0; c < C; c++) {
            for (let ky = 0; ky < KH; ky++) {
              const iy = oy * sh + ky - pt;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < KW; kx++) {
                const ix = ox * sw + kx - pl;
                if (ix < 0 || ix >= W) continue;
                s += w[((o * C + c) * KH + ky) * KW + kx]! * x[xb + (c * H + iy) * W + ix]!;
              }
            }
          }
          y[yb + (o * OH + oy) * OW + ox] = s;
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
