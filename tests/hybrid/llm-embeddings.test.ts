/**
 * Remote embeddings (remote-embedding.ts): transformer.wte and transformer.wpe computed by the server as Eᵀ·onehot(id)
 * with the dynamically quantized linear path. On a tiny random GPT-2 with every Linear/Conv1D and both embeddings
 * remote: the model's own generate gives the same greedy continuation in disable / simulate / execute / remote; the
 * client folder holds no byte window of any remote matrix (wte and wpe included) and loads back; tied weights
 * (lm_head = wte) are refused when only one side is remote.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { savePretrained } from '../../src/transformers/gpt2/pretrained.js';
import { hybridLlmCommand } from '../../src/cli/hybrid-llm.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { linearModuleNames } from '../../src/hybrid/linear-modules.js';
import { embeddingModuleNames, oneHotRows } from '../../src/hybrid/remote-embedding.js';
import { loadHybridLlmClient, resolveRemoteModules } from '../../src/hybrid/hybrid-llm.js';
import { quantizeTokens } from '../../src/hybrid/dynamic-quant.js';
import { decodeSafetensors } from '../../src/util/safetensors.js';
import { ConfigError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { ByteWindows, filesUnder, startServer, tmpDir, weightWindows } from './helpers.js';
import { compileAndCompareModes, greedyRun } from './llm-modes.js';

const CONFIG = { vocab_size: 96, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 4 };
const root = tmpDir('llm-emb');

beforeAll(async () => {
  await initBackend();
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const PROMPTS = [[5, 17, 42, 8, 77, 3], [60, 2, 33, 91]]; // batched, the second left-padded
const NEW = 8;

describe('remote embeddings (wte, wpe) of a hybrid GPT-2', () => {
  it('a one-hot row quantizes exactly: scale 1/255, the hot entry 255, the rest 0', () => {
    const q = quantizeTokens(oneHotRows([3, 0], 5, 'wte'), 2, 5);
    expect(Array.from(q.values)).toEqual([0, 0, 0, 255, 0, 255, 0, 0, 0, 0]);
    expect(Array.from(q.scales)).toEqual([Math.fround(1 / 255), Math.fround(1 / 255)]);
    expect(() => oneHotRows([5], 5, 'wte')).toThrow(/id 5 at position 0 is outside 0..4/);
  });

  it('tied weights: lm_head remote with wte local (or the reverse) is refused with the fix; untied or both remote is fine', () => {
    const model = new GPT2LMHeadModel(CONFIG, { seed: 1 });
    expect(() => new HybridFHEModel(model, linearModuleNames(model))).toThrow(ConfigError);
    expect(() => new HybridFHEModel(model, ['lm_head'])).toThrow(/'lm_head' shares its weight with 'transformer.wte'.*--remote all-linear,embeddings.*allowSharedLocalWeights/);
    expect(() => new HybridFHEModel(model, ['transformer.wte'])).toThrow(/'transformer.wte' shares its weight with 'lm_head'/);
    expect(resolveRemoteModules(model, 'all-linear,embeddings')).toEqual([...linearModuleNames(model), 'transformer.wte', 'transformer.wpe']);
    expect(resolveRemoteModules(model, ['embeddings', 'lm_head'])).toEqual(['transformer.wte', 'transformer.wpe', 'lm_head']);
    expect(() => resolveRemoteModules(model, ' , ')).toThrow(/no remote module/);
    new HybridFHEModel(model, ['lm_head', 'transformer.wte']); // both sides remote
    model.dispose();
    const untied = new GPT2LMHeadModel({ ...CONFIG, tie_word_embeddings: false }, { seed: 1 });
    new HybridFHEModel(untied, ['lm_head']);
    untied.dispose();
    const opted = new GPT2LMHeadModel(CONFIG, { seed: 1 });
    new HybridFHEModel(opted, ['lm_head'], { allowSharedLocalWeights: true });
    opted.dispose();
  });

  it('every linear layer and both embeddings remote: same continuation in every mode; no remote matrix in the loadable client folder', async () => {
    const model = new GPT2LMHeadModel(CONFIG, { seed: 3 }).eval();
    const names = resolveRemoteModules(model, 'all-linear,embeddings');
    expect(embeddingModuleNames(model)).toEqual(['transformer.wte', 'transformer.wpe']);
    // every matrix the client must not see: the blocks' Conv1Ds and the two embeddings (wte is also lm_head's)
    const secret = names.filter((n) => n !== 'lm_head').map((n) => {
      const w = (model.getModule(n) as unknown as { weight: tf.Tensor }).weight;
      return { name: n, values: Float32Array.from(w.dataSync() as Float32Array), shape: w.shape as [number, number] };
    });
    const h = new HybridFHEModel(model, names, { modelName: 'tiny-emb' });
    const r = new Rng(1);
    const calib = tf.tensor2d(Int32Array.from({ length: 64 }, () => Math.floor(r.uniform(0, CONFIG.vocab_size))), [4, 16], 'int32');
    const runs = await compileAndCompareModes(h, model, calib, PROMPTS, NEW);
    // the embedding calls carry one-hot rows: wte's input is vocab_size wide, one call per step for the whole batch
    const wteCalls = h.calls.filter((c) => c.module === 'transformer.wte');
    expect(wteCalls.map((c) => c.shape)).toEqual(Array(NEW + 1).fill(String(CONFIG.vocab_size)));
    expect(wteCalls.slice(0, 2).map((c) => c.n)).toEqual([2 * PROMPTS[0]!.length, 2]);
    await h.close();

    const dir = path.join(root, 'models', 'tiny-emb');
    h.saveAndClearPrivateInfo(dir);
    const clientDir = path.join(dir, 'client');
    const clientFiles = filesUnder(clientDir);
    expect(clientFiles.map((f) => path.basename(f)).sort()).toEqual(['config.json', 'hybrid.json', 'model.safetensors', 'remote-layers.safetensors']);
    // the Hugging Face file holds the LayerNorms only: no wte (nor lm_head, tied), no wpe
    const hf = decodeSafetensors(new Uint8Array(fs.readFileSync(path.join(clientDir, 'model.safetensors'))));
    expect([...hf.tensors.keys()].every((k) => /\.ln_(1|2|f)\.(weight|bias)$/.test(k))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(clientDir, 'config.json'), 'utf8')).tie_word_embeddings).toBe(true);
    const present = new ByteWindows(clientFiles);
    let windows = 0;
    for (const s of secret) {
      for (const win of weightWindows(s.values, s.shape[0], s.shape[1])) {
        windows++;
        if (present.has(win)) throw new Error(`bytes of ${s.name} found in the client folder`);
      }
    }
    expect(windows).toBeGreaterThan(20_000);
    // the search does find what stays local (a LayerNorm weight)
    const ln = Float32Array.from(model.transformer.ln_f.weight.dataSync() as Float32Array);
    expect(weightWindows(ln, 1, CONFIG.n_embd).slice(0, 8).every((w) => present.has(w))).toBe(true);

    const { app, url } = await startServer({ modelsDir: path.join(root, 'models'), keysDir: path.join(root, 'keys') });
    try {
      const client = loadHybridLlmClient(clientDir, { serverUrl: url });
      expect(client.hybrid.moduleNames).toEqual(names);
      const remoteRun = await greedyRun(client.hybrid, client.model, PROMPTS, NEW);
      expect(remoteRun.tokens).toEqual(runs.simulate!.tokens);
      expect(remoteRun.logits).toEqual(runs.simulate!.logits);
      expect(client.hybrid.calls.length).toBe((NEW + 1) * names.length);
      await client.hybrid.close();
    } finally {
      await app.close();
    }
  });

  it("CLI: `hybrid-llm build --remote all-linear` on a tied GPT-2 is refused naming the fix; the default builds wte and wpe remote", async () => {
    const modelDir = path.join(root, 'tied');
    savePretrained(new GPT2LMHeadModel(CONFIG, { seed: 4 }), modelDir);
    const out = path.join(root, 'cli-out');
    const build = (...extra: string[]) => hybridLlmCommand().parseAsync(['build', '--model', modelDir, '--out', out, '--backend', 'simulate', ...extra], { from: 'user' });
    const so = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await expect(build('--remote', 'all-linear')).rejects.toThrow(/'lm_head' shares its weight with 'transformer.wte'.*--remote all-linear,embeddings/);
      await build();
    } finally {
      so.mockRestore();
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'tied', 'client', 'hybrid.json'), 'utf8')) as { modules: Record<string, unknown> };
    expect(Object.keys(manifest.modules)).toEqual(expect.arrayContaining(['lm_head', 'transformer.wte', 'transformer.wpe']));
  });

  it('a remote embedding needs dynamic quantization', () => {
    const model = new GPT2LMHeadModel(CONFIG, { seed: 2 });
    const h = new HybridFHEModel(model, ['transformer.wpe']);
    expect(() => h.compileModel(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'))).toThrow(/remote embedding 'transformer.wpe' .* dynamicQuantization/);
    model.dispose();
  });
});
