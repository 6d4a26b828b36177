/**
 * The committed models/gpt2-kjv-small is the trained model its RESULTS.md describes: it loads from the folder, its
 * held-out perplexity is that of a trained model (a random one is ≈ 50,000), and it continues a verse in KJV style.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { evaluatePerplexity } from '../../src/train/causal-lm.js';
import { generate } from '../../src/transformers/generation.js';
import { fromPretrained } from '../../src/transformers/gpt2/pretrained.js';
import { GPT2Tokenizer } from '../../src/transformers/tokenizer.js';

const DIR = join(import.meta.dirname, '../../models/gpt2-kjv-small');
const HELD_OUT = join(import.meta.dirname, '../../experiments/gpt2-small/kjv-validation.txt');

describe('models/gpt2-kjv-small', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('has low held-out perplexity and writes the next verse of a chapter', async () => {
    const model = fromPretrained(DIR);
    const tok = GPT2Tokenizer.fromPretrained(DIR);
    expect(model.config.vocab_size).toBe(50257);
    const ids = tok.encode(fs.readFileSync(HELD_OUT, 'utf8')).slice(0, 1024);
    const r = await evaluatePerplexity(model, ids, { contextLength: 128 });
    // RESULTS.md: 37.9 on all 22,816 held-out tokens.
    expect(r.perplexity).toBeLessThan(80);
    const out = await generate(model, tok.encode('Psalms 23:1 The LORD is'), { maxNewTokens: 40 });
    const text = tok.decode(out.newTokens[0]!);
    expect(text).toMatch(/LORD/);
    expect(text).toMatch(/\nPsalms 23:\d+ /);
    model.dispose();
  }, 60_000);
});
