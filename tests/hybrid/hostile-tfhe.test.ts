/**
 * Issue 22, server finding 1 on the TFHE backend: one valid uid sending frames of seeded ciphertexts far beyond what
 * the circuit expects. Before the fix the server decompressed every ciphertext (≈ 16 KiB each) on its event loop
 * before any check: a 2.44 MiB body cost hundreds of MiB and stalled /health for seconds. Now the module's largest
 * request (a frame of its largest batch, from the circuit's size and the compute memory budget) bounds the body
 * before it is read, and the key upload is held to the exact size of a 2_2 compressed server key.
 * (bench/hostile-compute.ts measures RSS and /health latency under the same load; bench/RESULTS.md.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { FHEModelClient } from '../../src/hybrid/deployment.js';
import { RemoteClient } from '../../src/hybrid/remote-client.js';
import { decodeTfheCiphertexts, decodeTfheKey, encodeTfheCiphertexts } from '../../src/hybrid/tfhe-backend.js';
import { compressedServerKeyBytes } from '../../src/tfhe/layouts.js';
import { namedParams } from '../../src/tfhe/params.js';
import { Rng } from '../../src/util/rng.js';
import { prunedSeed, startServer, tmpDir } from './helpers.js';

const root = tmpDir('hostile-tfhe');
const modelsDir = path.join(root, 'models');
const Q = 'model_name=seed&module_name=seq.0&input_shape=10';

beforeAll(async () => {
  await initBackend();
  manualSeed(1);
  const net = prunedSeed(3); // 2-bit PTQ then fits the 2_2 set (tests/hybrid/tfhe.test.ts)
  const rng = new Rng(3);
  const h = new HybridFHEModel(net, ['seq.0'], { modelName: 'seed' });
  h.compileModel(tf.tensor(Float32Array.from({ length: 2000 }, () => rng.uniform(-1, 1)), [200, 10]), { nBits: 2, outputBits: 3, backend: 'tfhe' });
  h.saveAndClearPrivateInfo(path.join(modelsDir, 'seed'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('hostile /compute on the TFHE backend', () => {
  it('an oversized frame is refused before it is read or decompressed; /health stays responsive', async () => {
    // 64 MiB of working memory: seq.0's 10 inputs + its values at 32 KiB each bound the batch well below 2,000
    const s = await startServer({ modelsDir, keysDir: path.join(root, 'keys'), tfheThreads: 2, maxComputeMemoryBytes: 64 * 2 ** 20 });
    try {
      const http = new RemoteClient(s.url);
      const client = FHEModelClient.fromArtefact(await http.getClient('seed', 'seq.0', '10'));
      await client.generatePrivateAndEvaluationKeysAsync();
      const key = client.getSerializedEvaluationKeys();
      // the exact-size limit of the key upload is the real size of a 2_2 compressed server key
      expect(decodeTfheKey(key).key.length).toBe(compressedServerKeyBytes(namedParams('PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128')));
      const padded = new Uint8Array(key.length + 1);
      padded.set(key);
      const tooBig = await fetch(`${s.url}/add_key?${Q}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: padded });
      expect(tooBig.status).toBe(413);
      const uid = await http.addKey('seed', 'seq.0', '10', key);
      const one = client.quantizeEncryptSerialize(Float32Array.from({ length: 10 }, (_, i) => Math.sin(i)), 1);
      expect((await http.compute(uid, 'seed', 'seq.0', '10', one)).bytes.length).toBeGreaterThan(0);

      // 2.44 MiB of copies of a real seeded ciphertext: 1,998 samples × 10 (the first probe)
      const frame = decodeTfheCiphertexts(one);
      const samples = 1998;
      const hostile = encodeTfheCiphertexts(1, frame.keyId, frame.circuitId, Array.from({ length: samples * 10 }, (_, i) => frame.cts[i % 10]!), samples);
      expect(hostile.length).toBeGreaterThan(2.4 * 2 ** 20);
      const before = await (await fetch(`${s.url}/metrics`)).text();
      const health: number[] = [];
      let done = false;
      const prober = (async () => {
        while (!done) {
          const t0 = performance.now();
          expect((await fetch(`${s.url}/health`)).status).toBe(200);
          health.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const t0 = performance.now();
      const r = await fetch(`${s.url}/compute?uid=${uid}&${Q}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: hostile });
      const ms = performance.now() - t0;
      const answer = (await r.json()) as { code: string; message: string };
      done = true;
      await prober;
      expect(r.status).toBe(413);
      expect(answer.code).toBe('too_large');
      expect(answer.message).toMatch(/at most \d+ samples/);
      expect(ms).toBeLessThan(2000);
      expect(Math.max(...health)).toBeLessThan(500);
      // nothing was computed: the compute-time summary has the one legitimate request only
      const after = await (await fetch(`${s.url}/metrics`)).text();
      const count = (t: string) => Number(/^fhenet_compute_ms_count (\d+)/m.exec(t)![1]);
      expect(count(after)).toBe(count(before));
      client.dispose();
    } finally {
      await s.app.close();
    }
  }, 120_000);
});
