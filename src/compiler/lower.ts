/**
 * Lowering: QONNX graph → circuit ops, with table lookups still symbolic.
 *
 * Every graph value is classified as it is reached (graph order is topological):
 * - `const`: a clear tensor (initializer or constant expression);
 * - `qconst`: a quantized constant (weights after their Quant node): exact integers and scales;
 * - `qint`: encrypted integers times one scalar scale (the model input after its quantizer, any activation after
 *   its quantizer, and index maps of those) — what linear operations may consume;
 * - `acc`: encrypted integers `acc` standing for the float value fn(a[ch]·acc + c[ch]) — the output of a linear
 *   operation (a = s_in·s_w, c = float bias) followed by any univariate float operations (ReLU, BatchNorm,
 *   Clip, scalar/per-channel Add, Mul, Div…), composed into `fn`.
 * A Quant applied to an `acc` is where everything univariate since the last quantizer fuses into one table lookup
 * indexed by the integer accumulator: table[acc] = quant(fn(a·acc + c)). Tables are built after calibration, when
 * the accumulator ranges are known (see compile.ts).
 */
import {
  type Graph,
  type Node,
  type TensorData,
  getAttrFloat,
  getAttrInt,
  getAttrInts,
  getAttrString,
  isQuantNode,
  topologicalOrder,
} from '../onnx/graph.js';
import type { CircuitOp, CircuitValue, InputQuantizer, OutputDequantizer } from './circuit.js';
import { CompileError } from './errors.js';
import { stridesOf as strides } from '../onnx/interpret.js';
import { quantBounds, roundHalfEven } from '../util/int-quant.js';

const f32 = Math.fround;

/** A float function of the affine value, per channel. */
export type Fn = (v: number, ch: number) => number;

interface ConstVal {
  kind: 'const';
  data: Float64Array;
  dims: number[];
}
interface QConstVal {
  kind: 'qconst';
  ints: Int32Array;
  dims: number[];
  /** Per-element scale, same length as ints (already broadcast). */
  scale: Float64Array;
}
interface QIntVal {
  kind: 'qint';
  id: string;
  shape: number[];
  scale: number;
}
export interface AccVal {
  kind: 'acc';
  id: string;
  shape: number[];
  channels: number;
  channelStride: number;
  a: Float64Array;
  c: Float64Array;
  fn: Fn | null;
  /** The univariate ops fused so far (for reports and errors). */
  fused: string[];
}
interface InputVal {
  kind: 'input';
  name: string;
  shape: number[];
}
type Val = ConstVal | QConstVal | QIntVal | AccVal | InputVal;

/** What a symbolic table lookup computes, kept until calibration gives its input range. */
export interface PendingTlu {
  op: Extract<CircuitOp, { kind: 'tlu' }>;
  source: AccVal;
  outScale: number;
  outMin: number;
  outMax: number;
  /** Graph node (quantizer) that closed the fusion. */
  node: string;
}

export interface Lowered {
  input: InputQuantizer;
  values: CircuitValue[];
  ops: CircuitOp[];
  output: OutputDequantizer;
  tlus: PendingTlu[];
  /** Graph node → circuit value it produced (for comparisons with the graph interpreter). */
  nodeValues: Map<string, string>;
}

function numbers(t: TensorData): Float64Array {
  const out = new Float64Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]!);
  return out;
}

/** Channel layout of a per-sample shape: [F] → F channels of 1; [C, H, W] → C channels of H·W; [] → 1. */
function channelsOf(shape: number[]): { channels: number; channelStride: number } {
  if (shape.length === 0) return { channels: 1, channelStride: 1 };
  const n = shape.reduce((a, b) => a * b, 1);
  return { channels: shape[0]!, channelStride: n / shape[0]! };
}

/** Broadcasts `values` (graph dims, batch axis included) to `n` per-element values for a given sample shape. */
function perElementScale(values: Float64Array, dims: number[], target: number[]): Float64Array {
  const n = target.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  if (values.length === 1) return out.fill(values[0]!);
  // Right-align dims against target (numpy broadcasting).
  const d = [...Array(Math.max(0, target.length - dims.length)).fill(1), ...dims.slice(Math.max(0, dims.length - target.length))];
  const tStr = strides(target);
  const dStr = strides(d);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let src = 0;
    for (let k = 0; k < target.length; k++) {
      const coord = Math.floor(rem / tStr[k]!);
      rem -= coord * tStr[k]!;
      if (d[k]! !== 1) src += coord * dStr[k]!;
    }
    out[i] = values[src]!;
  }
  return out;
}


