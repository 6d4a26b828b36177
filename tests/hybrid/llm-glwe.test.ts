/**
 * The hybrid LLM path on real encryption: a one-block random GPT-2 with every linear layer and both embeddings
 * (wte, wpe: one-hot products, remote-embedding.ts) on the `glwe` linear
 * backend (fhenet's packed GLWE engine) in 'execute' (client and server in this process, the key passed as an
 * object). The model's own generate gives the tokens and logits of 'simulate' (the exact integer product, the
 * bias added by the server) exactly.
 * The remote mode over HTTP with GLWE keys (a 100 MB key upload) is exercised by experiments/hybrid-llm, not here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { generate } from '../../src/transformers/generation.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { resolveRemoteModules } from '../../src/hybrid/hybrid-llm.js';
import { Rng } from '../../src/util/rng.js';
import { glweLinearClient, glweLinearServer } from '../../src/hybrid/glwe-linear-backend.js';
import { layerTag } from '../../src/hybrid/linear-backend.js';
import { quantizeLinear, quantizeTokens } from '../../src/hybrid/dynamic-quant.js';
import { HybridError } from '../../src/hybrid/errors.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { llmRoutes } from '../../src/hybrid/server/llm-routes.js';
import { savePretrained } from '../../src/transformers/gpt2/pretrained.js';
import { buildHybridLlm } from '../../src/hybrid/hybrid-llm.js';

beforeAll(async () => {
  await initBackend();
});

describe('hybrid GPT-2 on the glwe linear backend', () => {
  it('execute (encrypted) equals simulate exactly: tokens and logits', async () => {
    const model = new GPT2LMHeadModel({ vocab_size: 64, n_positions: 32, n_embd: 32, n_layer: 1, n_head: 2 }, { seed: 11 }).eval();
    const names = resolveRemoteModules(model, 'all-linear,embeddings'); // wte and wpe too: one-hot rows of 64 and 32
    // non-zero biases (GPT-2 initializes them to zero), which the server adds inside the encrypted product
    const r = new Rng(12);
    for (const n of names) {
      const b = (model.getModule(n) as unknown as { bias?: tf.Variable }).bias;
      if (b) b.assign(tf.tensor(Float32Array.from({ length: b.size }, () => r.uniform(-0.5, 0.5)), b.shape));
    }
    const h = new HybridFHEModel(model, names, { modelName: 'tiny-glwe' });
    h.compileModel(tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14, 15, 16]], [2, 8], 'int32'), { nBits: 8, dynamicQuantization: true, backend: 'glwe' });
    const prompt = [7, 21, 40];
    const out: Record<string, { tokens: number[]; logits: number[] }> = {};
    for (const mode of ['simulate', 'execute'] as const) {
      h.setFheMode(mode);
      const { newTokens } = await generate(model, prompt, { maxNewTokens: 2, eosTokenId: null });
      const y = await h.forward(tf.tensor2d([prompt], [1, 3], 'int32'));
      out[mode] = { tokens: newTokens[0]!, logits: Array.from(y.dataSync()) };
      y.dispose();
    }
    expect(out.execute!.tokens).toEqual(out.simulate!.tokens);
    expect(out.execute!.logits).toEqual(out.simulate!.logits);
    const calls = h.calls.filter((c) => c.n > 0);
    expect(calls.length).toBe(3 * names.length); // 2 generation steps + 1 forward, one call per layer each
    expect(calls.every((c) => c.bytesSent > 0 && c.bytesReceived > 0)).toBe(true);
    await h.close();
  }, 120_000);

  it('the server yields to the event loop between the tokens of a request, and computes only the declared tokens', async () => {
    const r = new Rng(3);
    const [m, d, tokens] = [16, 32, 4];
    const layer = quantizeLinear(Float32Array.from({ length: m * d }, () => r.uniform(-1, 1)), m, d, Float32Array.from({ length: m }, () => r.uniform(-1, 1)));
    const prepared = glweLinearServer.prepare(layer);
    const keys = await glweLinearClient.generateKeys();
    const serverKey = glweLinearServer.loadLocalKey!(keys.localKey!());
    const tag = layerTag('m', 'l');
    const q = quantizeTokens(Float32Array.from({ length: tokens * d }, () => r.uniform(-2, 2)), tokens, d);
    const ct = await keys.encrypt(q.values, q.scales, tokens, { inFeatures: d, outFeatures: m, info: glweLinearServer.clientInfo!(layer) }, tag);
    let ran = false;
    setImmediate(() => (ran = true)); // queued before the request: runs before it ends only if the server yields
    const res = await glweLinearServer.matVec(serverKey, prepared, layer, ct, tag, tokens);
    expect(ran).toBe(true);
    expect((await keys.decrypt(res, tokens, { inFeatures: d, outFeatures: m }, tag)).length).toBe(tokens * m);
    const under = await Promise.resolve(glweLinearServer.matVec(serverKey, prepared, layer, ct, tag, 1)).catch((e: unknown) => e);
    expect(under).toBeInstanceOf(HybridError);
    expect((under as HybridError).statusCode).toBe(400);
    keys.dispose?.();
  }, 120_000);

  it("the server's key budget counts a GLWE key's prepared size, not its upload", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-llm-budget-'));
    try {
      const modelDir = path.join(root, 'tiny');
      savePretrained(new GPT2LMHeadModel({ vocab_size: 64, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }, { seed: 1 }), modelDir);
      buildHybridLlm(modelDir, path.join(root, 'models'), { backend: 'glwe', name: 'tiny' });
      const keys = await glweLinearClient.generateKeys();
      const upload = keys.evaluationKey();
      const prepared = glweLinearServer.keyMemoryBytes!(glweLinearServer.loadLocalKey!(keys.localKey!()));
      expect(prepared).toBeGreaterThan(2 * upload.length); // ≈ 256 MiB held for a ≈ 100 MB upload
      const serve = async (budget: number) => {
        const app = Fastify({ logger: false });
        await app.register(llmRoutes, { modelsDir: path.join(root, 'models'), maxStoredKeyBytes: budget });
        await app.listen({ port: 0, host: '127.0.0.1' });
        const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
        const add = () => fetch(`${url}/llm/add_key?model_name=tiny`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(upload) });
        return { app, url, add };
      };
      // a budget the upload fits but the prepared key does not: 413 (an upload-size budget would accept it)
      const small = await serve(upload.length + 1024);
      try {
        const r = await small.add();
        expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([413, 'too_large']);
      } finally {
        await small.app.close();
      }
      // room for one prepared key: the second upload evicts the first (two uploads would fit an upload-size budget)
      const one = await serve(Math.floor(1.5 * prepared));
      try {
        const first = ((await (await one.add()).json()) as { uid: string }).uid;
        expect((await one.add()).status).toBe(200);
        const r = await fetch(`${one.url}/llm/linear?uid=${first}&model_name=tiny&layer=lm_head&tokens=1`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(64) });
        expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([404, 'unknown_uid']);
      } finally {
        await one.app.close();
      }
      keys.dispose?.();
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 180_000);
});
