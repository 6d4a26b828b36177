import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { Linear, ReLU } from '../../src/nn/layers.js';
import { QuantIdentity, QuantLinear, QuantReLU } from '../../src/quant/layers.js';
import {
  QuantChain,
  calibratedActQuant,
  mseClip,
  quantizeOutputs,
  quantizePostTraining,
  quantizePostTrainingWithReport,
  referenceActParams,
  referenceActQuant,
  rint,
} from '../../src/ptq/module-ptq.js';
import type { Dataset } from '../../src/train/dataset.js';
import { evaluate, fit, predict } from '../../src/train/trainer.js';
import { head } from '../../src/train/dataset.js';
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import { SimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';

beforeAll(async () => {
  await initBackend();
});

/** A fixed 2 → 2 → ReLU → 2 chain. */
function tinyNet(w1: number[], b1: number[], w2: number[]): QuantChain {
  const fc1 = new Linear(2, 2);
  fc1.weight.assign(tf.tensor2d(w1, [2, 2]));
  fc1.bias!.assign(tf.tensor1d(b1));
  const fc2 = new Linear(2, 2);
  fc2.weight.assign(tf.tensor2d(w2, [2, 2]));
  fc2.bias!.assign(tf.tensor1d([0, 0]));
  return new QuantChain([['fc1', fc1], ['relu1', new ReLU()], ['fc2', fc2]]);
}

const data = (xs: number[][]): Dataset => ({ x: Float32Array.from(xs.flat()), y: new Int32Array(xs.length), sampleShape: [2], numClasses: 2 });

describe("Concrete ML's PTQ quantizer parameters", () => {
  it('rounds half to even like numpy.rint', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6].map(rint)).toEqual([0, 2, 2, 0, -2, -2, 2, 3]);
  });

  it('asymmetric op-input quantizer: s = (max − min)/(2^n − 1), z = round(−min·(2^n − 1)/(max − min))', () => {
    expect(referenceActParams(0, 7, 3)).toEqual({ scale: 1, zeroPoint: 0 });
    const d = referenceActParams(-0.035, 1.035, 3); // data in [0, 1] with N(0, 0.01²) noise
    expect(d.scale).toBeCloseTo(1.07 / 7, 12);
    expect(d.zeroPoint).toBe(0);
    expect(referenceActParams(-1, 1, 3)).toEqual({ scale: 2 / 7, zeroPoint: 4 }); // 3.5 → 4 (half to even)
    expect(referenceActParams(-0.5, 1, 3).zeroPoint).toBe(2); // 2.33
    expect(referenceActParams(0.4, 0.4, 3)).toEqual({ scale: 0.4, zeroPoint: 0 }); // a single value quantizes to 1
  });

  it('fhenet builds that quantizer exactly where z = 0, and falls back where it is not', () => {
    expect(referenceActQuant(-0.035, 1.035, 3)).toMatchObject({ signed: false, bitWidth: 3 });
    expect(referenceActQuant(-0.035, 1.035, 3).maxVal).toBeCloseTo(1.07, 12);
    expect(referenceActQuant(0, 2, 3)).toMatchObject({ signed: false, maxVal: 2 });
    expect(referenceActQuant(-1, 1, 3)).toEqual(calibratedActQuant(-1, 1, 3));
  });

  it('quantizes the logits with the 5-bit asymmetric output quantizer', () => {
    const calib = Float32Array.from([-1, 2.1]);
    const s = 3.1 / 31;
    const z = rint(31 / 3.1);
    const out = quantizeOutputs(Float32Array.from([0.26, -5, 9]), calib, 5);
    expect(out[0]).toBeCloseTo(s * (rint(0.26 / s + z) - z), 6);
    expect(out[1]).toBeCloseTo(s * (0 - z), 6); // clipped at integer 0
    expect(out[2]).toBeCloseTo(s * (31 - z), 6); // clipped at 31
  });
});

