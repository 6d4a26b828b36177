/**
 * Shared pieces of the CIFAR-10 / Fashion-MNIST experiment: models by variant name, data, augmentation hook,
 * learning-curve files, and the FHE evaluation (compile → simulate with several rounding widths).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type CifarNormalization, augmentBatch, loadCifar10, toDataset, zeroPixelValue } from '../../datasets/cifar10/index.js';
import { loadFashionMnist } from '../../datasets/fashion-mnist/index.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { type CircuitPlan, planCircuit } from '../../src/runtime/executor-plan.js';
import { simulateWithNoise } from '../../src/runtime/noisy-simulate.js';
import { dequantizeOutput, quantizeInput } from '../../src/compiler/simulate.js';
import { Rng } from '../../src/util/rng.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import type { Module } from '../../src/nn/module.js';
import { CNV, FloatCnv, createCnv } from '../../src/models/cnv.js';
import { FashionCnn } from '../../src/models/fashion-cnn.js';
import { type Dataset, sampleSize, size } from '../../src/train/dataset.js';
import type { EpochMetrics, FitOptions } from '../../src/train/trainer.js';
import { argmaxRows, evaluate } from '../../src/train/trainer.js';
import { ConfigError } from '../../src/util/errors.js';
import { nhwcToNchw } from '../../src/util/layout.js';
import { type SeriesPoint, lineChartSpec, renderSvg } from '../../src/plot/index.js';

/** `float`: CNV's float twin (src/models/cnv.ts, FloatCnv), trained as a distillation teacher for the QAT CNV. */
export type Variant = 'full' | 'small' | 'fashion' | 'float';
export const VARIANTS: Variant[] = ['full', 'small', 'fashion', 'float'];

export function buildModel(variant: Variant, opts: { bits?: number } = {}): Module {
  if (variant === 'fashion') return new FashionCnn({ bits: opts.bits ?? 3 });
  if (variant === 'float') return new FloatCnv();
  if (variant === 'full' || variant === 'small') return createCnv(variant);
  throw new ConfigError(`unknown variant '${String(variant)}' (${VARIANTS.join(', ')})`);
}

/**
 * Per-variant training defaults (reference for CNV: Adam lr 0.02, batch 100). The float twin takes Adam's usual 1e-3:
 * without quantizers and weight clipping, 0.02 is far too large for it (a choice, not tuned here).
 */
export function defaults(variant: Variant): { lr: number; batchSize: number } {
  if (variant === 'fashion') return { lr: 0.005, batchSize: 64 };
  return { lr: variant === 'float' ? 0.001 : 0.02, batchSize: 100 };
}

export interface ExperimentData {
  train: Dataset;
  test: Dataset;
  source: string;
}

export async function loadData(variant: Variant, opts: { limit?: number; testLimit?: number; dataPath?: string } = {}): Promise<ExperimentData> {
  if (variant === 'fashion') {
    const d = loadFashionMnist({ dir: opts.dataPath, limitTrain: opts.limit, limitTest: opts.testLimit });
    return { train: d.train, test: d.test, source: `Fashion-MNIST IDX ${d.dir}` };
  }
  const norm: CifarNormalization = 'cnv';
  const d = await loadCifar10({ path: opts.dataPath });
  return { train: toDataset(d.train, { normalization: norm, limit: opts.limit }), test: toDataset(d.test, { normalization: norm, limit: opts.testLimit }), source: d.source };
}

/** The reference augmentation for CIFAR (crop 32 of the 4-padded image, horizontal flip); none for Fashion-MNIST. */
export function augmentation(variant: Variant): FitOptions['transformBatch'] {
  if (variant === 'fashion') return undefined;
  const pad = zeroPixelValue('cnv');
  return (b, shape, rng: Rng) => augmentBatch(b.x, b.y.length, shape, rng, { pad: 4, flip: true, padValue: pad });
}

