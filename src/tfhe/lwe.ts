/**
 * LWE ciphertexts and the leveled linear operations on them (exact arithmetic mod 2^64).
 *
 * A ciphertext is (a_0..a_{n−1}, b) with phase b − Σ a_i s_i = m·Δ + e. With a power-of-two
 * plaintext modulus p and Δ = 2^63/p, 2p·Δ = 2^64, so integer linear combinations wrap exactly on
 * the message space Z/2p (message + padding bit). Two consequences used here:
 * - a weight w acts on the message exactly like w mod 2p, while the noise is multiplied by w itself:
 *   weights are reduced to their balanced representative in [−p, p) first — same message, less noise;
 * - the reduced weights satisfy |w| ≤ p, so w·(32-bit word) accumulates exactly in float64 if the
 *   accumulator is normalized every 2^20 units of Σ|w| (2^20·2^32 = 2^52 < 2^53).
 */
import { TfheNoiseError, TfheParameterError } from './errors.js';
import type { NoiseBudget } from './noise.js';
import { TWO_32 } from './torus.js';

export class LweCiphertext {
  constructor(
    /** n+1 u64 values (mask then body) as interleaved (lo, hi) u32 words. */
    readonly data: Uint32Array,
    /** Estimated noise variance (2^64-torus integer units squared). */
    readonly variance: number,
    /** TFHE-rs nominal noise level (1 = fresh or bootstrapped); serialized in the ciphertext. */
    readonly noiseLevel: number,
    /** Upper bound of the encoded value (TFHE-rs `degree`), metadata only. */
    readonly degree: number,
  ) {}

  /** n: the LWE dimension (mask length). */
  get dimension(): number {
    return this.data.length / 2 - 1;
  }
}

/** What linear operations need to know about the parameter set. */
export interface LinearContext {
  /** p = message·carry modulus (the padding bit makes the message space Z/2p). */
  readonly plaintextModulus: number;
  readonly budget: NoiseBudget;
  /** If set, also enforce TFHE-rs's nominal rule Σ|w|·noise_level ≤ this. */
  readonly maxNoiseLevel?: number;
}

/** Balanced representative of w mod 2p, in [−p, p). */
export function reduceWeight(w: number, p: number): number {
  if (!Number.isSafeInteger(w)) throw new TfheParameterError(`weight ${w} is not a safe integer`);
  const m = 2 * p;
  let r = w % m;
  if (r < 0) r += m;
  return r >= p ? r - m : r;
}

const NORMALIZE_EVERY = 2 ** 20;

/**
 * Σ w_i · ct_i + constant·Δ (constant taken mod 2p). The workhorse behind add/sub/neg/scalar
 * multiplication/dot products; refuses (TfheNoiseError) a result beyond the decryption budget.
 */
export function linearCombination(
  ctx: LinearContext,
  weights: ArrayLike<number>,
  cts: readonly LweCiphertext[],
  constant = 0,
): LweCiphertext {
  if (weights.length !== cts.length) {
    throw new TfheParameterError(`linear combination: ${weights.length} weights for ${cts.length} ciphertexts`);
  }
  if (cts.length === 0) throw new TfheParameterError('linear combination of zero ciphertexts');
  const p = ctx.plaintextModulus;
  const words = cts[0]!.data.length;
  let variance = 0;
  let level = 0;
  let degree = 0;
  const ws = new Array<number>(cts.length);
  for (let i = 0; i < cts.length; i++) {
    const c = cts[i]!;
    if (c.data.length !== words) {
      throw new TfheParameterError(`linear combination: ciphertext ${i} has dimension ${c.dimension}, expected ${words / 2 - 1}`);
    }
    const w = reduceWeight(weights[i]!, p);
    ws[i] = w;
    variance += w * w * c.variance;
    level += Math.abs(w) * c.noiseLevel;
    degree += Math.abs(w) * c.degree;
  }
  checkVariance(ctx, variance, 'linear combination');
  if (ctx.maxNoiseLevel !== undefined && level > ctx.maxNoiseLevel) {
    throw new TfheNoiseError(`linear combination: noise level ${level} exceeds the parameter set's maximum ${ctx.maxNoiseLevel}`);
  }

  const accLo = new Float64Array(words / 2);
  const accHi = new Float64Array(words / 2);
  let sinceNormalize = 0;
  for (let i = 0; i < cts.length; i++) {
    const w = ws[i]!;
    if (w === 0) continue;
    const d = cts[i]!.data;
    for (let j = 0, k = 0; k < words; j++, k += 2) {
      accLo[j] += w * d[k]!;
      accHi[j] += w * d[k + 1]!;
    }
    sinceNormalize += Math.abs(w);
    if (sinceNormalize >= NORMALIZE_EVERY) {
      normalize(accLo, accHi);
      sinceNormalize = 0;
    }
  }
  const c = reduceWeight(constant, p);
  if (c !== 0) {
    // c·Δ = c·2^63/p: add it to the high word of the body (Δ ≥ 2^32 whenever p ≤ 2^31).
    const deltaHi = 2 ** 31 / p;
    if (!Number.isInteger(deltaHi)) throw new TfheParameterError(`plaintext modulus ${p} too large for constants`);
    accHi[words / 2 - 1] += c * deltaHi;
    degree += Math.abs(c);
  }
  normalize(accLo, accHi);
  const out = new Uint32Array(words);
  for (let j = 0, k = 0; k < words; j++, k += 2) {
    out[k] = accLo[j]!;
    out[k + 1] = accHi[j]!;
  }
  return new LweCiphertext(out, variance, level, Math.min(degree, 2 * p - 1));
}

