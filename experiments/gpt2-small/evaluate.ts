/**
 * Held-out numbers of the shipped model for its RESULTS.md: full 50,257-way perplexity on the committed validation
 * chapters (disjoint windows and stride 64), and the mean probability the model gives to tokens that never occur in
 * the corpus (their embedding rows are zero, see subset-vocabulary.ts).
 *
 *   npx tsx experiments/gpt2-small/evaluate.ts [models/gpt2-kjv-small]
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { evaluatePerplexity } from '../../src/train/causal-lm.js';
import { fromPretrained } from '../../src/transformers/gpt2/pretrained.js';
import { GPT2Tokenizer } from '../../src/transformers/tokenizer.js';
import { MODEL_DIR, VALIDATION_TEXT } from './corpus.js';

const dir = process.argv[2] ?? MODEL_DIR;
await initBackend();
const model = fromPretrained(dir);
const tok = GPT2Tokenizer.fromPretrained(dir);
const ids = tok.encode(fs.readFileSync(VALIDATION_TEXT, 'utf8'));
const t = model.config.n_positions;
const out: Record<string, unknown> = { model: dir, validationTokens: ids.length };
// Disjoint windows are what `fhenet eval-lm` reports by default; stride t/2 gives each token more context.
for (const stride of process.argv.includes('--quick') ? [t] : [t, t / 2]) {
  const t0 = Date.now();
  const r = await evaluatePerplexity(model, ids, { contextLength: t, stride });
  out[`stride${stride}`] = { perplexity: r.perplexity, loss: r.loss, tokens: r.tokens, seconds: (Date.now() - t0) / 1000 };
}
// Probability mass on zero-row tokens, over the first 16 disjoint windows.
const wte = model.transformer.wte.weight.arraySync() as number[][];
const zeroRows = wte.map((row, id) => (row.every((v) => v === 0) ? id : -1)).filter((id) => id >= 0);
let mass = 0;
let n = 0;
for (let w = 0; w < 16 && (w + 1) * t <= ids.length; w++) {
  const probs = tf.tidy(() => tf.softmax(model.forward(tf.tensor2d(ids.slice(w * t, (w + 1) * t), [1, t], 'int32')) as tf.Tensor));
  const p = (await probs.data()) as Float32Array;
  probs.dispose();
  const v = model.config.vocab_size;
  for (let pos = 0; pos < t; pos++) {
    for (const id of zeroRows) mass += p[pos * v + id]!;
    n++;
  }
}
out.zeroRowTokens = zeroRows.length;
out.meanProbabilityOnZeroRowTokens = mass / n;
console.log(JSON.stringify(out, null, 2));
