/**
 * Issue 8 on real TFHE: the hybrid model's 'execute' and 'remote' modes with the `tfhe` backend (the circuit
 * executor's client and server: node-tfhe keys and encryption on the client, fhenet's KS-PBS evaluator in a worker
 * pool on the server). Small remote modules whose accumulators fit the 2_2 set (≤ 4 bits):
 * - the seed example Linear(10,10) → ReLU → Linear(10,10) with `seq.0` remote, 2-bit PTQ, 3 weights kept per neuron;
 * - a checkerboard QAT net (hidden 16, 3 bits) with `fc2` remote, accumulator-aware (A2Q, 4 bits) on fc2.
 * Remote-over-TFHE outputs equal local simulate exactly; hostile bytes are 4xx; keys survive a restart; /health
 * answers during a compute; no byte of the client's secret key reaches the server or its disk.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfhe from 'node-tfhe';
import { initBackend } from '../../src/backend/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { fit } from '../../src/train/trainer.js';
import { accumulatorAware } from '../../src/quant/a2q.js';
import { parseClientKey } from '../../src/tfhe/client-key-layout.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { FHEModelClient } from '../../src/hybrid/deployment.js';
import { RemoteClient } from '../../src/hybrid/remote-client.js';
import { RemoteCallError } from '../../src/hybrid/errors.js';
import { decodeTfheCiphertexts, decodeTfheKey, encodeTfheCiphertexts, encodeTfheKey } from '../../src/hybrid/tfhe-backend.js';
import { Rng } from '../../src/util/rng.js';
import { SeedNet, filesUnder, prunedSeed, startServer, tmpDir } from './helpers.js';

const root = tmpDir('tfhe');
const modelsDir = path.join(root, 'models');
const keysDir = path.join(root, 'keys');

/** Every client key node-tfhe makes in this file (to look for its secret bytes where they must not be). */
const clientKeys: Uint8Array[] = [];
/** Every request body sent with fetch (everything the server receives besides URLs, which are recorded too). */
const sent: Uint8Array[] = [];
const realFetch = globalThis.fetch;

beforeAll(async () => {
  await initBackend();
  const orig = tfhe.Shortint.new_client_key.bind(tfhe.Shortint);
  vi.spyOn(tfhe.Shortint, 'new_client_key').mockImplementation((p) => {
    const ck = orig(p);
    clientKeys.push(tfhe.Shortint.serialize_client_key(ck));
    return ck;
  });
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    sent.push(Buffer.from(String(input)));
    if (init?.body instanceof Uint8Array) sent.push(init.body);
    return realFetch(input, init);
  }) as typeof fetch;
});
afterAll(() => {
  globalThis.fetch = realFetch;
  vi.restoreAllMocks();
  fs.rmSync(root, { recursive: true, force: true });
});

function randn(n: number, d: number, seed: number): tf.Tensor {
  const r = new Rng(seed);
  return tf.tensor(Float32Array.from({ length: n * d }, () => r.uniform(-1, 1)), [n, d]);
}

async function expect4xx(p: Promise<unknown>, status: number, code: string): Promise<string> {
  const e = (await p.then(
    () => undefined,
    (x: unknown) => x,
  )) as RemoteCallError | undefined;
  expect(e).toBeInstanceOf(RemoteCallError);
  expect({ status: e!.statusCode, code: e!.code }).toEqual({ status, code });
  return e!.message;
}

