/**
 * The CIFAR-10 (CNV 2W2A) and Fashion-MNIST (small low-bit CNN) experiment: QAT training that resumes exactly,
 * then FHE simulation accuracy with accumulator rounding.
 *
 *   npx tsx experiments/cifar/train.ts --variant small --epochs 5 [--limit N] [--out runs/cifar-small]
 *   npx tsx experiments/cifar/train.ts --variant fashion --epochs 4
 *   npx tsx experiments/cifar/train.ts --variant small --epochs 5 --eval-only      (FHE rows from the last checkpoint)
 *   npx tsx experiments/cifar/train.ts --variant float --epochs 30 --schedule cosine --save-model runs/teacher.safetensors
 *   npx tsx experiments/cifar/train.ts --variant full --teacher runs/teacher.safetensors --distill-alpha 0.5 …
 *                                        (knowledge distillation of the QAT CNV from its float twin, fit({ distill }))
 *   npx tsx experiments/cifar/train.ts --variant full --init cnv.safetensors --rounding-aware '{"bits":6,"perChannel":true,"align":true}' …
 *                                        (rounding-aware fine-tuning: the circuit's accumulator rounding in the forward pass)
 *
 * Every epoch writes <out>/last.safetensors (model + optimizer + RNG + epoch + history), <out>/curve.csv and
 * <out>/curve.svg; re-running the same command continues after the last finished epoch. At the end the model is
 * compiled (calibrated on training images) and simulated on test images with no rounding and rounding 8/7/6 bits;
 * everything lands in <out>/results.json, and `--save-model FILE` writes the trained weights alone.
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { decodeTensors, loadModule, saveModule } from '../../src/nn/checkpoint.js';
import { savePackedModule } from '../../src/quant/packed-checkpoint.js';
import { accumulatorAware } from '../../src/quant/a2q.js';
import { manualSeed } from '../../src/nn/init.js';
import { type Schedule } from '../../src/train/schedule.js';
import { type EpochMetrics, evaluate, fit } from '../../src/train/trainer.js';
import * as tf from '@tensorflow/tfjs-core';
import { FloatCnv } from '../../src/models/cnv.js';
import { VARIANTS, type Variant, afterStep, augmentation, buildModel, defaults, fheEvaluate, loadData, nhwcToNchw, spread, writeCurve } from './lib.js';
import { type RoundingOption, roundingSpec } from '../../src/compiler/rounding.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { attachAccumulatorRounding, detachAccumulatorRounding } from '../../src/analysis/circuit-rounding.js';
import { size } from '../../src/train/dataset.js';

/** A roundingThresholdBits value: a number or a JSON object, checked by the compiler's own option parser. */
function parseRounding(v: string): RoundingOption {
  let r: unknown;
  try {
    r = JSON.parse(v);
  } catch (e) {
    throw new InvalidArgumentError(`--rounding-aware must be a number or JSON: ${(e as Error).message}`);
  }
  try {
    roundingSpec(r as RoundingOption);
  } catch (e) {
    throw new InvalidArgumentError(`--rounding-aware: ${(e as Error).message}`);
  }
  return r as RoundingOption;
}

