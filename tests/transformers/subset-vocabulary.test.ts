/**
 * The subset-vocabulary training of the shipped model (experiments/gpt2-small/subset-vocabulary.ts) is the exact
 * full-vocabulary cross-entropy for a GPT-2 whose unseen embedding rows are zero, and training keeps them zero.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { evaluatePerplexity, fitCausalLM } from '../../src/train/causal-lm.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { Rng } from '../../src/util/rng.js';
import { subsetForward, subsetVocabulary, zeroUnseenRows } from '../../experiments/gpt2-small/subset-vocabulary.js';

describe('subset-vocabulary training', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('equals the full softmax, before and after training, and leaves unseen rows at zero', async () => {
    const rng = new Rng(4);
    const used = [3, 5, 8, 13, 21, 34, 55, 60];
    const ids = Int32Array.from({ length: 300 }, () => used[rng.int(used.length)]!);
    const model = new GPT2LMHeadModel({ vocab_size: 64, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }, { seed: 1 });
    const subset = subsetVocabulary([ids], 64);
    expect(subset.unseen).toBe(64 - used.length);
    zeroUnseenRows(model, subset);
    const opts = { contextLength: 16 };
    const sub = { ...opts, forward: subsetForward(subset), targetIndex: subset.targetIndex };
    const full0 = await evaluatePerplexity(model, ids, opts);
    expect((await evaluatePerplexity(model, ids, sub)).loss).toBeCloseTo(full0.loss, 5);
    await fitCausalLM(model, { train: ids }, { ...sub, batchSize: 4, maxSteps: 20, lr: 1e-2, progress: 'silent' });
    const full1 = await evaluatePerplexity(model, ids, opts);
    expect(full1.loss).toBeLessThan(full0.loss - 0.3);
    expect((await evaluatePerplexity(model, ids, sub)).loss).toBeCloseTo(full1.loss, 5);
    const wte = model.transformer.wte.weight.arraySync() as number[][];
    for (let id = 0; id < 64; id++) {
      if (!used.includes(id)) expect(wte[id]!.every((v) => v === 0)).toBe(true);
    }
  });
});
