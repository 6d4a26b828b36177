/**
 * The training loop: seeded shuffling, mini-batches, an optimizer, a per-epoch learning-rate schedule, train/test
 * metrics every epoch, optional early stopping, and a checkpoint every epoch from which `resume` continues exactly
 * (model, optimizer moments and step, shuffling RNG state, epoch and history).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../nn/module.js';
import { valueOf } from '../nn/quant-tensor.js';
import { decodeTensors, encodeTensors, writeFileAtomic } from '../nn/checkpoint.js';
import { ConfigError, FhenetError } from '../util/errors.js';
import { createProgress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { type Dataset, checkDataset, gather, sampleSize, size } from './dataset.js';
import { crossEntropy, distillationLoss } from './loss.js';
import { type OptimizerName, createOptimizer } from './optim.js';
import { type Schedule, learningRate } from './schedule.js';

export interface FitOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer?: OptimizerName;
  weightDecay?: number;
  momentum?: number;
  schedule?: Schedule;
  seed?: number;
  /** Stop when test accuracy has not improved for this many epochs. */
  earlyStopPatience?: number;
  /** Write `last.safetensors` here after every epoch. */
  checkpointDir?: string;
  /** Continue from `checkpointDir/last.safetensors` when it exists. */
  resume?: boolean;
  /** Progress display: default bar on a TTY, lines otherwise. */
  progress?: 'bar' | 'lines' | 'silent';
  /** Called after each epoch (awaited: a callback may write files before the next epoch starts). */
  onEpoch?: (m: EpochMetrics) => void | Promise<void>;
  /** Called after each optimizer step (e.g. to re-apply constraints). */
  afterStep?: () => void;
  /**
   * A term added to the cross-entropy inside the gradient tape at every step (e.g. `accumulatorPenalty(...).loss`);
   * the reported training loss includes it.
   */
  regularizer?: () => tf.Scalar;
  /**
   * Knowledge distillation: the loss becomes (1 − alpha)·CE + alpha·distillationLoss(student, teacher, temperature)
   * (src/train/loss.ts), the teacher run in eval mode on the same (augmented) batch and never updated. Defaults:
   * temperature 4, alpha 0.5. The reported training loss is this mixture.
   */
  distill?: { teacher: Module; temperature?: number; alpha?: number };
  /**
   * Per-batch transform of the gathered training batch (data augmentation), applied in place before the step. It
   * draws from the trainer's own `rng`, whose state the checkpoints carry, so a resumed run augments identically.
   */
  transformBatch?: (batch: { x: Float32Array; y: Int32Array }, sampleShape: readonly number[], rng: Rng) => void;
}

export interface EpochMetrics {
  epoch: number;
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss?: number;
  testAccuracy?: number;
  seconds: number;
}

export interface FitResult {
  history: EpochMetrics[];
  seconds: number;
  stoppedEarly: boolean;
}

function toBatch(d: Dataset, idx: ArrayLike<number>, transform?: (b: { x: Float32Array; y: Int32Array }) => void): { x: tf.Tensor; y: tf.Tensor1D } {
  const b = gather(d, idx);
  transform?.(b);
  return { x: tf.tensor(b.x, [idx.length, ...d.sampleShape]), y: tf.tensor1d(b.y, 'int32') };
}

/** Logits for every sample of `d`, in eval mode, batched. */
export function predict(model: Module, d: Dataset, batchSize = 256): Float32Array {
  const chunks: Float32Array[] = [];
  for (const out of predictBatches(model, d, batchSize)) {
    chunks.push(out.dataSync() as Float32Array);
    out.dispose();
  }
  return concat(chunks);
}

/**
 * `predict` with asynchronous reads: the form that works on every backend, including WebGPU in Node (which cannot
 * read a GPU buffer synchronously) — fit uses it.
 */
export async function predictAsync(model: Module, d: Dataset, batchSize = 256): Promise<Float32Array> {
  const chunks: Float32Array[] = [];
  for (const out of predictBatches(model, d, batchSize)) {
    chunks.push((await out.data()) as Float32Array);
    out.dispose();
  }
  return concat(chunks);
}

function* predictBatches(model: Module, d: Dataset, batchSize: number): Generator<tf.Tensor> {
  checkDataset(d);
  const n = size(d);
  for (let s = 0; s < n; s += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - s) }, (_, i) => s + i);
    yield tf.tidy(() => valueOf(model.call(toBatch(d, idx).x)));
  }
}

function concat(chunks: Float32Array[]): Float32Array {
  const all = new Float32Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return all;
}

export function argmaxRows(logits: Float32Array, classes: number): Int32Array {
  const n = logits.length / classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c]! > logits[i * classes + best]!) best = c;
    out[i] = best;
  }
  return out;
}

export function evaluate(model: Module, d: Dataset, batchSize = 256): { accuracy: number; loss: number } {
  const restore = evalMode(model);
  try {
    return scoreLogits(predict(model, d, batchSize), d);
  } finally {
    restore();
  }
}

