/**
 * Server side, once per model: integer weights → the Fourier-domain plaintext polynomials the product needs.
 * For block g (output rows g·R .. g·R + R − 1) and input piece c, the polynomial has w[gR + r][c·L + i] at
 * coefficient r·L + L − 1 − i (L = chunkLen); its spectrum (N/2 complex values as N f64) is stored once.
 */
import { GlweParameterError } from './errors.js';
import { messageBitsFor, planMatVec, type MatVecLayout } from './layout.js';
import type { GlweParams } from './params.js';
import { fftPlan } from './poly.js';

export interface TransformedWeights {
  readonly params: GlweParams;
  readonly layout: MatVecLayout;
  /** (g·chunks + c)·N: spectrum of the plaintext polynomial of block g, piece c. */
  readonly spectra: Float64Array;
  /** Σ_i |w[o][i]| per output row: with inputBound, the worst case |y| that bias additions are checked against. */
  readonly rowAbsSum: Float64Array;
  /** Σ_i w[o][i]² per row (the noise model's weight norm). */
  readonly rowSqSum: Float64Array;
}

export interface TransformOptions {
  /** Largest |x| the client will encrypt (default 255: centred uint8, x_q − zero_point). */
  inputBound?: number;
  /** Largest |bias| (in accumulator units) the server will add (default 0). */
  maxAbsBias?: number;
}

/**
 * Transforms a row-major d_out × d_in integer matrix (PyTorch Linear layout [out, in]; a GPT-2 Conv1D weight is
 * stored [in, out] and must be transposed first) with entries in −128..127 (per-output-channel symmetric int8).
 */
export function transformWeights(
  params: GlweParams,
  weights: ArrayLike<number>,
  dOut: number,
  dIn: number,
  options: TransformOptions = {},
): TransformedWeights {
  const inputBound = options.inputBound ?? 255;
  const maxAbsBias = options.maxAbsBias ?? 0;
  if (weights.length !== dOut * dIn) {
    throw new GlweParameterError(`transformWeights: ${weights.length} weights for a ${dOut} × ${dIn} matrix`);
  }
  if (!Number.isInteger(inputBound) || inputBound < 1 || inputBound > 1 << 15) {
    throw new GlweParameterError(`transformWeights: inputBound = ${inputBound}: expected an integer in 1..32768`);
  }
  const rowAbsSum = new Float64Array(dOut);
  const rowSqSum = new Float64Array(dOut);
  let worstRow = 0;
  for (let o = 0; o < dOut; o++) {
    let s = 0;
    let q = 0;
    for (let i = 0; i < dIn; i++) {
      const w = weights[o * dIn + i]!;
      if (!Number.isInteger(w) || w < -128 || w > 127) {
        throw new GlweParameterError(`transformWeights: weight [${o}, ${i}] = ${w} is not an int8 integer`);
      }
      s += Math.abs(w);
      q += w * w;
    }
    rowAbsSum[o] = s;
    rowSqSum[o] = q;
    if (s > worstRow) worstRow = s;
  }
  const messageBits = messageBitsFor(worstRow * inputBound + maxAbsBias);
  if (messageBits > params.outputBits - 2) {
    throw new GlweParameterError(`transformWeights: worst-case |y| needs ${messageBits} bits, more than the ${params.outputBits - 2} the output precision allows`);
  }
  const layout = planMatVec(params, dIn, dOut, messageBits, inputBound);
  const n = params.polynomialSize;
  const fft = fftPlan(n);
  const { chunks, chunkLen: L, perProduct: R, blocks } = layout;
  const spectra = new Float64Array(blocks * chunks * n);
  const poly = new Float64Array(n);
  for (let g = 0; g < blocks; g++) {
    for (let c = 0; c < chunks; c++) {
      poly.fill(0);
      for (let r = 0; r < R; r++) {
        const o = g * R + r;
        if (o >= dOut) break;
        for (let i = 0; i < L; i++) {
          const col = c * L + i;
          if (col >= dIn) break;
          poly[r * L + L - 1 - i] = weights[o * dIn + col]!;
        }
      }
      const off = (g * chunks + c) * n;
      fft.forward(poly, 0, spectra, off, off + fft.m);
    }
  }
  return { params, layout, spectra, rowAbsSum, rowSqSum };
}
