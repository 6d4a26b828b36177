/**
 * Noise model of the KS-PBS pipeline (variances in integer units of the 2^64 torus, squared).
 * The derivation and the measurements that check it are written up in docs/tfhe.md.
 *
 * Everything here is a closed-form estimate from the parameter set; the evaluator tracks one
 * variance per ciphertext and refuses operations whose failure probability would exceed the
 * caller's `pError` (default 2^-40 per decryption or per table lookup).
 */
import { distributionVariance, delta, bigLweDimension, type TfheParams } from './params.js';

/** Variance of a fresh encryption (or of a PBS output treated as fresh for the tracker). */
export function freshVariance(p: TfheParams): number {
  // With the 'Big' key choice a client encrypts under the flattened GLWE key with GLWE noise.
  return distributionVariance(p.glweNoise);
}

/** E[d²] of a balanced digit uniformly spread over [−B/2, B/2]: (B² + 2) / 12. */
function digitSquare(baseLog: number): number {
  const b = 2 ** baseLog;
  return (b * b + 2) / 12;
}

/** Variance added by the keyswitch (key noise through the digits + dropped low bits). */
export function keyswitchVariance(p: TfheParams): number {
  const nBig = bigLweDimension(p);
  const keyTerm = nBig * p.ksLevel * digitSquare(p.ksBaseLog) * distributionVariance(p.lweNoise);
  const dropped = 2 ** (64 - p.ksBaseLog * p.ksLevel);
  // Rounding error uniform in ±dropped/2 (variance dropped²/12) times a binary key bit (E[s²] = 1/2).
  const roundTerm = (nBig / 2) * (dropped * dropped) / 12;
  // The evaluator keeps each key value's top 32 bits (keyswitch.ts): an error uniform in ±2^31 per row value, summed
  // with the digits into every output coefficient, then through the small key into the phase (E[s²] = 1/2).
  const rowTerm = nBig * p.ksLevel * digitSquare(p.ksBaseLog) * (2 ** 64 / 12) * (1 + p.lweDimension / 2);
  return keyTerm + roundTerm + rowTerm;
}

/** Variance added by the switch to modulus 2N (mask and body rounding). */
export function modulusSwitchVariance(p: TfheParams): number {
  const step = 2 ** 64 / (2 * p.polynomialSize);
  const u = (step * step) / 12;
  // Centered mean: the correction removes Σ e_i/2, leaving Σ e_i (s_i − 1/2) → E[(s−1/2)²] = 1/4.
  const perMask = p.modulusSwitch === 'centered-mean' ? 0.25 : 0.5;
  return p.lweDimension * perMask * u + u;
}

/** Variance of a PBS output (blind rotation noise; the LUT itself is noiseless). */
export function pbsOutputVariance(p: TfheParams): number {
  const { lweDimension: n, glweDimension: k, polynomialSize: N, pbsLevel: L, pbsBaseLog: b } = p;
  // Key noise: every CMUX adds Σ over (k+1)·L digit polynomials of N digits × GGSW noise.
  const keyTerm = n * (k + 1) * L * N * digitSquare(b) * distributionVariance(p.glweNoise);
  // Decomposition rounding error (uniform, step 2^(64−bL)) times the key: n · step²/12 · (1 + k·N/2).
  // The textbook form halves this (the error only enters when the selector bit is 1), but that
  // under-predicts the measured output variance by 1.5× (2_2) to 2.7× (3_3); counted at every CMUX
  // it matches the measurements within their sampling error (docs/tfhe.md), and errs on the safe side.
  const step = 2 ** (64 - b * L);
  const roundTerm = (n * step * step) / 12 * (1 + (k * N) / 2);
  // f64 FFT error per external product (externalProductFftRms), at every CMUX.
  const fftRms = externalProductFftRms(p);
  const fftTerm = n * fftRms * fftRms;
  return keyTerm + roundTerm + fftTerm;
}

