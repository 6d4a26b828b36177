/**
 * Writes the PyTorch parity fixture that tests/transformers/torch-parity.test.ts checks in CI without PyTorch:
 * a tiny seeded GPT-2 folder written by fhenet (F32) and, from ./torch_gpt2.py (Debian python3-torch), the float32
 * logits of 5 prompts and their greedy 20-token continuations.
 *
 *   npx tsx experiments/gpt2/make-fixture.ts   # → tests/transformers/fixtures/gpt2-tiny/
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../src/backend/index.js';
import { GPT2LMHeadModel, savePretrained } from '../../src/transformers/index.js';
import { Rng } from '../../src/util/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '../../tests/transformers/fixtures/gpt2-tiny');
await initBackend();
// initializer_range 0.3 (not GPT-2's 0.02) so a random model's greedy continuations are varied, not one token.
const config = { vocab_size: 256, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 4, initializer_range: 0.3 };
const model = new GPT2LMHeadModel(config, { seed: 2026 });
savePretrained(model, out);
const rng = new Rng('fixture-prompts');
const prompts = [3, 7, 12, 1, 20].map((n) => Array.from({ length: n }, () => rng.int(config.vocab_size)));
const request = path.join(out, 'request.json');
const logitsFile = path.join(out, 'torch-logits.f32');
fs.writeFileSync(request, JSON.stringify({ model: out, prompts, new_tokens: 20, logits_out: logitsFile }));
const torch = JSON.parse(execFileSync('/usr/bin/python3', [path.join(here, 'torch-check.py'), request], { encoding: 'utf8', cwd: here }));
fs.rmSync(request);
fs.writeFileSync(path.join(out, 'torch-reference.json'), `${JSON.stringify({
  made_by: 'experiments/gpt2/make-fixture.ts with experiments/gpt2/torch_gpt2.py',
  torch: torch.torch,
  prompts,
  logits_file: 'torch-logits.f32 (float32 little-endian, prompts concatenated, [sum(len), vocab_size])',
  greedy: torch.greedy,
}, null, 1)}\n`);
console.log(`wrote ${out}`);
