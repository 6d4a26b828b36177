/**
 * Bounded loopback load test of `fhenet serve` (in-process fastify on 127.0.0.1): N concurrent clients, each with
 * its own evaluation key, send R /compute requests for the seed example's remote module (Linear(10,10), simulate
 * backend). Every answer is checked against a local evaluation with the same client's keys (no wrong answer, no
 * crossed keys). Prints requests/s, p50/p99 latency, bytes per request and server memory.
 *
 *   npx tsx bench/hybrid-load.ts [--clients 16] [--requests 100] [--batch 1] [--seconds 60] [--backend simulate|tfhe]
 *
 * With `--backend tfhe` the module is the TFHE-sized seed variant (3 weights kept per neuron of seq.0, 2-bit PTQ,
 * 3-bit output: 4-bit accumulators, the 2_2 set; 10 PBS per sample), keys are real CompressedServerKeys (≈ 29 MiB per
 * client, uploaded once), the server runs the PBS in a 2-thread worker pool per key, and every answer is checked
 * against the circuit's clear simulation (no local re-encryption).
 */
import '../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import * as tf from '@tensorflow/tfjs-core';
import { Command, Option } from 'commander';
import { intOption, numberOption } from '../src/cli/options.js';
import { initBackend } from '../src/backend/index.js';
import { manualSeed } from '../src/nn/init.js';
import { Linear, ReLU, Sequential } from '../src/nn/layers.js';
import { Module } from '../src/nn/module.js';
import type { Activation } from '../src/nn/quant-tensor.js';
import { HybridFHEModel } from '../src/hybrid/hybrid-model.js';
import { FHEModelClient, FHEModelServer } from '../src/hybrid/deployment.js';
import { RemoteClient } from '../src/hybrid/remote-client.js';
import { buildServer } from '../src/hybrid/server/app.js';
import { quantizeInput, simulate } from '../src/compiler/simulate.js';
import { mean, quantile } from 'simple-statistics';

class SeedNet extends Module {
  readonly seq = this.addModule('seq', new Sequential(new Linear(10, 10), new ReLU(), new Linear(10, 10)));
  forward(x: Activation): Activation {
    return this.seq.call(x);
  }

  override forwardAsync(x: Activation): Promise<Activation> {
    return this.seq.callAsync(x);
  }
}

const opts = new Command('bench/hybrid-load.ts')
  .description('loopback load test of `fhenet serve`: concurrent clients with their own keys, every answer checked; requests/s, latency, bytes, memory')
  .option('--clients <n>', 'concurrent clients, each with its own evaluation key', intOption('--clients', 1), 16)
  .option('--requests <n>', 'requests per client (fewer if --seconds runs out)', intOption('--requests', 1), 100)
  .option('--batch <n>', 'samples per request', intOption('--batch', 1), 1)
  .option('--seconds <s>', 'time limit for the request phase', numberOption('--seconds'), 60)
  .addOption(new Option('--backend <b>', 'simulate: the seed module, clear simulation; tfhe: the TFHE-sized variant with real keys and PBS').choices(['simulate', 'tfhe']).default('simulate'))
  .parse()
  .opts<{ clients: number; requests: number; batch: number; seconds: number; backend: 'simulate' | 'tfhe' }>();
const CLIENTS = opts.clients;
const REQUESTS = opts.requests;
const BATCH = opts.batch;
const SECONDS = opts.seconds;
const BACKEND = opts.backend;
const TFHE = BACKEND === 'tfhe';

await initBackend();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-load-'));
manualSeed(1);
const seedNet = new SeedNet();
if (TFHE) {
  // keep the 3 largest weights per neuron of seq.0: with 2-bit PTQ its accumulators fit 4 bits (the 2_2 set)
  const lin = [...seedNet.namedModules()].find(([n]) => n === 'seq.0')![1] as unknown as { weight: tf.Variable };
  const w = Float32Array.from(lin.weight.dataSync() as Float32Array);
  for (let r = 0; r < 10; r++) {
    const order = Array.from({ length: 10 }, (_, k) => k).sort((a, b) => Math.abs(w[r * 10 + b]!) - Math.abs(w[r * 10 + a]!));
    for (const k of order.slice(3)) w[r * 10 + k] = 0;
  }
  lin.weight.assign(tf.tensor(w, [10, 10]));
}
const h = new HybridFHEModel(seedNet, ['seq.0'], { modelName: 'seed' });
h.compileModel(tf.randomUniform([200, 10], -1, 1, 'float32', 3), TFHE ? { nBits: 2, outputBits: 3, backend: 'tfhe' } : { nBits: 6, roundingThresholdBits: 8 });
const circuit = h.fheModel('seq.0').circuit;
h.saveAndClearPrivateInfo(path.join(root, 'models', 'seed'));
const localServer = FHEModelServer.load(path.join(root, 'models', 'seed', 'seq.0', '10'));

