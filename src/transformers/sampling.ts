/**
 * Choosing the next token from one row of logits, in the order transformers' generate applies its logits
 * processors: temperature, then top-k, then top-p (nucleus), then a draw from the softmax. Greedy decoding is the
 * arg-max (the first index among equal maxima, as torch.argmax). Runs in JavaScript on the downloaded logits, so a
 * seeded draw is the same on every backend.
 */
import { ConfigError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';

export interface SamplingOptions {
  /** Divides the logits; < 1 sharpens, > 1 flattens. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = off). */
  topP?: number;
}

export function checkSampling(opts: SamplingOptions): void {
  const { temperature = 1, topK = 0, topP = 1 } = opts;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new ConfigError(`temperature must be > 0, got ${temperature} (use greedy decoding for 0)`);
  if (!Number.isInteger(topK) || topK < 0) throw new ConfigError(`topK must be a non-negative integer, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new ConfigError(`topP must be in (0, 1], got ${topP}`);
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Draws a token id from `row` (logits over the vocabulary) after temperature, top-k and top-p. */
export function sampleToken(row: Float32Array, opts: SamplingOptions, rng: Rng): number {
  const { temperature = 1, topK = 0, topP = 1 } = opts;
  const n = row.length;
  // Candidates sorted by logit, descending (stable: lower ids first among ties).
  let order = Array.from({ length: n }, (_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b);
  if (topK > 0 && topK < n) {
    // transformers keeps every token whose logit is ≥ the k-th largest (ties at the boundary survive).
    const kth = row[order[topK - 1]!]!;
    order = order.filter((i) => row[i]! >= kth);
  }
  const max = row[order[0]!]! / temperature;
  const weights = order.map((i) => Math.exp(row[i]! / temperature - max));
  let total = weights.reduce((a, b) => a + b, 0);
  if (topP < 1) {
    // Keep the most likely tokens until their mass reaches topP (at least one), renormalise over them.
    let mass = 0;
    let keep = 0;
    while (keep < weights.length && mass / total < topP) mass += weights[keep++]!;
    order = order.slice(0, Math.max(keep, 1));
    weights.length = order.length;
    total = weights.reduce((a, b) => a + b, 0);
  }
  let u = rng.next() * total;
  for (let j = 0; j < order.length; j++) {
    u -= weights[j]!;
    if (u < 0) return order[j]!;
  }
  return order[order.length - 1]!;
}