describe('quantizePostTraining (reference-faithful default)', () => {
  it('input: asymmetric min/max scale; weights: max|W|/3; activations: on the quantized prefix', () => {
    const net = tinyNet([1.5, -0.6, 0.2, 0.9], [0.05, -0.1], [1, -1, 0.3, 0.2]);
    const calib = data([[-0.03, 0.2], [1.04, 0.5], [0.33, 0.71], [0.6, 0.1], [0.9, 0.95]]);
    const { model: q, quantizers } = quantizePostTrainingWithReport(net, calib, { bits: 3 });
    expect(q.namedChildren().map(([n]) => n)).toEqual(['quant_inp', 'fc1', 'relu1', 'fc2']);
    const inp = q.getModule('quant_inp') as QuantIdentity;
    expect(inp.actQuant.opts).toMatchObject({ signed: false, scaling: 'const' });
    expect(inp.actQuant.opts.maxVal).toBeCloseTo(1.07, 6);
    expect(quantizers[0]).toMatchObject({ name: 'quant_inp', referenceZeroPoint: 0, signed: false });
    expect(quantizers[0]!.scale).toBeCloseTo(1.07 / 7, 6);
    const fc1 = q.getModule('fc1') as QuantLinear;
    const w = fc1.quantWeight();
    expect(w.scale.dataSync()[0]).toBeCloseTo(1.5 / 3, 6);
    expect(Array.from(w.int().dataSync())).toEqual([3, -1, 0, 2]); // 1.5/0.5, −1.2→−1, 0.4→0, 1.8→2
    // relu1's range: max over the calibration set of relu(fc1(quantized input)) with the quantized weights.
    const s = 1.07 / 7;
    const xs = [[-0.03, 0.2], [1.04, 0.5], [0.33, 0.71], [0.6, 0.1], [0.9, 0.95]];
    const wq = [[1.5, -0.5], [0, 1]];
    let max = 0;
    for (const [a, b] of xs) {
      const qa = Math.min(7, Math.max(0, rint(a! / s))) * s;
      const qb = Math.min(7, Math.max(0, rint(b! / s))) * s;
      max = Math.max(max, wq[0]![0]! * qa + wq[0]![1]! * qb + 0.05, wq[1]![0]! * qa + wq[1]![1]! * qb - 0.1);
    }
    const relu = q.getModule('relu1') as QuantReLU;
    expect(relu.actQuant.opts.maxVal).toBeCloseTo(max, 5);
    // On the float net's values instead (sequential: false): the float maximum.
    const floatMax = Math.max(...xs.flatMap(([a, b]) => [1.5 * a! - 0.6 * b! + 0.05, 0.2 * a! + 0.9 * b! - 0.1]));
    const qf = quantizePostTraining(net, calib, { bits: 3, sequential: false });
    expect((qf.getModule('relu1') as QuantReLU).actQuant.opts.maxVal).toBeCloseTo(floatMax, 5);
    expect(floatMax).not.toBeCloseTo(max, 3);
    // The chain computes what the quantizers say.
    const out = predict(q, calib);
    expect(out.every(Number.isFinite)).toBe(true);
    q.dispose();
    qf.dispose();
  });

  it('refuses an empty calibration set and a bad percentile', () => {
    const net = tinyNet([1, 0, 0, 1], [0, 0], [1, 0, 0, 1]);
    expect(() => quantizePostTraining(net, data([]), { bits: 3 })).toThrow(/non-empty calibration/);
    expect(() => quantizePostTraining(net, data([[0, 1]]), { bits: 3, calibration: { percentile: 0 } })).toThrow(/percentile/);
  });
});

describe("fhenet's own PTQ calibrations", () => {
  it('MSE clipping: lower squared error than max-clipping when an outlier stretches the range', () => {
    const v = new Float32Array(1001);
    for (let i = 0; i < 1000; i++) v[i] = Math.sin(i) * 0.3;
    v[1000] = 3;
    const c = mseClip(v, 3, -3, 3);
    expect(c).toBeLessThan(3);
    expect(c).toBeGreaterThan(0.2);
    const err = (clip: number) => {
      const s = clip / 3;
      return v.reduce((e, x) => e + (x - Math.min(3, Math.max(-3, rint(x / s))) * s) ** 2, 0);
    };
    expect(err(c)).toBeLessThan(err(3));
  });

  it('per-channel MSE weights: one scale per output neuron, weights clipped to it', () => {
    const net = tinyNet([3, -0.1, 0.2, 0.3], [0, 0], [1, 0.5, 0.25, -1]);
    const calib = data([[0, 0.1], [1, 0.5], [0.3, 0.7], [0.6, 1]]);
    const q = quantizePostTraining(net, calib, { bits: 3, weightCalibration: 'mse', perChannelWeights: true, calibration: 'mse' });
    const w = (q.getModule('fc1') as QuantLinear).quantWeight();
    const scales = Array.from(w.scale.dataSync());
    expect(scales.length).toBe(2);
    expect(scales[1]).toBeCloseTo(mseClip(Float32Array.from([0.2, 0.3]), 3, -3, 3) / 3, 5);
    expect(scales[0]).toBeLessThanOrEqual(1 + 1e-6);
    const ints = Array.from(w.int().dataSync());
    expect(Math.max(...ints.map(Math.abs))).toBeLessThanOrEqual(3);
    const relu = q.getModule('relu1') as QuantReLU;
    expect(relu.actQuant.opts.signed).toBe(false);
    q.dispose();
  });

  it('accuracy-driven search: never worse on the calibration set, and within the accumulator budget it is given', async () => {
    manualSeed(3);
    const d = generateCheckerboard({ seed: 3 });
    const train = head(d.train, 1500);
    const net = new SimpleNet(12);
    await fit(net, { train }, { epochs: 3, batchSize: 32, lr: 0.01, progress: 'silent' });
    const acc = (m: Parameters<typeof evaluate>[0]) => evaluate(m, train).accuracy;
    const base = quantizePostTraining(net, train, { bits: 3 });
    const baseBits = analyzeAccumulators(base, train).bits;
    const searched = quantizePostTrainingWithReport(net, train, { bits: 3, search: { samples: 1500 } });
    expect(acc(searched.model)).toBeGreaterThanOrEqual(acc(base));
    const capped = quantizePostTraining(net, train, { bits: 3, search: { samples: 1500, maxAccumulatorBits: 'initial' } });
    expect(acc(capped)).toBeGreaterThanOrEqual(acc(base));
    expect(analyzeAccumulators(capped, train).bits).toBeLessThanOrEqual(baseBits);
    // Clips only shrink: every reported clip ≤ the calibrated maximum.
    for (const info of searched.quantizers) expect(info.clip).toBeLessThanOrEqual(info.max - Math.min(info.min, 0) + 1e-6);
    expect(() => quantizePostTraining(net, train, { bits: 3, search: { grid: [0] } })).toThrow(/grid/);
    for (const m of [base, searched.model, capped]) m.dispose();
  });
});
