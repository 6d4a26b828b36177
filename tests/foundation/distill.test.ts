/**
 * Knowledge distillation (`fit({ distill })`, `distillationLoss`): the loss by hand, and a 3-bit student that learns
 * the checkerboard from a float teacher alone when its own labels are noise.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { QuantSimpleNet, SimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { evaluate, fit } from '../../src/train/trainer.js';
import { distillationLoss } from '../../src/train/loss.js';
import { head } from '../../src/train/dataset.js';
import { Rng } from '../../src/util/rng.js';

beforeAll(async () => {
  await initBackend();
});

describe('distillationLoss', () => {
  it('is T² · KL(softmax(t/T) ‖ softmax(s/T)) (hand computation), 0 for equal logits, and checks shapes', () => {
    const s = tf.tensor2d([[0, 0]]);
    const t = tf.tensor2d([[Math.log(3), 0]]);
    // T = 1: p_t = (3/4, 1/4), p_s = (1/2, 1/2) → ¾·ln 1.5 + ¼·ln 0.5
    expect(distillationLoss(s, t, 1).dataSync()[0]).toBeCloseTo(0.75 * Math.log(1.5) + 0.25 * Math.log(0.5), 5);
    // T = 2: p_t = (√3, 1)/(√3 + 1); times T² = 4
    const a = Math.sqrt(3) / (Math.sqrt(3) + 1);
    expect(distillationLoss(s, t, 2).dataSync()[0]).toBeCloseTo(4 * (a * Math.log(2 * a) + (1 - a) * Math.log(2 * (1 - a))), 5);
    expect(distillationLoss(t, t, 3).dataSync()[0]).toBeCloseTo(0, 6);
    expect(() => distillationLoss(s, tf.tensor2d([[1, 2, 3]]), 1)).toThrow(/one shape/);
    tf.dispose([s, t]);
  });
});

describe('fit({ distill })', () => {
  const data = generateCheckerboard({ seed: 42 });
  const train = head(data.train, 3000);
  // The student's own labels are noise: whatever it learns of the checkerboard comes from the teacher.
  const r = new Rng(5);
  const noisy = { ...train, y: Int32Array.from(train.y, () => (r.next() < 0.5 ? 0 : 1)) };
  const opts = { epochs: 6, batchSize: 16, lr: 5e-3, optimizer: 'adamw' as const, seed: 1, progress: 'silent' as const };

  it('a 3-bit student trained on noise labels learns the teacher (alpha 1) and not without it (alpha 0)', async () => {
    manualSeed(0);
    const teacher = new SimpleNet(30);
    await fit(teacher, { train: data.train }, { ...opts, epochs: 10 });
    const teacherAcc = evaluate(teacher, data.test).accuracy;
    expect(teacherAcc).toBeGreaterThan(0.8);
    const student = () => {
      manualSeed(1);
      return new QuantSimpleNet({ hidden: 30, bits: 3, scales: 'notebook' });
    };
    const withTeacher = student();
    await fit(withTeacher, { train: noisy }, { ...opts, distill: { teacher, alpha: 1, temperature: 2 } });
    const alone = student();
    await fit(alone, { train: noisy }, { ...opts, distill: { teacher, alpha: 0 } });
    const accWith = evaluate(withTeacher, data.test).accuracy;
    const accAlone = evaluate(alone, data.test).accuracy;
    console.log(`[distill] teacher ${(100 * teacherAcc).toFixed(1)} %, student from the teacher ${(100 * accWith).toFixed(1)} %, from noise labels ${(100 * accAlone).toFixed(1)} %`);
    expect(accWith).toBeGreaterThan(0.75);
    expect(accAlone).toBeLessThan(0.65);
    teacher.dispose();
    withTeacher.dispose();
    alone.dispose();
  }, 120_000);

  it('refuses bad settings', async () => {
    const m = new SimpleNet(4);
    const t = new SimpleNet(4);
    await expect(fit(m, { train }, { ...opts, distill: { teacher: m } })).rejects.toThrow(/another model/);
    await expect(fit(m, { train }, { ...opts, distill: { teacher: t, alpha: 1.5 } })).rejects.toThrow(/alpha must be in \[0, 1\]/);
    await expect(fit(m, { train }, { ...opts, distill: { teacher: t, temperature: 0 } })).rejects.toThrow(/temperature must be positive/);
    m.dispose();
    t.dispose();
  });
});
