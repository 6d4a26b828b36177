/**
 * Causal language-model training and perplexity: `fit`'s cousin for a model that maps token ids [B, T] to next-token
 * logits [B, T, V]. Training draws `batchSize` windows of `contextLength + 1` tokens at seeded random offsets of a
 * token stream, and counts optimizer steps instead of epochs: AdamW, linear warm-up + cosine decay per step,
 * gradient clipping by global norm, gradient accumulation over micro-batches, validation loss at intervals, and a
 * checkpoint (model, optimizer moments and step, sampling RNG, loss log) from which `resume` continues exactly as if
 * never interrupted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module.js';
import { valueOf } from '../nn/quant-tensor.js';
import { ConfigError, FhenetError, ShapeError } from '../util/errors.js';
import { createProgress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { sparseCrossEntropy, targetLogits } from './loss.js';
import { createOptimizer } from './optim.js';
import { learningRate } from './schedule.js';
import { loadTrainingState, saveTrainingState } from './trainer.js';

/** A stream of token ids (uint16 covers GPT-2's 50,257-token vocabulary). */
export type TokenIds = Uint16Array | Int32Array | Uint32Array | readonly number[];

/** ids [B, T] (int32) → logits [B, T, V]. Default: `model.call(ids)`. */
export type LMForward = (model: Module, ids: tf.Tensor2D) => tf.Tensor;

const defaultForward: LMForward = (model, ids) => valueOf(model.call(ids));

export interface CausalLMFitOptions {
  /** Tokens per training window (the model sees `contextLength` tokens and predicts the next of each). */
  contextLength: number;
  /** Windows per micro-batch. */
  batchSize: number;
  /** Micro-batches whose gradients are averaged into one optimizer step (default 1). */
  gradientAccumulationSteps?: number;
  /** Optimizer steps in the whole run (the cosine decay ends here). */
  maxSteps: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warm-up steps (default 0). */
  warmupSteps?: number;
  /** Learning rate at the end of the cosine (default lr / 10). */
  minLr?: number;
  /** AdamW decoupled weight decay (default 0.01, torch's). */
  weightDecay?: number;
  /** Clip the global gradient norm to this (default 1; 0 disables). */
  maxGradNorm?: number;
  seed?: number;
  /** Average training loss is logged every this many steps (default 10). */
  logEvery?: number;
  /** Validation loss every this many steps and at the end (needs `validation`; default: only at the end). */
  evalEvery?: number;
  /** Write `last.safetensors` every `checkpointEvery` steps (default 100) and at the end. */
  checkpointDir?: string;
  checkpointEvery?: number;
  /** Continue from `checkpointDir/last.safetensors` when it exists. */
  resume?: boolean;
  /** Stop cleanly (after writing a checkpoint) once this many seconds have passed in this process. */
  maxSeconds?: number;
  progress?: 'bar' | 'lines' | 'silent';
  forward?: LMForward;
  /**
   * For a `forward` that returns logits over a subset of the vocabulary: the logit column of each token id (−1 for
   * ids outside the subset, which must then not occur as targets). Default: the id itself.
   */
  targetIndex?: Int32Array;
  onLog?: (entry: LMLogEntry) => void;
}

export interface LMLogEntry {
  step: number;
  lr: number;
  /** Mean training loss (nats/token) over the steps since the previous entry. */
  loss: number;
  /** Global gradient norm before clipping, mean over those steps. */
  gradNorm: number;
  /** Validation loss (nats/token) when measured at this step. */
  validationLoss?: number;
  /** Training tokens seen up to this step (all micro-batches). */
  tokens: number;
  /** Seconds of training so far (summed over resumed runs). */
  seconds: number;
}

export interface CausalLMFitResult {
  log: LMLogEntry[];
  steps: number;
  /** Whether the run reached maxSteps (false when stopped by maxSeconds). */
  finished: boolean;
  seconds: number;
}

const CKPT = 'last.safetensors';

function checkIds(ids: TokenIds, what: string, minLength: number): void {
  if (ids.length < minLength) {
    throw new ConfigError(`${what} has ${ids.length} tokens; it needs at least ${minLength} (context length + 1)`);
  }
}

