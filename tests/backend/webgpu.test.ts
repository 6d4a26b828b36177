/**
 * TensorFlow.js's WebGPU backend through Dawn (src/backend/webgpu.ts). On a machine without a GPU Dawn runs on
 * Mesa's software OpenGL (llvmpipe): slow, but the same WebGPU API, shaders and asynchronous reads as on a GPU, so
 * these tests check that fhenet trains on it at all — gradients equal to the CPU backend's, a QAT network that learns,
 * checkpoints and resume (which need asynchronous downloads: WebGPU in Node cannot read a buffer synchronously).
 * Skipped, with the reason, when Dawn finds no adapter; `FHENET_REQUIRE_WEBGPU=1` turns the skip into a failure (CI
 * installs Mesa).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendInfo, describeBackend, initBackend } from '../../src/backend/index.js';
import { AvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { manualSeed } from '../../src/nn/init.js';
import { valueOf } from '../../src/nn/quant-tensor.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../../src/quant/layers.js';
import { crossEntropy } from '../../src/train/loss.js';
import { fit } from '../../src/train/trainer.js';
import type { Dataset } from '../../src/train/dataset.js';
import { Rng } from '../../src/util/rng.js';

let info: BackendInfo | undefined;
let reason = '';
beforeAll(async () => {
  try {
    info = await initBackend('webgpu');
  } catch (err) {
    reason = (err as Error).message;
    if (process.env.FHENET_REQUIRE_WEBGPU === '1') throw err;
    console.warn(`WebGPU unavailable, tests skipped: ${reason}`);
  }
}, 120_000);

/** 8×8 single-channel images; the class is the quadrant holding a bright 3×3 blob (plus noise). */
function quadrants(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 64);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    y[i] = c;
    const r0 = (c >> 1) * 4 + rng.int(2);
    const c0 = (c & 1) * 4 + rng.int(2);
    for (let p = 0; p < 64; p++) x[i * 64 + p] = 0.2 * (rng.next() - 0.5);
    for (let r = 0; r < 3; r++) for (let k = 0; k < 3; k++) x[i * 64 + (r0 + r) * 8 + c0 + k] += 1;
  }
  return { x, y, sampleShape: [8, 8, 1], numClasses: 4 };
}

function qatNet(): Sequential {
  return new Sequential(
    new QuantIdentity({ bitWidth: 8 }),
    new QuantConv2d(1, 8, 3, { weightBitWidth: 3, bias: false }),
    new BatchNorm2d(8),
    new QuantIdentity({ bitWidth: 3 }),
    new AvgPool2d(2),
    new Flatten(),
    new QuantLinear(72, 4, { weightBitWidth: 3, bias: true }),
  );
}

describe('WebGPU backend (Dawn)', () => {
  it('loads through FHENET_BACKEND=webgpu and names its adapter', (ctx) => {
    if (!info) return ctx.skip(reason);
    expect(info.choice).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    expect(info.webgpu!.adapter.length).toBeGreaterThan(0);
    expect(describeBackend(info)).toContain(`adapter ${info.webgpu!.adapter}`);
  });

  it('gives the CPU backend\'s gradients for a conv / BatchNorm / pool / linear network', async (ctx) => {
    if (!info) return ctx.skip(reason);
    manualSeed(3);
    const net = new Sequential(new Conv2d(3, 6, 3, { bias: false }), new BatchNorm2d(6), new ReLU(), new AvgPool2d(2), new Flatten(), new Linear(54, 5));
    const data = quadrants(1, 0).x; // only for its values
    const xs = Float32Array.from({ length: 4 * 8 * 8 * 3 }, (_, i) => data[i % 64]! + Math.sin(i));
    const grads = async (backend: string): Promise<Map<string, Float32Array>> => {
      await tf.setBackend(backend);
      const { grads: g, value } = tf.variableGrads(() =>
        crossEntropy(valueOf(net.call(tf.tensor4d(xs, [4, 8, 8, 3]))) as tf.Tensor2D, tf.tensor1d([0, 1, 2, 3], 'int32')),
      );
      const out = new Map<string, Float32Array>();
      for (const [k, t] of Object.entries(g)) out.set(k, (await t.data()) as Float32Array);
      tf.dispose([value, ...Object.values(g)]);
      return out;
    };
    const gpu = await grads('webgpu');
    // Moving a tensor to another backend reads it synchronously; download the weights first (cached on the host).
    await Promise.all([...net.stateDict().values()].map((t) => t.data()));
    const cpu = await grads('cpu');
    await tf.setBackend('webgpu');
    expect(gpu.size).toBe(cpu.size);
    expect(gpu.size).toBe(5); // conv weight (no bias: BatchNorm follows), BN gamma/beta, linear weight/bias
    for (const [k, c] of cpu) {
      const g = gpu.get(k)!;
      const scale = Math.max(...Array.from(c, Math.abs));
      expect(scale, k).toBeGreaterThan(0);
      const err = Math.max(...Array.from(c, (v, i) => Math.abs(v - g[i]!)));
      expect(err / scale, k).toBeLessThan(1e-4); // measured: ≤ 4e-7 on llvmpipe
    }
  });

  it('trains a QAT network, checkpoints it and resumes', async (ctx) => {
    if (!info) return ctx.skip(reason);
    const train = quadrants(256, 1);
    const test = quadrants(128, 2);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-webgpu-'));
    const opts = { batchSize: 32, lr: 0.02, optimizer: 'adam' as const, seed: 5, progress: 'silent' as const, checkpointDir: dir, resume: true };
    manualSeed(7);
    const model = qatNet();
    const first = await fit(model, { train, test }, { ...opts, epochs: 2 });
    expect(first.history.length).toBe(2);
    expect(fs.existsSync(path.join(dir, 'last.safetensors'))).toBe(true);
    manualSeed(99); // different initial weights: the resume must replace them from the checkpoint
    const resumed = qatNet();
    const r = await fit(resumed, { train, test }, { ...opts, epochs: 4 });
    expect(r.history.length).toBe(4);
    expect(r.history.slice(0, 2)).toEqual(first.history);
    expect(r.history[3]!.testAccuracy).toBeGreaterThan(0.9);
    expect(Number.isFinite(r.history[3]!.testLoss)).toBe(true);
  });
});
