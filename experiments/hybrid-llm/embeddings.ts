/**
 * What remote embeddings cost (src/hybrid/remote-embedding.ts): a remote `wte` / `wpe` is the dynamically quantized
 * linear layer Eᵀ·onehot(id), d_in = vocabulary (or positions), d_out = n_embd.
 *
 * 1. Accuracy of the int8 weights: per-channel quantization of E (one scale per embedding dimension, across the
 *    whole vocabulary — what the linear machinery does with Eᵀ) against per-row scales (one per token, what a
 *    lookup table could use), on the shipped model's wte/wpe and on a GPT-2-small-shaped N(0, 0.02) wte. One-hot
 *    inputs quantize exactly, so this is the whole error of the clear modes.
 * 2. Per-token cost on the GPT-2-small shape through the real `glwe` linear backend (the frames the client sends):
 *    wte 50,257 → 768 and wpe 1,024 → 768, beside lm_head 768 → 50,257 (the most expensive layer of a token) measured
 *    in the same run, and the clear lookup (tf.gather) as the float peer. Compares every decrypted accumulator with
 *    255 · w[c, id] (the exact product with the one-hot row) and the noise model's bound.
 *
 *   nice -n 10 npx tsx experiments/hybrid-llm/embeddings.ts --model models/gpt2-kjv-small --reps 3
 */
import * as fs from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { intOption } from '../../src/cli/options.js';
import { initBackend } from '../../src/backend/index.js';
import { fromPretrained } from '../../src/transformers/gpt2/pretrained.js';
import { Embedding } from '../../src/nn/embedding.js';
import { Rng } from '../../src/util/rng.js';
import { type QuantizedLinear, quantizeLinear, quantizeTokens } from '../../src/hybrid/dynamic-quant.js';
import { embeddingAsLinearWeight, oneHotRows } from '../../src/hybrid/remote-embedding.js';
import { glweLinearClient, glweLinearServer } from '../../src/hybrid/glwe-linear-backend.js';
import { layerTag } from '../../src/hybrid/linear-backend.js';
import { GLWE_PARAMS_2048, type TransformedWeights, predictNoise } from '../../src/glwe/index.js';

const o = new Command('experiments/hybrid-llm/embeddings.ts')
  .option('--model <dir>', 'a GPT-2 Hugging Face folder for the accuracy part', 'models/gpt2-kjv-small')
  .option('--reps <n>', 'tokens (random ids) per layer for the timings (median)', intOption('--reps', 1), 3)
  .option('--skip-lm-head', 'skip the lm_head peer (saves ≈ 0.4 GB and its transform)')
  .parse()
  .opts<{ model: string; reps: number; skipLmHead?: boolean }>();

await initBackend();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
console.log(`# ${new Date().toISOString()}; ${cpus().length} × ${cpus()[0]?.model}; load average ${loadavg().map((v) => v.toFixed(1)).join(' / ')} at start (shared machine)`);

// ---- 1. accuracy of the int8 embedding weights ----------------------------------------------------------------------

/** Error of E [rows, dim] quantized per column (the remote embedding's per-channel scales) and per row. */
function quantError(label: string, e: Float32Array, rows: number, dim: number): void {
  const perColumn = quantizeLinear(transpose(e, rows, dim), dim, rows); // Eᵀ: [dim, rows], one scale per dim
  const perRow = quantizeLinear(e, rows, dim); // one scale per token
  const stats = (deq: (r: number, c: number) => number) => {
    let err2 = 0, ref2 = 0, maxAbs = 0, worstCos = 1, sumCos = 0;
    for (let r = 0; r < rows; r++) {
      let dot = 0, a2 = 0, b2 = 0;
      for (let c = 0; c < dim; c++) {
        const x = e[r * dim + c]!;
        const y = deq(r, c);
        err2 += (x - y) ** 2;
        ref2 += x * x;
        maxAbs = Math.max(maxAbs, Math.abs(x - y));
        dot += x * y;
        a2 += x * x;
        b2 += y * y;
      }
      const cos = a2 > 0 && b2 > 0 ? dot / Math.sqrt(a2 * b2) : 1;
      worstCos = Math.min(worstCos, cos);
      sumCos += cos;
    }
    return { relRms: Math.sqrt(err2 / ref2), maxAbs, meanCos: sumCos / rows, worstCos };
  };
  const col = stats((r, c) => perColumn.scales[c]! * perColumn.weights[c * rows + r]!);
  const row = stats((r, c) => perRow.scales[r]! * perRow.weights[r * dim + c]!);
  const f = (s: typeof col) => `rel. RMS error ${(100 * s.relRms).toFixed(3)} %, max |err| ${s.maxAbs.toExponential(2)}, row cosine mean ${s.meanCos.toFixed(6)} / worst ${s.worstCos.toFixed(6)}`;
  console.log(JSON.stringify({ accuracy: label, rows, dim, perChannel: col, perRow: row }));
  console.log(`  ${label} [${rows} × ${dim}]: per channel (remote) ${f(col)}; per row ${f(row)}`);
}

function transpose(e: Float32Array, rows: number, dim: number): Float32Array {
  const t = new Float32Array(e.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < dim; c++) t[c * rows + r] = e[r * dim + c]!;
  return t;
}

