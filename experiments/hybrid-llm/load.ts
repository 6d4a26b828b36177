/**
 * Load: N clients generating at once against one `fhenet serve` (a child process), each client a separate process
 * with its own keys (as separate devices are), on a random GPT-2 with every linear layer and both embeddings remote (buildHybridLlm's default). Checks that every
 * client gets exactly the tokens of the exact integer product computed in clear ('simulate', in this process) for
 * its own prompt (no crossed results) and records wall time, per-client s/token and the server's peak RSS.
 *
 *   npx tsx experiments/hybrid-llm/load.ts --clients 4 --backend glwe --new-tokens 4
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { serveChild } from './serve-child.js';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { intOption } from '../../src/cli/options.js';
import { initBackend } from '../../src/backend/index.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { fromPretrained, savePretrained } from '../../src/transformers/gpt2/pretrained.js';
import { generate } from '../../src/transformers/generation.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { DEFAULT_REMOTE, buildHybridLlm, loadHybridLlmClient, resolveRemoteModules } from '../../src/hybrid/hybrid-llm.js';

const o = new Command('experiments/hybrid-llm/load.ts')
  .option('--clients <n>', 'concurrent client processes', intOption('--clients', 1, 64), 4)
  .option('--backend <name>', 'linear backend', 'glwe')
  .option('--new-tokens <n>', 'tokens each client generates', intOption('--new-tokens', 1), 4)
  .option('--client <spec>', '(internal) run one client: JSON {dir,url,prompt,newTokens}')
  .parse()
  .opts<{ clients: number; backend: string; newTokens: number; client?: string }>();

await initBackend();

if (o.client) {
  const spec = JSON.parse(o.client) as { dir: string; url: string; prompt: number[]; newTokens: number };
  const { model, hybrid } = loadHybridLlmClient(spec.dir, { serverUrl: spec.url });
  const t0 = performance.now();
  const { newTokens } = await generate(model, spec.prompt, { maxNewTokens: spec.newTokens, eosTokenId: null });
  process.stdout.write(`${JSON.stringify({ tokens: newTokens[0], s: (performance.now() - t0) / 1000, calls: hybrid.calls.length, keyBytes: hybrid.keyReports[0]?.bytes })}\n`);
  await hybrid.close();
  process.exit(0);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-hybrid-load-'));
const modelDir = path.join(work, 'random-gpt2');
savePretrained(new GPT2LMHeadModel({ vocab_size: 512, n_positions: 128, n_embd: 64, n_layer: 2, n_head: 4 }, { seed: 2 }), modelDir);
const prompts = Array.from({ length: o.clients }, (_, i) => [1 + i, 40 + 3 * i, 100 + 7 * i]);
// expected: the exact integer product in clear, per prompt
const ref = fromPretrained(modelDir);
const h = new HybridFHEModel(ref, resolveRemoteModules(ref, DEFAULT_REMOTE)); // what buildHybridLlm makes remote
h.compileModel(tf.tensor2d([prompts[0]!], [1, 3], 'int32'), { nBits: 8, dynamicQuantization: true, backend: o.backend });
const expected: number[][] = [];
for (const p of prompts) expected.push((await generate(ref, p, { maxNewTokens: o.newTokens, eosTokenId: null })).newTokens[0]!);
const built = buildHybridLlm(modelDir, path.join(work, 'models'), { backend: o.backend, name: 'llm' });
const { server, url } = await serveChild(path.join(work, 'models'), path.join(work, 'keys'));
try {
  const t0 = performance.now();
  const outs = await Promise.all(
    prompts.map(
      (prompt) =>
        new Promise<{ tokens: number[]; s: number; calls: number; keyBytes: number }>((resolve, reject) => {
          const c = spawn(process.execPath, ['--import', 'tsx', 'experiments/hybrid-llm/load.ts', '--client', JSON.stringify({ dir: path.join(built.dir, 'client'), url, prompt, newTokens: o.newTokens })], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          c.stdout.on('data', (d: Buffer) => (out += d.toString()));
          c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`client exited ${code}`))));
        }),
    ),
  );
  const wall = (performance.now() - t0) / 1000;
  const status = fs.readFileSync(`/proc/${server.pid}/status`, 'utf8');
  const peak = Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
  const metrics = await (await fetch(`${url}/llm/metrics`)).text();
  outs.forEach((r, i) => console.log(JSON.stringify({ client: i, equalsOwnSimulate: JSON.stringify(r.tokens) === JSON.stringify(expected[i]), ...r })));
  console.log(
    JSON.stringify({
      summary: true,
      clients: o.clients,
      backend: o.backend,
      allExact: outs.every((r, i) => JSON.stringify(r.tokens) === JSON.stringify(expected[i])),
      distinctPrompts: new Set(expected.map((e) => JSON.stringify(e))).size,
      wallS: wall,
      serverPeakRssMiB: peak,
      keysOnServer: Number(/fhenet_llm_keys (\d+)/.exec(metrics)?.[1]),
      machine: `${os.cpus().length} × ${os.cpus()[0]?.model}, shared with other jobs`,
    }),
  );
} finally {
  server.kill('SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
}
