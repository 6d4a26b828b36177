/**
 * Lookup tables for programmable bootstrapping (padding-bit semantics of TFHE-rs shortint).
 *
 * After the modulus switch a message m ∈ [0, p) sits at index m·(N/p) of the 2N-periodic
 * negacyclic world, give or take half a box of noise. The accumulator starts as T·X^{−φ} and the
 * sample extraction reads its constant coefficient, which is T[φ] for 0 ≤ φ < N and −T[φ − N]
 * above (X^N = −1). So T holds boxes of N/p coefficients filled with f(m)·Δ, shifted left by half a
 * box so that each box is centred on its message; the half box that falls off the left end re-enters
 * at the right end negated (negacyclic wrap), which makes inputs slightly below 0 decode as m = 0.
 *
 * Consequence (padding bit): an input whose padding bit is set (m ∈ [p, 2p)) yields −f(m − p).
 * Outputs are taken mod 2p; f(m) ∈ [p, 2p) sets the output's padding bit (fine for a final result,
 * wrong as the input of another PBS).
 */
import { TfheParameterError } from './errors.js';

export interface Lut {
  /** The N coefficients of T as signed torus values (float64). */
  readonly poly: Float64Array;
  /** max f(m) mod 2p: the TFHE-rs `degree` of the output. */
  readonly degree: number;
  /** The table's values f(0..p−1) mod 2p. */
  readonly values: readonly number[];
}

export function buildLut(polynomialSize: number, plaintextModulus: number, f: (m: number) => number): Lut {
  const N = polynomialSize;
  const p = plaintextModulus;
  if (N % p !== 0 || N / p < 2) throw new TfheParameterError(`polynomial size ${N} cannot hold ${p} boxes of ≥ 2 coefficients`);
  const box = N / p;
  const half = box / 2;
  const delta = 2 ** 63 / p;
  const values: number[] = [];
  const plain = new Float64Array(N);
  for (let m = 0; m < p; m++) {
    const raw = f(m);
    if (!Number.isSafeInteger(raw)) throw new TfheParameterError(`lookup table: f(${m}) = ${raw} is not an integer`);
    const v = ((raw % (2 * p)) + 2 * p) % (2 * p);
    values.push(v);
    // Signed representative so the f64 value stays in [−2^63, 2^63).
    const signed = v >= p ? (v - 2 * p) * delta : v * delta;
    plain.fill(signed, m * box, (m + 1) * box);
  }
  const poly = new Float64Array(N);
  for (let j = 0; j < N - half; j++) poly[j] = plain[j + half]!;
  for (let j = 0; j < half; j++) poly[N - half + j] = -plain[j]!;
  return { poly, degree: Math.max(...values), values };
}
