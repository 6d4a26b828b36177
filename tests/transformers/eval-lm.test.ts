/**
 * `fhenet eval-lm` on a model folder fhenet writes (a tiny random GPT-2 with GPT-2's vocabulary and tokenizer): the
 * printed perplexity is evaluatePerplexity's on the same tokens, and user mistakes give one-line errors.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { evaluatePerplexity } from '../../src/train/causal-lm.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { savePretrained } from '../../src/transformers/gpt2/pretrained.js';
import { GPT2Tokenizer } from '../../src/transformers/tokenizer.js';

const TOKENIZER_DIR = join(import.meta.dirname, '../../models/gpt2-kjv-small');
const TEXT = join(import.meta.dirname, '../../experiments/gpt2-small/kjv-validation.txt');

describe('fhenet eval-lm', () => {
  let dir: string;
  let model: GPT2LMHeadModel;
  beforeAll(async () => {
    await initBackend();
    dir = mkdtempSync(join(tmpdir(), 'fhenet-evallm-'));
    model = new GPT2LMHeadModel({ n_embd: 16, n_layer: 1, n_head: 2, n_positions: 32 }, { seed: 3 });
    savePretrained(model, dir);
    GPT2Tokenizer.fromPretrained(TOKENIZER_DIR).save(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'eval-lm', ...args], { encoding: 'utf8', env: { ...process.env, FHENET_BACKEND: 'cpu' } });

  it('prints the perplexity evaluatePerplexity gives on the same tokens', async () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'eval-lm', '--model', dir, '--text', TEXT, '--max-tokens', '300', '--stride', '16', '--json'], { encoding: 'utf8' });
    const r = JSON.parse(out) as { perplexity: number; tokens: number; context: number };
    expect(r.tokens).toBe(299);
    expect(r.context).toBe(32);
    const ids = GPT2Tokenizer.fromPretrained(dir).encode((await import('node:fs')).readFileSync(TEXT, 'utf8')).slice(0, 300);
    const expected = await evaluatePerplexity(model, ids, { contextLength: 32, stride: 16 });
    expect(r.perplexity).toBeCloseTo(expected.perplexity, 1);
    // A random model is close to uniform over 50,257 tokens.
    expect(r.perplexity).toBeGreaterThan(10_000);
  }, 60_000);

  it('names the problem for a missing text file, a missing model folder and a context over n_positions', () => {
    const missingText = cli('--model', dir, '--text', join(dir, 'nope.txt'));
    expect(missingText.status).toBe(2);
    expect(missingText.stderr).toMatch(/nope.txt is not a readable file/);
    const text = join(dir, 't.txt');
    writeFileSync(text, 'In the beginning God created the heaven and the earth.');
    const missingModel = cli('--model', join(dir, 'absent'), '--text', text);
    expect(missingModel.status).toBe(2);
    expect(missingModel.stderr).toMatch(/absent/);
    const long = cli('--model', dir, '--text', text, '--context', '64');
    expect(long.status).toBe(2);
    expect(long.stderr).toMatch(/exceeds the model's n_positions \(32\)/);
  }, 60_000);
});
