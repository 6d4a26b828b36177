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
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as path from 'node:path';
import { Command } from 'commander';
import { loadavg } from 'node:os';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { type Dataset, size } from '../../src/train/dataset.js';
import { evaluate } from '../../src/train/trainer.js';
import { planCircuit } from '../../src/runtime/executor-plan.js';
import { DEFAULT_CONFIG, type NetConfig, buildNet, compileNet, loadImages, pick, saveNet, trainNet } from './lib.js';

const args = process.argv.slice(2);
const o = new Command()
  .option('--dataset <value>', 'fashion or cifar', DEFAULT_CONFIG.dataset)
  .option('--channels <value>', 'conv channels, comma-separated', DEFAULT_CONFIG.channels.join(','))
  .option('--kernel <value>', 'conv kernel size', String(DEFAULT_CONFIG.kernel))
  .option('--stride <value>', 'conv stride', String(DEFAULT_CONFIG.stride))
  .option('--input-bits <value>', 'input quantizer bits', String(DEFAULT_CONFIG.inputBits))
  .option('--weight-bits <value>', 'weight bits', String(DEFAULT_CONFIG.weightBits))
  .option('--act-bits <value>', 'activation bits', String(DEFAULT_CONFIG.actBits))
  .option('--seed <value>', 'seed', String(DEFAULT_CONFIG.seed))
  .option('--epochs <value>', 'epochs', String(DEFAULT_CONFIG.epochs))
  .option('--batch <value>', 'batch size', String(DEFAULT_CONFIG.batchSize))
  .option('--lr <value>', 'learning rate', String(DEFAULT_CONFIG.lr))
  .option('--schedule <value>', 'A2Q target per epoch, comma-separated, or none', DEFAULT_CONFIG.schedule.join(','))
  .option('--fc-target <value>', 'A2Q target of the output layer (0: none)', String(DEFAULT_CONFIG.fcTarget))
  .option('--limit <value>', 'training images (0: all)', '0')
  .option('--out <value>', 'checkpoint to write', '')
  .option('--calib <value>', 'calibration images', '2000')
  .parse()
  .opts<Record<string, string>>();
const list = (s: string) => (s === 'none' || s === '' ? [] : s.split(',').map(Number));
const dataset = o.dataset! as NetConfig['dataset'];
const cfg: NetConfig = {
  dataset,
  channels: list(o.channels!),
  kernel: Number(o.kernel!),
  stride: Number(o.stride!),
  inputBits: Number(o.inputBits!),
  weightBits: Number(o.weightBits!),
  actBits: Number(o.actBits!),
  seed: Number(o.seed!),
  epochs: Number(o.epochs!),
  batchSize: Number(o.batch!),
  lr: Number(o.lr!),
  schedule: list(o.schedule!),
  fcTarget: Number(o.fcTarget!),
};
const limit = Number(o.limit!) || undefined;
const out = o.out!;
const calibN = Number(o.calib!);

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
