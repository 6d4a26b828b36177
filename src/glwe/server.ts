/**
 * Server side, per call: encrypted vector × transformed weights → packed, modulus-switched result GLWEs.
 *
 * 1. Input spectra: each input GLWE's mask (regenerated from the seed) and body, FFT'd once (2 FFTs per piece).
 * 2. Products: for each block of R output rows, Σ_c FFT(A_c)·Ŵ_{g,c} and Σ_c FFT(B_c)·Ŵ_{g,c}, one inverse FFT
 *    each; row r's result is the LWE extracted at coefficient r·L + L − 1 (mask a'_j = ±P_a[p − j]).
 * 3. Packing keyswitch, evaluated transposed in the Fourier domain: for every key coefficient j and digit level l,
 *    the polynomial D_{j,l}(X) = Σ_i digit_l(a'^(i)_j)·X^i over the N outputs i of a result GLWE is FFT'd and
 *    multiplied with the packing GLWE K_{j,l} (mask and body spectra); result = (−Σ D·K_a, Σ_i b'_i X^i − Σ D·K_b).
 *    Its mask is a sum of packing-key masks weighted by decomposition digits: not a linear function of the weights
 *    over masks the client knows (docs/glwe.md, tests/glwe/leak.test.ts).
 * 4. Modulus switch of every result coefficient to `outputBits` bits.
 *
 * Arithmetic is the approximate torus form of src/tfhe (signed values in float64): the FFT's rounding error is
 * noise, budgeted and measured (docs/glwe.md). The native kernel runs steps 1–4 in C (native/glwe.c, threads over
 * output blocks and over j, FFTW for step 3); the TypeScript oracle is this file. Which one runs follows the prepared
 * key (prepareEvaluationKey's `kernel`).
 */
import { GlweParameterError } from './errors.js';
import type { InputCiphertext, MatVecResult } from './client.js';
import { wordToSigned, type PreparedEvaluationKey } from './keys.js';
import type { TransformedWeights } from './weights.js';
import { fftPlan } from './poly.js';
import { seededStream } from './random.js';
import { requireGlweKernel } from './native.js';
import { ROUND_MAGIC, TWO_64 } from '../tfhe/torus.js';

export interface MatVecOptions {
  /**
   * Integers added to the outputs (length d_out, in accumulator units: round(bias / (s_x·s_w)) for the client's
   * per-token scale s_x). |bias| + rowAbsSum·inputBound must stay within the layout's messageBits.
   */
  bias?: ArrayLike<number>;
  /** Worker threads of the native kernel (default 1). */
  threads?: number;
  /**
   * 'auto' (default: the kernel the key was prepared for), 'native' or 'typescript' — a key prepared for the other
   * kernel is refused (its spectra are in another frequency order).
   */
  kernel?: 'auto' | 'native' | 'typescript';
}

const round = (x: number): number => (x + ROUND_MAGIC) - ROUND_MAGIC; // ties to even, like C rint (|x| < 2^51)
const reduce64 = (v: number): number => v - TWO_64 * round(v / TWO_64);

/** Checks the ciphertext against the weights' layout and the key's parameters (before any work). */
function checkInputs(key: PreparedEvaluationKey, tw: TransformedWeights, ct: InputCiphertext, bias?: ArrayLike<number>): void {
  const l = tw.layout;
  if (key.params.code !== tw.params.code || ct.params.code !== tw.params.code) {
    throw new GlweParameterError(`serverMatVec: parameter sets disagree (key ${key.params.name}, weights ${tw.params.name}, ciphertext ${ct.params.name})`);
  }
  if (ct.dIn !== l.dIn || ct.chunkLen !== l.chunkLen || ct.chunks !== l.chunks || ct.messageBits !== l.messageBits) {
    throw new GlweParameterError(
      `serverMatVec: ciphertext declares d_in ${ct.dIn} (${ct.chunks} × ${ct.chunkLen}, ${ct.messageBits}-bit messages); ` +
        `the matrix expects d_in ${l.dIn} (${l.chunks} × ${l.chunkLen}, ${l.messageBits}-bit messages)`,
    );
  }
  if (ct.bodies.length !== ct.chunks * tw.params.polynomialSize) {
    throw new GlweParameterError(`serverMatVec: ${ct.bodies.length} bodies for ${ct.chunks} input GLWEs`);
  }
  if (bias) {
    if (bias.length !== l.dOut) throw new GlweParameterError(`serverMatVec: bias of length ${bias.length} for d_out = ${l.dOut}`);
    const limit = 2 ** (l.messageBits - 1);
    for (let o = 0; o < l.dOut; o++) {
      const b = bias[o]!;
      if (!Number.isInteger(b) || Math.abs(b) + tw.rowAbsSum[o]! * l.inputBound >= limit) {
        throw new GlweParameterError(`serverMatVec: bias[${o}] = ${b} is not an integer or overflows the ${l.messageBits}-bit plaintext (set maxAbsBias in transformWeights)`);
      }
    }
  }
}