/**
 * The state of one lowering (values seen so far, circuit ops and values emitted, pending tables) and the helpers the
 * per-operator lowerings share.
 */
class Lowering {
  readonly vals = new Map<string, Val>();
  readonly ops: CircuitOp[] = [];
  readonly values: CircuitValue[] = [];
  readonly tlus: PendingTlu[] = [];
  /** Graph node → the circuit value it produced. */
  readonly nodeValues = new Map<string, string>();
  input: InputQuantizer | undefined;
  private counter = 0;

  /** Records a node's (first) output. */
  set(node: Node, v: Val): void {
    this.vals.set(node.outputs[0]!, v);
    if (v.kind === 'qint' || v.kind === 'acc') this.nodeValues.set(node.name, v.id);
  }

  readonly newValue = (base: string, shape: number[]): string => {
    const name = `${base}#${this.counter++}`;
    this.values.push({ name, shape });
    return name;
  };

  readonly get = (node: Node, i: number): Val => {
    const name = node.inputs[i];
    const v = name ? this.vals.get(name) : undefined;
    if (!v) throw new CompileError(node.name, `input ${i} ('${name ?? ''}') is not available`);
    return v;
  };
  readonly constOf = (node: Node, i: number, what: string): ConstVal => {
    const v = this.get(node, i);
    if (v.kind !== 'const') throw new CompileError(node.name, `${what} must be a constant`);
    return v;
  };
  readonly toAcc = (v: QIntVal | AccVal): AccVal =>
    v.kind === 'acc'
      ? v
      : { kind: 'acc', id: v.id, shape: v.shape, channels: 1, channelStride: v.shape.reduce((a, b) => a * b, 1), a: Float64Array.of(v.scale), c: Float64Array.of(0), fn: null, fused: [] };
  /** Re-expresses an acc per channel of its shape (needed before per-channel constants are folded in). */
  readonly perChannel = (v: AccVal): AccVal => {
    const { channels, channelStride } = channelsOf(v.shape);
    if (v.channels === channels) return v;
    if (v.channels !== 1) throw new CompileError(v.id, 'internal: incompatible channel layouts');
    const a = new Float64Array(channels).fill(v.a[0]!);
    const c = new Float64Array(channels).fill(v.c[0]!);
    const fn = v.fn;
    return { ...v, channels, channelStride, a, c, fn: fn ? (x, _ch) => fn(x, 0) : null };
  };
  /** A constant operand as one value per channel of `v` (scalar or per-channel broadcastable), else an error. */
  readonly channelConst = (node: Node, k: ConstVal, v: AccVal): { v: AccVal; per: Float64Array } => {
    if (k.data.length === 1) return { v, per: new Float64Array(v.channels).fill(k.data[0]!) };
    const pc = this.perChannel(v);
    const full = perElementScale(k.data, k.dims, v.shape);
    const per = new Float64Array(pc.channels);
    for (let ch = 0; ch < pc.channels; ch++) {
      per[ch] = full[ch * pc.channelStride]!;
      for (let j = 1; j < pc.channelStride; j++) {
        if (full[ch * pc.channelStride + j] !== per[ch]) {
          throw new CompileError(node.name, `constant of shape [${k.dims}] varies within a channel; only scalar or per-channel constants fuse into a table lookup`);
        }
      }
    }
    return { v: pc, per };
  };
  readonly compose = (node: Node, v0: QIntVal | AccVal, label: string, f: (x: number, ch: number) => number): AccVal => {
    const v = this.toAcc(v0);
    const prev = v.fn;
    return { ...v, fn: prev ? (x, ch) => f(prev(x, ch), ch) : f, fused: [...v.fused, `${label}(${node.name})`] };
  };
  readonly needQint = (node: Node, v: Val, role: string): QIntVal => {
    if (v.kind === 'qint') return v;
    if (v.kind === 'acc') {
      throw new CompileError(
        node.name,
        `${role} is not quantized (it is ${v.fused.length ? `${v.fused.join(' → ')} of ` : ''}an accumulator)`,
        'add a quantizer (QuantIdentity / Quant node) before this node',
      );
    }
    if (v.kind === 'input') throw new CompileError(node.name, `${role} is the raw model input`, 'the model input must go through a quantizer (QuantIdentity) first');
    throw new CompileError(node.name, `${role} must be an encrypted value, got a constant`);
  };
  readonly needWeights = (node: Node, v: Val): QConstVal => {
    if (v.kind === 'qconst') return v;
    if (v.kind === 'const') {
      throw new CompileError(node.name, 'weights are float, not quantized', 'use QuantLinear/QuantConv2d, or compile with post-training quantization (nBits)');
    }
    throw new CompileError(node.name, 'both operands are encrypted; only encrypted × clear products are supported');
  };
}

