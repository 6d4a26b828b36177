import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { IntQuantizer } from '../../src/quant/quantizer.js';
import { intRange } from '../../src/quant/int-range.js';
import { QuantIdentity, QuantLinear, QuantReLU } from '../../src/quant/layers.js';
import { QuantTensor } from '../../src/nn/quant-tensor.js';

beforeAll(async () => {
  await initBackend();
});

/** The QONNX Quant formula in plain JS (float64 division, round half to even). */
function qonnxQuant(x: number, scale: number, bits: number, signed: boolean, narrow: boolean): number {
  const min = signed ? (narrow ? -(2 ** (bits - 1)) + 1 : -(2 ** (bits - 1))) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : narrow ? 2 ** bits - 2 : 2 ** bits - 1;
  const v = Math.fround(x / scale);
  const r = Math.round(v);
  const even = Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
  return Math.min(max, Math.max(min, even)) * scale;
}

describe('IntQuantizer forward', () => {
  // float32 inputs, as the tensor holds them, so the reference divides exactly what tfjs divides.
  const xs = Array.from({ length: 401 }, (_, i) => -3 + (6 * i) / 400).concat([0.5, 1.5, 2.5, -0.5, -2.5, 0.25, 0.75]).map(Math.fround);
  for (const signed of [true, false]) {
    for (const narrow of [false, true]) {
      for (let bits = 2; bits <= 8; bits++) {
        it(`equals the QONNX formula: ${bits}-bit ${signed ? 'signed' : 'unsigned'}${narrow ? ' narrow' : ''}`, () => {
          const maxVal = 2.25;
          const q = new IntQuantizer({ bitWidth: bits, signed, narrow, scaling: 'const', maxVal });
          const { min, max } = intRange({ bitWidth: bits, signed, narrow });
          const scale = maxVal / (signed ? -min : max);
          const out = q.call(tf.tensor1d(xs)) as QuantTensor;
          const got = out.value.dataSync();
          const ints = out.int().dataSync();
          xs.forEach((x, i) => {
            expect(got[i]).toBeCloseTo(qonnxQuant(x, Math.fround(scale), bits, signed, narrow), 6);
            expect(ints[i]).toBeGreaterThanOrEqual(min);
            expect(ints[i]).toBeLessThanOrEqual(max);
          });
          expect(out.bitWidth).toBe(bits);
          expect(out.signed).toBe(signed);
          expect(out.scale.dataSync()[0]).toBeCloseTo(scale, 7);
        });
      }
    }
  }

  it('rounds half to even like Brevitas', () => {
    const q = new IntQuantizer({ bitWidth: 8, signed: true, narrow: false, scaling: 'const', maxVal: 128 });
    expect(Array.from((q.call(tf.tensor1d([0.5, 1.5, 2.5, -0.5, -1.5])) as QuantTensor).value.dataSync())).toEqual([0, 2, 2, -0, -2]);
  });

  it('scales per output channel with absmax', () => {
    const q = new IntQuantizer({ bitWidth: 4, signed: true, narrow: true, scaling: 'absmax', perChannel: true });
    const w = tf.tensor2d([[0.7, -1.4], [0.1, 0.05]]);
    const out = q.call(w) as QuantTensor;
    expect(out.scale.shape).toEqual([2, 1]);
    const s = out.scale.dataSync();
    expect(s[0]).toBeCloseTo(1.4 / 7, 6);
    expect(s[1]).toBeCloseTo(0.1 / 7, 6);
    expect(Array.from(out.int().dataSync())).toEqual([4, -7, 7, 4]); // 0.05/(0.1/7) = 3.5 → 4 (half to even)
  });

  it('restricts scales to powers of two', () => {
    const q = new IntQuantizer({ bitWidth: 8, signed: true, narrow: false, scaling: 'const', maxVal: 1, powerOfTwo: true });
    expect(q.evalScale()).toBe(2 ** -7);
    const q2 = new IntQuantizer({ bitWidth: 8, signed: true, narrow: false, scaling: 'const', maxVal: 0.7, powerOfTwo: true });
    expect(q2.evalScale()).toBe(2 ** -7); // 2^ceil(log2 0.7) = 1
  });
});

