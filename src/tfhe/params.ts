/**
 * Parameter sets of the shortint KS-PBS atomic pattern (native 2^64 modulus, 'Big' encryption key).
 *
 * Values of the named sets come from TFHE-rs 1.7 (the reference table in
 * /work/shared/reference/tfhe-rs.md, and for the Gaussian noise values the serialized client keys
 * node-tfhe 1.7.0 produces for those names). They are facts, not tuned here.
 */
import { TfheParameterError } from './errors.js';
import type { ModulusSwitchKind } from './layouts.js';

/** Noise distributions of TFHE-rs (`DynamicDistribution`). */
export type NoiseDistribution =
  /** Integers in [−2^b, 2^b]. */
  | { readonly kind: 'tuniform'; readonly boundLog2: number }
  /** Gaussian with standard deviation `std` as a fraction of the torus (TFHE-rs convention). */
  | { readonly kind: 'gaussian'; readonly std: number };

export interface TfheParams {
  /** Set name (named sets) or 'custom'. */
  readonly name: string;
  /** n: LWE dimension of the small key (keyswitch output, blind-rotation input). */
  readonly lweDimension: number;
  /** k: GLWE dimension. */
  readonly glweDimension: number;
  /** N: polynomial size. */
  readonly polynomialSize: number;
  readonly lweNoise: NoiseDistribution;
  readonly glweNoise: NoiseDistribution;
  readonly pbsBaseLog: number;
  readonly pbsLevel: number;
  readonly ksBaseLog: number;
  readonly ksLevel: number;
  readonly messageModulus: number;
  readonly carryModulus: number;
  /** TFHE-rs's nominal noise budget (sum of |w|·noise_level feeding one PBS). */
  readonly maxNoiseLevel: number;
  readonly log2PFail: number;
  readonly modulusSwitch: ModulusSwitchKind;
}

/** Variance (in integer units of the 2^64 torus, squared) of one sample of `d`. */
export function distributionVariance(d: NoiseDistribution): number {
  if (d.kind === 'tuniform') {
    // TUniform(b): values in [−2^b, 2^b], interior weight 2^−(b+1), end points 2^−(b+2);
    // its variance is (2^(2b+1) + 1) / 6.
    return (2 ** (2 * d.boundLog2 + 1) + 1) / 6;
  }
  const s = d.std * 2 ** 64;
  return s * s;
}

/** Plaintext modulus p = message·carry (the values a PBS can read); the padding bit doubles it. */
export function plaintextModulus(p: TfheParams): number {
  return p.messageModulus * p.carryModulus;
}

/** Δ = 2^63 / p: the scaling of a message in the 64-bit torus (one padding bit on top). */
export function delta(p: TfheParams): number {
  return 2 ** 63 / plaintextModulus(p);
}

/** Flattened GLWE key length k·N: the dimension of fresh ciphertexts and PBS outputs. */
export function bigLweDimension(p: TfheParams): number {
  return p.glweDimension * p.polynomialSize;
}

const tu = (b: number): NoiseDistribution => ({ kind: 'tuniform', boundLog2: b });
const g = (std: number): NoiseDistribution => ({ kind: 'gaussian', std });

