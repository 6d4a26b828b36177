/**
 * Keys. The client holds two binary GLWE secret keys (k = 1, N coefficients each): S encrypts inputs, S' receives
 * the packed results. The evaluation key is the packing keyswitching key: for every coefficient j of S and digit
 * level l, a GLWE under S' of the constant s_j·2^(64 − B·(ℓ − l)); it is seeded (only the bodies and one 16-byte
 * seed travel) and the server expands and Fourier-transforms it once (`prepareEvaluationKey`).
 * Secret keys never leave the client: nothing in this module serializes them for the server.
 */
import { GlweParameterError } from './errors.js';
import type { GlweParams } from './params.js';
import { fftPlan, keySpectrum, mulBinaryKey } from './poly.js';
import { binaryKey, cryptoRng, randomSeed, seededStream, tuniform, type GlweRng } from './random.js';
import { TWO_32 } from '../tfhe/torus.js';

export interface ClientKey {
  readonly params: GlweParams;
  /** S: input key (N bits). */
  readonly inputKey: Uint8Array;
  /** S': output key (N bits). */
  readonly outputKey: Uint8Array;
  /** Spectra of S and S' (cached for exact products). */
  readonly inputKeySpectrum: Float64Array;
  readonly outputKeySpectrum: Float64Array;
  /** Noise source for encryptions (a CSPRNG stream). */
  readonly rng: GlweRng;
}

export interface EvaluationKey {
  readonly params: GlweParams;
  /** Seed of the masks of all N·ℓ packing GLWEs (one stream, in (j, l) order, N u64 each). */
  readonly seed: Uint8Array;
  /** Bodies: N·ℓ polynomials of N u64 (interleaved lo/hi u32 words), in (j, l) order. */
  readonly bodies: Uint32Array;
}

/**
 * The server's form of the evaluation key: for every packing GLWE (j, l), three spectra of N f64 each — the mask
 * split as K_a = K_hi·2^52 + K_lo (K_hi in ±2^11, K_lo in ±2^51), and the body K_b. Why split the mask: the mask
 * product's float error is multiplied by the output key on decryption (≈ √(N/2) = 32×); Σ D·K_hi stays below 2^50
 * and is exact after rounding, and K_lo's error is 2^12 times smaller than the whole mask's (docs/glwe.md).
 */
export interface PreparedEvaluationKey {
  readonly params: GlweParams;
  /** (j·ℓ + l)·3N: K_hi spectrum, K_lo spectrum, K_b spectrum (N f64 each). */
  readonly spectra: Float64Array;
}

/** Exponent of the mask split K_a = K_hi·2^MASK_SPLIT + K_lo. */
export const MASK_SPLIT = 52;

/** Signed float value of u64 words (top 53 bits kept: the server's approximate torus form). */
export function wordToSigned(lo: number, hi: number): number {
  return hi >= 0x80000000 ? (hi - TWO_32) * TWO_32 + lo : hi * TWO_32 + lo;
}

/**
 * Generates the client's secret keys and the packing evaluation key. `rng` (default: a fresh node:crypto seed)
 * drives the secrets and the noise; pass `cryptoRng(seed)` for a reproducible run.
 */
export function generateKeys(params: GlweParams, rng: GlweRng = cryptoRng()): { clientKey: ClientKey; evaluationKey: EvaluationKey } {
  const n = params.polynomialSize;
  const inputKey = binaryKey(rng, n);
  const outputKey = binaryKey(rng, n);
  const clientKey: ClientKey = {
    params,
    inputKey,
    outputKey,
    inputKeySpectrum: keySpectrum(inputKey),
    outputKeySpectrum: keySpectrum(outputKey),
    rng,
  };
  const seed = randomSeed(rng);
  const masks = seededStream(seed);
  const level = params.packingLevel;
  const bodies = new Uint32Array(2 * n * n * level);
  const mask = new Uint32Array(2 * n);
  const msg = new Float64Array(n);
  const noise = new Float64Array(n);
  const out = new Uint32Array(2 * n);
  for (let j = 0; j < n; j++) {
    for (let l = 0; l < level; l++) {
      masks.fillU64(mask, 0, n);
      tuniform(rng, params.noiseBoundLog2, noise);
      // message s_j·2^(64 − B(ℓ − l)) in the constant coefficient: 2^(16·limb)·scale
      const log2g = 64 - params.packingBaseLog * (level - l);
      const limb = Math.floor(log2g / 16);
      msg[0] = inputKey[j]!;
      mulBinaryKey(mask, clientKey.outputKeySpectrum, out, 4, { values: msg, limb, scale: 2 ** (log2g - 16 * limb) }, noise);
      bodies.set(out, 2 * n * (j * level + l));
    }
  }
  return { clientKey, evaluationKey: { params, seed, bodies } };
}

/** Expands the seeded masks and transforms every packing GLWE to the Fourier domain (server, once per client). */
export function prepareEvaluationKey(key: EvaluationKey): PreparedEvaluationKey {
  const { params } = key;
  const n = params.polynomialSize;
  const level = params.packingLevel;
  const count = n * level;
  if (key.bodies.length !== 2 * n * count) {
    throw new GlweParameterError(`evaluation key: ${key.bodies.length / 2} body values, expected ${n * count} for ${params.name}`);
  }
  const fft = fftPlan(n);
  const spectra = new Float64Array(3 * n * count);
  const masks = seededStream(key.seed);
  const words = new Uint32Array(2 * n);
  const hiPoly = new Float64Array(n);
  const loPoly = new Float64Array(n);
  const hiUnit = 2 ** (MASK_SPLIT - 32);
  for (let t = 0; t < count; t++) {
    masks.fillU64(words, 0, n);
    for (let i = 0; i < n; i++) {
      const w1 = words[2 * i + 1]!;
      const top = w1 >= 0x80000000 ? w1 - TWO_32 : w1; // signed top word
      const hi = Math.round(top / hiUnit);
      hiPoly[i] = hi;
      loPoly[i] = (top - hi * hiUnit) * TWO_32 + words[2 * i]!; // exact: |·| < 2^52
    }
    const o = 3 * n * t;
    fft.forward(hiPoly, 0, spectra, o, o + fft.m);
    fft.forward(loPoly, 0, spectra, o + n, o + n + fft.m);
    const b = key.bodies;
    const ob = 2 * n * t;
    for (let i = 0; i < n; i++) hiPoly[i] = wordToSigned(b[ob + 2 * i]!, b[ob + 2 * i + 1]!);
    fft.forward(hiPoly, 0, spectra, o + 2 * n, o + 2 * n + fft.m);
  }
  return { params, spectra };
}