const app = await buildServer({ modelsDir: path.join(root, 'models'), keysDir: path.join(root, 'keys'), logger: false, tfheThreads: 2, tfheKeyCacheSize: Math.max(4, CLIENTS) });
await app.listen({ port: 0, host: '127.0.0.1' });
const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
const rss0 = process.memoryUsage().rss;

const keyUploadMs: number[] = [];
let keyBytes = 0;
const clients = await Promise.all(
  Array.from({ length: CLIENTS }, async () => {
    const http = new RemoteClient(url);
    const client = FHEModelClient.fromArtefact(await http.getClient('seed', 'seq.0', '10'));
    await client.generatePrivateAndEvaluationKeysAsync();
    const key = client.getSerializedEvaluationKeys();
    const k0 = performance.now();
    const uid = await http.addKey('seed', 'seq.0', '10', key);
    keyUploadMs.push(performance.now() - k0);
    keyBytes = key.length;
    return { http, client, uid };
  }),
);

const lat: number[] = [];
let wrong = 0;
let bytesSent = 0;
let bytesReceived = 0;
let done = 0;
const deadline = performance.now() + SECONDS * 1000;
const t0 = performance.now();
await Promise.all(
  clients.map(async ({ http, client, uid }, c) => {
    for (let r = 0; r < REQUESTS && performance.now() < deadline; r++) {
      const x = Float32Array.from({ length: 10 * BATCH }, (_, j) => Math.sin(c * 1000 + r * 10 + j));
      const ct = client.quantizeEncryptSerialize(x, BATCH);
      const s = performance.now();
      const { bytes } = await http.compute(uid, 'seed', 'seq.0', '10', ct);
      const got = client.deserializeDecryptDequantize(bytes, BATCH).output;
      lat.push(performance.now() - s);
      if (TFHE) {
        const ints = client.deserializeDecryptDequantize(bytes, BATCH).ints;
        const exp = simulate(circuit, quantizeInput(circuit, x), BATCH).output;
        if (ints.some((v, i) => v !== exp[i])) wrong++;
      } else {
        const exp = client.deserializeDecryptDequantize(localServer.run(ct, client.getSerializedEvaluationKeys()), BATCH).output;
        if (got.some((v, i) => v !== exp[i])) wrong++;
      }
      bytesSent += ct.length;
      bytesReceived += bytes.length;
      done++;
    }
  }),
);
const wall = (performance.now() - t0) / 1000;
const rss1 = process.memoryUsage().rss;
await app.close();
fs.rmSync(root, { recursive: true, force: true });

const q = (p: number) => quantile(lat, p);
for (const c of clients) c.client.dispose();
const res = {
  backend: BACKEND,
  keyBytes,
  keyUploadMsMean: +mean(keyUploadMs).toFixed(0),
  clients: CLIENTS,
  requestsPerClient: REQUESTS,
  batch: BATCH,
  requests: done,
  wrongAnswers: wrong,
  seconds: +wall.toFixed(2),
  requestsPerSecond: +(done / wall).toFixed(1),
  samplesPerSecond: +((done * BATCH) / wall).toFixed(1),
  p50ms: +q(0.5).toFixed(2),
  p99ms: +q(0.99).toFixed(2),
  bytesSentPerRequest: done ? bytesSent / done : 0,
  bytesReceivedPerRequest: done ? bytesReceived / done : 0,
  rssBeforeMiB: +(rss0 / 2 ** 20).toFixed(1),
  rssAfterMiB: +(rss1 / 2 ** 20).toFixed(1),
  node: process.version,
  cpus: os.cpus().length,
};
console.log(JSON.stringify(res));
if (wrong) process.exit(1);
