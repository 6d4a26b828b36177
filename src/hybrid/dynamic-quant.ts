/**
 * Integer linear layers with per-token dynamic input quantization — the reference's `use_dynamic_quantization`
 * recipe for LLM linear layers (shared/reference/hybrid-llm.md §2), on plain typed arrays (no TensorFlow.js: the
 * server side uses it too).
 *
 * - Weights (model owner, once): per output channel symmetric narrow int8, s_w[c] = max_j |W[c, j]| / 127,
 *   w[c, j] = round(W[c, j] / s_w[c]) ∈ [−127, 127].
 * - Inputs (client, per token t): asymmetric 8-bit over the token's own range [min(x_t, 0), max(x_t, 0)]:
 *   s_x[t] = range / 255, zero point z = round(−min / s_x), q = clamp(round(x / s_x) + z, 0, 255). The client sends
 *   the centred integers x_c = q − z ∈ [−255, 255], so the product needs no zero-point correction (which would need
 *   the weights' row sums on the client).
 * - Product (server, on encrypted x_c): acc[t, c] = Σ_j w[c, j] · x_c[t, j], exact integers with
 *   |acc| ≤ 127 · 255 · d_in (< 2^27 for d_in ≤ 4,144: GPT-2's widest input, 3,072, gives 9.95e7).
 * - Output (client): y[t, c] = s_x[t] · s_w[c] · acc[t, c] + b[c].
 */
import { ConfigError } from '../util/errors.js';

export interface QuantizedLinear {
  inFeatures: number;
  outFeatures: number;
  /** [out, in] row-major, per-channel symmetric int8 (model owner / server only). */
  weights: Int8Array;
  /** Per output channel weight scale s_w. */
  scales: Float32Array;
  /** Per output channel float bias (zeros when the layer has none). */
  bias: Float32Array;
}

export const WEIGHT_MAX = 127;
export const INPUT_LEVELS = 255;

/** `w` is [out, in] row-major float. */
export function quantizeLinear(w: Float32Array, outFeatures: number, inFeatures: number, bias?: Float32Array): QuantizedLinear {
  if (w.length !== outFeatures * inFeatures) throw new ConfigError(`quantizeLinear: ${w.length} weights for [${outFeatures}, ${inFeatures}]`);
  const weights = new Int8Array(w.length);
  const scales = new Float32Array(outFeatures);
  for (let c = 0; c < outFeatures; c++) {
    let m = 0;
    for (let j = 0; j < inFeatures; j++) m = Math.max(m, Math.abs(w[c * inFeatures + j]!));
    const s = m > 0 ? m / WEIGHT_MAX : 1;
    scales[c] = s;
    const sc = scales[c]!; // the float32 scale the client dequantizes with
    for (let j = 0; j < inFeatures; j++) weights[c * inFeatures + j] = Math.max(-WEIGHT_MAX, Math.min(WEIGHT_MAX, Math.round(w[c * inFeatures + j]! / sc)));
  }
  return { inFeatures, outFeatures, weights, scales, bias: bias ? Float32Array.from(bias) : new Float32Array(outFeatures) };
}

export interface QuantizedTokens {
  /** [tokens, in] centred integers x_c ∈ [−255, 255]. */
  values: Int16Array;
  /** Per token input scale s_x. */
  scales: Float32Array;
}

/** Per-token dynamic quantization of x [tokens, in]. */
export function quantizeTokens(x: Float32Array, tokens: number, inFeatures: number): QuantizedTokens {
  const values = new Int16Array(tokens * inFeatures);
  const scales = new Float32Array(tokens);
  for (let t = 0; t < tokens; t++) {
    const row = t * inFeatures;
    let lo = 0;
    let hi = 0;
    for (let j = 0; j < inFeatures; j++) {
      const v = x[row + j]!;
      if (!Number.isFinite(v)) throw new ConfigError(`quantizeTokens: token ${t} holds a non-finite activation (${v})`);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const s = hi > lo ? (hi - lo) / INPUT_LEVELS : 1;
    scales[t] = s;
    const sx = scales[t]!;
    const z = Math.round(-lo / sx);
    for (let j = 0; j < inFeatures; j++) {
      const q = Math.max(0, Math.min(INPUT_LEVELS, Math.round(x[row + j]! / sx) + z));
      values[row + j] = q - z;
    }
  }
  return { values, scales };
}

/** acc [tokens, out] = x_c · wᵀ, exact (every partial sum is an integer below 2^53). */
export function integerMatVec(layer: Pick<QuantizedLinear, 'weights' | 'inFeatures' | 'outFeatures'>, xc: ArrayLike<number>, tokens: number): Float64Array {
  const { weights, inFeatures: d, outFeatures: m } = layer;
  const acc = new Float64Array(tokens * m);
  for (let t = 0; t < tokens; t++) {
    const row = t * d;
    for (let c = 0; c < m; c++) {
      const w = c * d;
      let s = 0;
      for (let j = 0; j < d; j++) s += weights[w + j]! * xc[row + j]!;
      acc[t * m + c] = s;
    }
  }
  return acc;
}

/** y [tokens, out] = s_x[t] · s_w[c] · acc[t, c] + b[c], in float32. */
export function dequantizeOutput(acc: ArrayLike<number>, tokenScales: Float32Array, scales: Float32Array, bias: Float32Array): Float32Array {
  const m = scales.length;
  const tokens = tokenScales.length;
  if (acc.length !== tokens * m) throw new ConfigError(`dequantizeOutput: ${acc.length} accumulators for ${tokens} × ${m}`);
  const y = new Float32Array(tokens * m);
  for (let t = 0; t < tokens; t++) for (let c = 0; c < m; c++) y[t * m + c] = tokenScales[t]! * scales[c]! * acc[t * m + c]! + bias[c]!;
  return y;
}