const program = new Command()
  .option('--variant <v>', `model: ${VARIANTS.join(', ')}`, 'small')
  .option('--epochs <n>', 'total epochs (a resumed run continues up to this)', (v) => parseInt(v, 10), 5)
  .option('--limit <n>', 'use only n training images (CIFAR: evenly spaced, all classes; Fashion-MNIST: the first n)', (v) => parseInt(v, 10))
  .option('--test-limit <n>', 'use only n test images for per-epoch evaluation (same rule)', (v) => parseInt(v, 10))
  .option('--batch <n>', 'batch size', (v) => parseInt(v, 10))
  .option('--lr <x>', 'learning rate (Adam)', parseFloat)
  .option('--schedule <s>', "'step' (halve every 40 epochs, the reference) or 'cosine' (over --epochs)", 'step')
  .option('--bits <n>', 'fashion variant: weight/activation bits', (v) => parseInt(v, 10), 3)
  .option('--seed <n>', 'seed', (v) => parseInt(v, 10), 0)
  .option('--out <dir>', 'run folder (checkpoints, curve, results)')
  .option('--data <path>', 'data location (CIFAR binary/JPEG copy, or Fashion-MNIST folder)')
  .option('--fresh', 'ignore an existing checkpoint and start over')
  .option('--init <file>', 'start a new run from these weights (a --save-model file): a warm restart with a fresh optimizer and schedule; ignored when --out already holds a checkpoint to resume')
  .option('--eval-only', 'skip training; evaluate the checkpoint in --out')
  .option('--fhe-n <n>', 'test images simulated in FHE', (v) => parseInt(v, 10), 1000)
  .option('--calib-n <n>', 'training images (evenly spaced) used to calibrate the compiler', (v) => parseInt(v, 10), 500)
  .option('--a2q-bits <n>', 'accumulator-aware training: project every QuantConv2d/QuantLinear after each step so that no input can need more than n accumulator bits (src/quant/a2q.ts)', (v) => parseInt(v, 10))
  .option('--no-refined-rounding', "FHE rows: only Concrete ML's rounding (skip fhenet's per-channel + aligned rows)")
  .option('--save-model <file>', 'write the trained weights (float32 state dict) here')
  .option('--teacher <file>', 'knowledge distillation from a trained float CNV (a --variant float --save-model file): loss = (1 − α)·CE + α·T²·KL (src/train/loss.ts)')
  .option('--distill-alpha <x>', 'with --teacher: weight α of the distillation term', parseFloat, 0.5)
  .option('--distill-temperature <x>', 'with --teacher: temperature T', parseFloat, 4)
  .option('--rounding-aware <json>', 'rounding-aware fine-tuning: simulate this accumulator rounding (a roundingThresholdBits value, e.g. \'{"bits":6,"perChannel":true,"align":true}\') in the training forward pass, recompiled from the model on --calib-n training images before every epoch (src/quant/accumulator-rounding.ts)', parseRounding)
  .option('--save-packed <file>', 'write the trained weights as an integer-packed checkpoint (src/quant/packed-checkpoint.ts) here')
  .parse();

const o = program.opts<{
  variant: Variant;
  epochs: number;
  limit?: number;
  testLimit?: number;
  batch?: number;
  lr?: number;
  schedule: string;
  bits: number;
  seed: number;
  out?: string;
  data?: string;
  fresh?: boolean;
  init?: string;
  evalOnly?: boolean;
  fheN: number;
  calibN: number;
  saveModel?: string;
  savePacked?: string;
  refinedRounding?: boolean;
  a2qBits?: number;
  teacher?: string;
  distillAlpha: number;
  distillTemperature: number;
  roundingAware?: RoundingOption;
}>();
if (!VARIANTS.includes(o.variant)) program.error(`--variant must be one of ${VARIANTS.join(', ')}, got '${o.variant}'`);
if (o.variant === 'float' && (o.savePacked || o.a2qBits !== undefined || o.teacher)) program.error('--variant float trains the float teacher: no --save-packed, --a2q-bits or --teacher');
if (o.teacher !== undefined && (o.variant === 'fashion' || !fs.existsSync(o.teacher))) program.error(`--teacher: a float CNV checkpoint for a CIFAR variant (${o.teacher} ${fs.existsSync(o.teacher) ? 'exists' : 'does not exist'})`);
if (!(o.distillAlpha >= 0 && o.distillAlpha <= 1) || !(o.distillTemperature > 0)) program.error('--distill-alpha must be in [0, 1] and --distill-temperature positive');

const info = await initBackend();
const out = o.out ?? path.join('runs', `cifar-${o.variant}`);
fs.mkdirSync(out, { recursive: true });
const log = (s: string) => {
  console.log(s);
  fs.appendFileSync(path.join(out, 'log.txt'), `${new Date().toISOString()} ${s}\n`);
};
log(`backend: ${describeBackend(info)}; argv: ${process.argv.slice(2).join(' ')}`);

const tLoad = performance.now();
const data = await loadData(o.variant, { limit: o.limit, testLimit: o.testLimit, dataPath: o.data });
log(`data: ${data.source}; ${data.train.y.length} train, ${data.test.y.length} test; loaded in ${((performance.now() - tLoad) / 1000).toFixed(1)} s`);

