/**
 * Are the GLWE layer results exact? The held-out slice of perplexity.ts through every remote layer of a GPT-2-family
 * folder on the `glwe` backend in 'execute' (client and server in this process, the same engine and server code as
 * 'remote'), with the client's decryptions compared, per layer, against the exact integers the server was asked to
 * compute (x_c · wᵀ + the bias in accumulator units, dynamic-quant.ts): how many decrypted accumulators differ, and
 * the noise (unrounded phase − exact) — its σ and max in accumulator units, beside the layer's messageBits. Then the
 * window's logits and loss against 'simulate' (the exact integer product in clear).
 *
 * `--substitute-exact` hands the model the exact integers instead of the decryptions (everything else unchanged):
 * if the decryption errors are the whole gap, that run's logits equal simulate's bit for bit.
 *
 *   npx tsx experiments/hybrid-llm/glwe-exactness.ts --model models/gpt2-kjv-small \
 *     --text experiments/gpt2-small/kjv-validation.txt --tokens 257
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { intOption } from '../../src/cli/options.js';
import { initBackend } from '../../src/backend/index.js';
import { fromPretrained } from '../../src/transformers/gpt2/pretrained.js';
import { GPT2Tokenizer } from '../../src/transformers/tokenizer.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { linearModuleNames, linearWeights } from '../../src/hybrid/linear-modules.js';
import { type QuantizedLinear, addBias, biasInAccumulatorUnits, biasPlan, integerMatVec, quantizeLinear } from '../../src/hybrid/dynamic-quant.js';
import { layerTag } from '../../src/hybrid/linear-backend.js';
import { glweLinearClient } from '../../src/hybrid/glwe-linear-backend.js';
import { Rng } from '../../src/util/rng.js';

const o = new Command('experiments/hybrid-llm/glwe-exactness.ts')
  .requiredOption('--model <dir>', 'a GPT-2 Hugging Face folder with its tokenizer')
  .requiredOption('--text <file>', 'held-out text')
  .option('--tokens <n>', 'tokens of the text from its start', intOption('--tokens', 2), 257)
  .option('--substitute-exact', 'give the model the exact integers instead of the decryptions')
  .parse()
  .opts<{ model: string; text: string; tokens: number; substituteExact?: boolean }>();

await initBackend();
const ids = GPT2Tokenizer.fromPretrained(o.model).encode(fs.readFileSync(o.text, 'utf8')).slice(0, o.tokens);
const model = fromPretrained(o.model).eval();
const context = model.config.n_positions;
const MODEL = 'ref';
const names = linearModuleNames(model);
const layers = new Map<string, { name: string; q: QuantizedLinear; messageBits?: number }>();
for (const name of names) {
  const w = linearWeights(name, model.getModule(name));
  layers.set(Buffer.from(layerTag(MODEL, name)).toString('hex'), { name, q: quantizeLinear(w.weight, w.outFeatures, w.inFeatures, w.bias) });
}

interface Stats {
  outputs: number;
  wrong: number;
  maxAbsError: number;
  sumSq: number;
  messageBits: number;
}
const stats = new Map<string, Stats>();
const pending = new Map<string, { values: Int16Array; scales: Float32Array }>();

// Wrap the glwe client's keys: record each call's integers and scales, compare the decryption with the exact product.
const generateKeys = glweLinearClient.generateKeys.bind(glweLinearClient);
glweLinearClient.generateKeys = async () => {
  const keys = await generateKeys();
  return {
    ...keys,
    encrypt: (values, tokenScales, tokens, layer, tag) => {
      pending.set(Buffer.from(tag).toString('hex'), { values: Int16Array.from(values), scales: Float32Array.from(tokenScales) });
      return keys.encrypt(values, tokenScales, tokens, layer, tag);
    },
    decrypt: async (bytes, tokens, layer, tag) => {
      const hex = Buffer.from(tag).toString('hex');
      const l = layers.get(hex)!;
      const sent = pending.get(hex)!;
      const exact = addBias(integerMatVec(l.q, sent.values, tokens), biasInAccumulatorUnits(l.q, biasPlan(l.q), sent.scales));
      const got = await keys.decrypt(bytes, tokens, layer, tag);
      const phases = keys.phases!(bytes, tokens, layer, tag);
      const s = stats.get(l.name) ?? { outputs: 0, wrong: 0, maxAbsError: 0, sumSq: 0, messageBits: layer.info?.messageBits as number };
      for (let i = 0; i < exact.length; i++) {
        const e = phases[i]! - exact[i]!;
        s.outputs++;
        if (got[i] !== exact[i]) s.wrong++;
        s.maxAbsError = Math.max(s.maxAbsError, Math.abs(e));
        s.sumSq += e * e;
      }
      stats.set(l.name, s);
      return o.substituteExact ? exact : got;
    },
  };
};

const h = new HybridFHEModel(model, names, { modelName: MODEL });
const r = new Rng(0);
const calib = tf.tensor2d(Int32Array.from({ length: 2 * 8 }, () => Math.floor(r.uniform(0, model.config.vocab_size))), [2, 8], 'int32');
h.compileModel(calib, { nBits: 8, dynamicQuantization: true, backend: 'glwe' }); // as perplexity.ts
calib.dispose();

/** Mean next-token cross entropy of one window's logits [1, T, V]. */
function loss(logits: Float32Array, w: number[], targets: number[]): number {
  const v = logits.length / w.length;
  let total = 0;
  for (let t = 0; t < w.length; t++) {
    const row = logits.subarray(t * v, (t + 1) * v);
    let m = -Infinity;
    for (const z of row) m = Math.max(m, z);
    let s = 0;
    for (const z of row) s += Math.exp(z - m);
    total += m + Math.log(s) - row[targets[t]!]!;
  }
  return total / w.length;
}

