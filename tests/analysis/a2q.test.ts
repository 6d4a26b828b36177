import { beforeAll, describe, expect, it } from 'vitest';
import { diagonalTask } from './separable.js';
import { initBackend } from '../../src/backend/index.js';
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { accumulatorAware, neuronBudget, projectMagnitudes } from '../../src/quant/a2q.js';
import type { Dataset } from '../../src/train/dataset.js';
import { evaluate, fit } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';

beforeAll(async () => {
  await initBackend();
});

function randomData(n: number, lo: number, hi: number, seed: number): Dataset {
  const r = new Rng(seed);
  return { x: Float32Array.from({ length: 2 * n }, () => r.uniform(lo, hi)), y: new Int32Array(n), sampleShape: [2], numClasses: 2 };
}

describe('accumulator budgets', () => {
  it('derives the integer budgets from the target and the input range', () => {
    // Signed inputs in [−3, 3], P = 5: ‖q‖₁ ≤ ⌊15/3⌋ = 5.
    expect(neuronBudget(5, -3, 3)).toEqual({ kind: 'l1', budget: 5, negBudget: 5 });
    // ReLU inputs in [0, 3], P = 5: Σq⁺ ≤ ⌊15/3⌋ = 5, Σ|q⁻| ≤ ⌊16/3⌋ = 5; P = 6: 10 and 10.
    expect(neuronBudget(5, 0, 3)).toEqual({ kind: 'split', budget: 5, negBudget: 5 });
    expect(neuronBudget(6, 0, 7)).toEqual({ kind: 'split', budget: 4, negBudget: 4 });
  });

  it('projects magnitudes onto the L1 ball and rounds within budget', () => {
    const { real, int } = projectMagnitudes([3, 2.6, 0.2, 1.4], 5);
    expect(real.reduce((s, v) => s + v, 0)).toBeCloseTo(5);
    expect(int.reduce((s, v) => s + v, 0)).toBeLessThanOrEqual(5);
    expect(int.every(Number.isInteger)).toBe(true);
    expect(int[2]).toBe(0); // the smallest is thresholded away
    expect(projectMagnitudes([0.6, 0.6, 0.6], 1).int.reduce((s, v) => s + v, 0)).toBe(1);
    expect(projectMagnitudes([2, 1], 0).int).toEqual([0, 0]);
  });
});

describe('accumulator-aware training', () => {
  it('keeps the target for every input after training (checked on random data beyond the input range)', async () => {
    const train = diagonalTask(600, 1);
    const test = diagonalTask(500, 2);
    for (const target of [5, 6]) {
      manualSeed(target);
      const net = new QuantSimpleNet({ hidden: 16, bits: 3 });
      const c = accumulatorAware(net, { targetBits: target, sampleShape: [2] });
      expect(c.budgets.map((b) => b.kind)).toEqual(['l1', 'split', 'split']);
      await fit(net, { train }, { epochs: 2, batchSize: 16, lr: 0.01, progress: 'silent', afterStep: c.afterStep });
      for (const l of c.worstCaseBits()) expect(l.bits).toBeLessThanOrEqual(target);
      const r = analyzeAccumulators(net, randomData(2000, -3, 3, target));
      for (const l of r.layers) {
        expect(l.worstCase.bits).toBeLessThanOrEqual(target);
        expect(l.observed.bits).toBeLessThanOrEqual(target);
      }
      expect(r.bits).toBeLessThanOrEqual(target);
      // Not everything was projected away: every layer keeps non-zero integer weights.
      for (const fc of [net.fc1, net.fc2, net.fc3]) expect(fc.quantWeight().int().abs().sum().dataSync()[0]).toBeGreaterThan(0);
      // the constrained net still learns the task (≈ 0.86 measured for both targets; chance is 0.5)
      expect(evaluate(net, test).accuracy).toBeGreaterThan(0.75);
    }
  });

  it('rejects abs-max weight scales and bad targets', () => {
    manualSeed(1);
    const net = new QuantSimpleNet({ hidden: 4, bits: 3, scales: 'brevitas' });
    expect(() => accumulatorAware(net, { targetBits: 6, sampleShape: [2] })).toThrow(/constant weight scale/);
    const nb = new QuantSimpleNet({ hidden: 4, bits: 3 });
    expect(() => accumulatorAware(nb, { targetBits: 1, sampleShape: [2] })).toThrow(/targetBits must be an integer/);
    expect(() => accumulatorAware(nb, { targetBits: 6, sampleShape: [2], layers: ['nope'] })).toThrow(/no module named 'nope'/);
  });
});
