/**
 * Parameters of the packed GLWE matrix-vector engine.
 *
 * Security: every public value (input ciphertexts, packing-key GLWEs) is a GLWE sample with k = 1, N = 2048,
 * q = 2^64, a uniform binary secret and TUniform(17) noise — the GLWE part of TFHE-rs 1.7's default
 * `PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128`. TFHE-rs states that "all parameter sets provide at least
 * 128-bits of security according to the Lattice-Estimator" (tfhe/docs/fhe-computation/compute/parameters.md).
 * Modulus switching (dropping low bits of bodies and results) and decomposition are public post-processing and
 * do not change the hardness of the samples. Nothing here is a home-made lattice parameter.
 *
 * Correctness parameters (message scale, packing decomposition, wire precisions) are chosen by the noise model in
 * docs/glwe.md and measured in bench/RESULTS.md.
 */
import { GlweParameterError } from './errors.js';

export interface GlweParams {
  /** Name used in serialized headers (a key of one set is refused by a ciphertext of another). */
  readonly name: string;
  /** Numeric tag of `name` in binary headers. */
  readonly code: number;
  /** N: ring dimension (coefficients per polynomial). */
  readonly polynomialSize: number;
  /** TUniform bound: fresh noise is uniform-ish on [−2^b, 2^b] (TFHE-rs TUniform(b)). */
  readonly noiseBoundLog2: number;
  /** Packing keyswitch decomposition: base 2^baseLog, `level` digits (baseLog·level top bits of each mask kept). */
  readonly packingBaseLog: number;
  readonly packingLevel: number;
  /** Bits each input body keeps on the wire (the masks travel as a 16-byte seed). */
  readonly inputBodyBits: number;
  /** Bits each result coefficient (mask and body) keeps on the wire. */
  readonly outputBits: number;
  /** Where the parameters come from (printed in docs and benches). */
  readonly source: string;
}

/** The one supported set. */
export const GLWE_PARAMS_2048: GlweParams = Object.freeze({
  name: 'glwe-k1-n2048-tu17',
  code: 1,
  polynomialSize: 2048,
  noiseBoundLog2: 17,
  packingBaseLog: 8,
  packingLevel: 4,
  inputBodyBits: 42,
  outputBits: 32,
  source: 'GLWE part of TFHE-rs 1.7 PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128 (k = 1, N = 2048, q = 2^64, TUniform(17))',
});

const BY_CODE = new Map<number, GlweParams>([[GLWE_PARAMS_2048.code, GLWE_PARAMS_2048]]);

export function glweParamsByCode(code: number): GlweParams {
  const p = BY_CODE.get(code);
  if (!p) throw new GlweParameterError(`unknown GLWE parameter set code ${code} (this fhenet knows: ${[...BY_CODE.keys()].join(', ')})`);
  return p;
}

/** Variance of TUniform(b): values −2^b..2^b, interior probability 2^−(b+1), end points 2^−(b+2). */
export function tuniformVariance(boundLog2: number): number {
  return (2 ** (2 * boundLog2 + 1) + 1) / 6;
}
