/**
 * The hybrid forward is one asynchronous pass of the model (Module.callAsync): k remote modules → k remote calls and
 * one pass of the local layers, in every mode. Its outputs equal those of the replaying forward it replaced
 * (fixtures/forward-outputs.json, written by fixtures/make-forward-outputs.ts on the commit before the change) bit for
 * bit, in disable, simulate, execute and remote over loopback HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { Linear, ReLU } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import type { Activation } from '../../src/nn/quant-tensor.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { ConfigError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { SeedNet, startServer, tmpDir } from './helpers.js';

const expected = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'fixtures', 'forward-outputs.json'), 'utf8')) as Record<string, Record<string, number[]>>;
const root = tmpDir('async');

beforeAll(async () => {
  await initBackend();
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function uniform(n: number, d: number, seed: number): tf.Tensor {
  const r = new Rng(seed);
  return tf.tensor(Float32Array.from({ length: n * d }, () => r.uniform(-1, 1)), [n, d]);
}

/** Counts forwards of the model's local layers (hooks run in call and callAsync alike). */
function countLocalPasses(model: Module, remote: string[]): () => number {
  let passes = 0;
  const locals = model.namedModules().filter(([n, m]) => n !== '' && !remote.some((r) => n === r || n.startsWith(`${r}.`)) && m.namedChildren().length === 0);
  for (const [, m] of locals) m.registerForwardHook(() => passes++);
  return () => passes / locals.length;
}

async function checkAllModes(h: HybridFHEModel, x: tf.Tensor, want: Record<string, number[]>, dir: string, fresh: () => Module): Promise<void> {
  const k = h.moduleNames.length;
  const passes = countLocalPasses(h.model, [...h.moduleNames]);
  for (const mode of ['disable', 'simulate', 'execute'] as const) {
    h.setFheMode(mode);
    const before = passes();
    const calls = h.calls.length;
    const tensors = tf.memory().numTensors;
    const y = await h.forward(x);
    expect(tf.memory().numTensors).toBe(tensors + 1); // only the result survives
    expect(Array.from(y.dataSync()), mode).toEqual(want[mode]);
    y.dispose();
    expect(passes() - before, `${mode}: passes`).toBe(1);
    expect(h.calls.length - calls, `${mode}: remote calls`).toBe(mode === 'execute' ? k : 0);
  }
  await h.close();
  h.saveAndClearPrivateInfo(dir);
  const { app, url } = await startServer({ modelsDir: path.dirname(dir), keysDir: path.join(root, `keys-${path.basename(dir)}`) });
  try {
    const client = HybridFHEModel.loadClient(fresh(), dir, { serverUrl: url });
    const clientPasses = countLocalPasses(client.model, [...client.moduleNames]);
    let computeRequests = 0; // counted by the HTTP server itself, not by the client's reports
    app.server.on('request', (req: { url?: string }) => void (req.url?.startsWith('/compute') && computeRequests++));
    const metric = async () => computeRequests;
    for (let rep = 0; rep < 2; rep++) {
      const computes = await metric();
      const y = await client.forward(x);
      expect(Array.from(y.dataSync()), 'remote').toEqual(want.remote);
      y.dispose();
      expect(clientPasses(), 'remote: passes').toBe(rep + 1);
      expect(await metric(), 'remote: POST /compute per forward').toBe(computes + k);
    }
    expect(client.calls.length).toBe(2 * k);
    await client.close();
  } finally {
    await app.close();
  }
}

describe('single-pass asynchronous hybrid forward', () => {
  it('SeedNet with seq.0 and seq.2 remote: 2 calls, 1 pass, outputs of the replaying forward in all four modes', async () => {
    manualSeed(21);
    const h = new HybridFHEModel(new SeedNet(), ['seq.0', 'seq.2'], { modelName: 'seed2' });
    h.compileModel(uniform(200, 10, 3), { nBits: 6, roundingThresholdBits: 8 });
    await checkAllModes(h, uniform(8, 10, 7), expected.seedNetTwoRemote!, path.join(root, 'models', 'seed2'), () => new SeedNet());
  });

  it('checkerboard QAT net with fc2 and fc3 remote: the same', async () => {
    manualSeed(5);
    const h = new HybridFHEModel(new QuantSimpleNet({ hidden: 20, bits: 3 }).eval(), ['fc2', 'fc3'], { modelName: 'cb2' });
    h.compileModel(uniform(300, 2, 11), { outputBits: 8 });
    await checkAllModes(h, uniform(16, 2, 12), expected.checkerboardTwoRemote!, path.join(root, 'models', 'cb2'), () => new QuantSimpleNet({ hidden: 20, bits: 3 }));
  });

  it('a module on the way to a remote module without forwardAsync is named in a ConfigError, in every mode', async () => {
    class Inner extends Module {
      readonly fc = this.addModule('fc', new Linear(4, 4));
      readonly act = this.addModule('act', new ReLU());
      forward(x: Activation): Activation {
        return this.act.call(this.fc.call(x));
      }
    }
    class Outer extends Module {
      readonly inner = this.addModule('inner', new Inner());
      forward(x: Activation): Activation {
        return this.inner.call(x);
      }
      override forwardAsync(x: Activation): Promise<Activation> {
        return this.inner.callAsync(x);
      }
    }
    manualSeed(2);
    const h = new HybridFHEModel(new Outer(), ['inner.fc']);
    const x = uniform(4, 4, 1);
    h.compileModel(uniform(64, 4, 2), { nBits: 6 });
    for (const mode of ['simulate', 'execute'] as const) {
      h.setFheMode(mode);
      const err = await h.forward(x).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/Inner 'inner'/);
      expect((err as Error).message).not.toMatch(/Outer/);
    }
    // the synchronous forward still serves the modes that compute in clear, and refuses the others with the fix
    h.setFheMode('simulate');
    tf.tidy(() => void h.model.call(x));
    h.setFheMode('execute');
    expect(() => h.model.call(x)).toThrow(/HybridFHEModel.forward/);
    await h.close();
  });

  it('concurrent forwards of two hybrid models run one at a time and free their intermediate tensors', async () => {
    manualSeed(8);
    const a = new HybridFHEModel(new SeedNet(), ['seq.0'], { modelName: 'a' });
    const b = new HybridFHEModel(new SeedNet(), ['seq.2'], { modelName: 'b' });
    a.compileModel(uniform(100, 10, 1), { nBits: 6 });
    b.compileModel(uniform(100, 10, 2), { nBits: 6 });
    const x = uniform(5, 10, 3);
    const alone = await Promise.all([a, b].map(async (h) => {
      const y = await h.forward(x);
      const d = Array.from(y.dataSync());
      y.dispose();
      return d;
    }));
    a.setFheMode('execute');
    b.setFheMode('execute');
    const tensors = tf.memory().numTensors;
    const ys = await Promise.all([a.forward(x), b.forward(x), a.forward(x), b.forward(x)]);
    expect(tf.memory().numTensors).toBe(tensors + 4);
    expect(ys.map((y) => Array.from(y.dataSync()))).toEqual([alone[0], alone[1], alone[0], alone[1]]);
    for (const y of ys) y.dispose();
    await a.close();
    await b.close();
  });
});
