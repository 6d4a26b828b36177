/**
 * Noise model of one encrypted matrix-vector product (docs/glwe.md derives every term). Variances are in torus
 * units (q = 2^64) squared; `sigma` and `bound` are in accumulator units (the integers y = W·x), i.e. divided by
 * Δ = 2^(64 − messageBits).
 *
 *   fresh + input rounding   (σ_f² + 2^(2(64−b_in))/12) · Σ_i w_i²       per output row
 *   decomposition rounding   (N/2) · 2^(2(64−ℓB))/12                       mask digits keep the top ℓB bits
 *   packing-key noise        N·ℓ·n · σ_f² · 2^(2B)/12                       digits × key noise polynomials; n = outputs
 *                                                                           packed in the result GLWE (X^i·e(X) reaches
 *                                                                           every coefficient)
 *   packing FFT (f64)        κ² · 2^(2B) · ℓ · n                            float error of Σ D·K (the mask's part is
 *                                                                           multiplied by S' on decryption); κ fitted
 *   output modulus switch    2^(2(64−b_out))/12 · (1 + N/2)                  body + mask·S'
 *
 * The FFT term is the only fitted one: κ is calibrated on the ≥ 10^6-output runs of bench/glwe.ts
 * (bench/RESULTS.md) with a safety factor; every other term follows from the parameters. The sum of many
 * independent bounded terms is treated as Gaussian: P(|e| > z·σ) ≤ 2^−40 for z = 7.14.
 */
import type { MatVecLayout } from './layout.js';
import { tuniformVariance, type GlweParams } from './params.js';

/** Fitted constant of the packing-FFT error (see the module comment and bench/RESULTS.md). */
export const FFT_KAPPA = 2 ** 22.5;
/** z with P(|N(0,1)| > z) = 2^−40. */
export const Z_2_POW_MINUS_40 = 7.14;

export interface NoiseTerms {
  input: number;
  decomposition: number;
  packingKey: number;
  packingFft: number;
  outputSwitch: number;
}

export interface NoisePrediction {
  /** Variances of each term (torus units²). */
  terms: NoiseTerms;
  /** Standard deviation of the decryption error in accumulator units. */
  sigma: number;
  /** |decrypted − exact| ≤ bound with probability ≥ 1 − 2^−40 per value (by the model). */
  bound: number;
}

/** The model for an output row with weight energy Σ w² = `rowSqSum`, in a result GLWE holding `slots` outputs. */
export function predictNoise(params: GlweParams, layout: MatVecLayout, rowSqSum: number, slots = Math.min(layout.dOut, params.polynomialSize)): NoisePrediction {
  const n = params.polynomialSize;
  const sf2 = tuniformVariance(params.noiseBoundLog2);
  const B = params.packingBaseLog;
  const l = params.packingLevel;
  const terms: NoiseTerms = {
    input: (sf2 + 2 ** (2 * (64 - params.inputBodyBits)) / 12) * rowSqSum,
    decomposition: (n / 2) * (2 ** (2 * (64 - B * l)) / 12),
    packingKey: n * l * slots * sf2 * (2 ** (2 * B) / 12),
    packingFft: FFT_KAPPA ** 2 * 2 ** (2 * B) * l * slots,
    outputSwitch: (2 ** (2 * (64 - params.outputBits)) / 12) * (1 + n / 2),
  };
  const v = terms.input + terms.decomposition + terms.packingKey + terms.packingFft + terms.outputSwitch;
  const sigma = Math.sqrt(v) / 2 ** (64 - layout.messageBits);
  return { terms, sigma, bound: Math.max(0, Math.ceil(Z_2_POW_MINUS_40 * sigma - 0.5)) };
}
