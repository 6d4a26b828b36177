/**
 * Sample continuations of the shipped model for its RESULTS.md: greedy and seeded nucleus sampling from fixed
 * prompts, printed as Markdown.
 *
 *   npx tsx experiments/gpt2-small/samples.ts [models/gpt2-kjv-small]
 */
import { initBackend } from '../../src/backend/index.js';
import { generate } from '../../src/transformers/generation.js';
import { fromPretrained } from '../../src/transformers/gpt2/pretrained.js';
import { GPT2Tokenizer } from '../../src/transformers/tokenizer.js';
import { MODEL_DIR } from './corpus.js';

const PROMPTS = ['Genesis 1:1 In the beginning', 'John 3:16 For God so loved', 'Psalms 23:1 The LORD is', 'And it came to pass', 'Matthew 5:3 Blessed are'];

const dir = process.argv[2] ?? MODEL_DIR;
await initBackend();
const model = fromPretrained(dir);
const tok = GPT2Tokenizer.fromPretrained(dir);
const show = (s: string) => s.replace(/\n/g, ' ⏎ ');
for (const prompt of PROMPTS) {
  const ids = tok.encode(prompt);
  const greedy = await generate(model, ids, { maxNewTokens: 40 });
  const sampled = await generate(model, ids, { maxNewTokens: 40, doSample: true, temperature: 0.8, topP: 0.95, seed: 1 });
  console.log(`- **${prompt}** — greedy: ${show(tok.decode(greedy.newTokens[0]!))}`);
  console.log(`  — sampled (T 0.8, top-p 0.95, seed 1): ${show(tok.decode(sampled.newTokens[0]!))}`);
}