/** Fold the low accumulator's carries into the high one and reduce both to [0, 2^32). */
function normalize(lo: Float64Array, hi: Float64Array): void {
  for (let j = 0; j < lo.length; j++) {
    const l = lo[j]!;
    const carry = Math.floor(l / TWO_32);
    lo[j] = l - carry * TWO_32;
    const h = hi[j]! + carry;
    hi[j] = h - Math.floor(h / TWO_32) * TWO_32;
  }
}

export function checkVariance(ctx: LinearContext, variance: number, what: string): void {
  if (variance > ctx.budget.maxDecryptVariance) {
    throw new TfheNoiseError(
      `${what}: estimated noise σ = 2^${(Math.log2(variance) / 2).toFixed(2)} exceeds the budget ` +
        `σ ≤ 2^${(Math.log2(ctx.budget.maxDecryptVariance) / 2).toFixed(2)} for p_error = 2^${ctx.budget.log2PError}`,
    );
  }
}

export const add = (ctx: LinearContext, a: LweCiphertext, b: LweCiphertext) => linearCombination(ctx, [1, 1], [a, b]);
export const sub = (ctx: LinearContext, a: LweCiphertext, b: LweCiphertext) => linearCombination(ctx, [1, -1], [a, b]);
export const neg = (ctx: LinearContext, a: LweCiphertext) => linearCombination(ctx, [-1], [a]);
export const mulScalar = (ctx: LinearContext, a: LweCiphertext, w: number) => linearCombination(ctx, [w], [a]);
export const addPlain = (ctx: LinearContext, a: LweCiphertext, m: number) => linearCombination(ctx, [1], [a], m);

/**
 * y = W·x (+ bias): W is rows × cols, row-major; x has `cols` ciphertexts; bias (clear, optional)
 * has `rows` integers added as plaintexts. Returns `rows` ciphertexts.
 */
export function matmul(
  ctx: LinearContext,
  w: ArrayLike<number>,
  rows: number,
  cols: number,
  x: readonly LweCiphertext[],
  bias?: ArrayLike<number>,
): LweCiphertext[] {
  if (w.length !== rows * cols) throw new TfheParameterError(`matmul: ${w.length} weights for a ${rows}×${cols} matrix`);
  if (x.length !== cols) throw new TfheParameterError(`matmul: ${x.length} inputs for ${cols} columns`);
  const out: LweCiphertext[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: cols }, (_, c) => w[r * cols + c]!);
    out.push(linearCombination(ctx, row, x, bias ? bias[r]! : 0));
  }
  return out;
}

/** A noiseless encryption of m (mask 0, body m·Δ) of dimension n: for constants in circuits. */
export function trivial(ctx: LinearContext, n: number, m: number): LweCiphertext {
  const zero = new LweCiphertext(new Uint32Array(2 * (n + 1)), 0, 0, 0);
  return linearCombination(ctx, [0], [zero], m);
}