function lowerQuant(l: Lowering, node: Node): void {
  const x = l.get(node, 0);
  const scale = l.constOf(node, 1, 'Quant scale');
  const zp = l.constOf(node, 2, 'Quant zero point');
  const bw = l.constOf(node, 3, 'Quant bit width');
  if (zp.data.some((z) => z !== 0)) throw new CompileError(node.name, 'zero points other than 0 are not supported');
  const bits = bw.data[0]!;
  const signed = getAttrInt(node, 'signed', 1) !== 0;
  const narrow = getAttrInt(node, 'narrow', 0) !== 0;
  if (getAttrString(node, 'rounding_mode', 'ROUND') !== 'ROUND') throw new CompileError(node.name, 'only rounding_mode ROUND is supported');
  const [lo, hi] = quantBounds(bits, signed, narrow);
  if (x.kind === 'const') {
    const s = perElementScale(scale.data, scale.dims, x.dims);
    const ints = new Int32Array(x.data.length);
    for (let i = 0; i < ints.length; i++) ints[i] = Math.min(hi, Math.max(lo, roundHalfEven(f32(x.data[i]! / s[i]!))));
    l.set(node, { kind: 'qconst', ints, dims: x.dims, scale: s });
    return;
  }
  if (scale.data.length !== 1) {
    throw new CompileError(node.name, 'per-channel activation scales are not supported', 'use a per-tensor activation quantizer');
  }
  const sOut = scale.data[0]!;
  if (x.kind === 'input') {
    if (l.input) throw new CompileError(node.name, 'the model input is quantized twice');
    l.input = { name: x.name, shape: x.shape, scale: sOut, bitWidth: bits, signed, narrow };
    l.values.push({ name: x.name, shape: x.shape });
    l.set(node, { kind: 'qint', id: x.name, shape: x.shape, scale: sOut });
    return;
  }
  if (x.kind === 'qconst') throw new CompileError(node.name, 'a quantized constant is quantized again');
  const source = l.toAcc(x);
  const id = l.newValue(node.name, source.shape);
  const tlu: Extract<CircuitOp, { kind: 'tlu' }> = {
    kind: 'tlu',
    name: node.name,
    input: source.id,
    output: id,
    roundBits: 0,
    inputBits: 0,
    inputSigned: true,
    channels: source.channels,
    channelStride: source.channelStride,
    tables: new Int32Array(0),
  };
  l.ops.push(tlu);
  l.tlus.push({ op: tlu, source, outScale: sOut, outMin: lo, outMax: hi, node: node.name });
  l.set(node, { kind: 'qint', id, shape: source.shape, scale: sOut });
}

