/**
 * `GPT2Model` and `GPT2LMHeadModel`, laid out as transformers lays them out so `namedModules()` and state-dict keys
 * are PyTorch's: transformer.{wte, wpe, drop, h.N.{ln_1, attn.{c_attn, c_proj, attn_dropout, resid_dropout}, ln_2,
 * mlp.{c_fc, c_proj, act, dropout}}, ln_f}, lm_head. With `tie_word_embeddings` (GPT-2's default) `lm_head` is a
 * bias-free Linear whose weight *is* `transformer.wte.weight`: one variable, trained once, listed once by
 * `parameters()`.
 *
 * Every linear layer (c_attn, c_proj, c_fc, lm_head) receives a 2-D [tokens, features] input through the
 * layer-call protocol of ../layer-calls.ts, and the embeddings (wte, wpe) their int32 ids [batch, seq] the same
 * way, so a hybrid model can replace any of them by a remote module.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Dropout } from '../../nn/dropout.js';
import { Embedding } from '../../nn/embedding.js';
import { normal } from '../../nn/init.js';
import { LayerNorm } from '../../nn/layer-norm.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { ModuleList } from '../../nn/module-list.js';
import { type Activation, valueOf } from '../../nn/quant-tensor.js';
import { ShapeError } from '../../util/errors.js';
import { Rng } from '../../util/rng.js';
import { type LayerSteps, runAsync, runSync } from '../layer-calls.js';
import { tidyAsync } from '../../nn/tidy-async.js';
import { type LayerPast, causalMask } from './attention.js';
import { GPT2Block } from './block.js';
import { GPT2Config } from './config.js';

export type { LayerPast } from './attention.js';
/** The key/value cache of every layer, in layer order (transformers' legacy `past_key_values` tuple). */
export type PastKeyValues = LayerPast[];

export interface GPT2InitOptions {
  /**
   * 'random' (default): transformers' initialisation — N(0, initializer_range) for embeddings and Conv1D weights,
   * N(0, initializer_range/√(2·n_layer)) for the c_proj weights, zero biases, LayerNorm 1/0 — from `seed`.
   * 'empty': zeros, for a model whose weights are loaded next (skips drawing millions of random numbers).
   */
  init?: 'random' | 'empty';
  seed?: number;
}

export interface ForwardOptions {
  /** The cache returned by the previous call (its length is the number of positions already processed). */
  pastKeyValues?: PastKeyValues;
  /**
   * 0/1 per position for every batch row, covering past + new positions (0 = padding; left padding for batched
   * prompts). Positions then count only real tokens, as transformers' generate computes them.
   */
  attentionMask?: number[][];
  /** Compute logits only for the last n positions (transformers' `logits_to_keep`); all by default. */
  logitsToKeep?: number;
}

export type ForwardOutput = {
  /** [batch, positions kept, vocab_size]. */
  logits: tf.Tensor;
  /** The cache including this call's positions. */
  pastKeyValues: PastKeyValues;
};

function initStds(config: GPT2Config, opts: GPT2InitOptions): { std: number; projStd: number; rng?: Rng } {
  if (opts.init === 'empty') return { std: 0, projStd: 0 };
  const std = config.initializer_range;
  return { std, projStd: std / Math.sqrt(2 * config.n_layer), rng: new Rng(opts.seed ?? 0) };
}

export class GPT2Model extends Module {
  readonly config: GPT2Config;
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly drop: Dropout;
  readonly h: ModuleList<GPT2Block>;
  readonly ln_f: LayerNorm;

  constructor(config: GPT2Config, opts: GPT2InitOptions & { initRng?: { std: number; projStd: number; rng?: Rng } } = {}) {
    super();
    this.config = config;
    const init = opts.initRng ?? initStds(config, opts);
    this.wte = this.addModule('wte', new Embedding(config.vocab_size, config.n_embd, { std: init.std, rng: init.rng }));
    this.wpe = this.addModule('wpe', new Embedding(config.n_positions, config.n_embd, { std: init.std, rng: init.rng }));
    this.drop = this.addModule('drop', new Dropout(config.embd_pdrop));
    this.h = this.addModule('h', new ModuleList<GPT2Block>());
    for (let i = 0; i < config.n_layer; i++) this.h.append(new GPT2Block(config, i, init));
    this.ln_f = this.addModule('ln_f', new LayerNorm(config.n_embd, config.layer_norm_epsilon));
  }

  /** Hidden states [batch, seq, n_embd] for int32 ids [batch, seq] (no cache, no padding). */
  forward(x: Activation): tf.Tensor {
    return tf.tidy(() => runSync(this.steps(valueOf(x))).hidden);
  }

  /** `forward`, awaiting layers that answer asynchronously (a hybrid model's remote layers). */
  override async forwardAsync(x: Activation): Promise<tf.Tensor> {
    return tidyAsync(async () => (await runAsync(this.steps(valueOf(x)))).hidden);
  }

