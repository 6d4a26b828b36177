/**
 * How a d_out × d_in matrix product is laid out on GLWE polynomials (Cheetah's coefficient encoding).
 *
 * The input vector is cut into `chunks` pieces of `chunkLen` values; piece c is the message polynomial of input
 * GLWE c (coefficient i = x[c·chunkLen + i]). The weights of `perProduct` = ⌊N/chunkLen⌋ consecutive output rows
 * form one plaintext polynomial per piece, row r reversed at offset r·chunkLen, so the product's coefficient
 * r·chunkLen + chunkLen − 1 is that row's dot product with the piece (no negacyclic wrap reaches it), and the
 * pieces' products add up in the FFT domain. Outputs are then packed N per result GLWE.
 *
 * The layout is public: the client needs it (with `messageBits`, the scale of the weights' worst case) to encrypt.
 */
import { GlweParameterError } from './errors.js';
import type { GlweParams } from './params.js';

export interface MatVecLayout {
  readonly dIn: number;
  readonly dOut: number;
  /** Input values per input GLWE. */
  readonly chunkLen: number;
  /** Input GLWEs per call. */
  readonly chunks: number;
  /** Output rows per plaintext product (R). */
  readonly perProduct: number;
  /** Product polynomials per call: ⌈dOut / R⌉. */
  readonly blocks: number;
  /** Result GLWEs: ⌈dOut / N⌉. */
  readonly outputGlwes: number;
  /** Plaintext modulus bits: results are read modulo 2^messageBits (signed), scale Δ = 2^(64 − messageBits). */
  readonly messageBits: number;
  /** Largest |x| the client may encrypt (the worst case `messageBits` was sized for). */
  readonly inputBound: number;
}

/** Most rows/columns one matrix may have (GPT-2's lm_head has 50,257 rows; Llama-size vocabularies fit too). */
export const MAX_DIM = 1 << 18;

/**
 * The layout of a d_out × d_in product: the fewest input GLWEs ⌈d_in/N⌉, or one more when that leaves a single
 * output per product (d_in > N/2), which halves the product polynomials and their inverse FFTs.
 */
export function planMatVec(params: GlweParams, dIn: number, dOut: number, messageBits: number, inputBound: number): MatVecLayout {
  const n = params.polynomialSize;
  for (const [name, v] of [['d_in', dIn], ['d_out', dOut]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_DIM) throw new GlweParameterError(`${name} = ${v}: expected an integer in 1..${MAX_DIM}`);
  }
  if (!Number.isInteger(messageBits) || messageBits < 2 || messageBits > 40) {
    throw new GlweParameterError(`messageBits = ${messageBits}: expected 2..40 (results must fit the output precision)`);
  }
  let chunks = Math.ceil(dIn / n);
  if (Math.floor(n / Math.ceil(dIn / chunks)) < 2 && dIn > 1) chunks += 1;
  const chunkLen = Math.ceil(dIn / chunks);
  const perProduct = Math.floor(n / chunkLen);
  return {
    dIn,
    dOut,
    chunkLen,
    chunks,
    perProduct,
    blocks: Math.ceil(dOut / perProduct),
    outputGlwes: Math.ceil(dOut / n),
    messageBits,
    inputBound,
  };
}

/** Bits of a signed plaintext space holding every |y| ≤ worst: ⌈log2(worst + 1)⌉ + 1. */
export function messageBitsFor(worst: number): number {
  return Math.max(2, Math.ceil(Math.log2(worst + 1)) + 1);
}
