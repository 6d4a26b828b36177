/**
 * fhenet's refined accumulator rounding (per-channel + aligned, src/compiler/rounding.ts) through HybridFHEModel:
 * the option reaches the remote module's circuit, survives saveAndClearPrivateInfo and the model server, and remote
 * equals local simulate exactly; the refined circuit computes something other than plain rounding's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { Rng } from '../../src/util/rng.js';
import { SeedNet, startServer, tmpDir } from './helpers.js';

beforeAll(async () => {
  await initBackend();
});
const root = tmpDir('refined');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const batch = (n: number, seed: number) => {
  const r = new Rng(seed);
  return tf.tensor2d(Float32Array.from({ length: n * 10 }, () => r.uniform(-1, 1)), [n, 10]);
};

async function simulated(rounding: number | { bits: number; perChannel: boolean; align: boolean }): Promise<{ h: HybridFHEModel; y: Float32Array }> {
  manualSeed(11);
  const h = new HybridFHEModel(new SeedNet(), ['seq.0'], { modelName: 'seed' });
  h.compileModel(batch(300, 2), { nBits: 6, roundingThresholdBits: rounding });
  h.setFheMode('simulate');
  const y = await h.forward(batch(64, 5));
  const out = Float32Array.from(y.dataSync() as Float32Array);
  y.dispose();
  return { h, y: out };
}

describe('refined rounding through HybridFHEModel', () => {
  it('remote equals simulate exactly, and differs from plain rounding', async () => {
    const refined = await simulated({ bits: 4, perChannel: true, align: true });
    const plain = await simulated(4);
    expect(Array.from(refined.y)).not.toEqual(Array.from(plain.y));
    const dir = path.join(root, 'models', 'seed');
    refined.h.saveAndClearPrivateInfo(dir);
    const server = fs.readFileSync(path.join(dir, 'seq.0', '10', 'server.fhe'));
    expect(server.includes(Buffer.from('channelRoundBits'))).toBe(true);
    const { app, url } = await startServer({ modelsDir: path.join(root, 'models'), keysDir: path.join(root, 'keys') });
    try {
      const client = HybridFHEModel.loadClient(new SeedNet(), dir, { serverUrl: url });
      const y = await client.forward(batch(64, 5));
      expect(Array.from(y.dataSync())).toEqual(Array.from(refined.y));
      y.dispose();
    } finally {
      await app.close();
    }
  });
});