/** Input masks and bodies as signed torus values (chunks·N each). */
function inputPolynomials(ct: InputCiphertext): { a: Float64Array; b: Float64Array } {
  const n = ct.params.polynomialSize;
  const total = ct.chunks * n;
  const words = new Uint32Array(2 * total);
  seededStream(ct.seed).fillU64(words, 0, total);
  const a = new Float64Array(total);
  const b = new Float64Array(total);
  const bits = ct.params.inputBodyBits;
  const wrap = 2 ** bits;
  const up = 2 ** (64 - bits);
  for (let i = 0; i < total; i++) {
    a[i] = wordToSigned(words[2 * i]!, words[2 * i + 1]!);
    const v = ct.bodies[i]!;
    if (!(v >= 0 && v < wrap && Number.isInteger(v))) throw new GlweParameterError(`serverMatVec: body ${i} is not a ${bits}-bit integer`);
    b[i] = (v >= wrap / 2 ? v - wrap : v) * up;
  }
  return { a, b };
}

/** Bias in torus units (bias·Δ mod 2^64, signed), or zeros. */
function biasTorus(tw: TransformedWeights, bias?: ArrayLike<number>): Float64Array {
  const out = new Float64Array(tw.layout.dOut);
  if (bias) {
    const delta = 2 ** (64 - tw.layout.messageBits);
    for (let o = 0; o < out.length; o++) out[o] = reduce64(bias[o]! * delta);
  }
  return out;
}

/** The encrypted matrix-vector product (see the module comment). */
export function serverMatVec(
  key: PreparedEvaluationKey,
  tw: TransformedWeights,
  ct: InputCiphertext,
  options: MatVecOptions = {},
): MatVecResult {
  checkInputs(key, tw, ct, options.bias);
  const kernel = options.kernel ?? 'auto';
  if (kernel !== 'auto' && kernel !== key.kernel) {
    throw new GlweParameterError(`serverMatVec: kernel '${kernel}' asked for, but the key was prepared for the ${key.kernel} kernel (prepareEvaluationKey(key, { kernel: '${kernel}' }))`);
  }
  const native = key.kernel === 'native' ? requireGlweKernel() : null;
  const { a, b } = inputPolynomials(ct);
  const biasT = biasTorus(tw, options.bias);
  const n = tw.params.polynomialSize;
  const l = tw.layout;
  const masks = new Uint32Array(l.outputGlwes * n);
  const bodies = new Uint32Array(l.dOut);
  if (native) {
    const fft = fftPlan(n);
    native.matvec(
      a, b, tw.spectra, key.spectra, biasT, masks, bodies,
      [n, l.dIn, l.dOut, l.chunkLen, l.chunks, tw.params.packingBaseLog, tw.params.packingLevel, tw.params.outputBits, Math.max(1, options.threads ?? 1)],
      fft.twRe, fft.twIm, fft.stRe, fft.stIm,
    );
  } else {
    matVecTs(key, tw, a, b, biasT, masks, bodies);
  }
  return { params: tw.params, dOut: l.dOut, messageBits: l.messageBits, masks, bodies };
}