function checkFitOptions(o: CausalLMFitOptions): void {
  const posInt = (k: keyof CausalLMFitOptions, v: unknown) => {
    if (!Number.isInteger(v) || (v as number) < 1) throw new ConfigError(`fitCausalLM: ${k} must be a positive integer, got ${String(v)}`);
  };
  posInt('contextLength', o.contextLength);
  posInt('batchSize', o.batchSize);
  posInt('maxSteps', o.maxSteps);
  posInt('gradientAccumulationSteps', o.gradientAccumulationSteps ?? 1);
  posInt('logEvery', o.logEvery ?? 10);
  posInt('checkpointEvery', o.checkpointEvery ?? 100);
  if (o.evalEvery !== undefined) posInt('evalEvery', o.evalEvery);
  if (!(o.lr > 0)) throw new ConfigError(`fitCausalLM: lr must be positive, got ${o.lr}`);
  if (o.resume && !o.checkpointDir) throw new ConfigError('fitCausalLM: resume needs checkpointDir');
}

/**
 * Windows [B, T+1] of the stream starting at `starts`, split into inputs [B, T] and next-token targets [B·T] (mapped
 * through `targetIndex` when given).
 */
function windows(ids: TokenIds, starts: readonly number[], t: number, targetIndex?: Int32Array): { x: tf.Tensor2D; y: tf.Tensor1D } {
  const b = starts.length;
  const x = new Int32Array(b * t);
  const y = new Int32Array(b * t);
  starts.forEach((s, i) => {
    for (let j = 0; j < t; j++) {
      x[i * t + j] = ids[s + j]!;
      const next = ids[s + j + 1]!;
      const column = targetIndex ? (targetIndex[next] ?? -1) : next;
      if (column < 0) throw new ConfigError(`token id ${next} at position ${s + j + 1} has no logit column in targetIndex`);
      y[i * t + j] = column;
    }
  });
  return { x: tf.tensor2d(x, [b, t], 'int32'), y: tf.tensor1d(y, 'int32') };
}