/**
 * Rms float error of one external product, per output coefficient: products of digits (< 2^b) and key values
 * (< 2^63) summed over (k+1)·L·N terms keep 53 bits: 2^b · 2^63 · √((k+1)·L·N) · 2^−53. Calibrated against the
 * measured 2^39 rms (one external product vs the exact integer product, 2_2 set).
 */
export function externalProductFftRms(p: TfheParams): number {
  return 2 ** p.pbsBaseLog * 2 ** 10 * Math.sqrt((p.glweDimension + 1) * p.pbsLevel * p.polynomialSize);
}

/**
 * How far two blind-rotation transforms (the shared FFT, FFTW) may disagree, each bound exceeded with probability
 * ≤ 2^log2PError by the model (derivation: docs/tfhe.md, "FFTW transforms in the blind rotation"):
 * - `externalProduct`: per coefficient of one external product on the same input. Each transform errs by the FFT
 *   term (rms σ_fft, `externalProductFftRms`) around the exact product; whatever their correlation the difference
 *   has rms ≤ 2·σ_fft, bounded at the Gaussian tail of that rms.
 * - `pbsPhase`: the decrypted phases of one PBS. The per-product differences move accumulator coefficients across
 *   the decomposition's rounding boundaries, so after a few CMUX the two rotations decompose different ciphertexts
 *   (same phase) and their rounding and key noise decorrelate: the phases differ by the difference of two PBS output
 *   noises, rms ≤ 2·σ_pbs, bounded at its Gaussian tail.
 */
export function transformDifferenceBounds(p: TfheParams, log2PError: number): { externalProduct: number; pbsPhase: number } {
  // maxVarianceFor(1, ·) is the variance whose tail past 1 has the target probability: 1/√ of it is the z-score.
  const z = 1 / Math.sqrt(maxVarianceFor(1, log2PError));
  return { externalProduct: 2 * z * externalProductFftRms(p), pbsPhase: 2 * z * Math.sqrt(pbsOutputVariance(p)) };
}

/**
 * log2 of the probability that a centered Gaussian of standard deviation `sigma` exceeds `bound`
 * in absolute value: log2(erfc(bound / (σ√2))). Uses the Numerical Recipes Chebyshev form of
 * erfc (relative error < 1.2e-7 everywhere), evaluated in the log domain so that it stays finite
 * far into the tail (2^-128 and beyond).
 */
export function log2TailProbability(bound: number, sigma: number): number {
  if (sigma <= 0) return -Infinity;
  const z = bound / (sigma * Math.SQRT2);
  if (z <= 0) return 0;
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -z * z - 1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return (Math.log(t) + poly) / Math.LN2;
}

/** Largest variance whose tail beyond `bound` stays below 2^log2PError (bisection on σ). */
export function maxVarianceFor(bound: number, log2PError: number): number {
  let lo = 0;
  let hi = bound;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (log2TailProbability(bound, mid) > log2PError) hi = mid;
    else lo = mid;
  }
  return lo * lo;
}

/** Noise budgets of one parameter set at one failure probability. */
export interface NoiseBudget {
  readonly log2PError: number;
  /** A ciphertext decrypts right with probability ≥ 1 − pError while its variance is ≤ this. */
  readonly maxDecryptVariance: number;
  /** A PBS input (before keyswitch) must have a variance ≤ this. */
  readonly maxPbsInputVariance: number;
  readonly freshVariance: number;
  readonly pbsOutputVariance: number;
  readonly keyswitchVariance: number;
  readonly modulusSwitchVariance: number;
}

export function noiseBudget(p: TfheParams, log2PError: number): NoiseBudget {
  // Decoding is right while the noise stays within half a message step: Δ/2.
  const bound = delta(p) / 2;
  const maxDecrypt = maxVarianceFor(bound, log2PError);
  const ks = keyswitchVariance(p);
  const ms = modulusSwitchVariance(p);
  return {
    log2PError,
    maxDecryptVariance: maxDecrypt,
    maxPbsInputVariance: Math.max(0, maxDecrypt - ks - ms),
    freshVariance: freshVariance(p),
    pbsOutputVariance: pbsOutputVariance(p),
    keyswitchVariance: ks,
    modulusSwitchVariance: ms,
  };
}
