import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { CNV, batchNormTrain, cnvFeatureSide, createCnv } from '../../src/models/cnv.js';
import { FashionCnn } from '../../src/models/fashion-cnn.js';
import { manualSeed } from '../../src/nn/init.js';
import { valueOf } from '../../src/nn/quant-tensor.js';
import { QuantConv2d } from '../../src/quant/layers.js';
import type { Dataset } from '../../src/train/dataset.js';
import { fit } from '../../src/train/trainer.js';
import { afterStep, augmentation } from '../../experiments/cifar/lib.js';

beforeAll(async () => {
  await initBackend();
});

describe('CNV', () => {
  it('has the reference shapes: unpadded 3×3 convs 32→30→28→14→12→10→5→3→1, 256 features into the 512-wide FC', () => {
    expect(cnvFeatureSide(32)).toBe(1);
    manualSeed(0);
    const m = new CNV();
    const sides: number[] = [];
    const convs = m.namedModules().filter(([, mod]) => mod instanceof QuantConv2d);
    expect(convs.map(([, c]) => (c as QuantConv2d).outChannels)).toEqual([64, 64, 128, 128, 256, 256]);
    for (const [, c] of convs) c.registerForwardHook((_, __, out) => sides.push(valueOf(out).shape[1]!));
    const y = tf.tidy(() => valueOf(m.eval().call(tf.zeros([2, 32, 32, 3]))).clone());
    expect(y.shape).toEqual([2, 10]);
    expect(sides).toEqual([30, 28, 12, 10, 3, 1]);
    const names = [...m.stateDict().keys()];
    expect(names).toContain('conv_features.1.weight');
    expect(names).toContain('linear_features.0.weight');
    expect(m.stateDict().get('linear_features.0.weight')!.shape).toEqual([512, 256]);
    y.dispose();
    m.dispose();
  });

  it('quantizes the input to 8 bits in [−1, 1 − 2⁻⁷] and weights/activations to {−1, 0, 1}', () => {
    manualSeed(1);
    const m = createCnv('small').eval();
    const inputQ = m.conv_features.at(0);
    const q = inputQ.call(tf.tensor4d([-1, -0.3, 0.999, 1.5], [1, 2, 2, 1])) as unknown as { value: tf.Tensor; bitWidth: number };
    expect(q.bitWidth).toBe(8);
    expect(Array.from(q.value.dataSync())).toEqual([-1, Math.round(-0.3 * 128) / 128, 127 / 128, 127 / 128]);
    const conv = m.conv_features.at(1) as QuantConv2d;
    const w = Array.from(conv.quantWeight().value.dataSync());
    expect(new Set(w).size).toBeLessThanOrEqual(3);
    expect(w.every((v) => v === -1 || v === 0 || v === 1)).toBe(true);
    m.dispose();
  });

  it('does not leak tensors over training steps with weight clipping', async () => {
    manualSeed(2);
    const m = createCnv('small');
    const d: Dataset = { x: new Float32Array(20 * 3072).fill(0.1), y: Int32Array.from({ length: 20 }, (_, i) => i % 10), sampleShape: [32, 32, 3], numClasses: 10 };
    const run = () => fit(m, { train: d }, { epochs: 1, batchSize: 10, lr: 0.01, optimizer: 'adam', progress: 'silent', transformBatch: augmentation('small'), afterStep: afterStep(m) });
    await run();
    const before = tf.memory().numTensors;
    await run();
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it('fused BatchNorm gradient equals autodiff through tfjs moments + batchNorm', () => {
    const x = tf.randomNormal([4, 5, 5, 3], 0, 2, 'float32', 3);
    const g = tf.tensor1d([0.5, 1.5, -1]);
    const b = tf.tensor1d([0.1, 0, -0.2]);
    const dy = tf.randomNormal([4, 5, 5, 3], 0, 1, 'float32', 4);
    const ref = tf.grads((xx, gg, bb) => {
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      return tf.sum(tf.mul(tf.batchNorm(xx, mean, variance, bb, gg, 1e-4), dy));
    })([x, g, b]);
    const mine = tf.grads((xx, gg, bb) => {
      const r = batchNormTrain(xx, gg, bb, 1e-4);
      tf.dispose([r.mean, r.variance]);
      return tf.sum(tf.mul(r.y, dy));
    })([x, g, b]);
    for (let i = 0; i < 3; i++) {
      const err = tf.max(tf.abs(tf.sub(ref[i]!, mine[i]!))).dataSync()[0]!;
      expect(err).toBeLessThan(1e-4);
    }
  });

  it('trains with augmentation and resumes exactly (weights after 2 epochs = 1 epoch + resume 1)', async () => {
    const n = 24;
    const d: Dataset = {
      x: Float32Array.from({ length: n * 28 * 28 }, (_, i) => Math.sin(i * 0.37)),
      y: Int32Array.from({ length: n }, (_, i) => i % 10),
      sampleShape: [28, 28, 1],
      numClasses: 10,
    };
    const aug = augmentation('small');
    const run = async (dir: string, epochs: number) => {
      manualSeed(7);
      const m = new FashionCnn({ bits: 3, channels: [4, 8] });
      await fit(m, { train: d }, { epochs, batchSize: 8, lr: 0.01, optimizer: 'adam', seed: 3, checkpointDir: dir, resume: true, progress: 'silent', transformBatch: aug, afterStep: afterStep(m) });
      const w = (m.classifier.weight.dataSync() as Float32Array).slice();
      m.dispose();
      return w;
    };
    const a = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-cnv-a-'));
    const b = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-cnv-b-'));
    const straight = await run(a, 2);
    await run(b, 1);
    const resumed = await run(b, 2);
    expect(Array.from(resumed)).toEqual(Array.from(straight));
  });
});
