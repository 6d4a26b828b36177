import { beforeAll, describe, expect, it } from 'vitest';
import { diagonalTask } from './separable.js';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { analyzeAccumulators, formatAccumulatorReport, weightBounds } from '../../src/analysis/accumulator.js';
import { signedBits } from '../../src/quant/bits.js';
import { QuantSimpleNet, SimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { QuantIdentity, QuantLinear } from '../../src/quant/layers.js';
import { QuantChain, quantizePostTraining } from '../../src/ptq/module-ptq.js';
import { pruneKNonZero } from '../../src/prune/index.js';
import { type Dataset, head } from '../../src/train/dataset.js';
import { evaluate, fit, predict } from '../../src/train/trainer.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { ConfigError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

beforeAll(async () => {
  await initBackend();
});

const ds = (rows: number[][]): Dataset => ({ x: Float32Array.from(rows.flat()), y: new Int32Array(rows.length), sampleShape: [rows[0]!.length], numClasses: 2 });

function randomData(n: number, lo: number, hi: number, seed: number): Dataset {
  const r = new Rng(seed);
  return { x: Float32Array.from({ length: 2 * n }, () => r.uniform(lo, hi)), y: new Int32Array(n), sampleShape: [2], numClasses: 2 };
}

describe('signed bit width convention', () => {
  it('counts the bits of the smallest signed integer holding [min, max]', () => {
    expect(signedBits(0, 0)).toBe(1);
    expect(signedBits(-1, 0)).toBe(1);
    expect(signedBits(0, 1)).toBe(2);
    expect(signedBits(-16, 15)).toBe(5);
    expect(signedBits(-17, 0)).toBe(6);
    expect(signedBits(0, 16)).toBe(6);
    // The notebook net's accumulators (shared fixtures): 18 → 6, 102 → 8, 36 → 7 bits.
    expect([18, 102, 36].map((m) => signedBits(0, m))).toEqual([6, 8, 7]);
  });
});

describe('accumulator analysis', () => {
  const c = { bitWidth: 3, signed: true, narrow: true, scaling: 'const' as const, maxVal: 1 };
  const handBuilt = () => {
    const fc = new QuantLinear(3, 2, { weightQuant: { ...c, clampSte: true } });
    fc.weight.assign(tf.div(tf.tensor2d([[3, -2, 1], [0, -3, 2]]), 3));
    fc.bias!.assign(tf.tensor1d([100, -100])); // excluded from the accumulator
    return new QuantChain([['quant_inp', new QuantIdentity({ actQuant: c })], ['fc', fc]]);
  };

  it('equals a hand computation on a hand-built layer', () => {
    // Input ints: round(3x) → [3, 1, −3] and [−2, 3, 0]; weight ints [[3, −2, 1], [0, −3, 2]].
    // Accumulators: [9 − 2 − 3, 0 − 2 − 6] = [4, −8] and [−6 − 6 + 0, 0 − 9 + 0] = [−12, −9] → [−12, 4], 5 bits.
    const r = analyzeAccumulators(handBuilt(), ds([[1, 0.34, -1], [-0.66, 1, 0]]));
    const l = r.layers[0]!;
    expect(l.layer).toBe('fc');
    expect(l.observed).toEqual({ min: -12, max: 4, bits: 5 });
    expect(l.observedInput).toEqual({ min: -3, max: 3 });
    expect(l.input).toMatchObject({ min: -3, max: 3, source: 'format' });
    // Worst case for x ∈ [−3, 3]: neuron 0 ±3·6 = ±18, neuron 1 ±15 → [−18, 18], 6 bits; L1 bound 6·3 = 18.
    expect(l.worstCase).toEqual({ min: -18, max: 18, bits: 6 });
    expect(l.l1Bound).toEqual({ value: 18, bits: 6, maxL1: 6 });
    expect(r.bits).toBe(5);
    expect(formatAccumulatorReport(r)).toMatch(/model accumulator bits: 5 observed on 2 samples, 6 worst case/);
    expect(JSON.parse(JSON.stringify(r)).layers[0].observed.bits).toBe(5);
  });

  it('weightBounds: per-neuron interval arithmetic for non-negative inputs', () => {
    const b = weightBounds([3, -2, 1, 0, -3, 2], 3, 2, 0, 7);
    expect(b.worstCase).toEqual({ min: -21, max: 28, bits: 6 });
    expect(b.l1Bound.value).toBe(42);
    expect(b.nonZero).toEqual({ min: 2, max: 3 });
  });

  it('worst-case bound ≥ observed range, always (random nets, random data, ReLU inputs detected)', async () => {
    for (const seed of [1, 2, 3]) {
      manualSeed(seed);
      const net = new QuantSimpleNet({ hidden: 12, bits: 3 });
      if (seed === 2) pruneKNonZero(net, 4);
      const r = analyzeAccumulators(net, randomData(400, -1.5, 1.5, seed));
      expect(r.layers.map((l) => l.layer)).toEqual(['fc1', 'fc2', 'fc3']);
      expect(r.layers[1]!.input).toMatchObject({ min: 0, max: 3, source: 'relu' });
      for (const l of r.layers) {
        expect(l.worstCase.min).toBeLessThanOrEqual(l.observed.min);
        expect(l.worstCase.max).toBeGreaterThanOrEqual(l.observed.max);
        expect(l.l1Bound.value).toBeGreaterThanOrEqual(Math.max(-l.worstCase.min, l.worstCase.max));
        expect(l.worstCase.bits).toBeGreaterThanOrEqual(l.observed.bits);
      }
      expect(r.bits).toBe(Math.max(...r.layers.map((l) => l.observed.bits)));
    }
  });

  it('bad input: empty data set, float model', () => {
    const empty: Dataset = { x: new Float32Array(0), y: new Int32Array(0), sampleShape: [3], numClasses: 2 };
    expect(() => analyzeAccumulators(handBuilt(), empty)).toThrow(ConfigError);
    expect(() => analyzeAccumulators(handBuilt(), empty)).toThrow(/non-empty data set/);
    expect(() => analyzeAccumulators(new SimpleNet(4), randomData(4, 0, 1, 1))).toThrow(/no QuantLinear\/QuantConv2d layer/);
  });
});

describe('post-training quantization', () => {
  it('builds a calibrated constant-scale twin that the analysis understands', async () => {
    manualSeed(5);
    const data = generateCheckerboard({ seed: 5 });
    const train = head(data.train, 1000);
    const net = new SimpleNet(16);
    await fit(net, { train }, { epochs: 3, batchSize: 32, lr: 0.01, progress: 'silent' });
    const q3 = quantizePostTraining(net, train, { bits: 3 });
    expect(q3.namedChildren().map(([n]) => n)).toEqual(['quant_inp', 'fc1', 'relu1', 'fc2', 'relu2', 'fc3']);
    const r = analyzeAccumulators(q3, data.test);
    expect(r.layers[0]!.input).toMatchObject({ min: 0, max: 7, signed: false }); // inputs ≥ −s/2 → unsigned
    expect(r.layers[1]!.input).toMatchObject({ min: 0, max: 7 });
    const wi = Array.from((q3.getModule('fc2') as QuantLinear).quantWeight().int().dataSync());
    expect(Math.max(...wi.map(Math.abs))).toBe(3);
    // At 8 bits the twin follows the float net closely.
    const q8 = quantizePostTraining(net, train, { bits: 8 });
    const a = predict(net, data.test);
    const b = predict(q8, data.test);
    let agree = 0;
    for (let i = 0; i < a.length / 2; i++) if ((a[2 * i]! > a[2 * i + 1]!) === (b[2 * i]! > b[2 * i + 1]!)) agree++;
    expect(agree / (a.length / 2)).toBeGreaterThan(0.95);
    // On a task the float net learns (the checkerboard above stays near chance at this budget), 3-bit PTQ keeps
    // most of its accuracy (measured: float 0.958, q3 0.942; chance 0.5).
    manualSeed(5);
    const sep = new SimpleNet(16);
    const sepTrain = diagonalTask(1000, 3);
    const sepTest = diagonalTask(500, 2);
    await fit(sep, { train: sepTrain }, { epochs: 3, batchSize: 32, lr: 0.01, progress: 'silent' });
    const floatAcc = evaluate(sep, sepTest).accuracy;
    expect(floatAcc).toBeGreaterThan(0.9);
    expect(evaluate(quantizePostTraining(sep, sepTrain, { bits: 3 }), sepTest).accuracy).toBeGreaterThan(floatAcc - 0.05);
    expect(() => quantizePostTraining(net, { ...train, x: new Float32Array(0), y: new Int32Array(0) }, { bits: 3 })).toThrow(/non-empty calibration/);
  });
});