manualSeed(o.seed);
const model = buildModel(o.variant, { bits: o.bits });
const d = defaults(o.variant);
const schedule: Schedule = o.schedule === 'cosine' ? { kind: 'cosine', tMax: o.epochs } : { kind: 'step', stepSize: 40, gamma: 0.5 };
const ckpt = path.join(out, 'last.safetensors');
if (o.fresh && fs.existsSync(ckpt)) fs.rmSync(ckpt);
if (o.init && !o.evalOnly) {
  if (fs.existsSync(ckpt)) log(`--init ${o.init}: ignored, resuming the checkpoint in ${out}`);
  else {
    // Strict: every parameter and buffer (BatchNorm statistics included) must come from the file.
    loadModule(o.init, model, { strict: true });
    log(`initialised from ${o.init} (warm restart: fresh optimizer state and schedule)`);
  }
}

const curveTitle = `${o.variant === 'fashion' ? 'Fashion-MNIST CNN' : `CNV ${o.variant}`} — ${o.variant === 'float' ? 'float' : 'QAT'} accuracy${o.teacher ? ' (distilled)' : ''}`;
let teacher: FloatCnv | undefined;
if (o.teacher && !o.evalOnly) {
  teacher = new FloatCnv();
  loadModule(o.teacher, teacher, { strict: true });
  log(`distillation from ${o.teacher} (${(100 * evaluate(teacher, data.test).accuracy).toFixed(2)}% on the test set): α ${o.distillAlpha}, T ${o.distillTemperature}`);
}
/** The epoch history stored in a training checkpoint's metadata (read from the safetensors header only). */
function historyFromCheckpoint(file: string): EpochMetrics[] {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const header = Buffer.alloc(Number(len.readBigUInt64LE(0)));
    fs.readSync(fd, header, 0, header.length, 8);
    const meta = (JSON.parse(header.toString('utf8')) as { __metadata__?: { history?: string } }).__metadata__;
    return meta?.history ? (JSON.parse(meta.history) as EpochMetrics[]) : [];
  } finally {
    fs.closeSync(fd);
  }
}

// Accumulator-aware training: the projection runs once now (on fresh or --init weights) and after every step, after
// the weight clipping; a resumed run's checkpoint holds weights that already satisfy it.
if (o.a2qBits !== undefined && (!Number.isInteger(o.a2qBits) || o.a2qBits < 2 || o.a2qBits > 24)) program.error(`--a2q-bits must be an integer in [2, 24], got ${o.a2qBits}`);
const a2q = o.a2qBits !== undefined && !o.evalOnly ? accumulatorAware(model, { targetBits: o.a2qBits, sampleShape: data.train.sampleShape }) : undefined;
if (a2q) log(`accumulator-aware projection: every layer's worst-case accumulator ≤ ${o.a2qBits} bits`);