const t0 = performance.now();
const windows: Record<string, unknown>[] = [];
for (let begin = 0; begin < ids.length - 1; begin += context) {
  const w = ids.slice(begin, Math.min(begin + context, ids.length - 1));
  const targets = ids.slice(begin + 1, begin + 1 + w.length);
  const out: Record<string, Float32Array> = {};
  for (const mode of ['simulate', 'execute'] as const) {
    h.setFheMode(mode);
    const x = tf.tensor2d([w], [1, w.length], 'int32');
    const y = await h.forward(x);
    out[mode] = Float32Array.from(y.dataSync() as Float32Array);
    x.dispose();
    y.dispose();
  }
  let differ = 0;
  let maxDiff = 0;
  for (let i = 0; i < out.simulate!.length; i++) {
    const d = Math.abs(out.simulate![i]! - out.execute![i]!);
    if (d > 0) differ++;
    maxDiff = Math.max(maxDiff, d);
  }
  const win = { begin, tokens: w.length, logitsDiffering: differ, maxLogitDiff: maxDiff, lossSimulate: loss(out.simulate!, w, targets), lossExecute: loss(out.execute!, w, targets), sSoFar: (performance.now() - t0) / 1000 };
  windows.push(win);
  console.log(JSON.stringify(win));
}
await h.close();
const perLayer = [...stats].map(([name, s]) => ({ name, messageBits: s.messageBits, outputs: s.outputs, wrong: s.wrong, sigma: Math.sqrt(s.sumSq / s.outputs), maxAbsError: s.maxAbsError }));
for (const l of perLayer) console.log(JSON.stringify(l));
const all = perLayer.reduce((a, l) => ({ outputs: a.outputs + l.outputs, wrong: a.wrong + l.wrong }), { outputs: 0, wrong: 0 });
console.log(JSON.stringify({ summary: true, substituteExact: !!o.substituteExact, tokens: ids.length, ...all, windows, wallS: (performance.now() - t0) / 1000, machine: `${os.cpus().length} × ${os.cpus()[0]?.model}, shared with other jobs` }));
