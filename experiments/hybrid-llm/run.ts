/**
 * The hybrid LLM end to end over loopback HTTP, measured: a GPT-2-family folder (given, or a random checkpoint of a
 * chosen shape written here) → `buildHybridLlm` (every Linear/Conv1D remote, glwe) → `fhenet serve` in a CHILD
 * process (so client and server CPU and the server's memory are measured apart) → the model's own generate on the
 * client. Prints one JSON line per prompt and a summary: s/token (first step with the prompt, then per generated
 * token), bytes up/down per generated token, round trips per token, client time split (encrypt, decrypt, local
 * layers), server CPU and peak RSS, the keys' sizes, and whether the tokens equal the 'simulate' run (the exact
 * integer product in clear) and the 8-bit 'disable' run.
 *
 *   npx tsx experiments/hybrid-llm/run.ts --shape gpt2-small --prompt-tokens 4 --new-tokens 4
 *   npx tsx experiments/hybrid-llm/run.ts --model models/gpt2-kjv-small --text experiments/gpt2-small/kjv-validation.txt \
 *     --prompts 10 --prompt-tokens 8 --new-tokens 32 --execute-prompts 10
 *
 * With --text (needs --model's tokenizer) the prompts are --prompt-tokens tokens of held-out text taken at --prompts
 * evenly spaced offsets; otherwise seeded random token ids. --execute-prompts also runs the in-process encrypted
 * 'execute' mode (the same cryptography as 'remote', no HTTP) on the first n prompts for the comparison.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { serveChild } from './serve-child.js';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { intOption } from '../../src/cli/options.js';
import { initBackend } from '../../src/backend/index.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { fromPretrained, savePretrained } from '../../src/transformers/gpt2/pretrained.js';
import { generate } from '../../src/transformers/generation.js';
import { GPT2Tokenizer } from '../../src/transformers/tokenizer.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { buildHybridLlm, loadHybridLlmClient, resolveRemoteModules } from '../../src/hybrid/hybrid-llm.js';
import { Rng } from '../../src/util/rng.js';

const SHAPES: Record<string, Record<string, number>> = {
  tiny: { vocab_size: 512, n_positions: 128, n_embd: 64, n_layer: 2, n_head: 4 },
  'gpt2-small': { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 },
};

const o = new Command('experiments/hybrid-llm/run.ts')
  .option('--model <dir>', 'a GPT-2 Hugging Face folder (default: a random checkpoint of --shape)')
  .option('--shape <name>', `random checkpoint shape: ${Object.keys(SHAPES).join(', ')}`, 'tiny')
  .option('--prompts <n>', 'prompts (random token ids, seeded)', intOption('--prompts', 1), 1)
  .option('--prompt-tokens <n>', 'tokens per prompt', intOption('--prompt-tokens', 1), 4)
  .option('--new-tokens <n>', 'greedy tokens to generate', intOption('--new-tokens', 1), 4)
  .option('--backend <name>', 'linear backend', 'glwe')
  .option('--remote <spec>', "remote modules: 'all-linear' (the reference's recipe; tied wte stays local), 'all-linear,embeddings', or names", 'all-linear')
  .option('--skip-clear', 'do not run simulate/disable for the comparison')
  .option('--text <file>', 'take the prompts from this text (tokenized with --model\'s tokenizer)')
  .option('--execute-prompts <n>', "also run 'execute' (in-process encrypted) on the first n prompts", intOption('--execute-prompts', 0), 0)
  .parse()
  .opts<{ remote: string; model?: string; shape: string; prompts: number; promptTokens: number; newTokens: number; backend: string; skipClear?: boolean; text?: string; executePrompts: number }>();

/** true / false over the compared prompts; null when the mode was not run (--skip-clear, --execute-prompts 0). */
function allEqual(v: (boolean | null)[]): boolean | null {
  const run = v.filter((x): x is boolean => x !== null);
  return run.length ? run.every(Boolean) : null;
}

