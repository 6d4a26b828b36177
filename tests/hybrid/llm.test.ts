/**
 * The hybrid LLM path on a tiny random GPT-2: every Linear/Conv1D remote (linearModuleNames), compiled with
 * dynamic quantization; the model's own generate (KV cache, batched prompts with left padding) gives the
 * same continuation in disable, simulate, execute and remote over loopback HTTP; the client folder is a Hugging
 * Face folder without any remote weight matrix or bias in any dtype or layout (the server adds the bias); usage is
 * metered per client key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { loadConfig } from '../../src/transformers/gpt2/pretrained.js';
import { generate } from '../../src/transformers/generation.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { linearModuleNames } from '../../src/hybrid/linear-modules.js';
import { loadHybridLlmClient } from '../../src/hybrid/hybrid-llm.js';
import { RemoteCallError } from '../../src/hybrid/errors.js';
import { RemoteClient } from '../../src/hybrid/remote-client.js';
import { layerTag, linearClientBackend } from '../../src/hybrid/linear-backend.js';
import { Rng } from '../../src/util/rng.js';
import { ByteWindows, filesUnder, startServer, tmpDir, weightWindows } from './helpers.js';
import { compileAndCompareModes, greedyRun } from './llm-modes.js';

const CONFIG = { vocab_size: 96, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 4 };
const root = tmpDir('llm');

beforeAll(async () => {
  await initBackend();
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function ids(rows: number, cols: number, seed: number): tf.Tensor {
  const r = new Rng(seed);
  return tf.tensor2d(Int32Array.from({ length: rows * cols }, () => Math.floor(r.uniform(0, CONFIG.vocab_size))), [rows, cols], 'int32');
}

const PROMPTS = [[5, 17, 42, 8, 77, 3], [60, 2, 33, 91]]; // batched, the second left-padded

/** GPT-2 initializes biases to zero: give every remote layer a random one, so that its bytes can be looked for. */
function randomBiases(model: GPT2LMHeadModel, names: readonly string[], seed: number): void {
  const r = new Rng(seed);
  for (const n of names) {
    const b = (model.getModule(n) as unknown as { bias?: tf.Variable }).bias;
    if (b) b.assign(tf.tensor(Float32Array.from({ length: b.size }, () => r.uniform(-0.5, 0.5)), b.shape));
  }
}
const NEW = 8;

