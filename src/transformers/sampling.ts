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

/**
 * Draws a token id from `row` (logits over the vocabulary) after temperature, top-k and top-p. Thresholds come from
 * a sorted typed-array copy of the logits (no per-token sort of index objects: the vocabulary has 50,257 entries);
 * tokens tied with the top-k or top-p boundary logit are kept, as transformers keeps top-k ties. The draw scans the
 * kept tokens in id order.
 */
export function sampleToken(row: Float32Array, opts: SamplingOptions, rng: Rng): number {
  const { temperature = 1, topK = 0, topP = 1 } = opts;
  const n = row.length;
  const sorted = topK > 0 || topP < 1 ? Float32Array.from(row).sort() : undefined; // ascending
  let cutoff = topK > 0 && topK < n ? sorted![n - topK]! : -Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (row[i]! > max) max = row[i]!;
  let total = 0;
  for (let i = 0; i < n; i++) if (row[i]! >= cutoff) total += Math.exp((row[i]! - max) / temperature);
  if (topP < 1) {
    // Walk down from the most likely logit until the kept mass reaches topP (at least one token).
    let mass = 0;
    for (let j = n - 1; j >= 0; j--) {
      const v = sorted![j]!;
      if (v < cutoff) break;
      mass += Math.exp((v - max) / temperature);
      if (mass / total >= topP) {
        cutoff = v;
        break;
      }
    }
    total = 0;
    for (let i = 0; i < n; i++) if (row[i]! >= cutoff) total += Math.exp((row[i]! - max) / temperature);
  }
  let u = rng.next() * total;
  let last = -1;
  for (let i = 0; i < n; i++) {
    if (row[i]! < cutoff) continue;
    last = i;
    u -= Math.exp((row[i]! - max) / temperature);
    if (u < 0) return i;
  }
  return last;
}