function procStat(pid: number): { cpuS: number; rssMiB: number; hwmMiB: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const tick = 100; // USER_HZ on Linux
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { cpuS: (Number(stat[11]) + Number(stat[12])) / tick, rssMiB: kb('VmRSS'), hwmMiB: kb('VmHWM') };
}

await initBackend();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-hybrid-llm-'));
let modelDir = o.model;
if (!modelDir) {
  modelDir = path.join(work, `random-${o.shape}`);
  const m = new GPT2LMHeadModel(SHAPES[o.shape]!, { seed: 1 });
  savePretrained(m, modelDir);
  m.dispose();
}
const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as { vocab_size: number };
const rng = new Rng(7);
let prompts: number[][];
if (o.text) {
  if (!o.model) throw new Error('--text needs --model (its tokenizer)');
  const ids = GPT2Tokenizer.fromPretrained(o.model).encode(fs.readFileSync(o.text, 'utf8'));
  const gap = Math.floor((ids.length - o.promptTokens) / o.prompts);
  prompts = Array.from({ length: o.prompts }, (_, i) => ids.slice(i * gap, i * gap + o.promptTokens));
} else {
  prompts = Array.from({ length: o.prompts }, () => Array.from({ length: o.promptTokens }, () => Math.floor(rng.uniform(0, Math.min(config.vocab_size, 50000)))));
}

// clear references: float, 8-bit disable and simulate (the exact integers the server computes on ciphertexts)
const clear: Record<string, number[][]> = {};
if (!o.skipClear) {
  const model = fromPretrained(modelDir);
  const h = new HybridFHEModel(model, resolveRemoteModules(model, o.remote), { modelName: 'ref', allowSharedLocalWeights: true });
  h.setFheMode('float');
  const run = async () => Promise.all(prompts.map(async (p) => (await generate(model, p, { maxNewTokens: o.newTokens, eosTokenId: null })).newTokens[0]!));
  clear.float = [];
  for (const p of prompts) clear.float.push((await generate(model, p, { maxNewTokens: o.newTokens, eosTokenId: null })).newTokens[0]!);
  h.compileModel(tf.tensor2d([prompts[0]!], [1, o.promptTokens], 'int32'), { nBits: 8, dynamicQuantization: true, backend: o.backend });
  for (const mode of ['disable', 'simulate'] as const) {
    h.setFheMode(mode);
    clear[mode] = [];
    for (const p of prompts) clear[mode].push((await generate(model, p, { maxNewTokens: o.newTokens, eosTokenId: null })).newTokens[0]!);
  }
  if (o.executePrompts > 0) {
    h.setFheMode('execute');
    clear.execute = [];
    const t0 = performance.now();
    for (const p of prompts.slice(0, o.executePrompts)) clear.execute.push((await generate(model, p, { maxNewTokens: o.newTokens, eosTokenId: null })).newTokens[0]!);
    console.log(JSON.stringify({ execute: true, prompts: clear.execute.length, wallS: (performance.now() - t0) / 1000, equalSimulate: clear.execute.every((t, i) => JSON.stringify(t) === JSON.stringify(clear.simulate![i])) }));
  }
  void run;
  model.dispose();
}

