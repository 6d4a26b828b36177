import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { QuantSimpleNet, SimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { Linear } from '../../src/nn/layers.js';
import { pruneKNonZero, pruneL1Unstructured, removePruning, sparsityReport } from '../../src/prune/index.js';
import { fit } from '../../src/train/trainer.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import { head } from '../../src/train/dataset.js';
import { ConfigError } from '../../src/util/errors.js';

beforeAll(async () => {
  await initBackend();
});

describe('L1-unstructured pruning', () => {
  it('zeroes the smallest-|w| weights, by count or fraction, and prunes again among survivors', () => {
    const net = new SimpleNet(4);
    net.fc2.weight.assign(tf.tensor2d([[1, -2, 3, -4], [5, -6, 7, -8], [0.5, 9, -10, 11], [12, -13, 14, 0.1]]));
    const r = pruneL1Unstructured(net, 'fc2', 3);
    expect(r.zeros).toBe(3);
    expect(Array.from(net.fc2.weightMask!.dataSync())).toEqual([0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0]);
    // A fraction is of the 13 weights still alive: round(0.25·13) = 3 more (|−2|, 3, −4).
    const r2 = pruneL1Unstructured(net, 'fc2', { fraction: 0.25 });
    expect(r2.zeros).toBe(6);
    expect(r2.sparsity).toBeCloseTo(6 / 16);
  });

  it('masks survive optimizer steps and `remove` makes them permanent', async () => {
    manualSeed(1);
    const net = new QuantSimpleNet({ hidden: 8, bits: 3 });
    pruneL1Unstructured(net, 'fc2', { fraction: 0.5 });
    const mask = Array.from(net.fc2.weightMask!.dataSync());
    const before = Array.from(net.fc2.weight.dataSync());
    const data = generateCheckerboard({ seed: 3 });
    await fit(net, { train: head(data.train, 256) }, { epochs: 2, batchSize: 16, lr: 0.05, progress: 'silent' });
    const raw = Array.from(net.fc2.weight.dataSync());
    expect(raw).not.toEqual(before); // training moved the weights …
    const eff = Array.from(net.fc2.effectiveWeight().dataSync());
    const q = Array.from(net.fc2.quantWeight().int().dataSync());
    mask.forEach((m, i) => {
      if (m === 0) {
        expect(Math.abs(eff[i]!)).toBe(0); // … but pruned ones stay zero in forward
        expect(Math.abs(q[i]!)).toBe(0);
      }
    });
    expect([...net.stateDict().keys()]).toContain('fc2.weight_mask');
    removePruning(net);
    expect([...net.stateDict().keys()]).not.toContain('fc2.weight_mask');
    expect(net.fc2.weightMask).toBeUndefined();
    const perm = Array.from(net.fc2.weight.dataSync());
    mask.forEach((m, i) => m === 0 && expect(Math.abs(perm[i]!)).toBe(0));
  });

  it('rejects unknown layers, non-weighted modules and amounts out of range', () => {
    const net = new SimpleNet(4);
    expect(() => pruneL1Unstructured(net, 'fc9', 1)).toThrow(ConfigError);
    expect(() => pruneL1Unstructured(net, 'fc9', 1)).toThrow(/no module named 'fc9'.*fc1/);
    expect(() => pruneL1Unstructured(net, 'relu1', 1)).toThrow(/no weight to prune; weighted layers are: fc1, fc2, fc3/);
    expect(() => pruneL1Unstructured(net, 'fc2', 17)).toThrow(/amount 17 must be an integer count in \[0, 16\]/);
    expect(() => pruneL1Unstructured(net, 'fc2', -1)).toThrow(ConfigError);
    expect(() => pruneL1Unstructured(net, 'fc2', { fraction: 1.5 })).toThrow(/fraction 1.5 must be in \[0, 1\]/);
    expect(() => pruneKNonZero(net, 0)).toThrow(/positive integer/);
  });
});

describe('k non-zero per neuron', () => {
  it('reference helper: prunes (fan_in − k) × fan_out weights of layers with fan-in > k, first layer untouched', () => {
    manualSeed(2);
    const net = new QuantSimpleNet({ hidden: 20, bits: 3 });
    const rows = pruneKNonZero(net, 5);
    const by = Object.fromEntries(rows.map((r) => [r.layer, r]));
    expect(by.fc1!.zeros).toBe(0);
    expect(by.fc1!.masked).toBe(false);
    expect(by.fc2!.zeros).toBeGreaterThanOrEqual((20 - 5) * 20);
    expect(by.fc3!.zeros).toBeGreaterThanOrEqual((20 - 5) * 2);
    expect(by.fc2!.nonZeroPerNeuron.mean).toBeCloseTo(5, 0);
  });

  it('strict variant: every output neuron keeps at most k inputs, its largest', () => {
    manualSeed(3);
    const net = new SimpleNet(12);
    const w0 = Array.from(net.fc2.weight.dataSync());
    const rows = pruneKNonZero(net, 3, { strict: true });
    for (const r of rows.filter((x) => x.fanIn > 3)) expect(r.nonZeroPerNeuron.max).toBeLessThanOrEqual(3);
    const eff = net.fc2.effectiveWeight().arraySync() as number[][];
    eff.forEach((row, o) => {
      const kept = row.map((v, i) => [v, i] as const).filter(([v]) => v !== 0);
      expect(kept.length).toBe(3);
      const mags = w0.slice(o * 12, (o + 1) * 12).map(Math.abs).sort((a, b) => b - a);
      for (const [v] of kept) expect(Math.abs(v)).toBeGreaterThanOrEqual(mags[2]!);
    });
    expect(sparsityReport(net).map((r) => r.layer)).toEqual(['fc1', 'fc2', 'fc3']);
  });

  it('strict variant gives a provable accumulator bound k·max|w|·max|x| per neuron', () => {
    manualSeed(4);
    const net = new QuantSimpleNet({ hidden: 16, bits: 3 });
    pruneKNonZero(net, 3, { strict: true });
    const r = analyzeAccumulators(net, { x: Float32Array.from({ length: 400 }, (_, i) => ((i * 37) % 101) / 50 - 1), y: new Int32Array(200), sampleShape: [2], numClasses: 2 });
    for (const l of r.layers.filter((x) => x.fanIn > 3)) {
      expect(l.nonZeroPerNeuron.max).toBeLessThanOrEqual(3);
      // 3 inputs in [0, 3] (after a QuantReLU), weights in [−3, 3]: |Σ| ≤ 3·3·3 = 27.
      expect(l.l1Bound.value).toBeLessThanOrEqual(27);
      expect(Math.max(-l.observed.min, l.observed.max)).toBeLessThanOrEqual(27);
    }
  });

  it('works on a model that is a single layer', () => {
    const rows = pruneKNonZero(new Linear(6, 2), 2, { strict: true });
    expect(rows[0]!.layer).toBe('');
    expect(rows[0]!.nonZeroPerNeuron.max).toBe(2);
  });
});
