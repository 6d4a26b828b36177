import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { generateCheckerboard, loadPeerCheckerboard, quantizedInputCeiling, checkerLabel } from '../../datasets/checkerboard/index.js';
import { QuantSimpleNet, SimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { Linear } from '../../src/nn/layers.js';
import { evaluate, fit } from '../../src/train/trainer.js';
import { Adam, AdamW, SGD } from '../../src/train/optim.js';
import { learningRate } from '../../src/train/schedule.js';
import { head } from '../../src/train/dataset.js';

beforeAll(async () => {
  await initBackend();
});

describe('checkerboard data', () => {
  it('generates the reference definition: 9,500/500 split, XOR labels of the clean grid, seeded', () => {
    const a = generateCheckerboard({ seed: 1 });
    const b = generateCheckerboard({ seed: 1 });
    const c = generateCheckerboard({ seed: 2 });
    expect(a.train.y.length).toBe(9500);
    expect(a.test.y.length).toBe(500);
    expect(Array.from(a.train.x.subarray(0, 10))).toEqual(Array.from(b.train.x.subarray(0, 10)));
    expect(Array.from(a.train.x.subarray(0, 10))).not.toEqual(Array.from(c.train.x.subarray(0, 10)));
    expect(checkerLabel(0, 0)).toBe(0);
    expect(checkerLabel(1 / 3, 0)).toBe(1);
    expect(checkerLabel(1 / 3, 1 / 3)).toBe(0);
    const ones = a.train.y.reduce((s, v) => s + v, 0);
    expect(ones / 9500).toBeGreaterThan(0.4);
    expect(ones / 9500).toBeLessThan(0.6);
  });

  it('loads the peer arrays and reproduces their documented accuracy ceiling (0.95495 train, 0.952 test)', () => {
    const peer = loadPeerCheckerboard();
    expect(peer.train.y.length).toBe(9500);
    expect(quantizedInputCeiling(peer.train)).toBeCloseTo(0.95495, 4);
    expect(quantizedInputCeiling(peer.test)).toBeCloseTo(0.952, 6);
  });
});

describe('optimizers match PyTorch update rules', () => {
  const run = (make: (p: [string, tf.Variable][]) => { step(g: tf.NamedTensorMap): void }, steps: number[]) => {
    const p = tf.variable(tf.tensor1d([1.0, -2.0]));
    const opt = make([['p', p]]);
    for (const g of steps) opt.step({ [p.name]: tf.tensor1d([g, -g]) });
    return Array.from(p.dataSync());
  };

  it('SGD with momentum', () => {
    // buf1 = g1 = 0.5; p = 1 − 0.1·0.5 = 0.95; buf2 = 0.9·0.5 + 0.25 = 0.7; p = 0.95 − 0.07 = 0.88
    const [p0] = run((ps) => new SGD(ps, { lr: 0.1, momentum: 0.9 }), [0.5, 0.25]);
    expect(p0).toBeCloseTo(0.88, 6);
  });

  it('Adam: first step moves each weight by lr·sign(g)', () => {
    const [p0, p1] = run((ps) => new Adam(ps, { lr: 0.01 }), [0.3]);
    expect(p0).toBeCloseTo(0.99, 5);
    expect(p1).toBeCloseTo(-1.99, 5);
  });

  it('AdamW decays weights decoupled from the gradient', () => {
    const [p0] = run((ps) => new AdamW(ps, { lr: 0.01, weightDecay: 0.1 }), [0.3]);
    expect(p0).toBeCloseTo(1 * (1 - 0.001) - 0.01, 5);
  });

  it('schedules', () => {
    expect(learningRate(0.1, 5, { kind: 'step', stepSize: 2, gamma: 0.5 })).toBeCloseTo(0.025);
    expect(learningRate(0.1, 10, { kind: 'cosine', tMax: 10 })).toBeCloseTo(0);
    expect(learningRate(0.1, 5, { kind: 'cosine', tMax: 10 })).toBeCloseTo(0.05);
  });
});

describe('training', () => {
  it('3-bit QuantSimpleNet (h = 100, notebook constant scales) reaches ≥ 90% test accuracy on the checkerboard', async () => {
    manualSeed(0);
    const data = generateCheckerboard({ seed: 42 });
    const model = new QuantSimpleNet({ hidden: 100, bits: 3, scales: 'notebook' });
    const before = evaluate(model, data.test).accuracy;
    const r = await fit(model, data, { epochs: 2, batchSize: 32, lr: 1e-3, optimizer: 'adamw', seed: 0, progress: 'silent' });
    const acc = r.history[r.history.length - 1]!.testAccuracy!;
    expect(before).toBeLessThan(0.8);
    expect(acc).toBeGreaterThanOrEqual(0.9);
    expect(acc).toBeLessThanOrEqual(quantizedInputCeiling(data.test) + 1e-9);
  });

  it('training is deterministic for a seed and a resumed run equals an uninterrupted one', async () => {
    const data = { train: head(generateCheckerboard({ seed: 3 }).train, 512), test: head(generateCheckerboard({ seed: 3 }).test, 100) };
    const opts = { batchSize: 16, lr: 3e-3, optimizer: 'adam' as const, seed: 5, progress: 'silent' as const };
    manualSeed(3);
    const full = new QuantSimpleNet({ hidden: 12, bits: 3, scales: 'brevitas' });
    await fit(full, data, { ...opts, epochs: 3 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-'));
    manualSeed(3);
    const first = new QuantSimpleNet({ hidden: 12, bits: 3, scales: 'brevitas' });
    await fit(first, data, { ...opts, epochs: 2, checkpointDir: dir });
    manualSeed(99); // a different init, overwritten by the checkpoint
    const resumed = new QuantSimpleNet({ hidden: 12, bits: 3, scales: 'brevitas' });
    const tensors = tf.memory().numTensors;
    const r = await fit(resumed, data, { ...opts, epochs: 3, checkpointDir: dir, resume: true });
    expect(tf.memory().numTensors).toBe(tensors); // the restored optimizer state is released with the optimizer
    expect(r.history.map((m) => m.epoch)).toEqual([0, 1, 2]);
    for (const [name, t] of full.stateDict()) {
      expect(Array.from(resumed.stateDict().get(name)!.dataSync()), name).toEqual(Array.from(t.dataSync()));
    }
  });

  it('float SimpleNet learns the checkerboard above chance', async () => {
    manualSeed(0);
    const data = generateCheckerboard({ seed: 42 });
    const model = new SimpleNet(30);
    const r = await fit(model, data, { epochs: 3, batchSize: 16, lr: 3e-3, seed: 0, progress: 'silent' });
    expect(r.history[2]!.testAccuracy!).toBeGreaterThan(0.6);
  });

  it('does not leak tensors across epochs', async () => {
    const data = { train: head(generateCheckerboard().train, 256) };
    const model = new Linear(2, 2);
    await fit(model, data, { epochs: 1, batchSize: 32, lr: 1e-2, progress: 'silent' });
    const n = tf.memory().numTensors;
    await fit(model, data, { epochs: 3, batchSize: 32, lr: 1e-2, progress: 'silent' });
    expect(tf.memory().numTensors).toBe(n);
  });
});
