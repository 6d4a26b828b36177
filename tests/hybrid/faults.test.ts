/**
 * Fault tests of the model server: restart between key upload and compute (keys survive on disk), a client that
 * disconnects mid-upload, corrupted keys and ciphertexts, unknown/malformed uids, crossed keys, oversized bodies,
 * wrong content types — each a clear JSON 4xx, never a 500, and nothing lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { FHEModelClient, FHEModelServer } from '../../src/hybrid/deployment.js';
import { RemoteClient } from '../../src/hybrid/remote-client.js';
import { RemoteCallError } from '../../src/hybrid/errors.js';
import { SeedNet, startServer, tmpDir } from './helpers.js';

const root = tmpDir('faults');
const modelsDir = path.join(root, 'models');
const keysDir = path.join(root, 'keys');
const shapeDir = path.join(modelsDir, 'seed', 'seq.0', '10');
const LIMITS = { maxKeyBytes: 1024, maxCiphertextBytes: 8192 };

beforeAll(async () => {
  await initBackend();
  manualSeed(2);
  const h = new HybridFHEModel(new SeedNet(), ['seq.0'], { modelName: 'seed' });
  h.compileModel(tf.randomUniform([100, 10], -1, 1, 'float32', 1), { nBits: 6, roundingThresholdBits: 8 });
  h.saveAndClearPrivateInfo(path.join(modelsDir, 'seed'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const X = Float32Array.from({ length: 40 }, (_, i) => Math.cos(i * 0.7));

async function expectError(p: Promise<unknown>, status: number, code?: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RemoteCallError);
  expect((e as RemoteCallError).statusCode).toBe(status);
  if (code) expect((e as RemoteCallError).code).toBe(code);
}

async function newClient(http: RemoteClient): Promise<{ client: FHEModelClient; uid: string }> {
  const client = FHEModelClient.fromArtefact(await http.getClient('seed', 'seq.0', '10'));
  client.generatePrivateAndEvaluationKeys();
  return { client, uid: await http.addKey('seed', 'seq.0', '10', client.getSerializedEvaluationKeys()) };
}

describe('model server faults', () => {
  it('keys survive a server restart between upload and compute', async () => {
    let s = await startServer({ modelsDir, keysDir, ...LIMITS });
    const http1 = new RemoteClient(s.url);
    const { client, uid } = await newClient(http1);
    await s.app.close();
    s = await startServer({ modelsDir, keysDir, ...LIMITS });
    try {
      const http = new RemoteClient(s.url);
      const { bytes } = await http.compute(uid, 'seed', 'seq.0', '10', client.quantizeEncryptSerialize(X, 4));
      const got = client.deserializeDecryptDequantize(bytes, 4).output;
      const local = FHEModelServer.load(shapeDir).run(client.quantizeEncryptSerialize(X, 4), client.getSerializedEvaluationKeys());
      expect(Array.from(got)).toEqual(Array.from(client.deserializeDecryptDequantize(local, 4).output));
    } finally {
      await s.app.close();
    }
  });

  it('bad input is a JSON 4xx with a clear message, never a 500', async () => {
    const s = await startServer({ modelsDir, keysDir, ...LIMITS });
    const http = new RemoteClient(s.url);
    try {
      const a = await newClient(http);
      const b = await newClient(http);
      const ct = a.client.quantizeEncryptSerialize(X, 4);
      // corrupted key: one flipped bit → checksum
      const key = a.client.getSerializedEvaluationKeys().slice();
      key[10] ^= 1;
      await expectError(http.addKey('seed', 'seq.0', '10', key), 400, 'bad_key');
      await expectError(http.addKey('seed', 'seq.0', '10', new TextEncoder().encode('not a key')), 400, 'bad_key');
      // corrupted / truncated ciphertext
      const bad = ct.slice();
      bad[50] ^= 0x40;
      await expectError(http.compute(a.uid, 'seed', 'seq.0', '10', bad), 400, 'bad_ciphertext');
      await expectError(http.compute(a.uid, 'seed', 'seq.0', '10', ct.subarray(0, ct.length - 9)), 400, 'bad_ciphertext');
      // crossed keys: A's ciphertext under B's uid
      await expectError(http.compute(b.uid, 'seed', 'seq.0', '10', ct), 400, 'key_mismatch');
      // unknown and malformed uids
      await expectError(http.compute('00000000-0000-4000-8000-000000000000', 'seed', 'seq.0', '10', ct), 404, 'unknown_uid');
      await expectError(http.compute('../../etc/passwd', 'seed', 'seq.0', '10', ct), 400, 'bad_uid');
      // unknown model / module / shape, bad shape syntax, missing parameter
      await expectError(http.getClient('nope', 'seq.0', '10'), 404, 'unknown_model');
      await expectError(http.getClient('seed', 'seq.9', '10'), 404, 'unknown_module');
      await expectError(http.getClient('seed', 'seq.0', '11'), 404, 'unknown_shape');
      await expectError(http.getClient('seed', 'seq.0', '1,0'), 400, 'bad_shape');
      const r0 = await fetch(`${s.url}/get_client?model_name=seed`);
      expect(r0.status).toBe(400);
      expect(((await r0.json()) as { code: string }).code).toBe('missing_parameter');
      // oversized bodies (fastify's limit and fhenet's), wrong content type, empty body, unknown route
      await expectError(http.compute(a.uid, 'seed', 'seq.0', '10', new Uint8Array(LIMITS.maxCiphertextBytes + 1)), 413);
      await expectError(http.addKey('seed', 'seq.0', '10', new Uint8Array(LIMITS.maxKeyBytes + 1)), 413);
      const r1 = await fetch(`${s.url}/compute?uid=${a.uid}&model_name=seed&module_name=seq.0&input_shape=10`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
      expect(r1.status).toBe(415);
      const r2 = await fetch(`${s.url}/add_key?model_name=seed&module_name=seq.0&input_shape=10`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } });
      expect(r2.status).toBe(400);
      const r3 = await fetch(`${s.url}/nothing`);
      expect(r3.status).toBe(404);
      expect(((await r3.json()) as { code: string }).code).toBe('no_route');
      // the good request still works after all that
      const { bytes } = await http.compute(a.uid, 'seed', 'seq.0', '10', ct);
      expect(a.client.deserializeDecryptDequantize(bytes, 4).output.length).toBe(40);
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      expect(metrics).not.toMatch(/status="5\d\d"/);
      expect(metrics).toMatch(/status="413"/);
    } finally {
      await s.app.close();
    }
  });

  it('a client disconnecting mid-upload stores nothing and harms nobody', async () => {
    const s = await startServer({ modelsDir, keysDir, ...LIMITS });
    try {
      const before = fs.readdirSync(keysDir).length;
      await new Promise<void>((resolve, reject) => {
        const sock = net.connect(s.port, '127.0.0.1', () => {
          sock.write(
            'POST /add_key?model_name=seed&module_name=seq.0&input_shape=10 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 900\r\n\r\n' + 'x'.repeat(100),
            () => {
              sock.destroy();
              resolve();
            },
          );
        });
        sock.on('error', reject);
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(fs.readdirSync(keysDir).length).toBe(before);
      expect(fs.readdirSync(keysDir).some((f) => f.includes('.tmp-'))).toBe(false);
      const health = await (await fetch(`${s.url}/health`)).json();
      expect(health).toMatchObject({ status: 'ok' });
      const { client, uid } = await newClient(new RemoteClient(s.url));
      const { bytes } = await new RemoteClient(s.url).compute(uid, 'seed', 'seq.0', '10', client.quantizeEncryptSerialize(X, 4));
      expect(bytes.length).toBeGreaterThan(0);
    } finally {
      await s.app.close();
    }
  });

  it('concurrent clients with distinct keys never see each other’s results', async () => {
    const s = await startServer({ modelsDir, keysDir, ...LIMITS });
    const server = FHEModelServer.load(shapeDir);
    try {
      const clients = await Promise.all(Array.from({ length: 12 }, () => newClient(new RemoteClient(s.url))));
      const results = await Promise.all(
        clients.map(async ({ client, uid }, i) => {
          const x = Float32Array.from({ length: 20 }, (_, j) => Math.sin(i * 31 + j));
          const ct = client.quantizeEncryptSerialize(x, 2);
          const { bytes } = await new RemoteClient(s.url).compute(uid, 'seed', 'seq.0', '10', ct);
          const expected = client.deserializeDecryptDequantize(server.run(ct, client.getSerializedEvaluationKeys()), 2).output;
          return { got: client.deserializeDecryptDequantize(bytes, 2).output, expected };
        }),
      );
      for (const r of results) expect(Array.from(r.got)).toEqual(Array.from(r.expected));
      expect(new Set(clients.map((c) => c.uid)).size).toBe(12);
    } finally {
      await s.app.close();
    }
  });
});
