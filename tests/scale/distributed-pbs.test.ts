/**
 * Distributed KS-PBS (src/scale/pbs-queue.ts, pbs-worker.ts): a circuit evaluated by TfheCircuitServer (and by
 * FheModel's executor) whose lookups run on two `fhenet worker` processes through Redis equals simulate; SIGKILL of a worker in the middle of
 * a request loses nothing (its job is retried by the other); with no worker a request fails within its time limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor } from '../../src/onnx/graph.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { TfheCircuitClient, TfheCircuitExecutor, TfheCircuitServer } from '../../src/runtime/executor.js';
import { PbsQueueClient, PbsQueueError } from '../../src/scale/pbs-queue.js';
import { parseRedisUrl } from '../../src/scale/redis.js';
import { REQUIRE_SCALE, type RedisProc, have, startFhenet, startRedis, stopAll } from './cluster.js';

const available = have('redis-server');
if (!available && REQUIRE_SCALE) throw new Error('FHENET_REQUIRE_SCALE=1 but redis-server is not installed (apt-get install redis-server)');

/** x(2) → Quant(2-bit) → Gemm → Relu → Quant(3-bit) [one table per element] → Gemm: 2 PBS per sample. */
function smallNet() {
  const b = new GraphBuilder('small');
  let x = b.input('x', ['batch', 2]);
  x = b.quant(x, { scale: 1, bitWidth: 2, signed: false, narrow: false });
  const w1 = b.quant(b.addInitializer('w1', floatTensor([2, 2], [1, -1, 1, 1])), { scale: 1, bitWidth: 3, signed: true, narrow: true });
  let h = b.relu(b.gemm(x, w1, b.addInitializer('b1', floatTensor([2], [0.5, -1])), 'fc1'));
  h = b.quant(h, { scale: 1, bitWidth: 3, signed: false, narrow: false, name: 'q1' });
  const w2 = b.quant(b.addInitializer('w2', floatTensor([2, 2], [1, -1, 2, 1])), { scale: 1, bitWidth: 3, signed: true, narrow: true });
  b.output(b.gemm(h, w2, undefined, 'fc2'));
  return b.build();
}

const ALL = Float32Array.from({ length: 32 }, (_, i) => (i % 2 === 0 ? Math.floor(i / 2) % 4 : Math.floor(i / 8)));

/** Job ids a worker's --verbose log shows as started, and as done. */
function jobLog(out: string): { started: Set<string>; done: Set<string> } {
  const started = new Set<string>();
  const done = new Set<string>();
  for (const m of out.matchAll(/job (\S+) (start|done)/g)) (m[2] === 'start' ? started : done).add(m[1]!);
  return { started, done };
}

describe.skipIf(!available)(`distributed PBS on a Redis queue${available ? '' : ' (skipped: redis-server not installed)'}`, () => {
  let redis: RedisProc;
  let root: string;
  let client: TfheCircuitClient;
  const c = FheModel.compile(smallNet(), { data: ALL, n: 16 }).circuit;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-dpbs-'));
    redis = await startRedis(path.join(root, 'redis'));
    client = TfheCircuitClient.forCircuit(c);
  });
  afterAll(async () => {
    client?.dispose();
    await stopAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('two workers compute what simulate computes; a worker killed mid-job loses nothing', async () => {
    const workerArgs = ['worker', '--queue', redis.url, '--jobs', 'pbs', '--threads', '1', '--lock-ms', '2000', '--verbose'];
    const w1 = startFhenet(workerArgs);
    const w2 = startFhenet(workerArgs);
    await Promise.all([w1.waitFor(/ready: pbs/), w2.waitFor(/ready: pbs/)]);
    const queue = await PbsQueueClient.connect(parseRedisUrl(redis.url), { chunk: 16, jobTimeoutMs: 90_000 });
    const server = await TfheCircuitServer.create(client.serverKey(), { params: client.paramsName, pbsRunner: queue.factory });
    try {
      const ints = quantizeInput(c, ALL);
      const down = await server.runEncrypted(c, client.encryptInputs(c, ints, 16), 16);
      expect(Array.from(client.decryptOutputs(c, down, 16))).toEqual(Array.from(simulate(c, ints, 16).output));
      expect(server.lastStats!.pbs).toBe(32);
      expect(queue.stats.jobs).toBe(2);

      // the local executor (FheModel's 'execute' mode) on the same queue
      const model = FheModel.compile(smallNet(), { data: ALL, n: 16 });
      const exec = new TfheCircuitExecutor({ pbsRunner: queue.factory });
      model.executor = exec;
      try {
        const r = await model.forward(ALL, 16, { fhe: 'execute' });
        expect(Array.from(r.outputInts!)).toEqual(Array.from((await model.forward(ALL, 16, { fhe: 'simulate' })).outputInts!));
        expect(queue.stats.jobs).toBe(4);
      } finally {
        await exec.close();
      }

      // 128 lookups in 8 jobs of 16; worker 1 is killed (SIGKILL) as soon as it starts a job of this request.
      const n = 64;
      const bigInts = quantizeInput(c, Float32Array.from({ length: 2 * n }, (_, i) => ALL[i % 32]!));
      const before = jobLog(w1.output()).started;
      const run = server.runEncrypted(c, client.encryptInputs(c, bigInts, n), n);
      for (const t0 = Date.now(); ![...jobLog(w1.output()).started].some((id) => !before.has(id)); ) {
        if (Date.now() - t0 > 60_000) throw new Error(`worker 1 started no job of the request in 60 s:\n${w1.output()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      await w1.kill('SIGKILL');
      const out = await run;
      expect(Array.from(client.decryptOutputs(c, out, n))).toEqual(Array.from(simulate(c, bigInts, n).output));
      // The job worker 1 died in was retried and finished by worker 2.
      const l1 = jobLog(w1.output());
      const l2 = jobLog(w2.output());
      const lost = [...l1.started].filter((id) => !l1.done.has(id));
      expect(lost.length).toBe(1);
      expect(l2.done.has(lost[0]!)).toBe(true);
    } finally {
      await server.close();
      await queue.close();
    }
  }, 240_000);

  it('with no worker on its queue, a request fails with a clear error within its time limit', async () => {
    const queue = await PbsQueueClient.connect(parseRedisUrl(redis.url), { jobTimeoutMs: 1500, queueName: 'fhenet-pbs-nobody' });
    const server = await TfheCircuitServer.create(client.serverKey(), { params: client.paramsName, pbsRunner: queue.factory });
    try {
      const ints = quantizeInput(c, ALL.subarray(0, 4));
      const t0 = Date.now();
      await expect(server.runEncrypted(c, client.encryptInputs(c, ints, 2), 2)).rejects.toThrow(PbsQueueError);
      await expect(server.runEncrypted(c, client.encryptInputs(c, ints, 2), 2)).rejects.toThrow(/unfinished after 2 s \(are workers running\? fhenet worker --queue redis:\/\/127\.0\.0\.1:\d+\)/);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await server.close();
      await queue.close();
    }
  }, 60_000);
});