describe('quantizer gradients', () => {
  it('round is straight-through inside the range; activation clamp gradient is zero outside', () => {
    const q = new IntQuantizer({ bitWidth: 3, signed: true, narrow: true, scaling: 'const', maxVal: 1 });
    const x = tf.tensor1d([0.1, 0.4, -0.9, 1.5, -2]);
    const g = tf.grad((t: tf.Tensor) => tf.sum((q.call(t) as QuantTensor).value))(x);
    expect(Array.from(g.dataSync())).toEqual([1, 1, 1, 0, 0]);
  });

  it('weight clamp is straight-through everywhere', () => {
    const q = new IntQuantizer({ bitWidth: 3, signed: true, narrow: true, scaling: 'const', maxVal: 1, clampSte: true });
    const g = tf.grad((t: tf.Tensor) => tf.sum((q.call(t) as QuantTensor).value))(tf.tensor1d([0.1, 1.5, -2]));
    expect(Array.from(g.dataSync())).toEqual([1, 1, 1]);
  });

  it('learned scale gradient follows the stated formula (round(x/s) − x/s inside, max/min int outside, ÷ threshold)', () => {
    const q = new IntQuantizer({ bitWidth: 4, signed: true, narrow: false, scaling: 'learned', collectSteps: 0 });
    q.train();
    const pName = q.namedParameters()[0]![1];
    pName.assign(tf.scalar(2.0)); // s = 2 / 8 = 0.25
    const xs = [0.3, -0.6, 0.9, 5, -5];
    const { grads } = tf.variableGrads(() => tf.sum((q.call(tf.tensor1d(xs)) as QuantTensor).value) as tf.Scalar, [pName]);
    const s = 0.25;
    const expected = xs
      .map((x) => {
        const v = x / s;
        if (Math.round(v) > 7) return 7;
        if (Math.round(v) < -8) return -8;
        return Math.round(v) - v;
      })
      .reduce((a, b) => a + b, 0) / 8;
    expect(grads[pName.name]!.dataSync()[0]).toBeCloseTo(expected, 5);
  });

  it('learned scale: statistics for collectSteps forwards (EMA, first batch as is), then the parameter takes over', () => {
    const q = new IntQuantizer({ bitWidth: 8, signed: false, narrow: false, scaling: 'learned', collectSteps: 3, momentum: 0.1 });
    q.train();
    const batches = [2.55, 5.1, 1.02];
    for (const m of batches) q.call(tf.tensor1d([0, m / 2, m]));
    const ema = (2.55 * 0.9 + 5.1 * 0.1) * 0.9 + 1.02 * 0.1;
    expect(q.evalScale()).toBeCloseTo(ema / 255, 6);
    expect(q.collecting).toBe(false);
    q.eval();
    const out = q.call(tf.tensor1d([ema])) as QuantTensor;
    expect(out.int().dataSync()[0]).toBe(255);
  });

  it('eval before any statistics uses the initial buffer (scale 1/threshold)', () => {
    const q = new QuantIdentity();
    q.eval();
    expect(q.actQuant.evalScale()).toBeCloseTo(1 / 128, 8);
  });
});

describe('quant layers', () => {
  it('QuantLinear output equals the integer computation x_int·W_intᵀ·s_x·s_w + b', () => {
    const inp = new QuantIdentity({ bitWidth: 4, actQuant: { scaling: 'const', maxVal: 2 } });
    const fc = new QuantLinear(3, 2, { weightBitWidth: 3 });
    const x = tf.tensor2d([[0.3, -1.2, 1.9], [0.0, 0.5, -0.25]]);
    const xq = inp.call(x) as QuantTensor;
    const y = (fc.call(xq) as tf.Tensor).arraySync() as number[][];
    const w = fc.quantWeight();
    const xi = xq.int().arraySync() as number[][];
    const wi = w.int().arraySync() as number[][];
    const sx = xq.scale.dataSync()[0]!;
    const sw = w.scale.dataSync()[0]!;
    const b = fc.bias!.dataSync();
    for (let n = 0; n < 2; n++) {
      for (let o = 0; o < 2; o++) {
        const acc = xi[n]!.reduce((a, v, k) => a + v * wi[o]![k]!, 0);
        expect(y[n]![o]).toBeCloseTo(acc * sx * sw + b[o]!, 5);
      }
    }
  });

  it('QuantReLU is unsigned and non-negative', () => {
    const r = new QuantReLU({ bitWidth: 3, actQuant: { scaling: 'const', maxVal: 7 } });
    const out = r.call(tf.tensor1d([-1, 0.4, 3.6, 9])) as QuantTensor;
    expect(Array.from(out.int().dataSync())).toEqual([0, 0, 4, 7]);
    expect(out.signed).toBe(false);
  });
});

describe('learned scale on large tensors', () => {
  it('uses the 99.999th percentile of |x| above 50,000 values and still trains (gradient through the selected element)', async () => {
    const { kthLargestIndex } = await import('../../src/quant/quantizer.js');
    const v = Float32Array.from([5, 1, 9, 3, 7]);
    expect([1, 2, 3, 5].map((k) => v[kthLargestIndex(v, k)])).toEqual([9, 7, 5, 1]);
    const q = new IntQuantizer({ bitWidth: 4, signed: false, narrow: false, scaling: 'learned', collectSteps: 2 });
    q.train();
    const n = 60_000;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = i / n;
    data[123] = 1000; // one outlier: the percentile ignores it, the max would not
    const x = tf.variable(tf.tensor1d(data));
    const { grads } = tf.variableGrads(() => tf.sum((q.call(x) as QuantTensor).value) as tf.Scalar, [x]);
    expect(grads[x.name]!.shape).toEqual([n]);
    const k = n - Math.floor(0.99999 * (n - 1));
    expect(q.evalScale()!).toBeCloseTo((n - k) / n / 15, 4);
  });
});
