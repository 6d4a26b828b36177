/**
 * GPT-2 on TensorFlow.js's WebGPU backend (Dawn; Mesa's software llvmpipe on machines without a GPU): the committed
 * PyTorch-parity fixture gives the same logits and greedy tokens there. WebGPU in Node reads tensors only
 * asynchronously, which generate() does. Skipped with the reason when Dawn finds no adapter;
 * `FHENET_REQUIRE_WEBGPU=1` turns the skip into a failure (as in tests/backend/webgpu.test.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendInfo, initBackend } from '../../src/backend/index.js';
import { fromPretrained, generate } from '../../src/transformers/index.js';

const DIR = path.join(import.meta.dirname, 'fixtures/gpt2-tiny');
let info: BackendInfo | undefined;
beforeAll(async () => {
  try {
    info = await initBackend('webgpu');
  } catch (err) {
    if (process.env.FHENET_REQUIRE_WEBGPU === '1') throw err;
    console.warn(`WebGPU unavailable, tests skipped: ${(err as Error).message}`);
  }
}, 120_000);

describe('GPT-2 on WebGPU', () => {
  it('matches the PyTorch reference logits (1e-4) and greedy tokens', async (ctx) => {
    if (!info) ctx.skip();
    const ref = JSON.parse(fs.readFileSync(path.join(DIR, 'torch-reference.json'), 'utf8')) as { prompts: number[][]; greedy: number[][] };
    const torchLogits = new Float32Array(fs.readFileSync(path.join(DIR, 'torch-logits.f32')).buffer.slice(0));
    const model = fromPretrained(DIR);
    let off = 0;
    let maxAbs = 0;
    for (const p of ref.prompts) {
      const t = model.forward(tf.tensor2d([p], [1, p.length], 'int32')) as tf.Tensor;
      const l = await t.data();
      t.dispose();
      for (let i = 0; i < l.length; i++) maxAbs = Math.max(maxAbs, Math.abs(l[i]! - torchLogits[off + i]!));
      off += l.length;
    }
    expect(maxAbs).toBeLessThan(1e-4);
    const got = await generate(model, ref.prompts, { maxNewTokens: 20, eosTokenId: null });
    expect(got.newTokens).toEqual(ref.greedy);
    model.dispose();
  }, 120_000);
});
