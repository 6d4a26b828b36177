import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor } from '../../src/onnx/graph.js';
import { loadOnnxFile } from '../../src/onnx/import.js';
import { compileGraph } from '../../src/compiler/compile.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { circuitReport, formatReport } from '../../src/compiler/report.js';
import { roundedIndex } from '../../src/compiler/simulate.js';
import { CompileError } from '../../src/compiler/errors.js';
import { FIXTURE_DIR } from '../fixture-dir.js';

/** x(2) → Quant(s 0.5, 4-bit signed) → Gemm(W ints [[1,2],[−3,1]], s_w 1, b [0.5,−1]) → Relu → Quant(s 1, 3-bit unsigned) → Gemm([[1,−1]]). */
function handNet(opts: { secondQuant?: boolean; w2?: number[] } = {}) {
  const b = new GraphBuilder('hand');
  let x = b.input('x', ['batch', 2]);
  x = b.quant(x, { scale: 0.5, bitWidth: 4, signed: true, narrow: false });
  const w1 = b.quant(b.addInitializer('w1', floatTensor([2, 2], [1, 2, -3, 1])), { scale: 1, bitWidth: 3, signed: true, narrow: true });
  let h = b.gemm(x, w1, b.addInitializer('b1', floatTensor([2], [0.5, -1])), 'fc1');
  h = b.relu(h);
  if (opts.secondQuant !== false) h = b.quant(h, { scale: 1, bitWidth: 3, signed: false, narrow: false, name: 'q1' });
  const w2 = b.quant(b.addInitializer('w2', floatTensor([1, 2], opts.w2 ?? [1, -1])), { scale: 1, bitWidth: 3, signed: true, narrow: true });
  const y = b.gemm(h, w2, undefined, 'fc2');
  b.output(y);
  return b.build();
}
const CALIB = { data: Float32Array.from([1, 1, -1, 2, 0.5, -0.5]), n: 3 };

describe('compiler on a hand-built two-layer net', () => {
  it('report numbers equal a hand computation', () => {
    const compiled = compileGraph(handNet(), CALIB);
    const r = circuitReport(compiled);
    const row = (kind: string) => r.nodes.find((n) => n.kind === kind)!;
    // x_int = round(x / 0.5): [2,2], [−2,4], [1,−1] → range [−2, 4], 4 bits signed
    expect(r.nodes[0]!.range).toEqual([-2, 4]);
    expect(r.nodes[0]!.bits).toBe(4);
    // fc1 acc = W·x_int: [6,−4], [6,10], [−1,−4] → [−4, 10] → 5 bits signed
    const gemms = r.nodes.filter((n) => n.kind === 'gemm');
    expect(gemms[0]!.range).toEqual([-4, 10]);
    expect(gemms[0]!.bits).toBe(5);
    // table: relu(0.5·acc + b) rounded half to even: [4,0], [4,4], [0,0]; fc2 = h0 − h1: 4, 0, 0
    expect(row('tlu').range).toEqual([0, 4]);
    expect(row('tlu').tluInputBits).toBe(5);
    expect(gemms[1]!.range).toEqual([0, 4]);
    expect(r.maxBitWidth).toBe(5);
    expect(r.tluCount).toBe(2);
    expect(r.tluCountByWidth).toEqual({ 5: 2 });
    expect(r.linearOps.macs).toBe(6);
    expect(formatReport(r)).toContain('max bit width (accumulator size): 5');
  });

  it('simulate gives the hand-computed outputs', async () => {
    const m = FheModel.compile(handNet(), CALIB);
    const y = await m.forward(CALIB.data, 3, { fhe: 'simulate' });
    expect(Array.from(y.outputInts!)).toEqual([4, 0, 0]);
    const clear = await m.forward(CALIB.data, 3, { fhe: 'disable' });
    expect(Array.from(clear.output)).toEqual([4, 0, 0]);
  });

  it('large batches are evaluated in chunks with the same results, overflow counts summed', async () => {
    const m = FheModel.compile(handNet(), CALIB);
    const n = 700; // three chunks of ≤ 256
    const per = CALIB.data.length / 3;
    const x = Float32Array.from({ length: n * per }, (_, i) => CALIB.data[i % CALIB.data.length]!);
    const y = await m.forward(x, n, { fhe: 'simulate' });
    const clear = await m.forward(x, n, { fhe: 'disable' });
    expect(y.outputInts!.length).toBe(n);
    expect(Array.from(y.outputInts!)).toEqual(Array.from({ length: n }, (_, i) => [4, 0, 0][i % 3]));
    expect(Array.from(clear.output)).toEqual(Array.from({ length: n }, (_, i) => [4, 0, 0][i % 3]));
    const wide = Float32Array.from(x, (v) => 40 * v); // outside the calibrated range: tables wrap
    const once = (await m.forward(wide.subarray(0, 3 * per), 3, { fhe: 'simulate' })).overflows!;
    const many = (await m.forward(wide, n, { fhe: 'simulate' })).overflows!;
    expect(Object.keys(once).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(once)) expect(many[k]).toBeGreaterThanOrEqual(v * 233);
  });

  it('rounding keeps the top bits of the accumulator (nearest, ties up), like round_bit_pattern', async () => {
    expect([5, -5, 6, 7, -6].map((v) => roundedIndex(v, 1))).toEqual([3, -2, 3, 4, -3]);
    expect([6, 10, -4, -1].map((v) => roundedIndex(v, 2))).toEqual([2, 3, -1, 0]);
    const compiled = compileGraph(handNet(), CALIB, { roundingThresholdBits: 3 });
    const t = compiled.tables[0]!;
    expect(t.accBits).toBe(5);
    expect(t.roundBits).toBe(2);
    expect(t.inputBits).toBe(3); // indices [−1, 3]
    // acc 10 → index 3 → represents 12 → relu(6 − 1) = 5 (exact would give 4)
    const m = new FheModel(handNet(), compiled);
    const y = await m.forward(CALIB.data, 3, { fhe: 'simulate' });
    expect(Array.from(y.outputInts!)).toEqual([4, -1, 0]);
    expect(() => compileGraph(handNet(), CALIB, { roundingThresholdBits: 0 })).toThrow(/roundingThresholdBits/);
  });
});