function lmLoss(model: Module, forward: LMForward, x: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar {
  const logits = forward(model, x);
  if (logits.rank !== 3 || logits.shape[0] !== x.shape[0] || logits.shape[1] !== x.shape[1]) {
    throw new ShapeError(`the language model must return logits [B, T, V] for ids [${x.shape}], got [${logits.shape}]`);
  }
  return sparseCrossEntropy(tf.reshape(logits, [-1, logits.shape[2]!]), y);
}

/** Global L2 norm of the gradients and, when over `maxNorm`, the gradients scaled down to it (torch's clip_grad_norm_). */
async function clipGradients(grads: tf.NamedTensorMap, maxNorm: number): Promise<number> {
  const sq = tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
  const norm = Math.sqrt((await sq.data())[0]!);
  sq.dispose();
  if (maxNorm > 0 && norm > maxNorm) {
    const scale = maxNorm / (norm + 1e-6);
    for (const k of Object.keys(grads)) {
      const old = grads[k]!;
      grads[k] = tf.mul(old, scale);
      old.dispose();
    }
  }
  return norm;
}

export async function fitCausalLM(
  model: Module,
  data: { train: TokenIds; validation?: TokenIds },
  opts: CausalLMFitOptions,
): Promise<CausalLMFitResult> {
  checkFitOptions(opts);
  const t = opts.contextLength;
  checkIds(data.train, 'the training stream', t + 1);
  if (data.validation) checkIds(data.validation, 'the validation stream', t + 1);
  const forward = opts.forward ?? defaultForward;
  const accum = opts.gradientAccumulationSteps ?? 1;
  const logEvery = opts.logEvery ?? 10;
  const checkpointEvery = opts.checkpointEvery ?? 100;
  const schedule = { kind: 'warmupCosine' as const, warmup: opts.warmupSteps ?? 0, total: opts.maxSteps, etaMin: opts.minLr ?? opts.lr / 10 };
  const named = model.namedParameters().filter(([, v]) => v.trainable);
  const vars = named.map(([, v]) => v);
  const optimizer = createOptimizer('adamw', named, { lr: opts.lr, weightDecay: opts.weightDecay });
  let rng = new Rng(opts.seed ?? 0);
  const log: LMLogEntry[] = [];
  // Sums over the steps since the last log entry; checkpointed so that a resumed run logs the same means.
  const interval = { lossSum: 0, normSum: 0, sinceLog: 0 };
  let { lossSum, normSum, sinceLog } = interval;
  let step = 0;
  const ckptFile = opts.checkpointDir ? path.join(opts.checkpointDir, CKPT) : undefined;
  if (opts.resume && ckptFile && fs.existsSync(ckptFile)) {
    const state = loadTrainingState<LMLogEntry>(ckptFile, model, optimizer);
    rng = new Rng(opts.seed ?? 0, state.rng);
    log.push(...state.history);
    step = state.epoch;
    ({ lossSum, normSum, sinceLog } = (state.extra as typeof interval | undefined) ?? interval);
  }
  const tokensPerStep = accum * opts.batchSize * t;
  const priorSeconds = log.at(-1)?.seconds ?? 0;
  const t0 = Date.now();
  const elapsed = () => (Date.now() - t0) / 1000;
  const progress = createProgress({ label: 'train-lm', total: opts.maxSteps, mode: opts.progress });
  progress.update(step);
  const save = async () => {
    if (ckptFile) await saveTrainingState(ckptFile, model, optimizer, { epoch: step, rng: rng.state(), history: log, extra: { lossSum, normSum, sinceLog } });
  };
  model.train();
  try {
    while (step < opts.maxSteps) {
      optimizer.lr = learningRate(opts.lr, step, schedule);
      let grads: tf.NamedTensorMap | undefined;
      let stepLoss = 0;
      for (let micro = 0; micro < accum; micro++) {
        const starts = Array.from({ length: opts.batchSize }, () => rng.int(data.train.length - t));
        const { x, y } = windows(data.train, starts, t, opts.targetIndex);
        const { value, grads: g } = tf.variableGrads(() => lmLoss(model, forward, x, y), vars);
        stepLoss += (await value.data())[0]! / accum;
        tf.dispose([x, y, value]);
        if (!grads) grads = g;
        else {
          for (const k of Object.keys(g)) {
            const sum = tf.add(grads[k]!, g[k]!);
            tf.dispose([grads[k]!, g[k]!]);
            grads[k] = sum;
          }
        }
      }
      if (accum > 1) {
        for (const k of Object.keys(grads!)) {
          const old = grads![k]!;
          grads![k] = tf.div(old, accum);
          old.dispose();
        }
      }
      if (!Number.isFinite(stepLoss)) throw new FhenetError(`training diverged at step ${step + 1} (loss ${stepLoss}); lower the learning rate`);
      normSum += await clipGradients(grads!, opts.maxGradNorm ?? 1);
      optimizer.step(grads!);
      tf.dispose(Object.values(grads!));
      step += 1;
      lossSum += stepLoss;
      sinceLog += 1;
      const evalNow = data.validation && ((opts.evalEvery && step % opts.evalEvery === 0) || step === opts.maxSteps);
      if (step % logEvery === 0 || evalNow || step === opts.maxSteps) {
        const entry: LMLogEntry = { step, lr: optimizer.lr, loss: lossSum / sinceLog, gradNorm: normSum / sinceLog, tokens: step * tokensPerStep, seconds: priorSeconds + elapsed() };
        if (evalNow) {
          entry.validationLoss = (await evaluatePerplexity(model, data.validation!, { contextLength: t, forward, targetIndex: opts.targetIndex })).loss;
          model.train();
        }
        log.push(entry);
        opts.onLog?.(entry);
        lossSum = 0;
        normSum = 0;
        sinceLog = 0;
      }
      progress.update(step, `loss ${stepLoss.toFixed(3)} lr ${optimizer.lr.toExponential(2)}`);
      if (step % checkpointEvery === 0 || step === opts.maxSteps) await save();
      if (opts.maxSeconds !== undefined && elapsed() >= opts.maxSeconds && step < opts.maxSteps) {
        await save();
        break;
      }
    }
  } finally {
    progress.stop();
    optimizer.dispose();
  }
  return { log, steps: step, finished: step >= opts.maxSteps, seconds: elapsed() };
}

export interface PerplexityOptions {
  /** The model's window (tokens per forward pass). */
  contextLength: number;
  /**
   * How far each window moves (default: contextLength, i.e. disjoint windows). A smaller stride gives every scored
   * token more context at a higher cost: each window scores only the tokens the previous one did not (Hugging Face's
   * sliding-window perplexity).
   */
  stride?: number;
  /** Windows per forward pass (default 8). */
  batchSize?: number;
  forward?: LMForward;
  /** As in CausalLMFitOptions. */
  targetIndex?: Int32Array;
  /** Called after each batch with (tokens scored, tokens to score). */
  onProgress?: (done: number, total: number) => void;
}

export interface PerplexityResult {
  /** exp(loss). */
  perplexity: number;
  /** Mean negative log-likelihood, nats per scored token. */
  loss: number;
  /** Tokens scored (all but the first of the stream). */
  tokens: number;
}

/**
 * Perplexity of a token stream under a causal LM, in eval mode: windows of `contextLength` tokens every `stride`
 * tokens; each token after the first is scored exactly once, with the context its window gives it.
 */
export async function evaluatePerplexity(model: Module, ids: TokenIds, opts: PerplexityOptions): Promise<PerplexityResult> {
  const t = opts.contextLength;
  const stride = opts.stride ?? t;
  const batchSize = opts.batchSize ?? 8;
  const forward = opts.forward ?? defaultForward;
  if (!Number.isInteger(t) || t < 1) throw new ConfigError(`contextLength must be a positive integer, got ${t}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > t) throw new ConfigError(`stride must be an integer in 1…contextLength (${t}), got ${stride}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError(`batchSize must be a positive integer, got ${batchSize}`);
  if (ids.length < 2) throw new ConfigError(`perplexity needs at least 2 tokens, got ${ids.length}`);
  // Windows [begin, end) and the first position in each whose prediction is scored (targets are ids[pos + 1]).
  const plan: { begin: number; end: number; scoreFrom: number }[] = [];
  let scoredUpTo = 0; // targets ids[1..scoredUpTo] are scored
  for (let begin = 0; scoredUpTo < ids.length - 1; begin += stride) {
    const end = Math.min(begin + t, ids.length - 1);
    plan.push({ begin, end, scoreFrom: scoredUpTo - begin });
    scoredUpTo = end;
  }
  const total = ids.length - 1;
  const wasTraining = model.training;
  model.eval();
  let nll = 0;
  let done = 0;
  try {
    for (let i = 0; i < plan.length; i += batchSize) {
      // Windows of one batch share a length; the last (shorter) window runs alone.
      const group = plan.slice(i, i + batchSize).filter((w, _, all) => w.end - w.begin === all[0]!.end - all[0]!.begin);
      i -= batchSize - group.length;
      const len = group[0]!.end - group[0]!.begin;
      const { x, y } = windows(ids, group.map((w) => w.begin), len, opts.targetIndex);
      // Negative log-likelihood of every position's next token, computed on the backend ([B·T] comes back, not [B·T·V]).
      const nllTensor = tf.tidy(() => {
        const logits = forward(model, x);
        const v = logits.shape[2]!;
        const flat = tf.reshape(logits, [-1, v]) as tf.Tensor2D;
        return tf.sub(tf.logSumExp(flat, 1), targetLogits(flat, y));
      });
      tf.dispose([x, y]);
      const values = (await nllTensor.data()) as Float32Array;
      nllTensor.dispose();
      group.forEach((w, b) => {
        for (let p = w.scoreFrom; p < len; p++) {
          nll += values[b * len + p]!;
          done++;
        }
      });
      opts.onProgress?.(done, total);
    }
  } finally {
    model.train(wasTraining);
  }
  const loss = nll / done;
  return { perplexity: Math.exp(loss), loss, tokens: done };
}
