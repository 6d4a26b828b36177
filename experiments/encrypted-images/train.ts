/**
 * Trains the encrypted-images CNN (src/models/encrypted-cnn.ts) with accumulator-aware QAT and writes a checkpoint.
 *
 *   FHENET_NATIVE_THREADS=1 npx tsx experiments/encrypted-images/train.ts --out experiments/encrypted-images/model.safetensors
 *   … --channels 8,16 --input-bits 2 --schedule 8,7,6,5 --fc-target 8 --epochs 10 --seed 0   (the defaults)
 *   … --schedule none          # no accumulator constraint (to measure what the constraint costs)
 *   … --dataset cifar --channels 16,32
 *
 * Prints one line per epoch and a JSON summary (last line) with the full-test-set QAT accuracy, the worst-case
 * accumulator bits A2Q guarantees per convolution, the compiled circuit's table-input bits and PBS per image.
 */
import * as path from 'node:path';
import { loadavg } from 'node:os';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { type Dataset, size } from '../../src/train/dataset.js';
import { evaluate } from '../../src/train/trainer.js';
import { planCircuit } from '../../src/tfhe/executor-plan.js';
import { DEFAULT_CONFIG, type NetConfig, buildNet, compileNet, loadImages, pick, saveNet, trainNet } from './lib.js';

const args = process.argv.slice(2);
const arg = (k: string, d: string) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1]! : d;
};
const list = (s: string) => (s === 'none' || s === '' ? [] : s.split(',').map(Number));
const dataset = arg('--dataset', DEFAULT_CONFIG.dataset) as NetConfig['dataset'];
const cfg: NetConfig = {
  dataset,
  channels: list(arg('--channels', DEFAULT_CONFIG.channels.join(','))),
  kernel: Number(arg('--kernel', String(DEFAULT_CONFIG.kernel))),
  stride: Number(arg('--stride', String(DEFAULT_CONFIG.stride))),
  inputBits: Number(arg('--input-bits', String(DEFAULT_CONFIG.inputBits))),
  weightBits: Number(arg('--weight-bits', String(DEFAULT_CONFIG.weightBits))),
  actBits: Number(arg('--act-bits', String(DEFAULT_CONFIG.actBits))),
  seed: Number(arg('--seed', String(DEFAULT_CONFIG.seed))),
  epochs: Number(arg('--epochs', String(DEFAULT_CONFIG.epochs))),
  batchSize: Number(arg('--batch', String(DEFAULT_CONFIG.batchSize))),
  lr: Number(arg('--lr', String(DEFAULT_CONFIG.lr))),
  schedule: list(arg('--schedule', DEFAULT_CONFIG.schedule.join(','))),
  fcTarget: Number(arg('--fc-target', String(DEFAULT_CONFIG.fcTarget))),
};
const limit = Number(arg('--limit', '0')) || undefined;
const out = arg('--out', '');
const calibN = Number(arg('--calib', '2000'));

const backend = await initBackend();
console.log(`backend: ${describeBackend(backend)}; load average ${loadavg().map((v) => v.toFixed(1)).join(' / ')}`);
console.log(`config: ${JSON.stringify(cfg)}${limit ? ` (first ${limit} training images)` : ''}`);

const data = await loadImages(cfg.dataset, limit);
const net = buildNet(cfg);
console.log(`table lookups per image (conv outputs): ${net.tableLookups()}`);
const r = await trainNet(net, cfg, data, (m, target) => {
  console.log(
    `epoch ${m.epoch + 1}/${cfg.epochs}: target ${target ?? '—'} bits, lr ${m.lr.toExponential(2)}, train loss ${m.trainLoss.toFixed(4)} acc ${(100 * m.trainAccuracy).toFixed(2)} %, test acc ${(100 * (m.testAccuracy ?? 0)).toFixed(2)} %, ${m.seconds.toFixed(0)} s`,
  );
});
const test = evaluate(net, data.test);
const calib: Dataset = pick(data.train, calibN, cfg.dataset);
const fhe = compileNet(net, calib);
const rep = fhe.report();
let plan: { set: string; pbs: number } | { error: string };
try {
  const p = planCircuit(fhe.circuit);
  plan = { set: p.params.name, pbs: p.pbsPerSample };
} catch (e) {
  plan = { error: (e as Error).message.slice(0, 300) };
}
const summary = {
  config: cfg,
  trainImages: size(data.train),
  trainSeconds: r.seconds,
  qatTestAccuracy: test.accuracy,
  history: r.history,
  worstCaseBits: r.worstCaseBits,
  tables: fhe.compiled.tables.map((t) => ({ name: t.name, accRange: t.accRange, inputBits: t.inputBits })),
  maxTluInputBits: rep.maxTluInputBits,
  plan,
};
if (out) {
  saveNet(out, net, cfg, { qatTestAccuracy: String(test.accuracy), trainImages: String(size(data.train)) });
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}
console.log(`QAT test accuracy (10,000 images): ${(100 * test.accuracy).toFixed(2)} %; max table input ${rep.maxTluInputBits} bits; plan ${JSON.stringify(plan)}`);
console.log(JSON.stringify(summary));
