/**
 * Smoke version of the CIFAR experiment: a few hundred real images (the shared JPEG copy, or FHENET_CIFAR10), one
 * epoch of the CPU-budget CNV with augmentation, then compile and simulate a handful of test images.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { loadCifar10, toDataset } from '../../datasets/cifar10/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { fit } from '../../src/train/trainer.js';
import { cifar10SkipReason } from '../data-availability.js';
import { afterStep, augmentation, buildModel, fheEvaluate, spread } from '../../experiments/cifar/lib.js';

const available = cifar10SkipReason('the CIFAR-10 smoke run') === undefined;

beforeAll(async () => {
  await initBackend();
});

describe.skipIf(!available)('CIFAR-10 smoke run', () => {
  it('trains CNV-small one epoch on 300 images, compiles it and simulates 8 test images', async () => {
    const data = await loadCifar10();
    const train = toDataset(data.train, { limit: 300 });
    expect(new Set(train.y).size).toBe(10); // evenly spaced: every class, although the JPEG copy is sorted by class
    const test = toDataset(data.test, { limit: 100 });
    manualSeed(0);
    const model = buildModel('small');
    const res = await fit(model, { train, test }, {
      epochs: 1,
      batchSize: 50,
      lr: 0.02,
      optimizer: 'adam',
      seed: 0,
      progress: 'silent',
      transformBatch: augmentation('small'),
      afterStep: afterStep(model),
    });
    expect(res.history).toHaveLength(1);
    expect(Number.isFinite(res.history[0]!.trainLoss)).toBe(true);
    const fhe = await fheEvaluate(model, spread(train, 40), test, { n: 8, roundings: ['none', 6] });
    expect(fhe.n).toBe(8);
    const [exact, rounded] = fhe.rows as [(typeof fhe.rows)[0], (typeof fhe.rows)[0]];
    expect(exact.maxBitWidth).toBeGreaterThan(6);
    expect(rounded.maxTluInputBits).toBeLessThanOrEqual(6);
    // the exact (unrounded) circuit computes what the QAT model computes: same predictions on every image
    expect(exact.agreement).toBe(1);
    expect(exact.accuracy).toBe(fhe.qatAccuracy);
    model.dispose();
  }, 120_000);

  it('trains the float teacher one epoch, then CNV-small one epoch distilled from it', async () => {
    const data = await loadCifar10();
    const train = toDataset(data.train, { limit: 300 });
    const opts = { epochs: 1, batchSize: 50, optimizer: 'adam' as const, seed: 0, progress: 'silent' as const, transformBatch: augmentation('float') };
    manualSeed(0);
    const teacher = buildModel('float');
    const t = await fit(teacher, { train }, { ...opts, lr: 1e-3 });
    expect(Number.isFinite(t.history[0]!.trainLoss)).toBe(true);
    const student = buildModel('small');
    const s = await fit(student, { train }, { ...opts, lr: 0.02, afterStep: afterStep(student), distill: { teacher, alpha: 0.7, temperature: 4 } });
    expect(Number.isFinite(s.history[0]!.trainLoss)).toBe(true);
    expect(teacher.training).toBe(false); // the teacher ran with its BatchNorm running statistics
    teacher.dispose();
    student.dispose();
  }, 120_000);
});
