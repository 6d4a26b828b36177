/** Interpreter semantics: Brevitas Quant rules, and every float op checked against onnxruntime. */
import { describe, expect, it } from 'vitest';
import {
  Attr,
  encodeModel,
  floatTensor,
  GraphBuilder,
  inspectGraph,
  quantBounds,
  roundHalfEven,
  runGraph,
  tensorFrom,
  type Graph,
} from '../../src/onnx/index.js';
import { ORT_MISSING, maxAbsDiff, rng, runOrt } from './helpers.js';

describe('Quant semantics (Brevitas)', () => {
  it('rounds half to even', () => {
    expect([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([-2, -2, 0, 0, 2, 2, 2, 3]);
  });

  it('integer bounds for signed/narrow/unsigned', () => {
    expect(quantBounds(8, true, false)).toEqual([-128, 127]);
    expect(quantBounds(8, true, true)).toEqual([-127, 127]);
    expect(quantBounds(8, false, false)).toEqual([0, 255]);
    expect(quantBounds(8, false, true)).toEqual([0, 254]);
    expect(quantBounds(3, true, true)).toEqual([-3, 3]);
    expect(quantBounds(4, false, false)).toEqual([0, 15]);
  });

  it('Quant clamps, rounds ties to even and dequantizes; BipolarQuant gives ±scale', () => {
    const b = new GraphBuilder('q');
    const x = b.input('x', ['batch', 8]);
    b.output(b.quant(x, { scale: 0.5, bitWidth: 3, signed: true, narrow: true }));
    b.output(b.quant(x, { scale: 0.5, bitWidth: 2, signed: false, narrow: false }));
    b.output(b.quant(x, { scale: 0.5, zeroPoint: 1, bitWidth: 3, signed: true, narrow: false }));
    b.output(b.bipolarQuant(x, 0.25));
    const g = b.build();
    const data = Float32Array.of(-10, -0.75, -0.25, 0.25, 0.75, 1.25, 1.3, 10);
    const outs = [...runGraph(g, { x: { dims: [1, 8], data } }).outputs.values()].map((t) => Array.from(t.data as Float32Array, (v) => v + 0)); // +0 folds -0
    // x/s = -20, -1.5, -0.5, 0.5, 1.5, 2.5, 2.6, 20
    expect(outs[0]).toEqual([-1.5, -1, 0, 0, 1, 1, 1.5, 1.5]);
    expect(outs[1]).toEqual([0, 0, 0, 0, 1, 1, 1.5, 1.5]);
    // with zero point 1: round(x/s + 1) = -19, 0, 0, 2, 2, 4, 4, 21 → clamp to [-4, 3] → minus 1 → × 0.5
    expect(outs[2]).toEqual([-2.5, -0.5, -0.5, 0.5, 0.5, 1, 1, 1]);
    expect(outs[3]).toEqual([-0.25, -0.25, -0.25, 0.25, 0.25, 0.25, 0.25, 0.25]);
  });
});

/** Runs a builder graph in the interpreter and in onnxruntime; returns max |Δ| over all outputs. */
async function compareWithOrt(g: Graph, feeds: Record<string, { dims: number[]; data: Float32Array }>): Promise<number> {
  const mine = runGraph(g, feeds).outputs;
  const theirs = await runOrt(encodeModel(g, { irVersion: 8 }), feeds);
  let d = 0;
  for (const [name, t] of mine) {
    const o = theirs.get(name)!;
    expect(o.dims).toEqual(t.dims);
    d = Math.max(d, maxAbsDiff(o.data, t.data));
  }
  return d;
}

function randomData(seed: number, n: number, scale = 2): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

describe.skipIf(ORT_MISSING !== undefined)('operators agree with onnxruntime', () => {
  it('Conv (stride, dilation, group, SAME padding), pools (ceil_mode, pads, count_include_pad), BatchNorm', async () => {
    const b = new GraphBuilder('conv_pool', { opset: 19 });
    const x = b.input('x', ['batch', 4, 9, 7]);
    const w = b.addInitializer('w', floatTensor([6, 2, 3, 2], randomData(1, 72, 0.5)));
    const bias = b.addInitializer('b', floatTensor([6], randomData(2, 6, 0.5)));
    b.output(b.conv(x, w, bias, { kernelShape: [3, 2], strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2], group: 2 }));
    b.output(b.node('Conv', [x, w], { auto_pad: Attr.string('SAME_UPPER'), group: Attr.int(2), strides: Attr.ints([2, 2]) }));
    const poolAttrs = { kernel_shape: Attr.ints([3, 3]), strides: Attr.ints([2, 2]), pads: Attr.ints([1, 1, 1, 0]), ceil_mode: Attr.int(1) };
    b.output(b.node('MaxPool', [x], poolAttrs));
    b.output(b.node('AveragePool', [x], poolAttrs));
    b.output(b.node('AveragePool', [x], { ...poolAttrs, count_include_pad: Attr.int(1) }));
    b.output(b.node('GlobalAveragePool', [x]));
    const c = (name: string, seed: number, off = 0) => b.addInitializer(name, floatTensor([4], Array.from(randomData(seed, 4, 0.5), (v) => v + off)));
    b.output(b.batchNorm(x, c('g', 3, 1), c('beta', 4), c('mean', 5), c('var', 6, 1)));
    const d = await compareWithOrt(b.build(), { x: { dims: [2, 4, 9, 7], data: randomData(7, 2 * 4 * 9 * 7) } });
    expect(d).toBeLessThan(1e-5);
  });

  it('Gemm/MatMul broadcasting, elementwise, Reshape, Flatten, Transpose, Pad modes, Concat, Clip, Sigmoid', async () => {
    const b = new GraphBuilder('misc', { opset: 14 });
    const x = b.input('x', ['batch', 3, 4]);
    const m = b.addInitializer('m', floatTensor([4, 5], randomData(8, 20)));
    b.output(b.node('MatMul', [x, m]));
    const flat = b.flatten(x);
    b.output(b.node('Gemm', [flat, b.addInitializer('gw', floatTensor([12, 3], randomData(9, 36))), b.addInitializer('gb', floatTensor([1, 3], randomData(10, 3)))], { alpha: Attr.float(0.5), beta: Attr.float(2) }));
    const row = b.addInitializer('row', floatTensor([4], randomData(11, 4)));
    b.output(b.node('Add', [x, row]));
    b.output(b.node('Sub', [row, x]));
    b.output(b.node('Mul', [x, b.addInitializer('col', floatTensor([3, 1], randomData(12, 3)))]));
    b.output(b.node('Div', [x, b.addInitializer('two', floatTensor([], [2]))]));
    b.output(b.node('Reshape', [x, b.addInitializer('shape', tensorFrom('int64', [3], [0, -1, 2]))]));
    b.output(b.node('Transpose', [x], { perm: Attr.ints([2, 0, 1]) }));
    for (const mode of ['constant', 'edge', 'reflect']) {
      const pads = b.addInitializer(`pads_${mode}`, tensorFrom('int64', [6], [0, 1, 2, 0, 2, 1]));
      const inputs = mode === 'constant' ? [x, pads, b.addInitializer('padv', floatTensor([], [0.5]))] : [x, pads];
      b.output(b.node('Pad', inputs, { mode: Attr.string(mode) }));
    }
    b.output(b.node('Concat', [x, b.node('Relu', [x]), x], { axis: Attr.int(-1) }));
    b.output(b.node('Clip', [x, b.addInitializer('lo', floatTensor([], [-0.5])), b.addInitializer('hi', floatTensor([], [0.7]))]));
    b.output(b.node('Sigmoid', [x]));
    b.output(b.node('Identity', [x]));
    const d = await compareWithOrt(b.build(), { x: { dims: [2, 3, 4], data: randomData(13, 24) } });
    expect(d).toBeLessThan(1e-5);
  });

  it('QuantizeLinear/DequantizeLinear: saturation, int8/uint8 zero points, per-axis', async () => {
    const b = new GraphBuilder('qdq', { opset: 13 });
    const x = b.input('x', ['batch', 3, 5]);
    const s = b.addInitializer('s', floatTensor([], [0.01]));
    const zi = b.addInitializer('zi', tensorFrom('int8', [], [3]));
    const zu = b.addInitializer('zu', tensorFrom('uint8', [], [128]));
    b.output(b.node('DequantizeLinear', [b.node('QuantizeLinear', [x, s, zi]), s, zi]));
    b.output(b.node('DequantizeLinear', [b.node('QuantizeLinear', [x, s, zu]), s, zu]));
    b.output(b.node('DequantizeLinear', [b.node('QuantizeLinear', [x, s]), s]));
    const sa = b.addInitializer('sa', floatTensor([3], [0.01, 0.02, 0.05]));
    const za = b.addInitializer('za', tensorFrom('int8', [3], [0, -5, 7]));
    const q = b.node('QuantizeLinear', [x, sa, za], { axis: Attr.int(1) });
    const lo = b.addInitializer('clo', tensorFrom('int8', [], [-20]));
    const hi = b.addInitializer('chi', tensorFrom('int8', [], [20]));
    b.output(b.node('DequantizeLinear', [b.node('Clip', [q, lo, hi]), sa, za], { axis: Attr.int(1) }));
    const g = b.build();
    const data = randomData(14, 30, 3); // well beyond ±1.28: saturates
    data[0] = 0.025; // a tie: 2.5 → 2
    data[1] = 0.035; // 3.5 → 4
    const d = await compareWithOrt(g, { x: { dims: [2, 3, 5], data } });
    expect(d).toBeLessThan(1e-6);
    expect(inspectGraph(g).json.ops.QuantizeLinear).toBe(4);
  });
});