/** `evaluate` with asynchronous reads (every backend, WebGPU included). */
export async function evaluateAsync(model: Module, d: Dataset, batchSize = 256): Promise<{ accuracy: number; loss: number }> {
  const restore = evalMode(model);
  try {
    return scoreLogits(await predictAsync(model, d, batchSize), d);
  } finally {
    restore();
  }
}

/** Puts the model in eval mode; the returned function restores the mode it had. */
function evalMode(model: Module): () => void {
  const wasTraining = model.training;
  model.eval();
  return () => model.train(wasTraining);
}

/** Accuracy and mean cross-entropy of host-side logits (numerically stable log-softmax, in float64). */
function scoreLogits(logits: Float32Array, d: Dataset): { accuracy: number; loss: number } {
  const k = d.numClasses;
  const pred = argmaxRows(logits, k);
  let ok = 0;
  let loss = 0;
  for (let i = 0; i < pred.length; i++) {
    if (pred[i] === d.y[i]) ok++;
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, logits[i * k + c]!);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(logits[i * k + c]! - max);
    loss += max + Math.log(sum) - logits[i * k + d.y[i]!]!;
  }
  return { accuracy: ok / pred.length, loss: loss / pred.length };
}

function checkOptions(o: FitOptions): void {
  const posInt = (k: keyof FitOptions) => {
    const v = o[k] as number;
    if (!Number.isInteger(v) || v < 1) throw new ConfigError(`fit: ${k} must be a positive integer, got ${v}`);
  };
  posInt('epochs');
  posInt('batchSize');
  if (!(o.lr > 0)) throw new ConfigError(`fit: lr must be positive, got ${o.lr}`);
  if (o.resume && !o.checkpointDir) throw new ConfigError('fit: resume needs checkpointDir');
}

const CKPT = 'last.safetensors';

