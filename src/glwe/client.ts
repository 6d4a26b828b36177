/**
 * Client side: encryption of an integer vector into seeded GLWEs and decryption of the packed results.
 *
 * Encryption of piece c of the input (layout.ts): B_c = A_c·S + Δ·m_c + e_c mod 2^64 with A_c from the seeded
 * stream, e_c ~ TUniform(17), Δ = 2^(64 − messageBits); only the seed and the bodies, rounded to the top
 * `inputBodyBits` bits, travel. Decryption of result GLWE h: phase = B − A·S' mod 2^outputBits, rounded to
 * Δ' = 2^(outputBits − messageBits) and read as a signed integer mod 2^messageBits.
 */
import { GlweParameterError } from './errors.js';
import type { ClientKey } from './keys.js';
import type { MatVecLayout } from './layout.js';
import type { GlweParams } from './params.js';
import { mulBinaryKey } from './poly.js';
import { randomSeed, seededStream, tuniform } from './random.js';

/** Seeded GLWE encryption of one input vector: `chunks` polynomials of N coefficients. */
export interface InputCiphertext {
  readonly params: GlweParams;
  readonly dIn: number;
  readonly chunkLen: number;
  readonly chunks: number;
  readonly messageBits: number;
  /** Seed of the masks (chunks·N u64 from one AES-CTR stream). */
  readonly seed: Uint8Array;
  /** chunks·N bodies, each an integer in [0, 2^inputBodyBits) (the top bits of the u64 body). */
  readonly bodies: Float64Array;
}

/** Packed result: `outputGlwes` GLWEs under S' at modulus 2^outputBits; bodies only for the dOut used slots. */
export interface MatVecResult {
  readonly params: GlweParams;
  readonly dOut: number;
  readonly messageBits: number;
  /** outputGlwes·N mask coefficients in [0, 2^outputBits). */
  readonly masks: Uint32Array;
  /** dOut body coefficients in [0, 2^outputBits) (slot i of GLWE h is output h·N + i). */
  readonly bodies: Uint32Array;
}

/**
 * Encrypts the integers `values` (length layout.dIn, |x| ≤ layout.inputBound) for a product with that layout.
 * The per-token quantization is the caller's: pass centred integers x_q − zero_point so that no zero-point
 * correction needs the weights.
 */
export function encryptVector(clientKey: ClientKey, values: ArrayLike<number>, layout: MatVecLayout): InputCiphertext {
  const params = clientKey.params;
  const n = params.polynomialSize;
  if (values.length !== layout.dIn) {
    throw new GlweParameterError(`encryptVector: ${values.length} values for a layout with d_in = ${layout.dIn}`);
  }
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (!Number.isInteger(x) || Math.abs(x) > layout.inputBound) {
      throw new GlweParameterError(`encryptVector: value ${i} = ${x} is not an integer within ±${layout.inputBound} (the bound the weights' messageBits was sized for)`);
    }
  }
  const seed = randomSeed(clientKey.rng);
  const masks = seededStream(seed);
  const log2Delta = 64 - layout.messageBits;
  const limb = Math.floor(log2Delta / 16);
  const scale = 2 ** (log2Delta - 16 * limb);
  const shift = 64 - params.inputBodyBits; // ≤ 32
  const half = 2 ** (shift - 1);
  const step = 2 ** shift;
  const hiScale = 2 ** (32 - shift);
  const wrap = 2 ** params.inputBodyBits;
  const bodies = new Float64Array(layout.chunks * n);
  const mask = new Uint32Array(2 * n);
  const out = new Uint32Array(2 * n);
  const msg = new Float64Array(n);
  const noise = new Float64Array(n);
  for (let c = 0; c < layout.chunks; c++) {
    masks.fillU64(mask, 0, n);
    msg.fill(0);
    const base = c * layout.chunkLen;
    for (let i = 0; i < layout.chunkLen && base + i < layout.dIn; i++) msg[i] = values[base + i]!;
    tuniform(clientKey.rng, params.noiseBoundLog2, noise);
    mulBinaryKey(mask, clientKey.inputKeySpectrum, out, 4, { values: msg, limb, scale }, noise);
    for (let i = 0; i < n; i++) {
      const r = Math.floor((out[2 * i]! + half) / step); // rounded low part, 0..2^(32−shift)
      bodies[c * n + i] = (out[2 * i + 1]! * hiScale + r) % wrap;
    }
  }
  return {
    params,
    dIn: layout.dIn,
    chunkLen: layout.chunkLen,
    chunks: layout.chunks,
    messageBits: layout.messageBits,
    seed,
    bodies,
  };
}

/** Decrypts a packed result: the dOut integers W·x (+ bias), each within the documented error bound. */
export function decryptVector(clientKey: ClientKey, result: MatVecResult): Int32Array {
  const phases = decryptPhases(clientKey, result);
  const msgMod = 2 ** result.messageBits;
  const y = new Int32Array(result.dOut);
  for (let o = 0; o < y.length; o++) {
    let v = Math.round(phases[o]!) % msgMod;
    if (v >= msgMod / 2) v -= msgMod;
    if (v < -msgMod / 2) v += msgMod;
    y[o] = v;
  }
  return y;
}

/**
 * The unrounded decryptions (phase / Δ', signed, in accumulator units): W·x + bias + error, for noise
 * measurements (bench/glwe.ts); the error is what docs/glwe.md models.
 */
export function decryptPhases(clientKey: ClientKey, result: MatVecResult): Float64Array {
  const params = clientKey.params;
  if (result.params.code !== params.code) {
    throw new GlweParameterError(`decryptVector: result of parameter set ${result.params.name}, key of ${params.name}`);
  }
  const n = params.polynomialSize;
  const bits = params.outputBits;
  const mod = 2 ** bits;
  const glwes = Math.ceil(result.dOut / n);
  if (result.masks.length !== glwes * n || result.bodies.length !== result.dOut) {
    throw new GlweParameterError(`decryptVector: ${result.masks.length} mask and ${result.bodies.length} body values for d_out = ${result.dOut}`);
  }
  const step = 2 ** (bits - result.messageBits);
  const y = new Float64Array(result.dOut);
  const a = new Uint32Array(2 * n);
  const prod = new Uint32Array(2 * n);
  for (let h = 0; h < glwes; h++) {
    for (let i = 0; i < n; i++) a[2 * i] = result.masks[h * n + i]!;
    mulBinaryKey(a, clientKey.outputKeySpectrum, prod, 2);
    const count = Math.min(n, result.dOut - h * n);
    for (let i = 0; i < count; i++) {
      const lowBits = prod[2 * i]! % mod; // (A·S') mod 2^bits (bits ≤ 32)
      let phase = (result.bodies[h * n + i]! - lowBits) % mod;
      if (phase < 0) phase += mod;
      if (phase >= mod / 2) phase -= mod;
      y[h * n + i] = phase / step;
    }
  }
  return y;
}