describe('hybrid GPT-2, every linear layer remote, dynamic quantization', () => {
  it('same greedy continuation in disable / simulate / execute / remote; HF client folder without remote weights; metering', async () => {
    const model = new GPT2LMHeadModel(CONFIG, { seed: 3 }).eval();
    const names = linearModuleNames(model);
    expect(names).toEqual([
      'transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_fc', 'transformer.h.0.mlp.c_proj',
      'transformer.h.1.attn.c_attn', 'transformer.h.1.attn.c_proj', 'transformer.h.1.mlp.c_fc', 'transformer.h.1.mlp.c_proj',
      'lm_head',
    ]);
    // the reference's layout: lm_head remote, its tied matrix (wte) local — allowed only when asked for
    // (llm-embeddings.test.ts: the default refusal, and wte/wpe remote)
    randomBiases(model, names, 7);
    // the remote matrices and biases, as the client must never see them (lm_head's matrix is wte's, which stays
    // local: tied; it has no bias)
    const remote = names.filter((n) => n !== 'lm_head').flatMap((n) => {
      const m = model.getModule(n) as unknown as { weight: tf.Tensor; bias: tf.Tensor };
      return [
        { name: `${n}.weight`, values: Float32Array.from(m.weight.dataSync() as Float32Array), shape: m.weight.shape as [number, number] },
        { name: `${n}.bias`, values: Float32Array.from(m.bias.dataSync() as Float32Array), shape: [1, m.bias.size] as [number, number] },
      ];
    });
    expect(remote.filter((r) => r.name.endsWith('.bias')).every((r) => r.values.some((v) => v !== 0))).toBe(true);
    const h = new HybridFHEModel(model, names, { modelName: 'tiny-gpt2', allowSharedLocalWeights: true });
    const runs = await compileAndCompareModes(h, model, ids(4, 16, 1), PROMPTS, NEW);
    await h.close();

    const dir = path.join(root, 'models', 'tiny-gpt2');
    h.saveAndClearPrivateInfo(dir);
    const clientDir = path.join(dir, 'client');
    const clientFiles = filesUnder(clientDir);
    expect(clientFiles.map((f) => path.basename(f)).sort()).toEqual(['config.json', 'hybrid.json', 'model.safetensors', 'remote-layers.safetensors']);
    const present = new ByteWindows(clientFiles);
    let windows = 0;
    let biasWindows = 0;
    for (const r of remote) {
      for (const win of weightWindows(r.values, r.shape[0], r.shape[1])) {
        windows++;
        if (r.name.endsWith('.bias')) biasWindows++;
        if (present.has(win)) throw new Error(`bytes of ${r.name} found in the client folder`);
      }
    }
    expect(windows).toBeGreaterThan(10_000);
    expect(biasWindows).toBeGreaterThan(1_000);
    // the search finds local weights (the tied wte stays on the client: lm_head remote protects nothing, docs/hybrid.md)
    const wte = Float32Array.from(h.model.getModule('transformer.wte').stateDict().get('weight')!.dataSync() as Float32Array);
    expect(weightWindows(wte, CONFIG.vocab_size, CONFIG.n_embd).slice(0, 100).every((w) => present.has(w))).toBe(true);

    const { app, url } = await startServer({ modelsDir: path.join(root, 'models'), keysDir: path.join(root, 'keys') });
    try {
      const fresh = new GPT2LMHeadModel(loadConfig(clientDir), { init: 'empty' });
      const client = HybridFHEModel.loadClient(fresh, dir, { serverUrl: url });
      const remoteRun = await greedyRun(client, fresh, PROMPTS, NEW);
      expect(remoteRun.tokens).toEqual(runs.simulate!.tokens);
      expect(remoteRun.logits).toEqual(runs.simulate!.logits);
      expect(client.calls.length).toBe((NEW + 1) * names.length);
      expect(client.keyReports.length).toBe(1); // one key for every layer
      const metrics = await (await fetch(`${url}/llm/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`fhenet_llm_tokens_total\\{model="tiny-gpt2",key="[0-9a-f]{12}"\\} ${2 * PROMPTS[0]!.length + 2 * (NEW - 1) + PROMPTS[0]!.length}\\n`));
      expect(metrics).toMatch(new RegExp(`fhenet_llm_layer_calls_total\\{model="tiny-gpt2",key="[0-9a-f]{12}"\\} ${(NEW + 1) * names.length}\\n`));
      const up = client.calls.reduce((a, c) => a + c.bytesSent, 0);
      expect(metrics).toContain(`direction="in"} ${up}\n`);
      // hostile input: a truncated ciphertext (400), an unknown layer, an unknown uid (404)
      const uid = (await client.uidOf('lm_head', '32'))!;
      const post = (query: string, body: Uint8Array) => fetch(`${url}/llm/linear?${query}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
      const truncated = await post(`uid=${uid}&model_name=tiny-gpt2&layer=lm_head&tokens=1`, new Uint8Array(10));
      expect([truncated.status, ((await truncated.json()) as { code: string }).code]).toEqual([400, 'bad_ciphertext']);
      expect((await post(`uid=${uid}&model_name=tiny-gpt2&layer=transformer.wte&tokens=1`, new Uint8Array(10))).status).toBe(404);
      expect((await post('uid=00000000-0000-4000-8000-000000000000&model_name=tiny-gpt2&layer=lm_head&tokens=1', new Uint8Array(10))).status).toBe(404);
      await client.close();
    } finally {
      await app.close();
    }
  });

  it('a per-key token quota (--llm-max-tokens-per-key) answers 429 quota_exceeded past its budget', async () => {
    const model = new GPT2LMHeadModel(CONFIG, { seed: 4 }).eval();
    const h = new HybridFHEModel(model, linearModuleNames(model), { modelName: 'quota', allowSharedLocalWeights: true });
    h.compileModel(ids(2, 8, 2), { nBits: 8, dynamicQuantization: true });
    const dir = path.join(root, 'quota-models', 'quota');
    h.saveAndClearPrivateInfo(dir);
    // the server as `fhenet serve --llm-max-tokens-per-key 10` builds it
    const { app, url } = await startServer({ modelsDir: path.dirname(dir), keysDir: path.join(root, 'quota-keys'), llmMaxTokensPerKey: 10 });
    try {
      const { model: fresh, hybrid } = loadHybridLlmClient(path.join(dir, 'client'), { serverUrl: url });
      await generate(fresh, [1, 2, 3, 4, 5, 6], { maxNewTokens: 5, eosTokenId: null }); // 6 + 4 = 10 tokens: the budget
      const err = await generate(fresh, [7], { maxNewTokens: 1, eosTokenId: null }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RemoteCallError);
      expect([(err as RemoteCallError).statusCode, (err as RemoteCallError).code]).toEqual([429, 'quota_exceeded']);
      await hybrid.close();

      // A fresh key cannot slip past the quota by declaring fewer tokens than its frame carries.
      const listed = (await (await fetch(`${url}/llm/list_layers?model_name=quota`)).json()) as { layers: { name: string; inFeatures: number; outFeatures: number }[] };
      const first = listed.layers[0]!.name;
      const keys = await linearClientBackend('simulate').generateKeys();
      const uid = await new RemoteClient(url).llmAddKey('quota', keys.evaluationKey());
      const n = listed.layers[0]!.inFeatures;
      const ct = await keys.encrypt(new Int16Array(3 * n).fill(1), new Float32Array(3).fill(1), 3, { inFeatures: n, outFeatures: listed.layers[0]!.outFeatures }, layerTag('quota', first));
      const post = (tokens: number) =>
        fetch(`${url}/llm/linear?uid=${uid}&model_name=quota&layer=${first}&tokens=${tokens}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(ct) });
      const under = await post(1);
      expect([under.status, ((await under.json()) as { code: string }).code]).toEqual([400, 'bad_shape']);
      expect((await post(3)).status).toBe(200);
      expect((await post(10)).status).toBe(429); // 3 + 10 > 10
    } finally {
      await app.close();
    }
  });

  it('with bearer tokens: /llm routes need one, and a key answers only to the token that uploaded it', async () => {
    const ALICE = 'alice-token-0123456789abcdef';
    const BOB = 'bob-token-0123456789abcdef00';
    const model = new GPT2LMHeadModel(CONFIG, { seed: 5 }).eval();
    const h = new HybridFHEModel(model, linearModuleNames(model), { modelName: 'authed', allowSharedLocalWeights: true });
    h.compileModel(ids(2, 8, 3), { nBits: 8, dynamicQuantization: true });
    const dir = path.join(root, 'auth-models', 'authed');
    h.saveAndClearPrivateInfo(dir);
    const { app, url } = await startServer({ modelsDir: path.dirname(dir), keysDir: path.join(root, 'auth-keys'), apiTokens: [ALICE, BOB] });
    try {
      const alice = loadHybridLlmClient(path.join(dir, 'client'), { serverUrl: url, serverToken: ALICE });
      const { newTokens } = await generate(alice.model, [3, 1, 4], { maxNewTokens: 2, eosTokenId: null });
      expect(newTokens[0]).toHaveLength(2);
      const uid = (await alice.hybrid.uidOf('lm_head', '32'))!;
      const post = (token: string | undefined) =>
        fetch(`${url}/llm/linear?uid=${uid}&model_name=authed&layer=lm_head&tokens=1`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: new Uint8Array(48),
        });
      expect((await post(undefined)).status).toBe(401);
      const asBob = await post(BOB);
      expect([asBob.status, ((await asBob.json()) as { code: string }).code]).toEqual([404, 'unknown_uid']); // as if unknown
      expect((await post(ALICE)).status).toBe(400); // her uid, a malformed ciphertext
      await alice.hybrid.close();
    } finally {
      await app.close();
    }
  });
});
