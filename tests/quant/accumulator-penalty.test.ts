import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { accumulatorPenalty, quantizerGrid } from '../../src/quant/accumulator-penalty.js';
import { head } from '../../src/train/dataset.js';
import { fit } from '../../src/train/trainer.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';

beforeAll(async () => {
  await initBackend();
});

/** Integer weights ([out][in]) of a notebook-scale layer (scale 1/3 at 3 bits): w = q / 3. */
const setInt = (fc: QuantSimpleNet['fc1'], q: number[][]) => fc.weight.assign(tf.tensor2d(q.flat().map((v) => v / 3), [q.length, q[0]!.length]));

describe('accumulator penalty on an enumerated input domain', () => {
  it('enumerates a quantizer grid in order, and refuses bad grids', () => {
    const g = quantizerGrid(2, 0, 3, 1 / 3);
    expect(g.shape).toEqual([16, 2]);
    const v = Array.from(g.dataSync()).map((x) => Math.round(3 * x));
    expect(v.slice(0, 10)).toEqual([0, 0, 0, 1, 0, 2, 0, 3, 1, 0]);
    expect(v.slice(-2)).toEqual([3, 3]);
    g.dispose();
    expect(() => quantizerGrid(2, 3, 0, 1)).toThrow(/lo ≤ hi/);
    expect(() => quantizerGrid(8, 0, 15, 1)).toThrow(/too many/);
  });

  it('equals a hand computation: exact bits per layer and the hinge on |acc| − (2^(b−1) − 1 − margin)', () => {
    manualSeed(3);
    const net = new QuantSimpleNet({ hidden: 2, bits: 3, scales: 'notebook' });
    // fc1 neurons (w1, w2): (3, 3) reaches 3·3 + 3·3 = 18 on input (3, 3); (−2, 1) spans −6…3.
    setInt(net.fc1, [[3, 3], [-2, 1]]);
    setInt(net.fc2, [[0, 0], [0, 0]]);
    setInt(net.fc3, [[0, 0], [0, 0]]);
    const dom = quantizerGrid(2, 0, 3, 1 / 3);
    const pen = accumulatorPenalty(net, dom, { targetBits: 5, margin: 0.5, weight: 2 });
    dom.dispose();
    const b = pen.bits();
    expect(b.map((l) => [l.layer, l.min, l.max, l.bits])).toEqual([
      ['fc1', -6, 18, 6],
      ['fc2', 0, 0, 1],
      ['fc3', 0, 0, 1],
    ]);
    // Only neuron 0 exceeds T = 14.5: at (a, b) with 3a + 3b > 14.5, i.e. a + b ≥ 5: (2,3), (3,2) → 15, (3,3) → 18.
    const hand = (2 * (0.5 ** 2 + 0.5 ** 2 + 3.5 ** 2)) / (16 * 2); // mean over 16 inputs × 2 neurons, times weight
    expect(pen.loss().dataSync()[0]).toBeCloseTo(hand, 6);
    pen.dispose();
    net.dispose();
  });

  it('fine-tuning with the penalty brings the domain accumulators within the target; the analysis on data agrees', async () => {
    const data = generateCheckerboard({ seed: 7 });
    manualSeed(4);
    const net = new QuantSimpleNet({ hidden: 16, bits: 3, scales: 'notebook' });
    const dom = quantizerGrid(2, 0, 3, 1 / 3);
    const pen = accumulatorPenalty(net, dom, { targetBits: 4, weight: 3 });
    dom.dispose();
    const before = Math.max(...pen.bits().map((l) => l.bits));
    expect(before).toBeGreaterThan(4); // U(−1, 1) init: fc1 alone reaches 6 bits
    await fit(net, { train: head(data.train, 600) }, { epochs: 3, batchSize: 16, lr: 0.01, progress: 'silent', regularizer: pen.loss });
    const after = pen.bits();
    for (const l of after) expect(l.bits).toBeLessThanOrEqual(4);
    // Data in [0, 1]² quantizes onto the domain, so what the analysis sees on data is bounded by it.
    const r = analyzeAccumulators(net, head(data.test, 300));
    for (const l of r.layers) expect(l.observed.bits).toBeLessThanOrEqual(after.find((a) => a.layer === l.layer)!.bits);
    pen.dispose();
    net.dispose();
  });

  it('refuses bad options with a clear message', () => {
    const net = new QuantSimpleNet({ hidden: 4, bits: 3 });
    const dom = quantizerGrid(2, 0, 1, 1 / 3);
    expect(() => accumulatorPenalty(net, dom, { targetBits: 1 })).toThrow(/targetBits/);
    expect(() => accumulatorPenalty(net, dom, { targetBits: 5, margin: 20 })).toThrow(/margin/);
    expect(() => accumulatorPenalty(net, tf.zeros([0, 2]), { targetBits: 5 })).toThrow(/empty/);
    const p = accumulatorPenalty(net, dom, { targetBits: 5, layers: ['fc9'] });
    expect(() => p.loss()).toThrow(/'fc9'/);
    p.dispose();
    dom.dispose();
    net.dispose();
  });
});