function lowerGemm(l: Lowering, node: Node, op: string): void {
  const x = l.needQint(node, l.get(node, 0), 'the input');
  const w = l.needWeights(node, l.get(node, 1));
  if (x.shape.length !== 1) throw new CompileError(node.name, `expects a flat input per sample, got [${x.shape}]`, 'add a Flatten before it');
  const transB = op === 'Gemm' && getAttrInt(node, 'transB', 0) !== 0;
  if (op === 'Gemm' && getAttrInt(node, 'transA', 0) !== 0) throw new CompileError(node.name, 'transA is not supported');
  const [d0, d1] = w.dims as [number, number];
  const [outF, inF] = transB ? [d0, d1] : [d1, d0];
  if (inF !== x.shape[0]) throw new CompileError(node.name, `weight expects ${inF} inputs, value has ${x.shape[0]}`);
  const weight = new Int32Array(outF * inF);
  const sw = new Float64Array(outF);
  for (let o = 0; o < outF; o++) {
    for (let i = 0; i < inF; i++) {
      const k = transB ? o * inF + i : i * outF + o;
      weight[o * inF + i] = w.ints[k]!;
      if (i === 0) sw[o] = w.scale[k]!;
      else if (w.scale[k] !== sw[o]) throw new CompileError(node.name, 'weight scale varies within an output neuron');
    }
  }
  const alpha = op === 'Gemm' ? getAttrFloat(node, 'alpha', 1) : 1;
  const beta = op === 'Gemm' ? getAttrFloat(node, 'beta', 1) : 1;
  const a = new Float64Array(outF);
  for (let o = 0; o < outF; o++) a[o] = alpha * x.scale * sw[o]!;
  const c = biasOf(l, node, op === 'Gemm' ? node.inputs[2] : undefined, outF, beta);
  const id = l.newValue(node.name, [outF]);
  l.ops.push({ kind: 'gemm', name: node.name, input: x.id, output: id, weight, outFeatures: outF, inFeatures: inF });
  l.set(node, { kind: 'acc', id, shape: [outF], channels: outF, channelStride: 1, a, c, fn: null, fused: [] });
}