/** Clamps CNV weights to [−1, 1] after each step (Brevitas CNV.clip_weights); nothing for other models. */
export function afterStep(model: Module): (() => void) | undefined {
  return model instanceof CNV ? () => model.clipWeights(-1, 1) : undefined;
}

// ─── learning curve ───────────────────────────────────────────────────────────────────────────────────────────────

export async function writeCurve(dir: string, history: EpochMetrics[], title: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const csv = ['epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy,seconds'];
  for (const m of history) {
    csv.push([m.epoch + 1, m.lr, m.trainLoss, m.trainAccuracy, m.testLoss ?? '', m.testAccuracy ?? '', m.seconds].join(','));
  }
  fs.writeFileSync(path.join(dir, 'curve.csv'), `${csv.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'curve.svg'), await curveSvg(history, title));
}

/** Train and test accuracy per epoch (a Vega-Lite line chart, rendered to SVG). */
export function curveSvg(history: EpochMetrics[], title: string): Promise<string> {
  const points: SeriesPoint[] = history.flatMap((m, i) => [
    { x: i + 1, y: m.trainAccuracy, series: 'train accuracy' },
    ...(m.testAccuracy === undefined ? [] : [{ x: i + 1, y: m.testAccuracy, series: 'test accuracy' }]),
  ]);
  return renderSvg(lineChartSpec(points, { title, xTitle: 'epoch', yTitle: 'accuracy', yFormat: '.0%', xInteger: true }));
}

// ─── FHE evaluation ───────────────────────────────────────────────────────────────────────────────────────────────

/** `n` samples evenly spaced through `d` (the CIFAR JPEG copy is sorted by class: a head would be one class). */
export function spread(d: Dataset, n: number): Dataset {
  const total = size(d);
  if (n >= total) return d;
  const idx = Array.from({ length: n }, (_, i) => Math.floor((i * total) / n));
  const per = sampleSize(d);
  const x = new Float32Array(n * per);
  idx.forEach((j, i) => x.set(d.x.subarray(j * per, (j + 1) * per), i * per));
  return { ...d, x, y: Int32Array.from(idx, (j) => d.y[j]!) };
}

export { nhwcToNchw }; // one definition: src/util/layout.ts

/** A rounding row: none, Concrete ML's rounding to n bits, or fhenet's refined rounding (per channel + aligned). */
export type FheRounding = 'none' | number | { bits: number; method?: 'exact' | 'approximate'; perChannel?: boolean; align?: boolean; headroom?: number };

export function roundingLabel(r: FheRounding): string {
  if (r === 'none' || typeof r === 'number') return String(r);
  return `${r.bits} (${[r.method === 'approximate' ? 'approximate' : '', r.perChannel ? 'per channel' : '', r.align ? 'aligned' : '', r.headroom !== undefined ? `headroom ${r.headroom}` : ''].filter(Boolean).join(' + ') || 'plain'})`;
}

export interface FheRow {
  rounding: FheRounding;
  label: string;
  accuracy: number;
  /** Agreement of simulate's predictions with the QAT model's on the same images. */
  agreement: number;
  maxBitWidth: number;
  maxTluInputBits: number;
  compileSeconds: number;
  simulateSeconds: number;
  /** The parameter set fhenet's TFHE executor would run the circuit on, and its PBS per image (null: no set fits). */
  tfhe: { set: string; pbsPerSample: number } | null;
  /** Why no set fits (the largest set's refusal), when none does. */
  tfheRefusal?: string;
  /**
   * With `noise`: the noisy simulation on the executor's plan (src/runtime/noisy-simulate.ts) — the predicted
   * encrypted accuracy, its agreement with the exact simulation, and lookups off by one per image.
   */
  noisy?: { accuracy: number; agreementWithSimulate: number; flipsPerImage: number; seconds: number };
}

export interface FheEvaluation {
  n: number;
  qatAccuracy: number;
  rows: FheRow[];
}

/**
 * Compiles the trained model (calibrated on `calib`) once per rounding width and runs the integer circuit in
 * simulation on `n` test images spread evenly through the test set; compares with the QAT model's predictions on the same images.
 */
export async function fheEvaluate(model: Module, calib: Dataset, test: Dataset, opts: { n: number; roundings: FheRounding[]; noise?: boolean; noiseSeed?: number }): Promise<FheEvaluation> {
  model.eval();
  const sub = spread(test, opts.n);
  const n = size(sub);
  const graph = moduleToGraph(model, test.sampleShape);
  const qat = evaluate(model, sub);
  const { predict } = await import('../../src/train/trainer.js');
  const qatPred = argmaxRows(predict(model, sub), sub.numClasses);
  const calibX = nhwcToNchw(calib.x, size(calib), calib.sampleShape);
  const testX = nhwcToNchw(sub.x, n, sub.sampleShape);
  const rows: FheRow[] = [];
  for (const r of opts.roundings) {
    const t0 = performance.now();
    const fhe = FheModel.compile(graph, { data: calibX, n: size(calib) }, r === 'none' ? {} : { roundingThresholdBits: r });
    const t1 = performance.now();
    const rep = fhe.report();
    const out = await fhe.forward(testX, n, { fhe: 'simulate' });
    const t2 = performance.now();
    let tfhe: FheRow['tfhe'] = null;
    let tfheRefusal: string | undefined;
    let plan: CircuitPlan | undefined;
    try {
      plan = planCircuit(fhe.circuit);
      tfhe = { set: plan.params.name, pbsPerSample: plan.pbsPerSample };
    } catch (e) {
      tfheRefusal = (e as Error).message;
    }
    const pred = argmaxRows(out.output, sub.numClasses);
    const noisy = opts.noise && plan ? noisyRow(fhe.circuit, plan, testX, sub, pred, opts.noiseSeed ?? 0) : undefined;
    let ok = 0;
    let agree = 0;
    for (let i = 0; i < n; i++) {
      if (pred[i] === sub.y[i]) ok++;
      if (pred[i] === qatPred[i]) agree++;
    }
    rows.push({
      rounding: r,
      label: roundingLabel(r),
      accuracy: ok / n,
      agreement: agree / n,
      maxBitWidth: rep.maxBitWidth,
      maxTluInputBits: rep.maxTluInputBits,
      compileSeconds: (t1 - t0) / 1000,
      simulateSeconds: (t2 - t1) / 1000,
      tfhe,
      ...(tfheRefusal !== undefined ? { tfheRefusal } : {}),
      ...(noisy ? { noisy } : {}),
    });
  }
  return { n, qatAccuracy: qat.accuracy, rows };
}

/** The noisy simulation of `x` (NCHW) in chunks: accuracy, agreement with the exact simulation's predictions. */
function noisyRow(circuit: FheModel['circuit'], plan: CircuitPlan, x: Float32Array, d: Dataset, exactPred: Int32Array, seed: number): NonNullable<FheRow['noisy']> {
  const t0 = performance.now();
  const n = size(d);
  const per = x.length / n;
  const rng = new Rng(seed);
  let ok = 0;
  let agree = 0;
  let flips = 0;
  const chunk = 250;
  for (let s = 0; s < n; s += chunk) {
    const b = Math.min(chunk, n - s);
    const r = simulateWithNoise(circuit, plan, quantizeInput(circuit, x.subarray(s * per, (s + b) * per)), b, { rng });
    const pred = argmaxRows(dequantizeOutput(circuit, r.output), d.numClasses);
    for (let i = 0; i < b; i++) {
      if (pred[i] === d.y[s + i]) ok++;
      if (pred[i] === exactPred[s + i]) agree++;
    }
    flips += Object.values(r.flips).reduce((a, v) => a + v, 0);
  }
  return { accuracy: ok / n, agreementWithSimulate: agree / n, flipsPerImage: flips / n, seconds: (performance.now() - t0) / 1000 };
}

export function sampleCount(d: Dataset): number {
  return d.x.length / sampleSize(d);
}
