/**
 * `fhenet demo`: the hybrid deployment end to end on real TFHE, in one process, on loopback.
 * Trains a 3-bit checkerboard QAT net (accumulator-aware on its hidden layer fc2, so fc2's accumulators fit the
 * 2_2 TFHE set), compiles the hybrid model with fc2 remote, starts the model server in-process on 127.0.0.1, and runs
 * a few encrypted remote inferences through it. Prints accuracy (QAT in clear vs remote over TFHE on those samples,
 * and test accuracy in simulate), latency per remote call, bytes up/down and the evaluation-key size.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import { intOption } from './options.js';

export interface DemoOptions {
  hidden?: number;
  epochs?: number;
  /** Encrypted remote inferences (calls), each of `batch` samples. */
  calls?: number;
  batch?: number;
  /** Training samples used (default: the whole training split). */
  trainSamples?: number;
  threads?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface DemoResult {
  testAccuracyClear: number;
  testAccuracySimulate: number;
  samples: number;
  agreeRemoteVsClear: number;
  remoteEqualsSimulate: boolean;
  accuracyRemote: number;
  accuracyClearOnSamples: number;
  params: string;
  keyBytes: number;
  keygenMs: number;
  keyUploadMs: number;
  calls: { ms: number; bytesUp: number; bytesDown: number; n: number }[];
  trainSeconds: number;
  totalSeconds: number;
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const { hidden = 32, epochs = 5, calls = 3, batch = 4, threads = 2, seed = 1 } = opts;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const T0 = performance.now();
  const tf = await import('@tensorflow/tfjs-core');
  const { initBackend } = await import('../backend/index.js');
  const { manualSeed } = await import('../nn/init.js');
  const { QuantSimpleNet } = await import('../models/checkerboard.js');
  const { generateCheckerboard } = await import('../../datasets/checkerboard/index.js');
  const { fit, evaluate } = await import('../train/trainer.js');
  const { accumulatorAware } = await import('../quant/a2q.js');
  const { HybridFHEModel } = await import('../hybrid/hybrid-model.js');
  const { buildServer } = await import('../hybrid/server/app.js');
  await initBackend();

  manualSeed(seed);
  const data = generateCheckerboard({ seed: 42 });
  const nTrain = Math.min(opts.trainSamples ?? data.train.y.length, data.train.y.length);
  const train = { ...data.train, x: data.train.x.subarray(0, 2 * nTrain), y: data.train.y.subarray(0, nTrain) };
  log(`[1/5] training a 3-bit checkerboard QAT net (2 → ${hidden} → ${hidden} → 2, fc2 accumulator-aware to 4 bits) on ${nTrain} samples, ${epochs} epochs`);
  const net = new QuantSimpleNet({ hidden, bits: 3, scales: 'notebook' });
  const con = accumulatorAware(net, { targetBits: 4, sampleShape: [2], layers: ['fc2'] });
  const t0 = performance.now();
  await fit(net, { train }, { epochs, batchSize: 32, lr: 1e-2, progress: 'silent', afterStep: con.afterStep });
  net.eval();
  const trainSeconds = (performance.now() - t0) / 1000;
  const testAccuracyClear = evaluate(net, data.test).accuracy;
  log(`      trained in ${trainSeconds.toFixed(1)} s; test accuracy (QAT, clear) ${(100 * testAccuracyClear).toFixed(1)} %`);

  const nTest = data.test.y.length;
  const xTest = tf.tensor(data.test.x, [nTest, 2]);
  const argmax = (v: ArrayLike<number>, i: number) => (v[2 * i]! > v[2 * i + 1]! ? 0 : 1);
  const clearOut = (net.call(xTest) as import('@tensorflow/tfjs-core').Tensor).dataSync().slice();

  log('[2/5] compiling the hybrid model: fc2 remote (TFHE), quant_inp/fc1/relu1 and relu2/fc3 on the client');
  const h = new HybridFHEModel(net, ['fc2'], { modelName: 'checkerboard' });
  h.compileModel(tf.tensor(train.x.subarray(0, 2 * Math.min(2000, nTrain)), [Math.min(2000, nTrain), 2]), { outputBits: 8, backend: 'tfhe' });
  const simOut = (await h.forward(xTest)).dataSync().slice();
  let simCorrect = 0;
  for (let i = 0; i < nTest; i++) if (argmax(simOut, i) === data.test.y[i]) simCorrect++;
  const testAccuracySimulate = simCorrect / nTest;
  log(`      test accuracy in simulate (exact integer circuit of fc2): ${(100 * testAccuracySimulate).toFixed(1)} % on ${nTest} samples`);

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-demo-'));
  const dir = path.join(root, 'models', 'checkerboard');
  h.saveAndClearPrivateInfo(dir);
  const artefact = JSON.parse(fs.readFileSync(path.join(dir, 'fc2', String(hidden), 'client.json'), 'utf8')) as { backendInfo: { params: string } };
  log(`[3/5] starting the model server in-process on 127.0.0.1 (TFHE set ${artefact.backendInfo.params}, ${threads} PBS worker threads)`);
  const app = await buildServer({ modelsDir: path.join(root, 'models'), keysDir: path.join(root, 'keys'), logger: false, tfheThreads: threads });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const client = HybridFHEModel.loadClient(new QuantSimpleNet({ hidden, bits: 3, scales: 'notebook' }), dir, { serverUrl: url });
  try {
    log(`[4/5] client: key generation + evaluation-key upload, then ${calls} encrypted remote calls of ${batch} samples`);
    const n = calls * batch;
    const remote: number[] = [];
    const callStats: DemoResult['calls'] = [];
    for (let c = 0; c < calls; c++) {
      const x = tf.tensor(data.test.x.subarray(2 * c * batch, 2 * (c + 1) * batch), [batch, 2]);
      const y = await client.forward(x);
      remote.push(...y.dataSync());
      const r = client.calls.at(-1)!;
      callStats.push({ ms: r.totalMs, bytesUp: r.bytesSent, bytesDown: r.bytesReceived, n: r.n });
      if (c === 0) {
        const k = client.keyReports.at(-1)!;
        log(`      evaluation key ${(k.bytes / 2 ** 20).toFixed(1)} MiB: keygen ${(k.keygenMs / 1000).toFixed(1)} s, upload + server load ${(k.uploadMs / 1000).toFixed(1)} s`);
      }
      log(`      call ${c + 1}/${calls}: ${batch} samples in ${(r.totalMs / 1000).toFixed(2)} s (server+HTTP ${(r.httpMs / 1000).toFixed(2)} s), ${r.bytesSent} B up, ${r.bytesReceived} B down`);
    }
    let agree = 0;
    let correctRemote = 0;
    let correctClear = 0;
    let equal = true;
    for (let i = 0; i < n; i++) {
      if (argmax(remote, i) === argmax(clearOut, i)) agree++;
      if (argmax(remote, i) === data.test.y[i]) correctRemote++;
      if (argmax(clearOut, i) === data.test.y[i]) correctClear++;
      if (remote[2 * i] !== simOut[2 * i] || remote[2 * i + 1] !== simOut[2 * i + 1]) equal = false;
    }
    const k = client.keyReports.at(-1)!;
    const res: DemoResult = {
      testAccuracyClear,
      testAccuracySimulate,
      samples: n,
      agreeRemoteVsClear: agree,
      remoteEqualsSimulate: equal,
      accuracyRemote: correctRemote / n,
      accuracyClearOnSamples: correctClear / n,
      params: artefact.backendInfo.params,
      keyBytes: k.bytes,
      keygenMs: k.keygenMs,
      keyUploadMs: k.uploadMs,
      calls: callStats,
      trainSeconds,
      totalSeconds: 0,
    };
    const perSample = callStats.reduce((a, c) => a + c.ms, 0) / n;
    log('[5/5] summary');
    log(`      remote over TFHE vs QAT in clear: ${agree}/${n} predictions agree; accuracy remote ${(100 * res.accuracyRemote).toFixed(0)} %, clear ${(100 * res.accuracyClearOnSamples).toFixed(0)} % on these ${n}`);
    log(`      remote outputs ${equal ? 'identical to' : 'DIFFER from'} local simulate; test accuracy: clear ${(100 * testAccuracyClear).toFixed(1)} %, simulate ${(100 * testAccuracySimulate).toFixed(1)} %`);
    log(`      latency ${(callStats.reduce((a, c) => a + c.ms, 0) / calls / 1000).toFixed(2)} s per call of ${batch} (${(perSample / 1000).toFixed(2)} s/sample); ` +
      `${Math.round(callStats[0]!.bytesUp / batch)} B up, ${Math.round(callStats[0]!.bytesDown / batch)} B down per sample; key upload ${(k.bytes / 2 ** 20).toFixed(1)} MiB once`);
    res.totalSeconds = (performance.now() - T0) / 1000;
    log(`      total ${res.totalSeconds.toFixed(1)} s`);
    return res;
  } finally {
    await client.close();
    await app.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('train a small checkerboard QAT net, serve its hidden layer on TFHE over loopback, and run encrypted remote inferences')
    .option('--hidden <n>', 'hidden width', intOption('--hidden', 2, 256), 32)
    .option('--epochs <n>', 'training epochs', intOption('--epochs', 1, 100), 5)
    .option('--calls <n>', 'encrypted remote calls', intOption('--calls', 1, 100), 3)
    .option('--batch <n>', 'samples per remote call', intOption('--batch', 1, 256), 4)
    .option('--threads <n>', 'server PBS worker threads (≥ 2)', intOption('--threads', 2, 64), 2)
    .option('--json', 'print the result as JSON on stdout', false)
    .option('--llm', 'the hybrid LLM instead: a GPT-2 with every linear layer on the server, encrypted (GLWE); prints text, s/token, bytes/token')
    .option('--new-tokens <n>', 'with --llm: tokens to generate', intOption('--new-tokens', 1, 256), 8)
    .action(async (o: { hidden: number; epochs: number; calls: number; batch: number; threads: number; json: boolean; llm?: boolean; newTokens: number }) => {
      if (o.llm) {
        const r = await (await import('./demo-llm.js')).runLlmDemo({ newTokens: o.newTokens });
        if (o.json) process.stdout.write(`${JSON.stringify(r, null, 1)}\n`);
        return;
      }
      const r = await runDemo({ hidden: o.hidden, epochs: o.epochs, calls: o.calls, batch: o.batch, threads: o.threads });
      if (o.json) process.stdout.write(`${JSON.stringify(r, null, 1)}\n`);
      if (!r.remoteEqualsSimulate) process.exitCode = 1;
    });
}