function lowerConv(l: Lowering, node: Node): void {
  const x = l.needQint(node, l.get(node, 0), 'the input');
  const w = l.needWeights(node, l.get(node, 1));
  if (x.shape.length !== 3 || w.dims.length !== 4) throw new CompileError(node.name, 'only 2-D convolutions on [C, H, W] are supported');
  if (getAttrInt(node, 'group', 1) !== 1) throw new CompileError(node.name, 'grouped convolutions are not supported');
  if ((getAttrInts(node, 'dilations') ?? [1, 1]).some((d) => d !== 1)) throw new CompileError(node.name, 'dilated convolutions are not supported');
  if (getAttrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') throw new CompileError(node.name, 'auto_pad is not supported; use explicit pads');
  const [O, C, KH, KW] = w.dims as [number, number, number, number];
  if (C !== x.shape[0]) throw new CompileError(node.name, `weight expects ${C} channels, value has ${x.shape[0]}`);
  const strides = (getAttrInts(node, 'strides') ?? [1, 1]) as [number, number];
  const pads = (getAttrInts(node, 'pads') ?? [0, 0, 0, 0]) as [number, number, number, number];
  const [, H, W] = x.shape as [number, number, number];
  const OH = Math.floor((H + pads[0] + pads[2] - KH) / strides[0]) + 1;
  const OW = Math.floor((W + pads[1] + pads[3] - KW) / strides[1]) + 1;
  const per = C * KH * KW;
  const a = new Float64Array(O);
  for (let o = 0; o < O; o++) {
    a[o] = x.scale * w.scale[o * per]!;
    for (let j = 1; j < per; j++) if (w.scale[o * per + j] !== w.scale[o * per]) throw new CompileError(node.name, 'weight scale varies within an output channel');
  }
  const c = biasOf(l, node, node.inputs[2], O, 1);
  const id = l.newValue(node.name, [O, OH, OW]);
  l.ops.push({ kind: 'conv', name: node.name, input: x.id, output: id, weight: Int32Array.from(w.ints), weightDims: [O, C, KH, KW], strides, pads });
  l.set(node, { kind: 'acc', id, shape: [O, OH, OW], channels: O, channelStride: OH * OW, a, c, fn: null, fused: [] });
}

function lowerAveragePool(l: Lowering, node: Node): void {
  const v = l.get(node, 0);
  const k = getAttrInts(node, 'kernel_shape', []) as [number, number];
  const s = (getAttrInts(node, 'strides') ?? k) as [number, number];
  if ((getAttrInts(node, 'pads') ?? [0, 0, 0, 0]).some((p) => p !== 0)) throw new CompileError(node.name, 'padded average pooling is not supported');
  if (getAttrInt(node, 'ceil_mode', 0) !== 0) throw new CompileError(node.name, 'ceil_mode is not supported');
  const src = v.kind === 'acc' ? v : l.needQint(node, v, 'the input');
  if (src.kind === 'acc' && src.fn) throw new CompileError(node.name, `pooling after ${src.fused.join(' → ')} cannot fuse`, 'add a quantizer before the pooling');
  if (src.shape.length !== 3) throw new CompileError(node.name, `expects [C, H, W], got [${src.shape}]`);
  const [C, H, W] = src.shape as [number, number, number];
  const OH = Math.floor((H - k[0]) / s[0]) + 1;
  const OW = Math.floor((W - k[1]) / s[1]) + 1;
  const id = l.newValue(node.name, [C, OH, OW]);
  l.ops.push({ kind: 'sumpool', name: node.name, input: src.id, output: id, kernel: k, strides: s });
  const acc = l.perChannel(l.toAcc(src));
  const a = acc.a.map((x) => x / (k[0] * k[1]));
  l.set(node, { kind: 'acc', id, shape: [C, OH, OW], channels: C, channelStride: OH * OW, a, c: acc.c, fn: null, fused: [] });
}

function lowerPad(l: Lowering, node: Node): void {
  const v = l.get(node, 0);
  const padsT = node.inputs[1] ? l.constOf(node, 1, 'pads').data : Float64Array.from(getAttrInts(node, 'pads', []));
  const mode = getAttrString(node, 'mode', 'constant');
  const cval = node.inputs[2] ? l.constOf(node, 2, 'pad value').data[0]! : getAttrFloat(node, 'value', 0);
  if (padsT.every((p) => p === 0)) {
    l.vals.set(node.outputs[0]!, v);
    return;
  }
  const q = l.needQint(node, v, 'the input');
  if (mode !== 'constant' || cval !== 0 || q.shape.length !== 3 || padsT.length !== 8 || padsT[0] || padsT[1] || padsT[4] || padsT[5]) {
    throw new CompileError(node.name, 'only zero padding of the spatial axes of [N, C, H, W] is supported');
  }
  const p: [number, number, number, number] = [padsT[2]!, padsT[3]!, padsT[6]!, padsT[7]!];
  const shape = [q.shape[0]!, q.shape[1]! + p[0] + p[2], q.shape[2]! + p[1] + p[3]];
  const id = l.newValue(node.name, shape);
  l.ops.push({ kind: 'pad', name: node.name, input: q.id, output: id, pads: p });
  l.set(node, { kind: 'qint', id, shape, scale: q.scale });
}

function lowerFlatten(l: Lowering, node: Node, op: string): void {
  const v = l.get(node, 0);
  if (v.kind === 'const') throw new CompileError(node.name, 'reshaping constants is not supported');
  const q = l.needQint(node, v, 'the input');
  const n = q.shape.reduce((a, b) => a * b, 1);
  let shape: number[];
  if (op === 'Flatten') {
    if (getAttrInt(node, 'axis', 1) !== 1) throw new CompileError(node.name, 'only Flatten with axis 1 is supported');
    shape = [n];
  } else {
    const target = Array.from(l.constOf(node, 1, 'shape').data).slice(1);
    const known = target.filter((d) => d > 0).reduce((a, b) => a * b, 1);
    shape = target.map((d, i) => (d === -1 ? n / known : d === 0 ? q.shape[i]! : d));
    if (shape.reduce((a, b) => a * b, 1) !== n) throw new CompileError(node.name, `cannot reshape [${q.shape}] to [${target}]`);
  }
  const id = l.newValue(node.name, shape);
  l.ops.push({ kind: 'reshape', name: node.name, input: q.id, output: id });
  l.set(node, { kind: 'qint', id, shape, scale: q.scale });
}

function lowerTranspose(l: Lowering, node: Node): void {
  const q = l.needQint(node, l.get(node, 0), 'the input');
  const perm = getAttrInts(node, 'perm', [...Array(q.shape.length + 1).keys()].reverse());
  if (perm[0] !== 0) throw new CompileError(node.name, 'transposes that move the batch axis are not supported');
  const p = perm.slice(1).map((d) => d - 1);
  const shape = p.map((d) => q.shape[d]!);
  const id = l.newValue(node.name, shape);
  l.ops.push({ kind: 'transpose', name: node.name, input: q.id, output: id, perm: p });
  l.set(node, { kind: 'qint', id, shape, scale: q.scale });
}

function lowerIdentity(l: Lowering, node: Node): void {
  l.vals.set(node.outputs[0]!, l.get(node, 0));
}

function lowerUnivariate(l: Lowering, node: Node, op: string): void {
  l.set(node, univariate(l, node, op));
}

function biasOf(l: Lowering, node: Node, name: string | undefined, n: number, beta: number): Float64Array {
  const c = new Float64Array(n);
  if (!name) return c;
  const b = l.vals.get(name);
  if (!b) throw new CompileError(node.name, `bias '${name}' is not available`);
  let data: Float64Array;
  if (b.kind === 'const') data = b.data;
  else if (b.kind === 'qconst') data = Float64Array.from(b.ints, (q, i) => f32(q * b.scale[i]!));
  else throw new CompileError(node.name, 'an encrypted bias is not supported');
  for (let o = 0; o < n; o++) c[o] = beta * (data.length === 1 ? data[0]! : data[o]!);
  return c;
}

function univariate(l: Lowering, node: Node, op: string): Val {
  const v0 = l.get(node, 0);
  if (op === 'Add' || op === 'Sub' || op === 'Mul' || op === 'Div') {
    const v1 = l.get(node, 1);
    if ((v0.kind === 'qint' || v0.kind === 'acc') && (v1.kind === 'qint' || v1.kind === 'acc')) {
      if (op !== 'Add' && op !== 'Sub') throw new CompileError(node.name, `${op} of two encrypted values is not supported`);
      const [a, b] = [l.needQint(node, v0, 'the first operand'), l.needQint(node, v1, 'the second operand')];
      if (a.scale !== b.scale) {
        throw new CompileError(node.name, `operands have different scales (${a.scale} and ${b.scale})`, 'quantize both with the same quantizer before adding');
      }
      let bId = b.id;
      if (op === 'Sub') {
        bId = l.newValue(`${node.name}.neg`, b.shape);
        l.ops.push({ kind: 'mulconst', name: `${node.name}.neg`, input: b.id, output: bId, factor: -1 });
      }
      const id = l.newValue(node.name, a.shape);
      l.ops.push({ kind: 'add', name: node.name, inputs: [a.id, bId], output: id });
      return { kind: 'qint', id, shape: a.shape, scale: a.scale };
    }
    const [enc, k, encFirst] = v0.kind === 'const' ? [v1, v0, false] : [v0, v1, true];
    if (k.kind !== 'const' || (enc.kind !== 'qint' && enc.kind !== 'acc')) {
      throw new CompileError(node.name, `${op} needs an encrypted value and a constant`);
    }
    const { v, per } = l.channelConst(node, k, l.toAcc(enc));
    const f =
      op === 'Add' ? (x: number, ch: number) => f32(x + per[ch]!)
      : op === 'Mul' ? (x: number, ch: number) => f32(x * per[ch]!)
      : op === 'Sub' ? (encFirst ? (x: number, ch: number) => f32(x - per[ch]!) : (x: number, ch: number) => f32(per[ch]! - x))
      : encFirst ? (x: number, ch: number) => f32(x / per[ch]!)
      : (x: number, ch: number) => f32(per[ch]! / x);
    return l.compose(node, v, op, f);
  }
  if (v0.kind !== 'qint' && v0.kind !== 'acc') throw new CompileError(node.name, `${op} of a constant is not supported`);
  const acc = l.toAcc(v0);
  switch (op) {
    case 'Relu':
      return l.compose(node, acc, 'Relu', (x) => (x > 0 ? x : 0));
    case 'Sigmoid':
      return l.compose(node, acc, 'Sigmoid', (x) => f32(1 / (1 + Math.exp(-x))));
    case 'Tanh':
      return l.compose(node, acc, 'Tanh', (x) => f32(Math.tanh(x)));
    case 'Clip': {
      const lo = node.inputs[1] ? l.constOf(node, 1, 'Clip min').data[0]! : getAttrFloat(node, 'min', -Infinity);
      const hi = node.inputs[2] ? l.constOf(node, 2, 'Clip max').data[0]! : getAttrFloat(node, 'max', Infinity);
      return l.compose(node, acc, 'Clip', (x) => Math.min(hi, Math.max(lo, x)));
    }
    default: {
      // BatchNormalization (inference): y = (x − mean) / sqrt(var + eps) · gamma + beta, per channel.
      const eps = getAttrFloat(node, 'epsilon', 1e-5);
      const v = l.perChannel(acc);
      const [g, b, m, s] = [1, 2, 3, 4].map((i) => l.constOf(node, i, 'BatchNormalization parameter').data);
      if (g!.length !== v.channels) throw new CompileError(node.name, `has ${g!.length} channels, the value has ${v.channels}`);
      return l.compose(node, v, 'BatchNorm', (x, ch) => f32(f32(f32(f32(x - m![ch]!) / f32(Math.sqrt(f32(s![ch]! + eps)))) * g![ch]!) + b![ch]!));
    }
  }
}

/** One lowering per ONNX operator (as the interpreter's kernel table); fused univariate ops share one. */
const LOWER_OPS: Record<string, (l: Lowering, node: Node, op: string) => void> = {
  Quant: lowerQuant,
  Gemm: lowerGemm,
  MatMul: lowerGemm,
  Conv: lowerConv,
  AveragePool: lowerAveragePool,
  Pad: lowerPad,
  Flatten: lowerFlatten,
  Reshape: lowerFlatten,
  Transpose: lowerTranspose,
  Identity: lowerIdentity,
  Relu: lowerUnivariate,
  Sigmoid: lowerUnivariate,
  Tanh: lowerUnivariate,
  Clip: lowerUnivariate,
  BatchNormalization: lowerUnivariate,
  Add: lowerUnivariate,
  Sub: lowerUnivariate,
  Mul: lowerUnivariate,
  Div: lowerUnivariate,
};

/** Lowers a graph to circuit ops, one operator at a time (LOWER_OPS). */
export function lower(graph: Graph): Lowered {
  const nodes = topologicalOrder(graph);
  const l = new Lowering();
  if (graph.inputs.length !== 1) {
    throw new CompileError(graph.name, `the circuit needs exactly one model input, the graph has ${graph.inputs.length}`);
  }
  const gIn = graph.inputs[0]!;
  const inShape = (gIn.shape ?? []).slice(1).map((d) => {
    if (typeof d !== 'number') throw new CompileError(gIn.name, `input dimension '${d}' must be fixed (only the batch axis may be symbolic)`);
    return d;
  });
  l.vals.set(gIn.name, { kind: 'input', name: gIn.name, shape: inShape });
  for (const [name, t] of graph.initializers) l.vals.set(name, { kind: 'const', data: numbers(t), dims: [...t.dims] });

  for (const node of nodes) {
    const op = isQuantNode(node) ? 'Quant' : node.opType;
    const lowerOp = Object.hasOwn(LOWER_OPS, op) ? LOWER_OPS[op] : undefined;
    if (!lowerOp) throw new CompileError(node.name, `operator ${node.domain ? `${node.domain}.` : ''}${node.opType} is not supported by the FHE compiler`);
    lowerOp(l, node, op);
  }

  const input = l.input;
  if (!input) throw new CompileError(gIn.name, 'the model input has no quantizer', 'add a QuantIdentity (Quant node) right after the input');
  const gOut = graph.outputs[0];
  const res = gOut ? l.vals.get(gOut.name) : undefined;
  if (!gOut || !res || (res.kind !== 'qint' && res.kind !== 'acc')) {
    throw new CompileError(gOut?.name ?? graph.name, 'the graph output is not an encrypted value');
  }
  const acc = l.toAcc(res);
  if (acc.fn) {
    throw new CompileError(gOut.name, `the output ends with ${acc.fused.join(' → ')} after the last linear layer`, 'add an output quantizer, or end the model with a linear layer');
  }
  const output: OutputDequantizer = {
    value: acc.id,
    name: gOut.name,
    shape: acc.shape,
    channels: acc.channels,
    channelStride: acc.channelStride,
    a: acc.a,
    c: acc.c,
  };
  return { input, values: l.values, ops: l.ops, output, tlus: l.tlus, nodeValues: l.nodeValues };
}

/** Evaluates a pending table's function at an accumulator value for one channel: quant(fn(a·acc + c)). */
export function evalTlu(t: PendingTlu, acc: number, ch: number): number {
  const s = t.source;
  const k = s.channels === 1 ? 0 : ch;
  let v = f32(f32(s.a[k]! * acc) + s.c[k]!);
  if (s.fn) v = s.fn(v, k);
  const q = roundHalfEven(f32(v / t.outScale));
  return q < t.outMin ? t.outMin : q > t.outMax ? t.outMax : q;
}