describe('seed example over real TFHE (seq.0 remote, 2_2 set)', () => {
  it('execute and remote equal simulate; hostile bytes are 4xx; keys survive a restart; /health stays responsive', async () => {
    manualSeed(1);
    const h = new HybridFHEModel(prunedSeed(3), ['seq.0'], { modelName: 'seed' });
    h.compileModel(randn(200, 10, 3), { nBits: 2, outputBits: 3, backend: 'tfhe' });
    expect(h.fheModel('seq.0').circuit.input.bitWidth).toBe(2);
    const x = randn(8, 10, 7);
    const sim = Array.from((await h.forward(x)).dataSync());
    const xb = Float32Array.from(randn(32, 10, 9).dataSync());
    const sim32 = Array.from((await h.fheModel('seq.0').forward(xb, 32, { fhe: 'simulate' })).outputInts!); // seq.0 is the first layer: its input is x
    h.setFheMode('execute');
    const exe = Array.from((await h.forward(x)).dataSync());
    expect(exe).toEqual(sim);
    expect(h.keyReports[0]!.bytes).toBeGreaterThan(20 * 2 ** 20); // a real CompressedServerKey (2_2: ≈ 29 MiB)
    await h.close();

    const dir = path.join(modelsDir, 'seed');
    h.saveAndClearPrivateInfo(dir);
    const artefact = JSON.parse(fs.readFileSync(path.join(dir, 'seq.0', '10', 'client.json'), 'utf8')) as { backend: string; backendInfo: { params: string } };
    expect(artefact.backend).toBe('tfhe');
    expect(artefact.backendInfo.params).toBe('PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128');

    let s = await startServer({ modelsDir, keysDir, tfheThreads: 2 });
    const client = HybridFHEModel.loadClient(new SeedNet(), dir, { serverUrl: s.url });
    try {
      const y = Array.from((await client.forward(x)).dataSync());
      expect(y).toEqual(sim);
      const call = client.calls.at(-1)!;
      const key = client.keyReports.at(-1)!;
      console.log(
        `seed over TFHE: n=8 remote call ${call.httpMs.toFixed(0)} ms (encrypt ${call.encryptMs.toFixed(0)} ms, decrypt ${call.decryptMs.toFixed(0)} ms), ` +
          `${call.bytesSent} B up, ${call.bytesReceived} B down; key ${(key.bytes / 2 ** 20).toFixed(1)} MiB, keygen ${key.keygenMs.toFixed(0)} ms, upload ${key.uploadMs.toFixed(0)} ms`,
      );

      // the raw deployment API: corrupted and hostile bytes
      const http = new RemoteClient(s.url);
      const dc = FHEModelClient.fromArtefact(await http.getClient('seed', 'seq.0', '10'));
      await dc.generatePrivateAndEvaluationKeysAsync();
      const evalKey = dc.getSerializedEvaluationKeys();
      await expect4xx(http.addKey('seed', 'seq.0', '10', evalKey.subarray(0, evalKey.length >> 1)), 400, 'bad_key'); // truncated
      const kf = decodeTfheKey(evalKey);
      const hostileKey = encodeTfheKey(kf.keyId, kf.circuitId, kf.params, kf.key.subarray(0, kf.key.length - 4096)); // valid frame, truncated TFHE bytes
      const msg = await expect4xx(http.addKey('seed', 'seq.0', '10', hostileKey), 400, 'bad_key');
      expect(msg).toMatch(/evaluation key: /);
      const uid = await http.addKey('seed', 'seq.0', '10', evalKey);
      const xs = Float32Array.from(x.dataSync());
      const ct = dc.quantizeEncryptSerialize(xs.subarray(0, 20), 2);
      const flipped = Uint8Array.from(ct);
      flipped[ct.length >> 1]! ^= 0x40;
      await expect4xx(http.compute(uid, 'seed', 'seq.0', '10', flipped), 400, 'bad_ciphertext');
      const cf = decodeTfheCiphertexts(ct);
      const hostileCt = encodeTfheCiphertexts(1, cf.keyId, cf.circuitId, [cf.cts[0]!.subarray(0, 40), ...cf.cts.slice(1)], cf.n);
      await expect4xx(http.compute(uid, 'seed', 'seq.0', '10', hostileCt), 400, 'bad_ciphertext');
      const otherKeyCt = encodeTfheCiphertexts(1, new Uint8Array(16), cf.circuitId, cf.cts, cf.n);
      await expect4xx(http.compute(uid, 'seed', 'seq.0', '10', otherKeyCt), 400, 'key_mismatch');
      const metrics = await (await realFetch(`${s.url}/metrics`)).text();
      expect(metrics).not.toMatch(/status="5\d\d"/);

      // restart: the key is reloaded from disk; /health answers while a batch of 32 is computed in the worker pool
      await s.app.close();
      s = await startServer({ modelsDir, keysDir, tfheThreads: 2 });
      const http2 = new RemoteClient(s.url);
      const pending = http2.compute(uid, 'seed', 'seq.0', '10', dc.quantizeEncryptSerialize(xb, 32));
      let done = false;
      void pending.finally(() => (done = true)).catch(() => undefined);
      const healthMs: number[] = [];
      await new Promise((r) => setTimeout(r, 1500)); // past the key reload (≈ 1 s on the event loop), into the PBS
      while (!done) {
        const t0 = performance.now();
        const hres = await realFetch(`${s.url}/health`);
        expect(hres.status).toBe(200);
        healthMs.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 50));
      }
      const out = dc.deserializeDecryptDequantize((await pending).bytes, 32).ints;
      expect(Array.from(out)).toEqual(sim32);
      console.log(`/health during a 32-sample TFHE compute: ${healthMs.length} probes, max ${Math.max(...healthMs).toFixed(0)} ms`);
      expect(healthMs.length).toBeGreaterThan(2);
      expect(Math.max(...healthMs)).toBeLessThan(1000);
      dc.dispose();
    } finally {
      await client.close();
      await s.app.close();
    }

    // the client's secret key never reaches the server: no 256-byte window of its LWE or GLWE secret key appears in
    // any request (URL or body) or any file the server stored
    expect(clientKeys.length).toBeGreaterThanOrEqual(3);
    const stored = filesUnder(keysDir).map((f) => fs.readFileSync(f));
    expect(stored.some((b) => b.length > 20 * 2 ** 20)).toBe(true);
    const hay = [...sent.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)), ...stored];
    let windows = 0;
    for (const ckBytes of clientKeys) {
      const ck = parseClientKey(ckBytes);
      for (const words of [ck.lweKey, ck.glweKey]) {
        const bytes = Buffer.from(words.buffer, words.byteOffset, words.byteLength);
        for (let off = 0; off + 256 <= Math.min(bytes.length, 4096); off += 1024) {
          const needle = bytes.subarray(off, off + 256);
          for (const b of hay) expect(b.indexOf(needle)).toBe(-1);
          windows++;
        }
      }
      expect(hay.some((b) => b.indexOf(Buffer.from(ckBytes).subarray(0, 256)) >= 0)).toBe(false);
    }
    expect(windows).toBeGreaterThan(0);
  }, 120_000);
});

