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
 * - Bias (server, in clear, after the product): acc'[t, c] = acc[t, c] + round(b[c] / (s_x[t] · s_w[c])) — the
 *   client sends its per-token scales s_x with each call, so the bias never reaches the client (the price: the server
 *   learns s_x, one float per token and layer). `biasPlan` sizes it: the bias may take up to `maxAbsBias` =
 *   ⌈A / 8⌉ accumulator units (0 for a layer without bias) (A = max_c Σ_j |w[c, j]| · 255, the worst-case |acc|), and the client quantizes with
 *   s_x ≥ `tokenScaleFloor` = max_c |b[c]| / (s_w[c] · maxAbsBias) (rounded up), so |round(b / (s_x · s_w))| ≤
 *   maxAbsBias for every token. The floor binds only for tokens whose range is below 255 · floor (all-zero or tiny
 *   activations); their inputs are then quantized more coarsely, with error ≤ s_x / 2 per element, as always.
 * - Output (client): y[t, c] = s_x[t] · s_w[c] · acc'[t, c]. The bias's rounding error is ≤ s_x · s_w / 2, half an
 *   accumulator unit.
 */
import { ConfigError } from '../util/errors.js';
import { HybridError } from './errors.js';

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

/**
 * Per-token dynamic quantization of x [tokens, in]; every token scale is at least `minScale` (the layer's
 * `tokenScaleFloor`, so that the server's bias in accumulator units stays within its budget).
 */
export function quantizeTokens(x: Float32Array, tokens: number, inFeatures: number, minScale = 0): QuantizedTokens {
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
    scales[t] = Math.max(hi > lo ? (hi - lo) / INPUT_LEVELS : 1, minScale); // float32 rounding is monotone: stays ≥ minScale
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

/** How much bias a layer's accumulators carry, and the smallest token scale that keeps it there (file comment). */
export interface BiasPlan {
  /** Largest |bias| in accumulator units the server adds (what the GLWE plaintext space is sized for). */
  maxAbsBias: number;
  /** Smallest per-token scale s_x the server accepts (a float32 value; 0 when the layer has no bias). */
  tokenScaleFloor: number;
}

/** The layer's bias budget (model owner / server: needs the weights, their scales and the bias). */
export function biasPlan(layer: Pick<QuantizedLinear, 'weights' | 'scales' | 'bias' | 'inFeatures' | 'outFeatures'>): BiasPlan {
  const { weights, inFeatures: d, outFeatures: m } = layer;
  let worst = 0;
  for (let c = 0; c < m; c++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += Math.abs(weights[c * d + j]!);
    worst = Math.max(worst, s);
  }
  // A bias-free layer (GPT-2's lm_head) gets no budget: its plaintext space, and so its noise, stay as they were.
  const maxAbsBias = layer.bias.some((b) => b !== 0) ? Math.max(1, Math.ceil((worst * INPUT_LEVELS) / 8)) : 0;
  let floor = 0;
  if (maxAbsBias > 0) for (let c = 0; c < m; c++) floor = Math.max(floor, Math.abs(layer.bias[c]!) / (layer.scales[c]! * maxAbsBias));
  // A relative margin covers the float rounding of s_x · s_w; then round up to float32 (what the client holds).
  floor *= 1 + 2 ** -20;
  let f32 = Math.fround(floor);
  if (f32 < floor) f32 = Math.fround(f32 * (1 + 2 ** -23));
  return { maxAbsBias, tokenScaleFloor: f32 };
}

/** What every linear backend publishes for a layer (its `clientInfo`): the floor the client quantizes with. */
export function publishedBiasInfo(plan: BiasPlan): { tokenScaleFloor: number } {
  return { tokenScaleFloor: plan.tokenScaleFloor };
}

/**
 * The server's bias in accumulator units, [tokens, out]: round(b[c] / (s_x[t] · s_w[c])). The token scales come from
 * the client: non-finite, non-positive or below-floor scales are the client's fault (HybridError 400 'bad_scale').
 */
export function biasInAccumulatorUnits(layer: Pick<QuantizedLinear, 'scales' | 'bias' | 'outFeatures'>, plan: BiasPlan, tokenScales: ArrayLike<number>): Int32Array {
  const m = layer.outFeatures;
  const out = new Int32Array(tokenScales.length * m);
  for (let t = 0; t < tokenScales.length; t++) {
    const sx = tokenScales[t]!;
    if (!Number.isFinite(sx) || sx <= 0) throw new HybridError(`token ${t}: scale ${sx} is not a positive finite number`, 400, 'bad_scale');
    if (sx < plan.tokenScaleFloor) throw new HybridError(`token ${t}: scale ${sx} is below the layer's tokenScaleFloor ${plan.tokenScaleFloor} (published in the client files)`, 400, 'bad_scale');
    for (let c = 0; c < m; c++) {
      const b = Math.round(layer.bias[c]! / (sx * layer.scales[c]!));
      // Guaranteed by the floor; checked because the scales are the client's.
      if (Math.abs(b) > plan.maxAbsBias) throw new HybridError(`token ${t}: the bias of output ${c} at scale ${sx} overflows the layer's budget`, 400, 'bad_scale');
      out[t * m + c] = b;
    }
  }
  return out;
}

/** acc [tokens, out] += the bias in accumulator units (same layout), in place. */
export function addBias(acc: Float64Array, bias: Int32Array): Float64Array {
  if (acc.length !== bias.length) throw new ConfigError(`addBias: ${bias.length} bias values for ${acc.length} accumulators`);
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + bias[i]!;
  return acc;
}

/** y [tokens, out] = s_x[t] · s_w[c] · acc'[t, c] (the accumulators hold the bias already), in float32. */
export function dequantizeOutput(acc: ArrayLike<number>, tokenScales: Float32Array, scales: Float32Array): Float32Array {
  const m = scales.length;
  const tokens = tokenScales.length;
  if (acc.length !== tokens * m) throw new ConfigError(`dequantizeOutput: ${acc.length} accumulators for ${tokens} × ${m}`);
  const y = new Float32Array(tokens * m);
  for (let t = 0; t < tokens; t++) for (let c = 0; c < m; c++) y[t * m + c] = tokenScales[t]! * scales[c]! * acc[t * m + c]!;
  return y;
}
