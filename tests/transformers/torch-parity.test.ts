import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { fromPretrained, generate } from '../../src/transformers/index.js';

// Made by experiments/gpt2/make-fixture.ts: a tiny random GPT-2 written by fhenet, and the logits and greedy
// continuations that an independent plain-PyTorch GPT-2 (experiments/gpt2/torch_gpt2.py) computed from the files.
const DIR = path.join(import.meta.dirname, 'fixtures/gpt2-tiny');
const ref = JSON.parse(fs.readFileSync(path.join(DIR, 'torch-reference.json'), 'utf8')) as { prompts: number[][]; greedy: number[][] };
const torchLogits = new Float32Array(fs.readFileSync(path.join(DIR, 'torch-logits.f32')).buffer.slice(0));

beforeAll(async () => {
  await initBackend();
});

describe('parity with PyTorch (committed reference)', () => {
  it('logits within 1e-4 and identical greedy 20-token continuations', async () => {
    const model = fromPretrained(DIR);
    const V = model.config.vocab_size;
    let off = 0;
    let maxAbs = 0;
    for (const p of ref.prompts) {
      const logits = tf.tidy(() => (model.forward(tf.tensor2d([p], [1, p.length], 'int32')) as tf.Tensor).dataSync());
      for (let i = 0; i < logits.length; i++) maxAbs = Math.max(maxAbs, Math.abs(logits[i]! - torchLogits[off + i]!));
      off += p.length * V;
    }
    expect(off).toBe(torchLogits.length);
    expect(maxAbs).toBeLessThan(1e-4);
    const got = await generate(model, ref.prompts, { maxNewTokens: 20, eosTokenId: null });
    expect(got.newTokens).toEqual(ref.greedy);
    model.dispose();
  });
});