describe('checkerboard QAT net over real TFHE (fc2 remote)', () => {
  it('remote over TFHE equals local simulate exactly', async () => {
    manualSeed(1);
    const data = generateCheckerboard({ seed: 42 });
    const net = new QuantSimpleNet({ hidden: 16, bits: 3, scales: 'notebook' });
    const con = accumulatorAware(net, { targetBits: 4, sampleShape: [2], layers: ['fc2'] });
    await fit(net, { train: { ...data.train, x: data.train.x.subarray(0, 4000), y: data.train.y.subarray(0, 2000) } }, { epochs: 1, batchSize: 32, lr: 1e-2, progress: 'silent', afterStep: con.afterStep });
    net.eval();
    const h = new HybridFHEModel(net, ['fc2'], { modelName: 'checker' });
    h.compileModel(tf.tensor(data.train.x.subarray(0, 2000), [1000, 2]), { outputBits: 3, backend: 'tfhe' });
    const x = tf.tensor(data.test.x.subarray(0, 24), [12, 2]);
    const sim = Array.from((await h.forward(x)).dataSync());
    const dir = path.join(modelsDir, 'checker');
    h.saveAndClearPrivateInfo(dir);
    const s = await startServer({ modelsDir, keysDir: path.join(root, 'keys2'), tfheThreads: 2 });
    const client = HybridFHEModel.loadClient(new QuantSimpleNet({ hidden: 16, bits: 3, scales: 'notebook' }), dir, { serverUrl: s.url });
    try {
      const y = Array.from((await client.forward(x)).dataSync());
      expect(y).toEqual(sim);
      const c = client.calls.at(-1)!;
      console.log(`checkerboard fc2 over TFHE: n=12 remote call ${c.httpMs.toFixed(0)} ms, ${c.bytesSent} B up, ${c.bytesReceived} B down`);
    } finally {
      await client.close();
      await s.app.close();
    }
  }, 90_000);
});
