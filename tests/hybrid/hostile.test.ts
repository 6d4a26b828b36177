/**
 * The model server against hostile clients (issue 22, server findings 2–5, on the simulate backend; finding 1 on
 * TFHE is tests/hybrid/hostile-tfhe.test.ts; the key store's crash consistency is tests/hybrid/key-store-crash.test.ts):
 * - another token's uid is refused before anything is loaded or touched, with the same 404 as a never-uploaded uid;
 * - leftovers of interrupted writes are removed at start and everything stored counts against the budget;
 * - /add_key is limited to the exact key size of the module's backend, and a bad header is refused before the rest
 *   of the body is read;
 * - computations are capped per uid and in total (429 with Retry-After), a request holding its slot from the first
 *   byte of its body;
 * - the Bearer scheme is case-insensitive, a duplicated query parameter is named as such, /list_modules validates
 *   its name, and /metrics is Prometheus text with one TYPE per family and escaped label values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { FHEModelClient } from '../../src/hybrid/deployment.js';
import { RemoteClient } from '../../src/hybrid/remote-client.js';
import { SeedNet, startServer, tmpDir } from './helpers.js';

const root = tmpDir('hostile');
const modelsDir = path.join(root, 'models');
const ALICE = 'alice-0123456789abcdef';
const BOB = 'bob-fedcba9876543210xyz';
const Q = 'model_name=seed&module_name=seq.0&input_shape=10';
let keyBytes = 0;

beforeAll(async () => {
  await initBackend();
  manualSeed(11);
  const h = new HybridFHEModel(new SeedNet(), ['seq.0'], { modelName: 'seed' });
  h.compileModel(tf.randomUniform([100, 10], -1, 1, 'float32', 4), { nBits: 6 });
  h.saveAndClearPrivateInfo(path.join(modelsDir, 'seed'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function newClient(http: RemoteClient): Promise<FHEModelClient> {
  const c = FHEModelClient.fromArtefact(await http.getClient('seed', 'seq.0', '10'));
  c.generatePrivateAndEvaluationKeys();
  keyBytes = c.getSerializedEvaluationKeys().length;
  return c;
}

const post = (url: string, body: Uint8Array, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers }, body });

describe('ownership before any load (finding 2)', () => {
  it("another token's uid: the same 404 as an unknown uid, no key load, no change to its last use", async () => {
    const keysDir = path.join(root, 'keys-owner');
    let s = await startServer({ modelsDir, keysDir, apiTokens: [ALICE, BOB] });
    const alice = new RemoteClient(s.url, { token: ALICE });
    const client = await newClient(alice);
    const uid = await alice.addKey('seed', 'seq.0', '10', client.getSerializedEvaluationKeys());
    const ct = client.quantizeEncryptSerialize(Float32Array.from({ length: 10 }, (_, i) => i / 10), 1);
    await s.app.close();
    const metaFile = path.join(keysDir, `${uid}.json`);
    const old = new Date(Date.now() - 3_600_000);
    fs.utimesSync(metaFile, old, old);
    s = await startServer({ modelsDir, keysDir, apiTokens: [ALICE, BOB] }); // cold cache
    try {
      const asBob = (u: string) => post(`${s.url}/compute?uid=${u}&${Q}`, ct, { authorization: `Bearer ${BOB}` });
      const theirs = await asBob(uid);
      const unknown = await asBob('00000000-0000-4000-8000-000000000000');
      expect(theirs.status).toBe(404);
      const [a, b] = [await theirs.json(), await unknown.json()] as { message: string }[];
      expect(a).toEqual({ ...b, message: a!.message });
      expect(a!.message.replace(uid, 'U')).toBe(b!.message.replace('00000000-0000-4000-8000-000000000000', 'U'));
      const metrics = await (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${ALICE}` } })).text();
      expect(metrics).not.toMatch(/^fhenet_key_loads_total(\{\})? [1-9]/m);
      expect(Math.abs(fs.statSync(metaFile).mtimeMs - old.getTime())).toBeLessThan(1000); // not touched
      // the owner still computes
      expect((await post(`${s.url}/compute?uid=${uid}&${Q}`, ct, { authorization: `Bearer ${ALICE}` })).status).toBe(200);
    } finally {
      await s.app.close();
    }
  });
});

describe('crash leftovers (finding 3)', () => {
  it('removes a key without metadata, temporary files and partial uploads at start; stored bytes are all counted', async () => {
    const keysDir = path.join(root, 'keys-orphans');
    let s = await startServer({ modelsDir, keysDir });
    const http = new RemoteClient(s.url);
    const uid = await http.addKey('seed', 'seq.0', '10', (await newClient(http)).getSerializedEvaluationKeys());
    await s.app.close();
    const orphans = [
      ['0f0f0f0f-0000-4000-8000-000000000001.key', 5000], // written, never committed
      [`${uid}.json.tmp-123-abcd`, 300], // an earlier version's temporary metadata
      ['.upload/0f0f0f0f-0000-4000-8000-000000000002.part', 7000], // an interrupted upload
      ['0f0f0f0f-0000-4000-8000-000000000003.json', 200], // metadata without a key
    ] as const;
    for (const [f, n] of orphans) fs.writeFileSync(path.join(keysDir, f), new Uint8Array(n));
    s = await startServer({ modelsDir, keysDir });
    try {
      for (const [f] of orphans) expect(fs.existsSync(path.join(keysDir, f)), f).toBe(false);
      const onDisk = [`${uid}.key`, `${uid}.json`].reduce((t, f) => t + fs.statSync(path.join(keysDir, f)).size, 0);
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      expect(Number(/^fhenet_key_store_bytes (\d+)/m.exec(metrics)![1])).toBe(onDisk);
      expect(fs.readdirSync(keysDir).filter((f) => f !== '.upload').sort()).toEqual([`${uid}.json`, `${uid}.key`]);
    } finally {
      await s.app.close();
    }
  });
});

describe('/add_key limits (finding 4)', () => {
  it("is limited to the backend's exact key size, before the body is read", async () => {
    const s = await startServer({ modelsDir, keysDir: path.join(root, 'keys-limits') });
    try {
      await newClient(new RemoteClient(s.url));
      const r = await post(`${s.url}/add_key?${Q}`, new Uint8Array(keyBytes + 1));
      expect(r.status).toBe(413);
      expect(await r.json()).toMatchObject({ code: 'too_large' });
    } finally {
      await s.app.close();
    }
  });

  it('refuses a bad key header before reading the rest of a streamed body', async () => {
    const s = await startServer({ modelsDir, keysDir: path.join(root, 'keys-header') });
    try {
      // a raw chunked upload of up to 256 MiB of garbage, written as fast as the server reads it
      const { status, sent } = await new Promise<{ status: string; sent: number }>((resolve, reject) => {
        const sock = net.connect(s.port, '127.0.0.1');
        let sent = 0;
        let answer = '';
        const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 0x41), Buffer.from('\r\n')]);
        const pump = () => {
          while (!answer && sent < 256 * 2 ** 20) {
            sent += 0x10000;
            if (!sock.write(chunk)) return void sock.once('drain', pump);
          }
        };
        sock.on('connect', () => {
          sock.write(`POST /add_key?${Q} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`);
          pump();
        });
        sock.on('data', (d) => {
          answer += d.toString('latin1');
          if (/\r\n\r\n/.test(answer)) {
            sock.destroy();
            resolve({ status: answer.slice(9, 12), sent });
          }
        });
        sock.on('error', (e) => (answer ? undefined : reject(e)));
      });
      expect(status).toBe('400');
      expect(sent).toBeLessThan(32 * 2 ** 20); // answered long before the 256 MiB were sent
      await new Promise((r) => setTimeout(r, 100));
      expect(fs.readdirSync(path.join(root, 'keys-header', '.upload'))).toEqual([]);
    } finally {
      await s.app.close();
    }
  });
});

describe('concurrency caps (finding 1, on any backend)', () => {
  it('answers 429 with Retry-After past the per-uid and total caps; a slot is held from the first byte of the body', async () => {
    const s = await startServer({ modelsDir, keysDir: path.join(root, 'keys-caps'), maxComputePerUid: 1, maxComputeTotal: 2 });
    try {
      const http = new RemoteClient(s.url);
      const clients = [await newClient(http), await newClient(http)];
      const uids = [];
      for (const c of clients) uids.push(await http.addKey('seed', 'seq.0', '10', c.getSerializedEvaluationKeys()));
      const cts = clients.map((c) => c.quantizeEncryptSerialize(Float32Array.from({ length: 10 }, (_, i) => i / 10), 1));
      // a slow upload: the first half of the body, then nothing until released
      const slow = (uid: string, ct: Uint8Array) => {
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(ct.subarray(0, ct.length >> 1));
          },
          async pull(c) {
            await gate;
            c.enqueue(ct.subarray(ct.length >> 1));
            c.close();
          },
        });
        const res = fetch(`${s.url}/compute?uid=${uid}&${Q}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(ct.length) }, body, duplex: 'half' } as RequestInit);
        return { res, release };
      };
      const first = slow(uids[0]!, cts[0]!);
      await new Promise((r) => setTimeout(r, 300));
      const sameUid = await post(`${s.url}/compute?uid=${uids[0]}&${Q}`, cts[0]!);
      expect(sameUid.status).toBe(429);
      expect(Number(sameUid.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await sameUid.json()).toMatchObject({ code: 'too_many_requests' });
      const second = slow(uids[1]!, cts[1]!);
      await new Promise((r) => setTimeout(r, 300));
      const third = await post(`${s.url}/compute?uid=${uids[1]}&${Q}`, cts[1]!);
      expect(third.status).toBe(429); // per uid (uid 1 busy) — and the total cap of 2 is reached too
      first.release();
      second.release();
      expect((await first.res).status).toBe(200);
      expect((await second.res).status).toBe(200);
      expect((await post(`${s.url}/compute?uid=${uids[0]}&${Q}`, cts[0]!)).status).toBe(200); // slots freed
    } finally {
      await s.app.close();
    }
  });
});

describe('minor findings (5)', () => {
  it('accepts the Bearer scheme in any case (RFC 7235)', async () => {
    const s = await startServer({ modelsDir, keysDir: path.join(root, 'keys-bearer'), apiTokens: [ALICE] });
    try {
      for (const scheme of ['Bearer', 'bearer', 'BEARER']) expect((await fetch(`${s.url}/list_models`, { headers: { authorization: `${scheme} ${ALICE}` } })).status).toBe(200);
      expect((await fetch(`${s.url}/list_models`, { headers: { authorization: `Basic ${ALICE}` } })).status).toBe(401);
    } finally {
      await s.app.close();
    }
  });

  it('names a duplicated query parameter; /list_modules validates the model name', async () => {
    const s = await startServer({ modelsDir, keysDir: path.join(root, 'keys-query') });
    try {
      const dup = await fetch(`${s.url}/get_client?model_name=seed&model_name=other&module_name=seq.0&input_shape=10`);
      expect(dup.status).toBe(400);
      const body = (await dup.json()) as { code: string; message: string };
      expect(body.code).toBe('duplicate_parameter');
      expect(body.message).toMatch(/model_name.*(once|more than one|twice)/);
      const bad = await fetch(`${s.url}/list_modules?model_name=seed/seq.0`);
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ code: 'bad_name' });
      expect((await fetch(`${s.url}/list_modules?model_name=seed`)).status).toBe(200);
    } finally {
      await s.app.close();
    }
  });

  it('/metrics: one TYPE line per family, every sample under its family, label values escaped', async () => {
    const s = await startServer({ modelsDir, keysDir: path.join(root, 'keys-metrics') });
    try {
      await fetch(`${s.url}/nothing"here\\x`); // a 404 whose route label must not break the format
      await fetch(`${s.url}/list_models`);
      const text = await (await fetch(`${s.url}/metrics`)).text();
      const typed = new Map<string, string>();
      for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        expect(typed.has(m[1]!), `TYPE ${m[1]} twice`).toBe(false);
        typed.set(m[1]!, m[2]!);
      }
      for (const name of ['fhenet_http_requests_total', 'fhenet_keys_stored', 'fhenet_key_store_bytes', 'fhenet_compute_in_flight', 'process_resident_memory_bytes']) expect(typed.has(name), name).toBe(true);
      const samples = text.split('\n').filter((l) => l && !l.startsWith('#'));
      expect(samples.length).toBeGreaterThan(5);
      for (const line of samples) {
        const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)![1]!;
        const family = [...typed.keys()].find((f) => name === f || (name.startsWith(f) && /^_(bucket|sum|count|total|created)$/.test(name.slice(f.length))));
        expect(family, `sample ${line} has no TYPE`).toBeDefined();
        // label values: quoted, with backslash, quote and newline escaped
        expect(line, line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? \S+$/);
      }
    } finally {
      await s.app.close();
    }
  });
});
