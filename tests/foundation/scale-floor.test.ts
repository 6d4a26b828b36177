/**
 * The scale floor (Brevitas `scaling_min_val`, default 1e-10 for statistics-based and learned scales): without it a
 * batch of dead ReLUs or an all-zero weight row gives scale 0 and NaN outputs, and a learned scale that crosses zero
 * gives a zero (or mirrored) scale.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { DEFAULT_SCALING_MIN_VAL, IntQuantizer } from '../../src/quant/quantizer.js';
import { QuantLinear, QuantReLU } from '../../src/quant/layers.js';
import { QuantTensor } from '../../src/nn/quant-tensor.js';
import { absBinarySignGrad } from '../../src/quant/ste.js';

beforeAll(async () => {
  await initBackend();
});

const finite = (t: tf.Tensor) => Array.from(t.dataSync()).every(Number.isFinite);

describe('scale floor (scaling_min_val)', () => {
  it('defaults to Brevitas 1e-10 for learned and absmax, none for const', () => {
    expect(DEFAULT_SCALING_MIN_VAL).toBe(1e-10);
    expect(new IntQuantizer({ bitWidth: 3, signed: false, narrow: false, scaling: 'learned' }).opts.scalingMinVal).toBe(1e-10);
    expect(new IntQuantizer({ bitWidth: 3, signed: true, narrow: true, scaling: 'absmax' }).opts.scalingMinVal).toBe(1e-10);
    expect(new IntQuantizer({ bitWidth: 3, signed: true, narrow: true, scaling: 'const', maxVal: 1 }).opts.scalingMinVal).toBe(0);
    expect(() => new IntQuantizer({ bitWidth: 3, signed: true, narrow: true, scaling: 'absmax', scalingMinVal: -1 })).toThrow(/scalingMinVal/);
  });

  it('a batch of dead ReLUs while collecting statistics gives zeros, not NaN, and a finite buffer', () => {
    const relu = new QuantReLU({ bitWidth: 3 });
    relu.train();
    const out = relu.call(tf.tensor2d([[-1, -2], [-0.5, -3]])) as QuantTensor;
    expect(finite(out.value)).toBe(true);
    expect(Array.from(out.value.dataSync())).toEqual([0, 0, 0, 0]);
    expect(relu.actQuant.evalScale()! / (1e-10 / 7)).toBeCloseTo(1, 5);
    // … and the next, live batch still trains (EMA from the floor).
    const out2 = relu.call(tf.tensor2d([[0.7, 0.1]])) as QuantTensor;
    expect(finite(out2.value)).toBe(true);
  });

  it('an all-zero weight (row) quantizes to zeros, not NaN, per tensor and per channel', () => {
    const fc = new QuantLinear(3, 2, { weightQuant: { bitWidth: 3, perChannel: true } });
    fc.weight.assign(tf.tensor2d([[0, 0, 0], [0.5, -0.25, 1]]));
    const y = fc.call(tf.tensor2d([[1, 2, 3]]));
    expect(finite((y as QuantTensor).value ?? (y as tf.Tensor))).toBe(true);
    const q = new IntQuantizer({ bitWidth: 3, signed: true, narrow: true, scaling: 'absmax', clampSte: true });
    const w = tf.variable(tf.zeros([4, 4]));
    const { value, grads } = tf.variableGrads(() => tf.sum((q.call(w) as QuantTensor).value) as tf.Scalar, [w]);
    expect(finite(value)).toBe(true);
    for (const g of Object.values(grads)) expect(finite(g)).toBe(true);
  });

  it('a learned parameter below zero gives the floor (not |value|) and a straight-through gradient', () => {
    const q = new IntQuantizer({ bitWidth: 3, signed: false, narrow: false, scaling: 'learned', collectSteps: 0 });
    q.train();
    const p = q.namedParameters()[0]![1];
    p.assign(tf.scalar(-0.7));
    expect(q.evalScale()! / 1e-10).toBeCloseTo(1, 5);
    const xs = tf.tensor1d([0.2, 0.5]);
    const { value, grads } = tf.variableGrads(() => tf.sum((q.call(xs) as QuantTensor).value) as tf.Scalar, [p]);
    expect(finite(value)).toBe(true);
    // Both inputs are far above the range: each output = maxInt·s, so ∂/∂value = 2·7·(1/7) through the STE floor.
    expect(grads[p.name]!.dataSync()[0]).toBeCloseTo(2, 5);
    // A zero parameter also gets a gradient (binary sign: sign(0) = +1), where tf.abs's would be 0.
    p.assign(tf.scalar(0));
    const g0 = tf.variableGrads(() => tf.sum((q.call(xs) as QuantTensor).value) as tf.Scalar, [p]).grads[p.name]!.dataSync()[0]!;
    expect(g0).toBeCloseTo(2, 5);
  });

  it('absBinarySignGrad: |x| forward, sign with sign(0) = +1 backward', () => {
    const x = tf.tensor1d([-2, 0, 3]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(absBinarySignGrad(t)))(x);
    expect(Array.from(absBinarySignGrad(x).dataSync())).toEqual([2, 0, 3]);
    expect(Array.from(g.dataSync())).toEqual([-1, 1, 1]);
  });
});
