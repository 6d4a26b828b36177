/**
 * `generate`: autoregressive decoding for a GPT2LMHeadModel, with transformers' options and defaults — greedy unless
 * `doSample`; temperature, top-k, top-p; stop at `eosTokenId` or a stop sequence; a per-token callback for
 * streaming. Batched prompts of different lengths are left-padded with an attention mask (positions count only real
 * tokens), so each row continues exactly as it would alone. The key/value cache makes each new token cost one
 * position; `useCache: false` recomputes the whole sequence every step (the reference the cache is tested against).
 * Layers with `forwardAsync` (a hybrid model's remote layers) are awaited.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, ShapeError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { ForwardOptions, ForwardOutput, GPT2LMHeadModel, PastKeyValues } from './gpt2/model.js';
import { hasForwardAsync } from './layer-calls.js';
import { type SamplingOptions, argmax, checkSampling, sampleToken } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate per prompt (≥ 1). Default 20, as transformers. */
  maxNewTokens?: number;
  /** Sample instead of taking the most likely token. Default false (greedy). */
  doSample?: boolean;
  /** Seed of the sampling generator (same seed → same tokens). Default 0. */
  seed?: number;
  /** Stop a row at this token (or any of these); default the config's eos_token_id. `null`: never. */
  eosTokenId?: number | number[] | null;
  /**
   * Stop a row when its generated tokens end with one of these token sequences, or when a predicate on its
   * generated tokens says so (text-level stop strings: `(ids) => tokenizer.decode(ids).includes('\n\n')`).
   */
  stop?: (number[] | ((generated: number[]) => boolean))[];
  /** Id used to left-pad shorter prompts and to fill finished rows; default the first eos id. */
  padTokenId?: number;
  /** Default true; false recomputes the full sequence at every step. */
  useCache?: boolean;
  /** Called after each step with the new token of every row (finished rows repeat padTokenId). */
  onToken?: (tokens: number[], step: number) => void | Promise<void>;
}

export type FinishReason = 'eos' | 'stop' | 'length';

export interface GenerateOutput {
  /** Generated ids per prompt (the eos or stop tokens included, padding excluded). */
  newTokens: number[][];
  /** Prompt followed by its generated ids, per prompt. */
  sequences: number[][];
  finishReasons: FinishReason[];
}

/** Generates continuations of one prompt (number[]) or a batch of prompts (number[][]). */
export async function generate(model: GPT2LMHeadModel, inputIds: number[] | number[][], opts: GenerateOptions = {}): Promise<GenerateOutput> {
  const { config } = model;
  const prompts = (inputIds.length > 0 && Array.isArray(inputIds[0]) ? inputIds : [inputIds]) as number[][];
  const maxNew = opts.maxNewTokens ?? 20;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new ConfigError(`maxNewTokens must be a positive integer, got ${maxNew}`);
  if (opts.doSample) checkSampling(opts);
  const eos = opts.eosTokenId === null ? [] : [opts.eosTokenId ?? config.eos_token_id].flat();
  const pad = opts.padTokenId ?? eos[0] ?? 0;
  for (const id of [...eos, pad]) {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocab_size) throw new ConfigError(`eos/pad token id ${id} is outside the vocabulary (0..${config.vocab_size - 1})`);
  }
  const longest = Math.max(...prompts.map((p) => p.length));
  prompts.forEach((p, r) => {
    if (p.length === 0) throw new ShapeError(`prompt ${r} is empty; generation needs at least one token`);
    for (const id of p) {
      if (!Number.isInteger(id) || id < 0 || id >= config.vocab_size) {
        throw new ShapeError(`prompt ${r} holds unknown token id ${id}: the vocabulary has ids 0..${config.vocab_size - 1}`);
      }
    }
  });
  if (longest > config.n_positions) {
    throw new ShapeError(`the prompt has ${longest} tokens, more than the model's context of ${config.n_positions} (n_positions); shorten it`);
  }
  if (longest + maxNew > config.n_positions) {
    throw new ShapeError(
      `prompt (${longest} tokens) + maxNewTokens (${maxNew}) exceeds the model's context of ${config.n_positions} (n_positions); ask for at most ${config.n_positions - longest} new tokens`,
    );
  }
  const b = prompts.length;
  const padded = prompts.map((p) => [...new Array<number>(longest - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [...new Array<number>(longest - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  const needMask = prompts.some((p) => p.length !== longest);
  const rng = new Rng(opts.seed ?? 0);
  const useCache = opts.useCache ?? true;
  const remote = model.namedModules().some(([, m]) => hasForwardAsync(m));
  const step = async (ids: number[][], fopts: ForwardOptions): Promise<ForwardOutput> => {
    const t = tf.tensor2d(ids, [b, ids[0]!.length], 'int32');
    try {
      return remote ? await model.forwardWithPastAsync(t, fopts) : model.forwardWithPast(t, fopts);
    } finally {
      t.dispose();
    }
  };

  const newTokens: number[][] = prompts.map(() => []);
  const finish: (FinishReason | undefined)[] = prompts.map(() => undefined);
  let past: PastKeyValues | undefined;
  let next = padded;
  for (let s = 0; s < maxNew; s++) {
    const fopts: ForwardOptions = { logitsToKeep: 1 };
    if (useCache && past) fopts.pastKeyValues = past;
    if (needMask) fopts.attentionMask = mask;
    const out = await step(next, fopts);
    const logits = (await out.logits.data()) as Float32Array;
    out.logits.dispose();
    if (useCache) {
      if (past) for (const l of past) tf.dispose([l.key, l.value]);
      past = out.pastKeyValues;
    } else {
      for (const l of out.pastKeyValues) tf.dispose([l.key, l.value]);
    }
    const chosen: number[] = [];
    for (let r = 0; r < b; r++) {
      if (finish[r]) {
        chosen.push(pad);
        continue;
      }
      const row = logits.subarray(r * config.vocab_size, (r + 1) * config.vocab_size);
      const id = opts.doSample ? sampleToken(row, opts, rng) : argmax(row);
      chosen.push(id);
      newTokens[r]!.push(id);
      if (eos.includes(id)) finish[r] = 'eos';
      else if (opts.stop?.some((s) => (typeof s === 'function' ? s(newTokens[r]!) : s.length > 0 && endsWith(newTokens[r]!, s)))) finish[r] = 'stop';
    }
    await opts.onToken?.(chosen, s);
    for (const row of mask) row.push(1);
    if (finish.every((f) => f)) break;
    next = useCache ? chosen.map((id) => [id]) : padded.map((row, r) => [...row, ...newTokens[r]!, ...new Array<number>(s + 1 - newTokens[r]!.length).fill(pad)]);
  }
  if (past) for (const l of past) tf.dispose([l.key, l.value]);
  return {
    newTokens,
    sequences: prompts.map((p, r) => [...p, ...newTokens[r]!]),
    finishReasons: finish.map((f) => f ?? 'length'),
  };
}

function endsWith(ids: number[], seq: number[]): boolean {
  if (seq.length > ids.length) return false;
  for (let i = 0; i < seq.length; i++) if (ids[ids.length - seq.length + i] !== seq[i]) return false;
  return true;
}