  *steps(inputIds: tf.Tensor, opts: ForwardOptions = {}): LayerSteps<{ hidden: tf.Tensor; presents: PastKeyValues }> {
    const { config } = this;
    if (inputIds.rank !== 2 || inputIds.dtype !== 'int32') {
      throw new ShapeError(`GPT2Model expects int32 token ids [batch, seq], got ${inputIds.dtype} [${inputIds.shape}]`);
    }
    const [b, s] = inputIds.shape as [number, number];
    const past = opts.pastKeyValues;
    if (past && past.length !== config.n_layer) {
      throw new ShapeError(`pastKeyValues has ${past.length} layers, the model has ${config.n_layer}`);
    }
    const pastLen = past?.[0]?.key.shape[2] ?? 0;
    if (pastLen + s > config.n_positions) {
      throw new ShapeError(
        `sequence of ${pastLen + s} positions (${pastLen} cached + ${s} new) exceeds the model's n_positions (${config.n_positions}); shorten the prompt or generate fewer tokens`,
      );
    }
    checkTokenIds(inputIds, config.vocab_size);
    const mask = opts.attentionMask;
    if (mask) {
      if (mask.length !== b || mask.some((row) => row.length !== pastLen + s)) {
        throw new ShapeError(`attentionMask must be [${b}, ${pastLen + s}] (batch × cached + new positions)`);
      }
    }
    const positions = tf.tensor2d(positionIds(b, s, pastLen, mask), [b, s], 'int32');
    // The lookups go through the layer-call protocol too: a hybrid model may compute them remotely (Eᵀ·onehot).
    const tokenEmbeds = yield { module: this.child('wte'), input: inputIds };
    const positionEmbeds = yield { module: this.child('wpe'), input: positions };
    let hidden = this.child('drop').call(tf.add(tokenEmbeds, positionEmbeds)) as tf.Tensor;
    // One new token without padding sees every cached key: no mask to add (the common generation step).
    const additive = s === 1 && !mask ? undefined : causalMask(s, pastLen, mask);
    const presents: PastKeyValues = [];
    let i = 0;
    for (const block of this.child('h') as ModuleList<GPT2Block>) {
      const out = yield* block.steps(hidden, past?.[i], additive);
      hidden = out.output;
      presents.push(out.present);
      i++;
    }
    return { hidden: this.child('ln_f').call(hidden) as tf.Tensor, presents };
  }
}

/** Position of each new token: past + i, or with a padding mask the count of real tokens before it (pads get 1). */
function positionIds(b: number, s: number, pastLen: number, mask?: number[][]): Int32Array {
  const out = new Int32Array(b * s);
  for (let r = 0; r < b; r++) {
    let count = 0;
    for (let j = 0; j < pastLen + s; j++) {
      const real = !mask || mask[r]![j] !== 0;
      if (real) count++;
      if (j >= pastLen) out[r * s + (j - pastLen)] = real ? count - 1 : 1;
    }
  }
  return out;
}

function checkTokenIds(ids: tf.Tensor, vocab: number): void {
  // A synchronous read; WebGPU in Node allows only asynchronous ones (generate() checks its prompts itself there).
  if (tf.getBackend() === 'webgpu') return;
  const data = ids.dataSync();
  for (let i = 0; i < data.length; i++) {
    const id = data[i]!;
    if (id < 0 || id >= vocab) throw new ShapeError(`unknown token id ${id} at position ${i}: the vocabulary has ids 0..${vocab - 1}`);
  }
}

export class GPT2LMHeadModel extends Module {
  readonly config: GPT2Config;
  readonly transformer: GPT2Model;
  readonly lm_head: Linear;

  constructor(config: GPT2Config | Partial<GPT2Config>, opts: GPT2InitOptions = {}) {
    super();
    this.config = config instanceof GPT2Config ? config : new GPT2Config(config);
    const init = initStds(this.config, opts);
    this.transformer = this.addModule('transformer', new GPT2Model(this.config, { initRng: init }));
    const { n_embd: e, vocab_size: v } = this.config;
    if (this.config.tie_word_embeddings) {
      this.lm_head = this.addModule('lm_head', new Linear(e, v, { bias: false, tiedWeight: this.transformer.wte.weight }));
    } else {
      this.lm_head = this.addModule('lm_head', new Linear(e, v, { bias: false }));
      const w = init.std === 0 ? tf.zeros([v, e]) : normal([v, e], init.std, init.rng);
      this.lm_head.weight.assign(w);
      w.dispose();
    }
  }

  /** Logits [batch, seq, vocab_size] for int32 ids [batch, seq]; differentiable (training uses this). */
  forward(x: Activation): tf.Tensor {
    return tf.tidy(() => runSync(this.steps(valueOf(x))).logits);
  }

  /** `forward`, awaiting layers that answer asynchronously (a hybrid model's remote layers). */
  override async forwardAsync(x: Activation): Promise<tf.Tensor> {
    return tidyAsync(async () => (await runAsync(this.steps(valueOf(x)))).logits);
  }

  /** One step with a key/value cache (generation); the caller disposes the returned tensors. */
  forwardWithPast(inputIds: tf.Tensor, opts: ForwardOptions = {}): ForwardOutput {
    return tf.tidy(() => runSync(this.steps(inputIds, opts)));
  }

  /** As `forwardWithPast`, awaiting layers that run elsewhere (`forwardAsync`, e.g. a hybrid model's remote layers). */
  forwardWithPastAsync(inputIds: tf.Tensor, opts: ForwardOptions = {}): Promise<ForwardOutput> {
    return runAsync(this.steps(inputIds, opts));
  }

  *steps(inputIds: tf.Tensor, opts: ForwardOptions = {}): LayerSteps<ForwardOutput> {
    const { hidden, presents } = yield* (this.child('transformer') as GPT2Model).steps(inputIds, opts);
    const [b, s, e] = hidden.shape as [number, number, number];
    const keep = Math.min(opts.logitsToKeep ?? s, s);
    const kept = keep === s ? hidden : tf.slice(hidden, [0, s - keep, 0], [b, keep, e]);
    const logits = yield { module: this.child('lm_head'), input: tf.reshape(kept, [b * keep, e]) };
    return { logits: tf.reshape(logits, [b, keep, this.config.vocab_size]), pastKeyValues: presents };
  }
}
