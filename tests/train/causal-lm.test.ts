/**
 * fitCausalLM and evaluatePerplexity on a tiny next-token model (a learned bigram table: ids → one-hot → logits), fast
 * enough to train to convergence in a test. The GPT-2 training path is checked in tests/transformers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { Module } from '../../src/nn/module.js';
import { type Activation, valueOf } from '../../src/nn/quant-tensor.js';
import { evaluatePerplexity, fitCausalLM } from '../../src/train/causal-lm.js';
import { crossEntropy, sparseCrossEntropy } from '../../src/train/loss.js';
import { learningRate } from '../../src/train/schedule.js';
import { Rng } from '../../src/util/rng.js';

const V = 24;

/** logits[b, t] = table[ids[b, t]]: a bigram model, written with one-hot products (differentiable on every backend). */
class Bigram extends Module {
  readonly table: tf.Variable;
  constructor(seed: number) {
    super();
    const rng = new Rng(seed);
    this.table = this.addParameter('table', tf.tensor2d(Float32Array.from({ length: V * V }, () => rng.normal() * 0.1), [V, V]));
  }
  forward(x: Activation): tf.Tensor {
    const ids = valueOf(x);
    const [b, t] = ids.shape as [number, number];
    return tf.reshape(tf.matMul(tf.oneHot(tf.reshape(ids, [-1]) as tf.Tensor1D, V), this.table), [b, t, V]);
  }
}

/** A stream where every token has one successor (a cycle), so a bigram model can reach loss ≈ 0. */
function cycleText(n: number): Int32Array {
  const order = new Rng(7).permutation(V);
  return Int32Array.from({ length: n }, (_, i) => order[i % V]!);
}

function params(m: Module): Float32Array[] {
  return m.parameters().map((p) => p.dataSync() as Float32Array);
}

describe('causal LM training', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('sparseCrossEntropy equals crossEntropy, value and gradient', () => {
    const rng = new Rng(1);
    const z = tf.tensor2d(Float32Array.from({ length: 6 * V }, () => rng.normal() * 3), [6, V]);
    const y = tf.tensor1d([0, 5, 23, 5, 1, 17], 'int32');
    const a = tf.valueAndGrad((x: tf.Tensor) => sparseCrossEntropy(x, y))(z);
    const b = tf.valueAndGrad((x: tf.Tensor) => crossEntropy(x, y))(z);
    expect(a.value.dataSync()[0]).toBeCloseTo(b.value.dataSync()[0]!, 5);
    const ga = a.grad.dataSync();
    const gb = b.grad.dataSync();
    for (let i = 0; i < ga.length; i++) expect(Math.abs(ga[i]! - gb[i]!)).toBeLessThan(1e-6);
  });

  it('warm-up then cosine: linear rise, peak, floor', () => {
    const s = { kind: 'warmupCosine' as const, warmup: 10, total: 110, etaMin: 0.1 };
    expect(learningRate(1, 0, s)).toBeCloseTo(0.1);
    expect(learningRate(1, 9, s)).toBeCloseTo(1);
    expect(learningRate(1, 60, s)).toBeCloseTo(0.55);
    expect(learningRate(1, 110, s)).toBeCloseTo(0.1);
  });

  it('memorises a short cyclic text (loss → ≈ 0, perplexity → ≈ 1)', async () => {
    const ids = cycleText(600);
    const model = new Bigram(3);
    const before = await evaluatePerplexity(model, ids, { contextLength: 16 });
    const res = await fitCausalLM(model, { train: ids, validation: ids.subarray(0, 200) }, {
      contextLength: 16, batchSize: 4, maxSteps: 150, lr: 0.3, warmupSteps: 5, progress: 'silent', seed: 1,
    });
    const after = await evaluatePerplexity(model, ids, { contextLength: 16 });
    expect(before.perplexity).toBeGreaterThan(15);
    expect(after.perplexity).toBeLessThan(1.1);
    expect(res.finished).toBe(true);
    expect(res.log.at(-1)!.validationLoss).toBeLessThan(0.1);
    expect(res.log.at(-1)!.tokens).toBe(150 * 4 * 16);
  });

  it('resume after an interruption equals the uninterrupted run, bit for bit', async () => {
    const rng = new Rng(11);
    const ids = Int32Array.from({ length: 500 }, () => rng.int(V));
    const opts = { contextLength: 8, batchSize: 3, maxSteps: 12, lr: 0.05, warmupSteps: 3, checkpointEvery: 4, progress: 'silent' as const, seed: 5 };
    const straight = new Bigram(2);
    const a = await fitCausalLM(straight, { train: ids }, opts);
    const dir = mkdtempSync(join(tmpdir(), 'fhenet-lm-'));
    try {
      // Interrupted five times: each process stops (maxSeconds 0) after one step and its checkpoint; from the second
      // on, a model with other initial weights proves that everything comes from the checkpoint.
      for (let i = 0; i < 5; i++) {
        const r = await fitCausalLM(new Bigram(i === 0 ? 2 : 50 + i), { train: ids }, { ...opts, checkpointDir: dir, resume: true, maxSeconds: 0 });
        expect(r.steps).toBe(i + 1);
        expect(r.finished).toBe(false);
      }
      const second = new Bigram(99); // other initial weights: everything must come from the checkpoint
      const b = await fitCausalLM(second, { train: ids }, { ...opts, checkpointDir: dir, resume: true });
      expect(b.steps).toBe(12);
      expect(params(second)).toEqual(params(straight));
      expect(b.log.map((e) => e.loss)).toEqual(a.log.map((e) => e.loss));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gradient accumulation over 2 micro-batches of 2 equals one batch of 4', async () => {
    const rng = new Rng(12);
    const ids = Int32Array.from({ length: 400 }, () => rng.int(V));
    const base = { contextLength: 8, maxSteps: 5, lr: 0.05, progress: 'silent' as const, seed: 9, maxGradNorm: 0 };
    const one = new Bigram(4);
    await fitCausalLM(one, { train: ids }, { ...base, batchSize: 4 });
    const two = new Bigram(4);
    await fitCausalLM(two, { train: ids }, { ...base, batchSize: 2, gradientAccumulationSteps: 2 });
    const [p1] = params(one);
    const [p2] = params(two);
    for (let i = 0; i < p1!.length; i++) expect(Math.abs(p1![i]! - p2![i]!)).toBeLessThan(1e-5);
  });

  it('perplexity scores every token once, whatever the stride and batch', async () => {
    const rng = new Rng(13);
    const ids = Int32Array.from({ length: 203 }, () => rng.int(V));
    const model = new Bigram(6);
    // Reference: a bigram's NLL needs no context, so sum it token by token.
    const table = model.table.arraySync() as number[][];
    let nll = 0;
    for (let i = 1; i < ids.length; i++) {
      const row = table[ids[i - 1]!]!;
      const max = Math.max(...row);
      nll += max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0)) - row[ids[i]!]!;
    }
    for (const [stride, batchSize] of [[16, 8], [5, 3], [1, 64], [16, 1]] as const) {
      const r = await evaluatePerplexity(model, ids, { contextLength: 16, stride, batchSize });
      expect(r.tokens).toBe(ids.length - 1);
      expect(r.loss).toBeCloseTo(nll / (ids.length - 1), 4);
    }
    await expect(evaluatePerplexity(model, ids, { contextLength: 16, stride: 17 })).rejects.toThrow(/stride/);
  });
});