if (fs.existsSync(o.model)) {
  const model = fromPretrained(o.model);
  for (const name of ['transformer.wte', 'transformer.wpe']) {
    const m = model.getModule(name) as Embedding;
    quantError(`${o.model} ${name}`, Float32Array.from(m.weight.dataSync() as Float32Array), m.numEmbeddings, m.embeddingDim);
  }
  model.dispose();
}
const SMALL = { vocab: 50257, positions: 1024, dim: 768 };
const randomWte = new Embedding(SMALL.vocab, SMALL.dim, { std: 0.02, rng: new Rng(1) });
const randomWpe = new Embedding(SMALL.positions, SMALL.dim, { std: 0.02, rng: new Rng(2) });
quantError('GPT-2-small shape, N(0, 0.02) wte', Float32Array.from(randomWte.weight.dataSync() as Float32Array), SMALL.vocab, SMALL.dim);

// ---- 2. per-token cost on the GPT-2-small shape (glwe) ---------------------------------------------------------------

let t0 = performance.now();
const keys = await glweLinearClient.generateKeys();
const keygenMs = performance.now() - t0;
t0 = performance.now();
const serverKey = glweLinearServer.loadLocalKey!(keys.localKey!());
const keyPrepMs = performance.now() - t0;
console.log(JSON.stringify({ keys: true, keygenMs, serverPrepareMs: keyPrepMs, evaluationKeyBytes: keys.evaluationKey().length }));

interface Layer {
  name: string;
  q: QuantizedLinear;
  /** One token's input: centred integers and scale (the one-hot row for an embedding). */
  input(rng: Rng): { values: Int16Array; scales: Float32Array; id?: number };
}
const rng = new Rng(11);
const layers: Layer[] = [
  { name: 'wte', q: quantizeLinear(embeddingAsLinearWeight(randomWte), SMALL.dim, SMALL.vocab), input: oneHot(SMALL.vocab) },
  { name: 'wpe', q: quantizeLinear(embeddingAsLinearWeight(randomWpe), SMALL.dim, SMALL.positions), input: oneHot(SMALL.positions) },
];
if (!o.skipLmHead) {
  // lm_head: tied, the same matrix E [vocab, dim] used as [out, in], on a dense activation
  layers.push({
    name: 'lm_head',
    q: quantizeLinear(Float32Array.from(randomWte.weight.dataSync() as Float32Array), SMALL.vocab, SMALL.dim),
    input: (r) => quantizeTokens(Float32Array.from({ length: SMALL.dim }, () => r.normal()), 1, SMALL.dim),
  });
}

function oneHot(n: number): (r: Rng) => { values: Int16Array; scales: Float32Array; id: number } {
  return (r) => {
    const id = Math.floor(r.uniform(0, n));
    return { ...quantizeTokens(oneHotRows([id], n, 'bench'), 1, n), id };
  };
}

for (const l of layers) {
  const tag = layerTag('bench', l.name);
  t0 = performance.now();
  const prepared = glweLinearServer.prepare(l.q) as TransformedWeights;
  const transformMs = performance.now() - t0;
  const spec = { inFeatures: l.q.inFeatures, outFeatures: l.q.outFeatures, info: glweLinearServer.clientInfo!(l.q) };
  const enc: number[] = [], wall: number[] = [], cpu: number[] = [], dec: number[] = [];
  let up = 0, down = 0, maxErr = 0;
  for (let r = 0; r < o.reps; r++) {
    const x = l.input(rng);
    t0 = performance.now();
    const ct = await keys.encrypt(x.values, x.scales, 1, spec, tag);
    enc.push(performance.now() - t0);
    up = ct.length;
    t0 = performance.now();
    const c0 = cpuMs();
    const res = await glweLinearServer.matVec(serverKey, prepared, l.q, ct, tag);
    wall.push(performance.now() - t0);
    cpu.push(cpuMs() - c0);
    down = res.length;
    t0 = performance.now();
    const acc = await keys.decrypt(res, 1, spec, tag);
    dec.push(performance.now() - t0);
    if (x.id !== undefined) for (let c = 0; c < l.q.outFeatures; c++) maxErr = Math.max(maxErr, Math.abs(acc[c]! - 255 * l.q.weights[c * l.q.inFeatures + x.id]!));
  }
  const row = {
    layer: l.name,
    dIn: l.q.inFeatures,
    dOut: l.q.outFeatures,
    messageBits: spec.info.messageBits,
    inputGlwes: prepared.layout.chunks,
    blocks: prepared.layout.blocks,
    transformMs,
    weightsMiB: prepared.spectra.byteLength / 2 ** 20,
    encryptMs: median(enc),
    upBytes: up,
    serverWallMs: median(wall),
    serverCpuMs: median(cpu),
    downBytes: down,
    decryptMs: median(dec),
    // |decrypted − 255·w[c, id]| (accumulator units; 255 units = one int8 weight step) beside the model's 2^−40 bound
    ...(l.name === 'lm_head' ? {} : { maxAbsErrorVsExact: maxErr, noiseBound: predictNoise(GLWE_PARAMS_2048, prepared.layout, Math.max(...prepared.rowSqSum)).bound }),
  };
  console.log(JSON.stringify(row));
}

// the clear peer: the lookup itself
const idsT = tf.tensor2d([[123]], [1, 1], 'int32');
const gather: number[] = [];
for (let r = 0; r < 5; r++) {
  t0 = performance.now();
  const y = randomWte.call(idsT) as tf.Tensor;
  y.dataSync();
  gather.push(performance.now() - t0);
  y.dispose();
}
console.log(JSON.stringify({ clearLookupMs: median(gather), note: 'tf.gather of one row of the 50,257 × 768 wte (tfjs backend of this process)' }));
keys.dispose?.();
