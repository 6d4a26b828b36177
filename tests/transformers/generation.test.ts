import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { Module } from '../../src/nn/module.js';
import type { Activation } from '../../src/nn/quant-tensor.js';
import { GPT2LMHeadModel, generate, sampleToken } from '../../src/transformers/index.js';
import { ConfigError, ShapeError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

beforeAll(async () => {
  await initBackend();
});

// Larger init than GPT-2's 0.02 so a random model's greedy continuations are not one repeated token.
const CONFIG = { vocab_size: 97, n_positions: 40, n_embd: 32, n_layer: 2, n_head: 4, initializer_range: 0.3 };
const model = () => new GPT2LMHeadModel(CONFIG, { seed: 21 }).eval();
const PROMPTS = [[5, 17, 42, 8], [60, 2], [11, 12, 13, 14, 15, 16, 17]];

describe('generate', () => {
  it('with the key/value cache equals recomputing the whole sequence (batched, left-padded)', async () => {
    const m = model();
    const cached = await generate(m, PROMPTS, { maxNewTokens: 12, eosTokenId: null });
    const plain = await generate(m, PROMPTS, { maxNewTokens: 12, eosTokenId: null, useCache: false });
    expect(cached.newTokens).toEqual(plain.newTokens);
    expect(new Set(cached.newTokens[0]).size).toBeGreaterThan(2); // a real continuation, not one token repeated
    m.dispose();
  });

  it('a left-padded batch continues each prompt exactly as it would alone', async () => {
    const m = model();
    const batch = await generate(m, PROMPTS, { maxNewTokens: 10, eosTokenId: null });
    for (let r = 0; r < PROMPTS.length; r++) {
      const alone = await generate(m, PROMPTS[r]!, { maxNewTokens: 10, eosTokenId: null });
      expect(batch.newTokens[r]).toEqual(alone.newTokens[0]);
      expect(batch.sequences[r]).toEqual([...PROMPTS[r]!, ...alone.newTokens[0]!]);
    }
    m.dispose();
  });

  it('seeded sampling is reproducible; another seed differs; top-k 1 is greedy', async () => {
    const m = model();
    const opts = { maxNewTokens: 15, doSample: true, temperature: 1.5, topP: 0.95, eosTokenId: null };
    const a = await generate(m, PROMPTS[0]!, { ...opts, seed: 1 });
    const b = await generate(m, PROMPTS[0]!, { ...opts, seed: 1 });
    const c = await generate(m, PROMPTS[0]!, { ...opts, seed: 2 });
    expect(a.newTokens).toEqual(b.newTokens);
    expect(a.newTokens).not.toEqual(c.newTokens);
    const greedy = await generate(m, PROMPTS[0]!, { maxNewTokens: 8, eosTokenId: null });
    const topOne = await generate(m, PROMPTS[0]!, { maxNewTokens: 8, eosTokenId: null, doSample: true, topK: 1, seed: 5 });
    expect(topOne.newTokens).toEqual(greedy.newTokens);
    m.dispose();
  });

  it('stops at eos or a stop sequence, streams one token per row per step', async () => {
    const m = model();
    const free = await generate(m, PROMPTS[0]!, { maxNewTokens: 10, eosTokenId: null });
    const third = free.newTokens[0]![2]!;
    const atEos = await generate(m, PROMPTS[0]!, { maxNewTokens: 10, eosTokenId: third });
    expect(atEos.newTokens[0]).toEqual(free.newTokens[0]!.slice(0, free.newTokens[0]!.indexOf(third) + 1));
    expect(atEos.finishReasons).toEqual(['eos']);
    const seq = free.newTokens[0]!.slice(3, 5);
    const atStop = await generate(m, PROMPTS[0]!, { maxNewTokens: 10, eosTokenId: null, stop: [seq] });
    expect(atStop.finishReasons).toEqual(['stop']);
    expect(atStop.newTokens[0]!.slice(-2)).toEqual(seq);
    const streamed: number[][] = [];
    await generate(m, PROMPTS, { maxNewTokens: 4, eosTokenId: null, onToken: (t) => void streamed.push(t) });
    expect(streamed.length).toBe(4);
    expect(streamed.every((t) => t.length === 3)).toBe(true);
    m.dispose();
  });

  it('awaits layers with forwardAsync (the hook a hybrid model uses) and gets the same tokens', async () => {
    const m = model();
    const expected = await generate(m, PROMPTS, { maxNewTokens: 6, eosTokenId: null });
    let calls = 0;
    const inner = m.getModule('transformer.h.1.mlp.c_fc');
    class Remote extends Module {
      forward(x: Activation): Activation {
        return inner.call(x);
      }
      override async forwardAsync(x: Activation): Promise<tf.Tensor> {
        calls++;
        await new Promise((r) => setTimeout(r, 1));
        return inner.call(x) as tf.Tensor;
      }
    }
    m.setModule('transformer.h.1.mlp.c_fc', new Remote());
    const before = tf.memory().numTensors;
    const got = await generate(m, PROMPTS, { maxNewTokens: 6, eosTokenId: null });
    expect(got.newTokens).toEqual(expected.newTokens);
    expect(calls).toBe(6);
    expect(tf.memory().numTensors).toBe(before); // nothing leaks across the awaits
  });

  it('names bad input', async () => {
    const m = model();
    await expect(generate(m, [1, 2], { maxNewTokens: 0 })).rejects.toThrow(/maxNewTokens must be a positive integer, got 0/);
    await expect(generate(m, new Array(41).fill(1))).rejects.toThrow(/more than the model's context of 40/);
    await expect(generate(m, new Array(30).fill(1), { maxNewTokens: 20 })).rejects.toThrow(/ask for at most 10 new tokens/);
    await expect(generate(m, [1, 97])).rejects.toThrow(ShapeError);
    await expect(generate(m, [1, 97])).rejects.toThrow(/unknown token id 97/);
    await expect(generate(m, [1], { doSample: true, topP: 0 })).rejects.toThrow(ConfigError);
    m.dispose();
  });
});

describe('sampleToken', () => {
  it('draws in proportion to softmax(logits / T) within top-k / top-p', () => {
    const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
    const rng = new Rng(3);
    const count = (opts: object, n = 4000) => {
      const c = [0, 0, 0, 0];
      for (let i = 0; i < n; i++) c[sampleToken(logits, opts, rng)]!++;
      return c.map((v) => v / n);
    };
    const plain = count({});
    expect(plain[0]).toBeCloseTo(0.5, 1);
    expect(plain[3]).toBeCloseTo(0.05, 1);
    expect(count({ topK: 2 })).toEqual([expect.closeTo(0.625, 1), expect.closeTo(0.375, 1), 0, 0]);
    expect(count({ topP: 0.8 })[2]).toBe(0); // 0.5 + 0.3 reaches 0.8
    expect(count({ temperature: 0.05 })[0]).toBeGreaterThan(0.99);
  });
});