/** The TypeScript oracle of steps 1–4. */
function matVecTs(
  key: PreparedEvaluationKey,
  tw: TransformedWeights,
  a: Float64Array,
  b: Float64Array,
  biasT: Float64Array,
  masks: Uint32Array,
  bodies: Uint32Array,
): void {
  const n = tw.params.polynomialSize;
  const fft = fftPlan(n);
  const m = fft.m;
  const { chunks, chunkLen: L, perProduct: R, dOut, outputGlwes } = tw.layout;
  const level = tw.params.packingLevel;
  const baseLog = tw.params.packingBaseLog;
  const base = 2 ** baseLog;
  const invBase = 1 / base;
  const toTop = 2 ** (baseLog * level - 64);
  // 1. input spectra
  const inSpec = new Float64Array(2 * chunks * n);
  for (let c = 0; c < chunks; c++) {
    fft.forward(a, c * n, inSpec, 2 * c * n, 2 * c * n + m);
    fft.forward(b, c * n, inSpec, (2 * c + 1) * n, (2 * c + 1) * n + m);
  }
  const accA = new Float64Array(n);
  const accB = new Float64Array(n);
  const pa = new Float64Array(n);
  const pb = new Float64Array(n);
  const outScale = 2 ** (64 - tw.params.outputBits);
  const outMod = 2 ** tw.params.outputBits;
  const modSwitch = (v: number): number => {
    let r = round(reduce64(v) / outScale) % outMod;
    if (r < 0) r += outMod;
    return r;
  };
  for (let h = 0; h < outputGlwes; h++) {
    const first = h * n;
    const count = Math.min(n, dOut - first);
    const g0 = Math.floor(first / R);
    const g1 = Math.floor((first + count - 1) / R);
    const nb = g1 - g0 + 1;
    // 2. products of the blocks feeding this result GLWE; digits of their masks, bodies of the extracted LWEs
    const digits = new Float64Array(nb * level * n);
    const bPrime = new Float64Array(count);
    for (let g = g0; g <= g1; g++) {
      accA.fill(0);
      accB.fill(0);
      for (let c = 0; c < chunks; c++) {
        const w = tw.spectra.subarray((g * chunks + c) * n, (g * chunks + c + 1) * n);
        const xa = 2 * c * n;
        const xb = (2 * c + 1) * n;
        for (let j = 0; j < m; j++) {
          const wr = w[j]!, wi = w[m + j]!;
          let xr = inSpec[xa + j]!, xi = inSpec[xa + m + j]!;
          accA[j] += xr * wr - xi * wi;
          accA[m + j] += xr * wi + xi * wr;
          xr = inSpec[xb + j]!;
          xi = inSpec[xb + m + j]!;
          accB[j] += xr * wr - xi * wi;
          accB[m + j] += xr * wi + xi * wr;
        }
      }
      fft.inverse(accA, 0, m, pa, 0, false);
      fft.inverse(accB, 0, m, pb, 0, false);
      const dOff = (g - g0) * level * n;
      for (let i = 0; i < n; i++) {
        let q = round(reduce64(pa[i]!) * toTop);
        for (let t = 0; t < level; t++) {
          const d = q - base * Math.floor(q * invBase + 0.5); // digits in [−base/2, base/2): int16 in C
          digits[dOff + t * n + i] = d;
          q = (q - d) * invBase;
        }
      }
      for (let r = 0; r < R; r++) {
        const o = g * R + r;
        if (o < first || o >= first + count) continue;
        bPrime[o - first] = reduce64(pb[r * L + L - 1]! + biasT[o]!);
      }
    }
    // 3. transposed packing keyswitch; two Fourier accumulators: mask, body
    const acc = Array.from({ length: 2 }, () => new Float64Array(n));
    const dPoly = new Float64Array(n);
    const dSpec = new Float64Array(n);
    const blk = new Int32Array(count);
    const pos = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const o = first + i;
      const g = Math.floor(o / R);
      blk[i] = (g - g0) * level * n;
      pos[i] = (o - g * R) * L + L - 1;
    }
    for (let j = 0; j < n; j++) {
      for (let t = 0; t < level; t++) {
        dPoly.fill(0);
        for (let i = 0; i < count; i++) {
          const p = pos[i]!;
          const src = blk[i]! + t * n;
          dPoly[i] = j <= p ? digits[src + p - j]! : -digits[src + n + p - j]!;
        }
        fft.forward(dPoly, 0, dSpec, 0, m);
        const k = 2 * n * (j * level + t);
        const ks = key.spectra;
        for (let part = 0; part < 2; part++) {
          const a = acc[part]!;
          const kp = k + part * n;
          for (let x = 0; x < m; x++) {
            const dr = dSpec[x]!, di = dSpec[m + x]!;
            const kr = ks[kp + x]!, ki = ks[kp + m + x]!;
            a[x] += dr * kr - di * ki;
            a[m + x] += dr * ki + di * kr;
          }
        }
      }
    }
    // 4. result (−Σ D·K_a, b' − Σ D·K_b), modulus-switched
    fft.inverse(acc[0]!, 0, m, pa, 0, false);
    fft.inverse(acc[1]!, 0, m, pb, 0, false);
    for (let i = 0; i < n; i++) masks[first + i] = modSwitch(-pa[i]!);
    for (let i = 0; i < count; i++) bodies[first + i] = modSwitch(bPrime[i]! - pb[i]!);
  }
}
