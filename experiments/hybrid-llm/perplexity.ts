/**
 * Held-out perplexity of a GPT-2-family folder with the --remote modules (default every Linear/Conv1D; `--remote all-linear,embeddings` adds wte and wpe) in four modes on the SAME token slice:
 * 'float' (the checkpoint), 'disable' (8-bit dynamic quantization, in float), 'simulate' (the exact integer product
 * the server computes, in clear) and 'remote' (encrypted with the packed GLWE engine, served by `fhenet serve` in a
 * child process over loopback HTTP). All four are scored by `evaluatePerplexity` (src/train/causal-lm.ts) with the
 * same windows; for 'remote' each window's logits are computed first with the model's async forward (the remote
 * layers answer over HTTP) and handed to evaluatePerplexity by a forward that looks them up by the window's ids.
 *
 *   npx tsx experiments/hybrid-llm/perplexity.ts --model models/gpt2-kjv-small \
 *     --text experiments/gpt2-small/kjv-validation.txt --tokens 257
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { serveChild } from './serve-child.js';
import { intOption } from '../../src/cli/options.js';
import { initBackend } from '../../src/backend/index.js';
import { fromPretrained } from '../../src/transformers/gpt2/pretrained.js';
import { GPT2Tokenizer } from '../../src/transformers/tokenizer.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { buildHybridLlm, loadHybridLlmClient, resolveRemoteModules } from '../../src/hybrid/hybrid-llm.js';
import { evaluatePerplexity, type LMForward } from '../../src/train/causal-lm.js';
import { valueOf } from '../../src/nn/quant-tensor.js';
import { Rng } from '../../src/util/rng.js';

const o = new Command('experiments/hybrid-llm/perplexity.ts')
  .requiredOption('--model <dir>', 'a GPT-2 Hugging Face folder with its tokenizer')
  .requiredOption('--text <file>', 'held-out text')
  .option('--tokens <n>', 'tokens of the text to score from its start (all but the first are scored)', intOption('--tokens', 2), 257)
  .option('--context <n>', 'window (default: the model n_positions)', intOption('--context', 1))
  .option('--skip-remote', 'only the clear modes')
  .option('--remote <spec>', "remote modules: 'all-linear' (the reference's recipe; tied wte stays local), 'all-linear,embeddings', or names", 'all-linear')
  .parse()
  .opts<{ remote: string; model: string; text: string; tokens: number; context?: number; skipRemote?: boolean }>();

await initBackend();
const ids = GPT2Tokenizer.fromPretrained(o.model).encode(fs.readFileSync(o.text, 'utf8')).slice(0, o.tokens);
const model = fromPretrained(o.model);
const contextLength = o.context ?? model.config.n_positions;
const popts = { contextLength, batchSize: 1 };
const results: Record<string, { perplexity: number; loss: number; tokens: number; wallS: number }> = {};
const score = async (mode: string, forward?: LMForward) => {
  const t0 = performance.now();
  const r = await evaluatePerplexity(model, ids, forward ? { ...popts, forward } : popts);
  results[mode] = { ...r, wallS: (performance.now() - t0) / 1000 };
  console.log(JSON.stringify({ mode, ...results[mode] }));
};

// The same compilation as buildHybridLlm (dynamic 8-bit, its seeded calibration batch), so 'disable' and
// 'simulate' are the quantization the server runs.
const h = new HybridFHEModel(model, resolveRemoteModules(model, o.remote), { modelName: 'ref', allowSharedLocalWeights: true });
h.setFheMode('float');
await score('float');
const r = new Rng(0);
const calib = tf.tensor2d(Int32Array.from({ length: 2 * 8 }, () => Math.floor(r.uniform(0, model.config.vocab_size))), [2, 8], 'int32');
h.compileModel(calib, { nBits: 8, dynamicQuantization: true, backend: 'glwe' });
calib.dispose();
for (const mode of ['disable', 'simulate'] as const) {
  h.setFheMode(mode);
  await score(mode);
}

if (!o.skipRemote) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-hybrid-ppl-'));
  const built = buildHybridLlm(o.model, path.join(work, 'models'), { backend: 'glwe', name: 'llm', remote: o.remote, allowSharedLocalWeights: true });
  const { server, url } = await serveChild(path.join(work, 'models'), path.join(work, 'keys'));
  try {
    const client = loadHybridLlmClient(path.join(built.dir, 'client'), { serverUrl: url });
    client.model.eval();
    // evaluatePerplexity's forward is synchronous; the windows it will ask for are those of its plan (disjoint,
    // batch 1): [k·context, min((k+1)·context, ids.length − 1)). Compute each one's logits remotely first.
    const logits = new Map<string, tf.Tensor>();
    const t0 = performance.now();
    for (let begin = 0; begin < ids.length - 1; begin += contextLength) {
      const w = ids.slice(begin, Math.min(begin + contextLength, ids.length - 1));
      const x = tf.tensor2d([w], [1, w.length], 'int32');
      const out = tf.keep(valueOf(await client.model.forwardAsync(x)));
      x.dispose();
      logits.set(w.join(','), out);
      console.log(JSON.stringify({ remoteWindow: begin, tokens: w.length, sSoFar: (performance.now() - t0) / 1000 }));
    }
    const remoteS = (performance.now() - t0) / 1000;
    await score('remote', (_m, x) => {
      const key = Array.from(x.dataSync()).join(',');
      const l = logits.get(key);
      if (!l) throw new Error(`no remote logits for window ${key.slice(0, 40)}…`);
      return tf.clone(l);
    });
    results.remote!.wallS = remoteS;
    const calls = client.hybrid.calls;
    console.log(
      JSON.stringify({
        remoteCalls: calls.length,
        bytesUp: calls.reduce((a, c) => a + c.bytesSent, 0),
        bytesDown: calls.reduce((a, c) => a + c.bytesReceived, 0),
      }),
    );
    await client.hybrid.close();
  } finally {
    server.kill('SIGTERM');
    fs.rmSync(work, { recursive: true, force: true });
  }
}
const rel = (a?: { perplexity: number }, b?: { perplexity: number }) => (a && b ? (a.perplexity / b.perplexity - 1) * 100 : null);
console.log(
  JSON.stringify({
    summary: true,
    model: o.model,
    remote: o.remote,
    tokens: ids.length,
    scored: ids.length - 1,
    contextLength,
    results,
    remoteVsDisablePercent: rel(results.remote, results.disable),
    remoteVsSimulatePercent: rel(results.remote, results.simulate),
    disableVsFloatPercent: rel(results.disable, results.float),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model}, shared with other jobs`,
  }),
);