/** Named sets available in node-tfhe 1.7.0 (enum names of `ShortintParametersName`). */
export const NAMED_PARAMS: Readonly<Record<string, TfheParams>> = {
  PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128: {
    name: 'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128',
    lweDimension: 918, glweDimension: 1, polynomialSize: 2048,
    lweNoise: tu(45), glweNoise: tu(17),
    pbsBaseLog: 23, pbsLevel: 1, ksBaseLog: 4, ksLevel: 4,
    messageModulus: 4, carryModulus: 4, maxNoiseLevel: 5, log2PFail: -129.581,
    modulusSwitch: 'centered-mean',
  },
  // Gaussian sets: std values read from node-tfhe 1.7.0 client keys (see tests/tfhe/params.test.ts).
  V1_7_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M128: {
    name: 'V1_7_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M128',
    lweDimension: 837, glweDimension: 4, polynomialSize: 512,
    lweNoise: g(0.0000033747142481837397), glweNoise: g(2.845267479601915e-15),
    pbsBaseLog: 23, pbsLevel: 1, ksBaseLog: 5, ksLevel: 3,
    messageModulus: 2, carryModulus: 2, maxNoiseLevel: 3, log2PFail: -128.186,
    modulusSwitch: 'centered-mean',
  },
  V1_7_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128: {
    name: 'V1_7_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128',
    lweDimension: 866, glweDimension: 1, polynomialSize: 2048,
    lweNoise: g(0.000002046151696979124), glweNoise: g(2.845267479601915e-15),
    pbsBaseLog: 23, pbsLevel: 1, ksBaseLog: 3, ksLevel: 5,
    messageModulus: 4, carryModulus: 4, maxNoiseLevel: 5, log2PFail: -128.597,
    modulusSwitch: 'centered-mean',
  },
  V1_7_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128: {
    name: 'V1_7_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128',
    lweDimension: 1006, glweDimension: 1, polynomialSize: 8192,
    lweNoise: g(1.8277101294215978e-7), glweNoise: g(2.168404344971009e-19),
    pbsBaseLog: 15, pbsLevel: 2, ksBaseLog: 3, ksLevel: 7,
    messageModulus: 8, carryModulus: 8, maxNoiseLevel: 9, log2PFail: -128.115,
    modulusSwitch: 'centered-mean',
  },
  V1_7_PARAM_MESSAGE_4_CARRY_4_KS_PBS_GAUSSIAN_2M128: {
    name: 'V1_7_PARAM_MESSAGE_4_CARRY_4_KS_PBS_GAUSSIAN_2M128',
    lweDimension: 1098, glweDimension: 1, polynomialSize: 65536,
    lweNoise: g(3.73718341270979e-8), glweNoise: g(2.168404344971009e-19),
    pbsBaseLog: 11, pbsLevel: 3, ksBaseLog: 3, ksLevel: 7,
    messageModulus: 16, carryModulus: 16, maxNoiseLevel: 17, log2PFail: -128.731,
    modulusSwitch: 'centered-mean',
  },
  // 5-bit sets (message + carry = 5 bits, N = 4096): TFHE-rs's own 2^-128 sets, which node-tfhe 1.7.0 names only
  // with the V1_6 prefix (V1_7 names exist for the x_x splits only). Every value read from node-tfhe 1.7.0 client
  // keys (tests/tfhe/params.test.ts checks them). The splits differ in their decompositions: 5_0 and 4_1 use a
  // one-level PBS (23/1: two forward FFTs per CMUX), 3_2 a one-level PBS with a 9-level keyswitch, 2_3 a two-level
  // PBS (15/2). fhenet's executor uses its own per-value encodings, so the split only matters through speed and noise.
  V1_6_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128: {
    name: 'V1_6_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128',
    lweDimension: 931, glweDimension: 1, polynomialSize: 4096,
    lweNoise: g(6.666347503085657e-7), glweNoise: g(2.168404344971009e-19),
    pbsBaseLog: 23, pbsLevel: 1, ksBaseLog: 3, ksLevel: 6,
    messageModulus: 32, carryModulus: 1, maxNoiseLevel: 1, log2PFail: -128.453,
    modulusSwitch: 'centered-mean',
  },
  V1_6_PARAM_MESSAGE_4_CARRY_1_KS_PBS_GAUSSIAN_2M128: {
    name: 'V1_6_PARAM_MESSAGE_4_CARRY_1_KS_PBS_GAUSSIAN_2M128',
    lweDimension: 935, glweDimension: 1, polynomialSize: 4096,
    lweNoise: g(6.221794297398788e-7), glweNoise: g(2.168404344971009e-19),
    pbsBaseLog: 23, pbsLevel: 1, ksBaseLog: 3, ksLevel: 6,
    messageModulus: 16, carryModulus: 2, maxNoiseLevel: 2, log2PFail: -128.261,
    modulusSwitch: 'centered-mean',
  },
  V1_6_PARAM_MESSAGE_3_CARRY_2_KS_PBS_GAUSSIAN_2M128: {
    name: 'V1_6_PARAM_MESSAGE_3_CARRY_2_KS_PBS_GAUSSIAN_2M128',
    lweDimension: 928, glweDimension: 1, polynomialSize: 4096,
    lweNoise: g(7.020485941329387e-7), glweNoise: g(2.168404344971009e-19),
    pbsBaseLog: 23, pbsLevel: 1, ksBaseLog: 2, ksLevel: 9,
    messageModulus: 8, carryModulus: 4, maxNoiseLevel: 4, log2PFail: -128.041,
    modulusSwitch: 'centered-mean',
  },
  V1_6_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128: {
    name: 'V1_6_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128',
    lweDimension: 930, glweDimension: 1, polynomialSize: 4096,
    lweNoise: g(6.782362904013915e-7), glweNoise: g(2.168404344971009e-19),
    pbsBaseLog: 15, pbsLevel: 2, ksBaseLog: 3, ksLevel: 6,
    messageModulus: 4, carryModulus: 8, maxNoiseLevel: 10, log2PFail: -128.639,
    modulusSwitch: 'centered-mean',
  },
};

export const DEFAULT_PARAMS_NAME = 'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128';

export function namedParams(name: string): TfheParams {
  const p = NAMED_PARAMS[name];
  if (!p) throw new TfheParameterError(`unknown parameter set '${name}' (known: ${Object.keys(NAMED_PARAMS).join(', ')})`);
  return p;
}

/** Check the structural invariants the evaluator relies on; throws TfheParameterError. */
export function validateParams(p: TfheParams): void {
  const pow2 = (x: number) => Number.isInteger(x) && x >= 1 && (x & (x - 1)) === 0;
  const bad = (m: string): never => {
    throw new TfheParameterError(`parameter set '${p.name}': ${m}`);
  };
  if (!pow2(p.messageModulus) || !pow2(p.carryModulus)) bad('message and carry moduli must be powers of two');
  if (!pow2(p.polynomialSize) || p.polynomialSize < 4) bad('polynomial size must be a power of two ≥ 4');
  if (2 * p.polynomialSize < 2 * plaintextModulus(p)) bad('polynomial size too small for the plaintext modulus');
  if (p.pbsBaseLog * p.pbsLevel > 53) bad('PBS decomposition needs more than 53 bits (the f64 evaluator keeps 53)');
  if (p.ksBaseLog * p.ksLevel > 32) bad('keyswitch decomposition needs more than 32 bits');
  if (p.lweDimension < 1 || p.glweDimension < 1) bad('dimensions must be ≥ 1');
}
