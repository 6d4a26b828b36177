/**
 * The model server's key store under a byte budget: least-recently-used keys make room, keys in use are never
 * deleted, a budget lowered across a restart is enforced at start, keys expire after their time to live, and a
 * HybridFHEModel whose key was deleted uploads it again by itself and still gets exact results.
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
import { RemoteCallError } from '../../src/hybrid/errors.js';
import { KeyStoreFull, KeyStoreIndex } from '../../src/hybrid/server/key-store.js';
import { SeedNet, startServer, tmpDir } from './helpers.js';

const root = tmpDir('keystore');
const modelsDir = path.join(root, 'models');
const X = Float32Array.from({ length: 20 }, (_, i) => Math.sin(i * 0.9));
let keyBytes = 0;
/** What one stored key occupies: its bytes and its metadata file (both count against the budget). */
let storedBytes = 0;

beforeAll(async () => {
  await initBackend();
  manualSeed(5);
  const h = new HybridFHEModel(new SeedNet(), ['seq.0'], { modelName: 'seed' });
  h.compileModel(tf.randomUniform([100, 10], -1, 1, 'float32', 3), { nBits: 6 });
  h.saveAndClearPrivateInfo(path.join(modelsDir, 'seed'));
  const c = FHEModelClient.fromArtefact(fs.readFileSync(path.join(modelsDir, 'seed', 'seq.0', '10', 'client.json')));
  c.generatePrivateAndEvaluationKeys();
  keyBytes = c.getSerializedEvaluationKeys().length;
  const probe = await startServer({ modelsDir, keysDir: path.join(root, 'keys-probe') });
  try {
    await register(new RemoteClient(probe.url));
    storedBytes = Number(/fhenet_key_store_bytes (\d+)/.exec(await (await fetch(`${probe.url}/metrics`)).text())![1]);
  } finally {
    await probe.app.close();
  }
  expect(storedBytes).toBeGreaterThan(keyBytes);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function register(http: RemoteClient): Promise<{ client: FHEModelClient; uid: string }> {
  const client = FHEModelClient.fromArtefact(await http.getClient('seed', 'seq.0', '10'));
  client.generatePrivateAndEvaluationKeys();
  return { client, uid: await http.addKey('seed', 'seq.0', '10', client.getSerializedEvaluationKeys()) };
}

async function status(p: Promise<unknown>): Promise<{ status: number; code: string } | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof RemoteCallError)) throw e;
    return { status: e.statusCode, code: e.code };
  }
}

const compute = (http: RemoteClient, k: { client: FHEModelClient; uid: string }) => http.compute(k.uid, 'seed', 'seq.0', '10', k.client.quantizeEncryptSerialize(X, 2));
const storedUids = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.key')).map((f) => f.slice(0, -4)).sort();
/** Deletions are asynchronous: poll until `cond` holds (or 5 s pass, then let the assertion that follows fail). */
async function until(cond: () => boolean): Promise<void> {
  for (let t = 0; t < 100 && !cond(); t++) await new Promise((r) => setTimeout(r, 50));
}

describe('KeyStoreIndex', () => {
  it('chooses the least recently used unpinned keys, and refuses when only pinned keys could make room', () => {
    const s = new KeyStoreIndex(100);
    s.add('a', 40, 1);
    s.add('b', 40, 2);
    s.touch('a', 3); // b is now the least recently used
    expect(s.reserve(30, () => false)).toEqual(['b']);
    expect(s.storedBytes).toBe(40);
    expect(s.reservedBytes).toBe(30);
    expect(() => s.reserve(40, (u) => u === 'a')).toThrow(KeyStoreFull);
    expect(s.has('a')).toBe(true); // a refused reservation deletes nothing
    s.unreserve(30);
    s.add('c', 30, 4);
    expect(s.expire(100, 50, () => false)).toEqual(['a', 'c']);
    expect(s.size).toBe(0);
    expect(() => new KeyStoreIndex(0)).toThrow(/> 0/);
  });
});