/** Validated distillation settings with defaults; the teacher is put in eval mode (BatchNorm running statistics). */
function distillSettings(model: Module, d: FitOptions['distill']): { teacher: Module; temperature: number; alpha: number } | undefined {
  if (!d) return undefined;
  const temperature = d.temperature ?? 4;
  const alpha = d.alpha ?? 0.5;
  if (!(d.teacher instanceof Module)) throw new ConfigError('fit: distill.teacher must be a Module');
  if (d.teacher === model) throw new ConfigError('fit: distill.teacher must be another model than the one trained');
  if (!(temperature > 0)) throw new ConfigError(`fit: distill.temperature must be positive, got ${temperature}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new ConfigError(`fit: distill.alpha must be in [0, 1], got ${alpha}`);
  d.teacher.eval();
  return { teacher: d.teacher, temperature, alpha };
}

export async function fit(model: Module, data: { train: Dataset; test?: Dataset }, opts: FitOptions): Promise<FitResult> {
  checkOptions(opts);
  checkDataset(data.train, 'training set');
  if (data.test) checkDataset(data.test, 'test set');
  const named = model.namedParameters().filter(([, v]) => v.trainable);
  const vars = named.map(([, v]) => v);
  const distill = distillSettings(model, opts.distill);
  const optimizer = createOptimizer(opts.optimizer ?? 'adamw', named, opts);
  let rng = new Rng(opts.seed ?? 0);
  const history: EpochMetrics[] = [];
  let startEpoch = 0;
  const ckptFile = opts.checkpointDir ? path.join(opts.checkpointDir, CKPT) : undefined;
  if (opts.resume && ckptFile && fs.existsSync(ckptFile)) {
    const state = loadTrainingState(ckptFile, model, optimizer);
    rng = new Rng(opts.seed ?? 0, state.rng);
    history.push(...state.history);
    startEpoch = state.epoch + 1;
  }
  const n = size(data.train);
  const stepsPerEpoch = Math.ceil(n / opts.batchSize);
  const t0 = Date.now();
  let stoppedEarly = false;
  const progress = createProgress({ label: 'train', total: opts.epochs * stepsPerEpoch, mode: opts.progress });
  progress.update(startEpoch * stepsPerEpoch);
  for (let epoch = startEpoch; epoch < opts.epochs; epoch++) {
    const te = Date.now();
    model.train();
    optimizer.lr = learningRate(opts.lr, epoch, opts.schedule ?? { kind: 'constant' });
    const perm = rng.permutation(n);
    let lossSum = 0;
    let correct = 0;
    for (let s = 0; s < stepsPerEpoch; s++) {
      const idx = perm.subarray(s * opts.batchSize, Math.min(n, (s + 1) * opts.batchSize));
      const transform = opts.transformBatch;
      const { x, y } = toBatch(data.train, idx, transform && ((b) => transform(b, data.train.sampleShape, rng)));
      let predOk: tf.Tensor | undefined;
      const teacherLogits = distill ? tf.tidy(() => valueOf(distill.teacher.call(x))) : undefined;
      const { value, grads } = tf.variableGrads(() => {
        const logits = valueOf(model.call(x));
        predOk = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32')));
        let loss = crossEntropy(logits, y);
        if (distill) loss = tf.add(tf.mul(loss, 1 - distill.alpha), tf.mul(distillationLoss(logits, teacherLogits!, distill.temperature), distill.alpha)) as tf.Scalar;
        return opts.regularizer ? tf.add(loss, opts.regularizer()) : loss;
      }, vars);
      teacherLogits?.dispose();
      optimizer.step(grads);
      opts.afterStep?.();
      // Asynchronous reads: WebGPU in Node has no synchronous download (on WASM and CPU, data() is the same read).
      const [lossValue, okCount] = await Promise.all([value.data(), predOk!.data()]);
      lossSum += lossValue[0]! * idx.length;
      correct += okCount[0]!;
      tf.dispose([value, x, y, predOk!, ...Object.values(grads)]);
      progress.update(epoch * stepsPerEpoch + s + 1, `epoch ${epoch + 1}/${opts.epochs}`);
    }
    if (!Number.isFinite(lossSum)) throw new FhenetError(`training diverged at epoch ${epoch + 1} (loss ${lossSum}); lower the learning rate`);
    const m: EpochMetrics = { epoch, lr: optimizer.lr, trainLoss: lossSum / n, trainAccuracy: correct / n, seconds: 0 };
    if (data.test) {
      const r = await evaluateAsync(model, data.test);
      m.testAccuracy = r.accuracy;
      m.testLoss = r.loss;
    }
    m.seconds = (Date.now() - te) / 1000;
    history.push(m);
    if (ckptFile) await saveTrainingState(ckptFile, model, optimizer, { epoch, rng: rng.state(), history });
    await opts.onEpoch?.(m);
    if (opts.earlyStopPatience && data.test && shouldStop(history, opts.earlyStopPatience)) {
      stoppedEarly = true;
      break;
    }
  }
  progress.stop();
  optimizer.dispose();
  return { history, seconds: (Date.now() - t0) / 1000, stoppedEarly };
}

function shouldStop(h: EpochMetrics[], patience: number): boolean {
  const accs = h.map((m) => m.testAccuracy ?? 0);
  const best = accs.indexOf(Math.max(...accs));
  return h.length - 1 - best >= patience;
}

/** What a training checkpoint carries besides tensors; `fitCausalLM` stores its optimizer step count as `epoch`. */
export interface TrainingState<H = EpochMetrics> {
  epoch: number;
  rng: object;
  history: H[];
  /** Any other JSON-serialisable loop state (fitCausalLM: the partial sums of the current log interval). */
  extra?: object;
}

export async function saveTrainingState<H>(file: string, model: Module, optimizer: ReturnType<typeof createOptimizer>, s: TrainingState<H>): Promise<void> {
  const tensors = new Map<string, tf.Tensor>();
  for (const [k, t] of model.stateDict()) tensors.set(`model.${k}`, t);
  const o = optimizer.state();
  for (const [k, t] of o.tensors) tensors.set(`optim.${k}`, t);
  // Download every tensor asynchronously first: backends cache the host copy, so the encoder's synchronous reads
  // are then answered from it (WebGPU in Node cannot read synchronously at all).
  await Promise.all([...tensors.values()].map((t) => t.data()));
  writeFileAtomic(
    file,
    encodeTensors(tensors, {
      format: 'fhenet-training-state/1',
      epoch: String(s.epoch),
      rng: JSON.stringify(s.rng),
      optimizer: JSON.stringify(o.scalars),
      history: JSON.stringify(s.history),
      ...(s.extra ? { extra: JSON.stringify(s.extra) } : {}),
    }),
  );
}

export function loadTrainingState<H = EpochMetrics>(file: string, model: Module, optimizer: ReturnType<typeof createOptimizer>): TrainingState<H> {
  const { tensors, metadata } = decodeTensors(new Uint8Array(fs.readFileSync(file)));
  if (metadata.format !== 'fhenet-training-state/1') throw new FhenetError(`${file} is not an fhenet training checkpoint`);
  const modelState = new Map<string, tf.Tensor>();
  const optimState = new Map<string, tf.Tensor>();
  for (const [k, t] of tensors) {
    if (k.startsWith('model.')) modelState.set(k.slice(6), t);
    else if (k.startsWith('optim.')) optimState.set(k.slice(6), t);
  }
  model.loadStateDict(modelState);
  optimizer.loadState(optimState, JSON.parse(metadata.optimizer!));
  tf.dispose([...tensors.values()]);
  return {
    epoch: Number(metadata.epoch),
    rng: JSON.parse(metadata.rng!),
    history: JSON.parse(metadata.history!),
    ...(metadata.extra ? { extra: JSON.parse(metadata.extra) as object } : {}),
  };
}
