/**
 * Scale-out of the model server (issue 26): redis-server (append-only file, fsync always), HAProxy with the
 * repository's deploy/haproxy/fhenet.cfg and three `fhenet serve --store redis://…` replicas on loopback.
 * - a TFHE evaluation key (≈ 29 MiB, 2_2) uploaded through replica 1 serves computes through replicas 2 and 3, whose
 *   results equal simulate (their first compute loads the key from Redis: the cold-start cost is printed);
 * - 4 concurrent clients send a bounded number of computes through HAProxy while one replica is SIGKILLed: no client
 *   request fails (the balancer retries the idempotent /compute on another replica);
 * - Redis is SIGKILLed and restarted: the acknowledged key is still there, and a fresh replica computes with it.
 * Replica 3 runs with `--queue`: its lookups go to a `fhenet worker` process (the CLI wiring of distributed PBS).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/index.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { FHEModelClient } from '../../src/hybrid/deployment.js';
import { RemoteClient } from '../../src/hybrid/remote-client.js';
import { manualSeed } from '../../src/nn/init.js';
import { Rng } from '../../src/util/rng.js';
import { RedisKeyStore } from '../../src/scale/redis-key-store.js';
import { parseRedisUrl } from '../../src/scale/redis.js';
import { prunedSeed } from '../hybrid/helpers.js';
import { type Proc, REQUIRE_SCALE, ROOT, freePort, have, startFhenet, startProcess, startRedis, stopAll, which } from './cluster.js';

const available = have('redis-server') && have('haproxy');
if (!available && REQUIRE_SCALE) throw new Error('FHENET_REQUIRE_SCALE=1 but redis-server or haproxy is not installed (apt-get install redis-server haproxy)');

const MODEL = 'seed';
const MODULE = 'seq.0';
const SHAPE = '10';

function randn(n: number, d: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n * d }, () => r.uniform(-1, 1));
}

async function startReplica(modelsDir: string, redisUrl: string, extra: string[] = []): Promise<Proc & { url: string; port: number }> {
  const p = startFhenet(['serve', '--models', modelsDir, '--store', redisUrl, '--port', '0', '--tfhe-threads', '2', '--log-level', 'info', ...extra]);
  const m = await p.waitFor(/listening at (http:\/\/127\.0\.0\.1:(\d+))/, 90_000);
  return { ...p, url: m[1]!, port: Number(m[2]) };
}

describe.skipIf(!available)(`several model-server replicas behind HAProxy on a shared Redis key store${available ? '' : ' (skipped: redis-server/haproxy not installed)'}`, () => {
  let root: string;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-replicas-'));
    await initBackend();
  });
  afterAll(async () => {
    await stopAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('key through one replica, computes through the others; a replica SIGKILLed under load; Redis restarted', async () => {
    // the model: seed net, seq.0 remote over TFHE (2_2)
    manualSeed(1);
    const h = new HybridFHEModel(prunedSeed(3), [MODULE], { modelName: MODEL });
    h.compileModel(tf.tensor(randn(200, 10, 3), [200, 10]), { nBits: 2, outputBits: 3, backend: 'tfhe' });
    const modelsDir = path.join(root, 'models');
    const sim = (x: Float32Array, n: number) => h.fheModel(MODULE).forward(x, n, { fhe: 'simulate' }).then((r) => Array.from(r.outputInts!));
    const inputs = Array.from({ length: 8 }, (_, i) => randn(1, 10, 100 + i));
    const expected = await Promise.all(inputs.map((x) => sim(x, 1)));
    h.saveAndClearPrivateInfo(path.join(modelsDir, MODEL));

    const redis = await startRedis(path.join(root, 'redis'));
    // replica 3 also sends its lookups to a `fhenet worker` through the queue (`--queue`)
    const worker = startFhenet(['worker', '--queue', redis.url, '--jobs', 'pbs', '--threads', '1']);
    const replicas = await Promise.all([[], [], ['--queue', redis.url, '--pbs-per-job', '4']].map((extra) => startReplica(modelsDir, redis.url, extra)));
    await worker.waitFor(/ready: pbs/);
    const lbPort = await freePort();
    const lb = startProcess(which('haproxy')!, ['-db', '-f', path.join(ROOT, 'deploy/haproxy/fhenet.cfg')], {
      env: {
        FHENET_LB_BIND: `127.0.0.1:${lbPort}`,
        FHENET_REPLICA_1: `127.0.0.1:${replicas[0]!.port}`,
        FHENET_REPLICA_2: `127.0.0.1:${replicas[1]!.port}`,
        FHENET_REPLICA_3: `127.0.0.1:${replicas[2]!.port}`,
      },
    });
    const lbUrl = `http://127.0.0.1:${lbPort}`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${lbUrl}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i >= 100 || lb.child.exitCode !== null) throw new Error(`HAProxy did not answer /health:\n${lb.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    // 1. key uploaded through replica 1; computes through replicas 2 and 3 (cold: load from Redis; then warm)
    const dc = FHEModelClient.fromArtefact(await new RemoteClient(replicas[0]!.url).getClient(MODEL, MODULE, SHAPE));
    await dc.generatePrivateAndEvaluationKeysAsync();
    const evalKey = dc.getSerializedEvaluationKeys();
    expect(evalKey.length).toBeGreaterThan(20 * 2 ** 20);
    const uid = await new RemoteClient(replicas[0]!.url).addKey(MODEL, MODULE, SHAPE, evalKey);
    const compute = async (url: string, i: number) => {
      const r = await new RemoteClient(url).compute(uid, MODEL, MODULE, SHAPE, dc.quantizeEncryptSerialize(inputs[i]!, 1));
      return Array.from(dc.deserializeDecryptDequantize(r.bytes, 1).ints);
    };
    for (const r of [replicas[1]!, replicas[2]!]) {
      const t0 = performance.now();
      expect(await compute(r.url, 0)).toEqual(expected[0]);
      const cold = performance.now() - t0;
      const t1 = performance.now();
      expect(await compute(r.url, 1)).toEqual(expected[1]);
      console.log(`replica ${r.port}: first compute (key loaded from Redis) ${cold.toFixed(0)} ms, second ${(performance.now() - t1).toFixed(0)} ms`);
    }
    expect(worker.output()).toMatch(/key [0-9a-f]+… loaded/); // replica 3's lookups ran on the worker

    // 2. 4 clients × 6 computes through HAProxy; replica 2 is SIGKILLed while it is computing one of them
    let completed = 0;
    const failures: string[] = [];
    let stop = false;
    const victim = replicas[1]!;
    /** /compute requests replica 2 has received and not answered (fastify's request log). */
    const inFlight = () => {
      const out = victim.output();
      const open = new Set<string>();
      for (const m of out.matchAll(/"reqId":"([^"]+)"[^\n]*"url":"\/compute[^\n]*"msg":"incoming request"/g)) open.add(m[1]!);
      for (const m of out.matchAll(/"reqId":"([^"]+)"[^\n]*"msg":"request completed"/g)) open.delete(m[1]!);
      return open.size;
    };
    const killer = (async () => {
      const t0 = Date.now();
      while (!stop && (completed < 2 || inFlight() === 0)) {
        if (Date.now() - t0 > 120_000) throw new Error('replica 2 never had a compute in flight');
        await new Promise((r) => setTimeout(r, 5));
      }
      if (!stop) await victim.kill('SIGKILL');
    })();
    const client = async (c: number) => {
      for (let k = 0; k < 6; k++) {
        const i = (c * 6 + k) % inputs.length;
        try {
          expect(await compute(lbUrl, i)).toEqual(expected[i]);
        } catch (e) {
          failures.push(`client ${c} request ${k}: ${(e as Error).message}`);
        }
        completed++;
      }
    };
    await Promise.all([0, 1, 2, 3].map(client));
    stop = true;
    await killer;
    expect(victim.child.signalCode).toBe('SIGKILL'); // killed while a request was in flight on it
    expect(failures).toEqual([]);
    expect(completed).toBe(24);
    // httplog's 'actconn/feconn/beconn/srv_conn/retries' field: retries ≥ 1 ('+' when redispatched to another server)
    const retried = lb.output().split('\n').filter((l) => / \d+\/\d+\/\d+\/\d+\/\+?[1-9]\d* \d+\/\d+ /.test(l) && l.includes('/compute'));
    if (!retried.length) console.log(lb.output().split('\n').filter((l) => l.includes('/compute')).slice(-12).join('\n'));
    console.log(`HAProxy: ${retried.length} /compute request(s) retried after the SIGKILL; log lines:\n${retried.join('\n')}`);
    expect(retried.length).toBeGreaterThan(0);

    // 3. Redis SIGKILLed and restarted on the same port and folder: the acknowledged key is still stored
    await redis.kill('SIGKILL');
    const redis2 = await startRedis(redis.dir, redis.port);
    const store = await RedisKeyStore.open(parseRedisUrl(redis2.url), { capacityBytes: 2 ** 40 });
    try {
      expect((await store.meta(uid))?.bytes).toBe(evalKey.length);
      expect(Buffer.compare(Buffer.from((await store.get(uid))!), Buffer.from(evalKey))).toBe(0);
    } finally {
      await store.close();
    }
    // …and a replica started now, which never saw the key, computes with it (through the balancer's survivors too)
    const fresh = await startReplica(modelsDir, redis2.url);
    expect(await compute(fresh.url, 2)).toEqual(expected[2]);
    expect(await compute(lbUrl, 3)).toEqual(expected[3]);
    dc.dispose();
  }, 300_000);
});