describe('model server key store', () => {
  it('deletes the least recently used key to make room; its uid is a 404 and its files are gone', async () => {
    const keysDir = path.join(root, 'keys-lru');
    const s = await startServer({ modelsDir, keysDir, maxStoredKeyBytes: Math.floor(2.5 * storedBytes) });
    try {
      const http = new RemoteClient(s.url);
      const a = await register(http);
      const b = await register(http);
      expect(await status(compute(http, a))).toBe('ok'); // a used after b: b is the least recently used
      const c = await register(http);
      await until(() => storedUids(keysDir).length === 2);
      expect(await status(compute(http, b))).toEqual({ status: 404, code: 'unknown_uid' });
      expect(await status(compute(http, a))).toBe('ok');
      expect(await status(compute(http, c))).toBe('ok');
      expect(storedUids(keysDir)).toEqual([a.uid, c.uid].sort());
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      expect(metrics).toMatch(/fhenet_keys_deleted_total\{reason="quota"\} 1/);
      expect(metrics).toMatch(new RegExp(`fhenet_key_store_bytes ${2 * storedBytes}\\b`));
      // a key bigger than the whole store is refused before it is read
      const big = new Uint8Array(3 * storedBytes);
      expect(await status(http.addKey('seed', 'seq.0', '10', big))).toEqual({ status: 413, code: 'too_large' });
    } finally {
      await s.app.close();
    }
    // A smaller budget after a restart: the least recently used key (a was used before c) goes at start.
    const s2 = await startServer({ modelsDir, keysDir, maxStoredKeyBytes: Math.floor(1.5 * storedBytes) });
    try {
      await until(() => storedUids(keysDir).length === 1);
      expect(storedUids(keysDir)).toHaveLength(1);
    } finally {
      await s2.app.close();
    }
  });

  it('deletes keys unused for their time to live', async () => {
    const keysDir = path.join(root, 'keys-ttl');
    const s = await startServer({ modelsDir, keysDir, keyTtlSeconds: 1.5 });
    try {
      const http = new RemoteClient(s.url);
      const a = await register(http);
      expect(await status(compute(http, a))).toBe('ok');
      await new Promise((r) => setTimeout(r, 3500));
      expect(await status(compute(http, a))).toEqual({ status: 404, code: 'unknown_uid' });
      await until(() => storedUids(keysDir).length === 0);
      expect(storedUids(keysDir)).toEqual([]);
    } finally {
      await s.app.close();
    }
  });

  it('a HybridFHEModel whose key was deleted uploads it again and its results stay exact', async () => {
    const keysDir = path.join(root, 'keys-hybrid');
    const s = await startServer({ modelsDir, keysDir, maxStoredKeyBytes: Math.floor(1.5 * storedBytes) });
    try {
      const x = tf.tensor2d(Array.from({ length: 30 }, (_, i) => Math.cos(i)), [3, 10]);
      const one = HybridFHEModel.loadClient(new SeedNet(), path.join(modelsDir, 'seed'), { serverUrl: s.url });
      const two = HybridFHEModel.loadClient(new SeedNet(), path.join(modelsDir, 'seed'), { serverUrl: s.url });
      const y1 = await one.forward(x);
      const first = Array.from(y1.dataSync());
      const uid1 = await one.uidOf('seq.0', '10');
      (await two.forward(x)).dispose(); // two's key pushes one's out of the one-key store
      await until(() => !storedUids(keysDir).includes(uid1!));
      expect(storedUids(keysDir)).not.toContain(uid1);
      const y2 = await one.forward(x); // 404 unknown_uid → the same keys uploaded again → retried
      expect(Array.from(y2.dataSync())).toEqual(first);
      expect(await one.uidOf('seq.0', '10')).not.toBe(uid1);
      expect(one.keyReports).toHaveLength(2);
      expect(one.keyReports[1]!.keygenMs).toBe(0); // no new key generation
      tf.dispose([x, y1, y2]);
    } finally {
      await s.app.close();
    }
  });
});
