/**
 * GPT-2 inference speed, fhenet against PyTorch on the same machine in the same run (bench/RESULTS.md):
 * prompt processing (a P-token prompt, logits at every position; tokens/s) and generation with the KV cache
 * (ms per new token: one cached forward of one token + arg-max), on random checkpoints of two shapes:
 *   shipped — the project's small GPT-2 (models/gpt2-kjv-small if its weights are there, else its planned shape)
 *   small   — GPT-2 small (124M parameters: 12 layers, 768 wide, 50,257 tokens)
 *
 *   npx tsx bench/gpt2.ts [--shapes shipped,small] [--prompt 32] [--tokens 32] [--repeats 3] [--backends wasm,wasm-plain,cpu]
 *     [--dir small=DIR] (reuse a checkpoint folder of that shape instead of writing a random one)
 *
 * Backends (`--backends`, default wasm,wasm-1t,wasm-plain; also cpu, webgpu): `wasm` (with the native accelerator when it builds; 2 threads here), `wasm-1t` (the same on one thread,
 * FHENET_NATIVE_THREADS=1, like the PyTorch peer), `wasm-plain` (FHENET_NATIVE_KERNELS=0: tfjs's WASM kernels only),
 * `cpu`; each runs in its own process. PyTorch: bench/gpt2-torch.py (Debian python3-torch, 1 thread).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describeBackend, initBackend } from '../src/backend/index.js';
import { GPT2LMHeadModel, type GPT2ConfigFields, fromPretrained, savePretrained } from '../src/transformers/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const SHIPPED_DIR = path.join(here, '../models/gpt2-kjv-small');
const SHAPES: Record<string, Partial<GPT2ConfigFields>> = {
  shipped: { n_embd: 256, n_layer: 4, n_head: 4, n_positions: 128, vocab_size: 50257 },
  small: { n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024, vocab_size: 50257 },
};

/** Worker mode: measure fhenet on one folder with the backend of this process. */
async function measure(dir: string, promptLen: number, newTokens: number, repeats: number): Promise<void> {
  const info = await initBackend();
  const model = fromPretrained(dir);
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % model.config.vocab_size);
  const ids = tf.tensor2d([prompt], [1, promptLen], 'int32');
  const promptS: number[] = [];
  const tokenS: number[] = [];
  // Reads are asynchronous (`await data()`): WebGPU in Node has no synchronous download.
  const once = async () => {
    const t0 = performance.now();
    let out = model.forwardWithPast(ids);
    const logits = await out.logits.data();
    promptS.push((performance.now() - t0) / 1000);
    const V = model.config.vocab_size;
    let tok = argmaxRow(logits, (promptLen - 1) * V, V);
    out.logits.dispose();
    const t1 = performance.now();
    for (let i = 0; i < newTokens; i++) {
      const x = tf.tensor2d([[tok]], [1, 1], 'int32');
      const next = model.forwardWithPast(x, { pastKeyValues: out.pastKeyValues, logitsToKeep: 1 });
      x.dispose();
      for (const l of out.pastKeyValues) tf.dispose([l.key, l.value]);
      tok = argmaxRow(await next.logits.data(), 0, V);
      next.logits.dispose();
      out = next;
    }
    tokenS.push((performance.now() - t1) / 1000 / newTokens);
    for (const l of out.pastKeyValues) tf.dispose([l.key, l.value]);
  };
  await once(); // warm-up (kernel compilation, heap growth)
  promptS.length = 0;
  tokenS.length = 0;
  for (let r = 0; r < repeats; r++) await once();
  console.log(JSON.stringify({ backend: describeBackend(info), prompt_s: promptS, token_s: tokenS }));
}

function argmaxRow(a: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i]! > a[off + best]!) best = i;
  return best;
}

async function main(): Promise<void> {
  const shapes = arg('shapes', 'shipped,small').split(',');
  const backends = arg('backends', 'wasm,wasm-1t,wasm-plain').split(',');
  const promptLen = Number(arg('prompt', '32'));
  const newTokens = Number(arg('tokens', '32'));
  const repeats = Number(arg('repeats', '3'));
  const rows: string[] = [];
  const started = new Date().toISOString();
  await initBackend();
  for (const shape of shapes) {
    const given = process.argv.find((a, i) => process.argv[i - 1] === '--dir' && a.startsWith(`${shape}=`));
    let dir = given?.slice(shape.length + 1) ?? (shape === 'shipped' && fs.existsSync(path.join(SHIPPED_DIR, 'model.safetensors')) ? SHIPPED_DIR : undefined);
    if (!dir) {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `fhenet-bench-gpt2-${shape}-`));
      const m = new GPT2LMHeadModel(SHAPES[shape]!, { seed: 0 });
      savePretrained(m, dir);
      m.dispose();
    }
    const torch = JSON.parse(execFileSync('/usr/bin/python3', [path.join(here, 'gpt2-torch.py'), dir, String(promptLen), String(newTokens), String(repeats)], { encoding: 'utf8', env: { ...process.env, TORCH_THREADS: '1' } }));
    const tPrompt = median(torch.prompt_s);
    const tToken = median(torch.token_s);
    rows.push(`| ${shape} | PyTorch ${torch.torch} (${torch.threads} thread) | ${(promptLen / tPrompt).toFixed(1)} | ${(tToken * 1000).toFixed(1)} | ${(1 / tToken).toFixed(1)} | 1 |`);
    for (const b of backends) {
      const variant: Record<string, NodeJS.ProcessEnv> = {
        'wasm-plain': { FHENET_BACKEND: 'wasm', FHENET_NATIVE_KERNELS: '0' },
        'wasm-1t': { FHENET_BACKEND: 'wasm', FHENET_NATIVE_THREADS: '1' },
      };
      const env = { ...process.env, ...(variant[b] ?? { FHENET_BACKEND: b }) };
      const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--measure', dir, String(promptLen), String(newTokens), String(repeats)], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
      const r = JSON.parse(out.trim().split('\n').pop()!);
      const p = median(r.prompt_s);
      const t = median(r.token_s);
      const threads = /OpenBLAS [\d.]+, (\d+) threads?/.exec(r.backend)?.[1];
      const label = threads ? `native OpenBLAS, ${threads} thread${threads === '1' ? '' : 's'}` : /native kernels unavailable/.test(r.backend) ? 'WASM kernels only' : r.backend;
      rows.push(`| ${shape} | fhenet ${b} — ${label} | ${(promptLen / p).toFixed(1)} | ${(t * 1000).toFixed(1)} | ${(1 / t).toFixed(1)} | ${(tToken / t).toFixed(2)} |`);
    }
    console.error(rows.slice(-1 - backends.length).join('\n'));
  }
  console.log(`GPT-2 inference, ${started}, prompt ${promptLen} tokens, ${newTokens} generated tokens, median of ${repeats} (load average at start ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})\n`);
  console.log('| shape | implementation | prompt tokens/s | ms/token (KV cache) | tokens/s | generation speed vs PyTorch |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

if (process.argv[2] === '--measure') await measure(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]));
else await main();