describe('compiler errors name the node and the fix', () => {
  it('a float operation between quantizers that cannot fuse', () => {
    expect(() => compileGraph(handNet({ secondQuant: false }), CALIB)).toThrow(/node 'fc2': the input is not quantized .*Relu.*add a quantizer/);
  });

  it('a missing input quantizer', () => {
    const b = new GraphBuilder('noq');
    const x = b.input('x', ['batch', 2]);
    const w = b.quant(b.addInitializer('w', floatTensor([1, 2], [1, 1])), { scale: 1, bitWidth: 3, signed: true, narrow: true });
    b.output(b.gemm(x, w, undefined, 'fc'));
    expect(() => compileGraph(b.build(), CALIB)).toThrow(/raw model input.*QuantIdentity/);
  });

  it('float weights', () => {
    const b = new GraphBuilder('floatw');
    const x = b.quant(b.input('x', ['batch', 2]), { scale: 0.5, bitWidth: 4, signed: true, narrow: false });
    b.output(b.gemm(x, b.addInitializer('w', floatTensor([1, 2], [0.3, 0.1])), undefined, 'fc'));
    expect(() => compileGraph(b.build(), CALIB)).toThrow(/node 'fc': weights are float/);
  });

  it('an unsupported operator', () => {
    const b = new GraphBuilder('unsup');
    const x = b.quant(b.input('x', ['batch', 2]), { scale: 0.5, bitWidth: 4, signed: true, narrow: false });
    b.output(b.node('Softmax', [x], {}, { name: 'sm' }));
    expect(() => compileGraph(b.build(), CALIB)).toThrow(/node 'sm': operator Softmax is not supported/);
  });

  it('a table input wider than the limit reports the bits and what to change', () => {
    expect(() => compileGraph(handNet(), CALIB, { maxTluBits: 4 })).toThrow(CompileError);
    expect(() => compileGraph(handNet(), CALIB, { maxTluBits: 4 })).toThrow(/needs 5 bits .*\[-4, 10\].*roundingThresholdBits.*prune/);
  });

  it('an empty or mis-shaped calibration set', () => {
    expect(() => compileGraph(handNet(), { data: new Float32Array(0), n: 0 })).toThrow(/calibration set is empty/);
    expect(() => compileGraph(handNet(), { data: new Float32Array(5), n: 3 })).toThrow(/do not make 3 inputs/);
  });
});

describe('Brevitas fixtures compile and simulate to the Brevitas outputs', () => {
  for (const name of ['cb3', 'mlp_default', 'mlp_4bit', 'cnn_small']) {
    for (const fmt of ['qonnx', 'qcdq']) {
      it(`${name}.${fmt}`, async () => {
        const io = JSON.parse(fs.readFileSync(`${FIXTURE_DIR}${name}.io.json`, 'utf8'));
        const graph = loadOnnxFile(`${FIXTURE_DIR}${name}.${fmt}.onnx`);
        const n = io.input_shape[0];
        const m = FheModel.compile(graph, { data: io.x, n });
        const y = await m.forward(io.x, n, { fhe: 'simulate' });
        const classes = io.output_shape[1];
        let maxDiff = 0;
        for (let i = 0; i < y.output.length; i++) maxDiff = Math.max(maxDiff, Math.abs(y.output[i]! - io.y[i]));
        expect(maxDiff).toBeLessThanOrEqual(1e-4);
        for (let s = 0; s < n; s++) {
          const row = (v: ArrayLike<number>) => Array.from({ length: classes }, (_, c) => Number(v[s * classes + c]));
          const am = (r: number[]) => r.indexOf(Math.max(...r));
          expect(am(row(y.output))).toBe(am(row(io.y)));
        }
      });
    }
  }
});
