import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { accumulatorAware } from '../../src/quant/a2q.js';
import { head } from '../../src/train/dataset.js';
import { fit } from '../../src/train/trainer.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';

beforeAll(async () => {
  await initBackend();
});

const intW = (fc: QuantSimpleNet['fc1']) => Array.from(fc.quantWeight().int().dataSync());

describe('accumulator-aware training with a per-layer input range', () => {
  it('fc1 budgeted on 0…3: the 5-bit guarantee holds for every integer input in that range, and the budget is the split one', async () => {
    const data = generateCheckerboard({ seed: 5 });
    manualSeed(1);
    const net = new QuantSimpleNet({ hidden: 16, bits: 3, scales: 'notebook' });
    const c = accumulatorAware(net, { targetBits: 5, sampleShape: [2], inputRanges: { fc1: [0, 3] } });
    expect(c.budgets.map((b) => [b.layer, b.kind, b.budget, b.negBudget, b.input.min, b.input.max])).toEqual([
      ['fc1', 'split', 5, 5, 0, 3],
      ['fc2', 'split', 5, 5, 0, 3],
      ['fc3', 'split', 5, 5, 0, 3],
    ]);
    expect(c.budgets[0]!.input.source).toBe('override');
    await fit(net, { train: head(data.train, 800) }, { epochs: 1, batchSize: 16, lr: 0.01, progress: 'silent', afterStep: c.afterStep });
    // Exhaustive over the range: every (x1, x2) ∈ {0…3}², every fc1 neuron, the accumulator fits a signed 5-bit register.
    const q = intW(net.fc1);
    let maxL1 = 0;
    for (let o = 0; o < 16; o++) {
      const [w1, w2] = [q[2 * o]!, q[2 * o + 1]!];
      maxL1 = Math.max(maxL1, Math.abs(w1) + Math.abs(w2));
      for (let a = 0; a <= 3; a++) {
        for (let b = 0; b <= 3; b++) {
          const acc = w1 * a + w2 * b;
          expect(acc).toBeGreaterThanOrEqual(-16);
          expect(acc).toBeLessThanOrEqual(15);
        }
      }
    }
    for (const l of c.worstCaseBits()) expect(l.bits).toBeLessThanOrEqual(5);
    // The same through the analysis on data in [0, 1]² (inputs quantized to 0…3), all layers.
    const r = analyzeAccumulators(net, head(data.test, 300));
    for (const l of r.layers) expect(l.observed.bits).toBeLessThanOrEqual(5);
    // Sanity of the weights' shape: with the split budget an fc1 neuron may exceed the signed L1 bound ‖q‖₁ ≤ 5.
    expect(maxL1).toBeLessThanOrEqual(10);
  });

  it('a budget that the signed quantizer alone would not allow does fit the narrower range', () => {
    manualSeed(2);
    const net = new QuantSimpleNet({ hidden: 8, bits: 3, scales: 'notebook' });
    // The U(−1, 1) init at scale 1/3 gives integers up to ±3; after the first projection every fc1 neuron has Σq⁺ ≤ 5, Σ|q⁻| ≤ 5.
    const c = accumulatorAware(net, { targetBits: 5, sampleShape: [2], inputRanges: { fc1: [0, 3] } });
    const q = intW(net.fc1);
    for (let o = 0; o < 8; o++) {
      const pos = Math.max(0, q[2 * o]!) + Math.max(0, q[2 * o + 1]!);
      const neg = Math.max(0, -q[2 * o]!) + Math.max(0, -q[2 * o + 1]!);
      expect(pos).toBeLessThanOrEqual(5);
      expect(neg).toBeLessThanOrEqual(5);
    }
    expect(c.targetBits).toBe(5);
  });

  it('retarget tightens the budgets and projects', () => {
    manualSeed(3);
    const net = new QuantSimpleNet({ hidden: 12, bits: 3, scales: 'notebook' });
    const c = accumulatorAware(net, { targetBits: 7, sampleShape: [2], inputRanges: { fc1: [0, 3] } });
    expect(c.budgets[1]!.budget).toBe(21);
    c.retarget(5);
    expect(c.targetBits).toBe(5);
    expect(c.budgets.map((b) => b.budget)).toEqual([5, 5, 5]);
    expect(c.budgets[0]!.input.source).toBe('override');
    for (const l of c.worstCaseBits()) expect(l.bits).toBeLessThanOrEqual(5);
    expect(() => c.retarget(1)).toThrow(/targetBits/);
  });

  it('projection does not leak tensors', () => {
    manualSeed(4);
    const net = new QuantSimpleNet({ hidden: 12, bits: 3, scales: 'notebook' });
    const c = accumulatorAware(net, { targetBits: 7, sampleShape: [2], inputRanges: { fc1: [0, 3] } });
    const before = tf.memory().numTensors;
    expect(c.retarget(5)).toBeGreaterThan(0); // projects (changes neurons)
    c.retarget(4);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad ranges and unknown layers', () => {
    const net = new QuantSimpleNet({ hidden: 4, bits: 3, scales: 'notebook' });
    expect(() => accumulatorAware(net, { targetBits: 5, sampleShape: [2], inputRanges: { fc1: [3, 0] } })).toThrow(/min ≤ max/);
    expect(() => accumulatorAware(net, { targetBits: 5, sampleShape: [2], inputRanges: { fc1: [0, 2.5] as [number, number] } })).toThrow(/integers/);
    expect(() => accumulatorAware(net, { targetBits: 5, sampleShape: [2], inputRanges: { fc9: [0, 3] } })).toThrow(/fc9/);
    expect(() => accumulatorAware(net, { targetBits: 5, sampleShape: [2], layers: ['fc2'], inputRanges: { fc1: [0, 3] } })).toThrow(/not among/);
  });
});
