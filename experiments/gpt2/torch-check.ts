/**
 * Parity of fhenet's GPT-2 with an independent PyTorch implementation (./torch_gpt2.py, Debian's python3-torch):
 * max |Δ| of the float32 logits of 5 prompts, and the greedy 50-token continuations (fhenet with its KV cache,
 * PyTorch with its own cache), on a Hugging Face folder.
 *
 *   npx tsx experiments/gpt2/torch-check.ts --random small   # writes a random GPT-2-small-shaped checkpoint first
 *   npx tsx experiments/gpt2/torch-check.ts --model DIR      # any GPT-2 folder (e.g. the shipped model)
 *
 * A folder with tokenizer files gets 5 English prompts (--random-ids: random token ids instead).
 * Options: --new-tokens N (50), --seed S (0, the random checkpoint's weights and the prompts), --dtype F32|F16,
 * --init-range R (0.02: GPT-2's initializer_range; larger values give a random model less repetitive continuations).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, describeBackend } from '../../src/backend/index.js';
import { GPT2Config, GPT2LMHeadModel, GPT2Tokenizer, fromPretrained, generate, savePretrained } from '../../src/transformers/index.js';
import { Rng } from '../../src/util/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const TEXT_PROMPTS = [
  'In the beginning God created',
  'And the LORD said unto Moses,',
  'The LORD is my shepherd;',
  'Blessed are the poor in spirit:',
  'And it came to pass, when the king heard',
];
let decode: ((ids: number[]) => string) | undefined;
const arg = (name: string, def?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};

export const SHAPES: Record<string, Partial<GPT2Config>> = {
  small: { n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024, vocab_size: 50257 },
  tiny: { n_embd: 64, n_layer: 2, n_head: 4, n_positions: 128, vocab_size: 1000 },
};

async function main(): Promise<void> {
  const backend = await initBackend();
  const seed = Number(arg('seed', '0'));
  const newTokens = Number(arg('new-tokens', '50'));
  let dir = arg('model') ? path.resolve(arg('model')!) : undefined;
  const shape = arg('random');
  if (!dir) {
    if (!shape || !SHAPES[shape]) throw new Error('pass --model DIR or --random small|tiny');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `fhenet-gpt2-${shape}-`));
    const t0 = performance.now();
    const m = new GPT2LMHeadModel({ ...SHAPES[shape]!, initializer_range: Number(arg('init-range', '0.02')) }, { seed });
    savePretrained(m, dir, { dtype: (arg('dtype', 'F32') as 'F32' | 'F16') });
    m.dispose();
    console.error(`random ${shape} checkpoint (seed ${seed}) written to ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const model = fromPretrained(dir);
  const vocab = model.config.vocab_size;
  const rng = new Rng(`prompts-${seed}`);
  let prompts = [8, 16, 5, 32, 12].map((n) => Array.from({ length: n }, () => rng.int(vocab)));
  let texts: string[] | undefined;
  if (fs.existsSync(path.join(dir, 'tokenizer.json')) && !process.argv.includes('--random-ids')) {
    // A folder with a tokenizer: English prompts (token ids a trained model has seen), decoded in the report.
    const tok = GPT2Tokenizer.fromPretrained(dir);
    texts = TEXT_PROMPTS;
    prompts = texts.map((t) => tok.encode(t));
    decode = (ids) => tok.decode(ids);
  }

  const t0 = performance.now();
  const ours: Float32Array[] = [];
  const oursGreedy: number[][] = [];
  for (const p of prompts) {
    const logits = tf.tidy(() => model.forward(tf.tensor2d([p], [1, p.length], 'int32')) as tf.Tensor);
    ours.push(logits.dataSync() as Float32Array);
    logits.dispose();
    oursGreedy.push((await generate(model, p, { maxNewTokens: newTokens, eosTokenId: null })).newTokens[0]!);
  }
  const fhenetSeconds = (performance.now() - t0) / 1000;

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-torch-check-'));
  const req = path.join(work, 'request.json');
  const logitsFile = path.join(work, 'logits.f32');
  fs.writeFileSync(req, JSON.stringify({ model: dir, prompts, new_tokens: newTokens, logits_out: logitsFile }));
  const out = JSON.parse(execFileSync('/usr/bin/python3', [path.join(here, 'torch-check.py'), req], { encoding: 'utf8', cwd: here, maxBuffer: 1 << 26 }));
  const theirs = new Float32Array(fs.readFileSync(logitsFile).buffer.slice(0));

  let maxAbs = 0;
  let maxLogit = 0;
  let off = 0;
  for (const l of ours) {
    for (let i = 0; i < l.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(l[i]! - theirs[off + i]!));
      maxLogit = Math.max(maxLogit, Math.abs(theirs[off + i]!));
    }
    off += l.length;
  }
  if (off !== theirs.length) throw new Error(`PyTorch wrote ${theirs.length} logits, fhenet ${off}`);
  const same = oursGreedy.map((g, i) => JSON.stringify(g) === JSON.stringify(out.greedy[i]));
  const firstDiff = oursGreedy.map((g, i) => g.findIndex((t, j) => t !== out.greedy[i][j]));
  const report = {
    model: arg('model') ?? `random ${shape} (seed ${seed}, initializer_range ${arg('init-range', '0.02')}, ${arg('dtype', 'F32')})`,
    backend: describeBackend(backend),
    config: { n_embd: model.config.n_embd, n_layer: model.config.n_layer, n_head: model.config.n_head, vocab_size: vocab },
    promptLengths: prompts.map((p) => p.length),
    logitsCompared: off,
    maxAbsLogitDiff: maxAbs,
    maxAbsLogit: maxLogit,
    greedyIdentical: same,
    firstDifferentToken: firstDiff,
    newTokens,
    fhenetSeconds: Number(fhenetSeconds.toFixed(2)),
    torchSeconds: Number(out.seconds.toFixed(2)),
    torch: out.torch,
    prompts: texts,
    fhenetGreedySample: oursGreedy.map((g) => (decode ? decode(g) : g.slice(0, 12).join(' '))),
    distinctGreedyTokens: oursGreedy.map((g) => new Set(g).size),
  };
  console.log(JSON.stringify(report, null, 2));
  model.dispose();
  const pass = maxAbs <= 1e-3 && same.every(Boolean);
  if (!pass) process.exitCode = 1;
}

await main();