// Rounding-aware fine-tuning: the circuit's accumulator rounding, compiled from the current weights, simulated in the
// training forward pass; recompiled before every epoch so that ranges, per-channel k and offsets follow the weights.
if (o.roundingAware !== undefined && (o.variant === 'float' || o.evalOnly)) program.error('--rounding-aware fine-tunes a QAT variant: not with --variant float or --eval-only');
const roundingCalib = o.roundingAware !== undefined ? spread(data.train, o.calibN) : undefined;
function refreshRounding(): void {
  if (!roundingCalib) return;
  const t0 = performance.now();
  const wasTraining = model.training;
  model.eval();
  const n = size(roundingCalib);
  const fhe = FheModel.compile(moduleToGraph(model, data.train.sampleShape), { data: nhwcToNchw(roundingCalib.x, n, roundingCalib.sampleShape), n }, { roundingThresholdBits: o.roundingAware });
  const set = attachAccumulatorRounding(model, fhe.circuit);
  model.train(wasTraining);
  log(`rounding-aware: ${set.length} layers round their accumulators as the circuit does (${JSON.stringify(o.roundingAware)}, calibrated on ${n} images, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

const tTrain = performance.now();
if (o.evalOnly) {
  if (!fs.existsSync(ckpt)) throw new Error(`--eval-only: no checkpoint at ${ckpt}`);
  const { tensors } = decodeTensors(new Uint8Array(fs.readFileSync(ckpt)));
  const state = new Map([...tensors].filter(([k]) => k.startsWith('model.')).map(([k, t]) => [k.slice(6), t]));
  model.loadStateDict(state);
  tf.dispose([...tensors.values()]);
} else {
  refreshRounding();
  const res = await fit(model, data, {
    epochs: o.epochs,
    batchSize: o.batch ?? d.batchSize,
    lr: o.lr ?? d.lr,
    optimizer: 'adam',
    schedule,
    seed: o.seed,
    checkpointDir: out,
    resume: true,
    progress: 'lines',
    transformBatch: augmentation(o.variant),
    ...(teacher ? { distill: { teacher, alpha: o.distillAlpha, temperature: o.distillTemperature } } : {}),
    afterStep: (() => {
      const clip = afterStep(model);
      if (!a2q) return clip;
      return () => {
        clip?.();
        a2q.afterStep();
      };
    })(),
    onEpoch: async (m) => {
      await writeCurve(out, historyFromCheckpoint(ckpt), curveTitle);
      log(
        `epoch ${m.epoch + 1}: lr ${m.lr.toExponential(2)} train loss ${m.trainLoss.toFixed(4)} acc ${(100 * m.trainAccuracy).toFixed(2)}% ` +
          `test acc ${m.testAccuracy === undefined ? '—' : (100 * m.testAccuracy).toFixed(2)}% (${m.seconds.toFixed(0)} s, ` +
          `${((data.train.y.length / m.seconds) | 0)} img/s incl. eval; tensors ${tf.memory().numTensors})`,
      );
      refreshRounding();
    },
  });
  detachAccumulatorRounding(model);
  await writeCurve(out, res.history, curveTitle);
  const trainSeconds = res.history.reduce((a, m) => a + m.seconds, 0);
  log(`training: ${res.history.length} epochs in checkpoint history, ${trainSeconds.toFixed(0)} s of epoch time in total (this invocation ${res.seconds.toFixed(0)} s)`);
}
const trainSecondsThisRun = (performance.now() - tTrain) / 1000;

const qat = evaluate(model, data.test);
log(`${o.variant === 'float' ? 'float' : 'QAT'} test accuracy: ${(100 * qat.accuracy).toFixed(2)}% on ${data.test.y.length} images`);
if (o.saveModel) {
  saveModule(o.saveModel, model, { variant: o.variant, format: 'fhenet-cnv/1' });
  log(`saved weights to ${o.saveModel} (${fs.statSync(o.saveModel).size} bytes)`);
}
if (o.savePacked) {
  savePackedModule(o.savePacked, model, { variant: o.variant });
  log(`saved packed weights to ${o.savePacked} (${fs.statSync(o.savePacked).size} bytes)`);
}

// Concrete ML's rounding (the reference's rows), then fhenet's refinement at the same widths (src/compiler/rounding.ts).
const refined = (bits: number) => ({ bits, perChannel: true, align: true });
const roundings = o.refinedRounding === false ? ['none' as const, 8, 7, 6] : ['none' as const, 8, 7, 6, refined(8), refined(7), refined(6)];
// The float teacher has no quantizers: nothing to compile.
const fhe = o.variant === 'float' ? undefined : await fheEvaluate(model, spread(data.train, o.calibN), data.test, { n: o.fheN, roundings });
for (const r of fhe?.rows ?? []) {
  log(
    `simulate rounding ${r.label}: ${(100 * r.accuracy).toFixed(2)}% on ${fhe!.n} (QAT on the same ${(100 * fhe!.qatAccuracy).toFixed(2)}%, agreement ${(100 * r.agreement).toFixed(2)}%); ` +
      `max bit width ${r.maxBitWidth}, max TLU input ${r.maxTluInputBits}; compile ${r.compileSeconds.toFixed(1)} s, simulate ${r.simulateSeconds.toFixed(1)} s`,
  );
}
fs.writeFileSync(
  path.join(out, 'results.json'),
  JSON.stringify({ variant: o.variant, backend: info.choice, argv: process.argv.slice(2), qatTestAccuracy: qat.accuracy, testImages: data.test.y.length, fhe, trainSecondsThisRun }, null, 2),
);
log(`wrote ${path.join(out, 'results.json')}`);