const tb = performance.now();
const built = buildHybridLlm(modelDir, path.join(work, 'models'), { backend: o.backend, name: 'llm', remote: o.remote, allowSharedLocalWeights: true });
const buildS = (performance.now() - tb) / 1000;
const { server, url } = await serveChild(path.join(work, 'models'), path.join(work, 'keys'));
const serverStart = procStat(server.pid!);
try {
  const { model, hybrid } = loadHybridLlmClient(path.join(built.dir, 'client'), { serverUrl: url });
  const results = [];
  for (let i = 0; i < prompts.length; i++) {
    const c0 = process.cpuUsage();
    const s0 = procStat(server.pid!);
    const calls0 = hybrid.calls.length;
    const steps: number[] = [];
    const callsAt: number[] = [];
    let last = performance.now();
    const { newTokens } = await generate(model, prompts[i]!, {
      maxNewTokens: o.newTokens,
      eosTokenId: null,
      onToken: () => {
        const now = performance.now();
        steps.push(now - last);
        callsAt.push(hybrid.calls.length);
        last = now;
        // one line per step, so a run cut short still leaves its per-step figures
        console.error(JSON.stringify({ prompt: i, step: steps.length, stepS: steps[steps.length - 1]! / 1000, calls: hybrid.calls.length - calls0, serverCpuS: procStat(server.pid!).cpuS - s0.cpuS, clientCpuS: (process.cpuUsage(c0).user + process.cpuUsage(c0).system) / 1e6 }));
      },
    });
    const calls = hybrid.calls.slice(calls0);
    const perToken = hybrid.calls.slice(callsAt[0]!); // the calls of generated tokens (after the prompt step)
    const c1 = process.cpuUsage(c0);
    const s1 = procStat(server.pid!);
    const gen = steps.slice(1);
    const r = {
      prompt: i,
      tokens: newTokens[0],
      promptIds: o.text ? prompts[i] : undefined,
      equalsExecute: clear.execute && i < clear.execute.length ? JSON.stringify(newTokens[0]) === JSON.stringify(clear.execute[i]) : null,
      equalsSimulate: clear.simulate ? JSON.stringify(newTokens[0]) === JSON.stringify(clear.simulate[i]) : null,
      equalsDisable: clear.disable ? JSON.stringify(newTokens[0]) === JSON.stringify(clear.disable[i]) : null,
      equalsFloat: clear.float ? JSON.stringify(newTokens[0]) === JSON.stringify(clear.float[i]) : null,
      firstStepS: steps[0]! / 1000,
      sPerGeneratedToken: gen.length ? gen.reduce((a, b) => a + b, 0) / gen.length / 1000 : null,
      roundTripsPerToken: perToken.length / Math.max(1, gen.length),
      bytesUpPerToken: perToken.reduce((a, c) => a + c.bytesSent, 0) / Math.max(1, gen.length),
      bytesDownPerToken: perToken.reduce((a, c) => a + c.bytesReceived, 0) / Math.max(1, gen.length),
      clientEncryptS: calls.reduce((a, c) => a + c.encryptMs, 0) / 1000,
      clientDecryptS: calls.reduce((a, c) => a + c.decryptMs, 0) / 1000,
      httpAndServerS: calls.reduce((a, c) => a + c.httpMs, 0) / 1000,
      clientCpuS: (c1.user + c1.system) / 1e6,
      serverCpuS: s1.cpuS - s0.cpuS,
    };
    results.push(r);
    console.log(JSON.stringify(r));
  }
  const key = hybrid.keyReports[0]!;
  const end = procStat(server.pid!);
  console.log(
    JSON.stringify({
      summary: true,
      model: o.model ?? `random ${o.shape}`,
      remoteLayers: built.remote.length,
      backend: o.backend,
      buildS,
      keyBytes: key.bytes,
      keygenS: key.keygenMs / 1000,
      keyUploadAndServerPrepareS: key.uploadMs / 1000,
      serverRssMiB: end.rssMiB,
      serverPeakRssMiB: end.hwmMiB,
      serverRssAtStartMiB: serverStart.rssMiB,
      allEqualSimulate: allEqual(results.map((r) => r.equalsSimulate)),
      allEqualDisable: allEqual(results.map((r) => r.equalsDisable)),
      allEqualExecute: allEqual(results.map((r) => r.equalsExecute)),
      allEqualFloat: allEqual(results.map((r) => r.equalsFloat)),
      machine: `${os.cpus().length} × ${os.cpus()[0]?.model}, shared with other jobs`,
    }),
  );
  await hybrid.close();
} finally {
  server.kill('SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
}
