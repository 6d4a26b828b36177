/**
 * Programmable bootstrapping: modulus switch, blind rotation (CMUX = external product with one
 * GGSW of the bootstrapping key per small-key bit), sample extraction.
 *
 * The accumulator lives in float64 as signed torus values in [−2^63, 2^63]: after every external
 * product it is reduced modulo 2^64, and the digits of the next decomposition depend only on its top
 * pbsLevel·pbsBaseLog bits (≤ 53), which float64 holds exactly enough (see torus.ts).
 *
 * Bootstrapping-key layout (reference, "Seeded keys"): GGSW i (one per small-key bit), then level
 * index li (li = 0 is the *smallest* gadget 2^(64 − B·L)), then row r ∈ [0, k] ((k+1) rows), each
 * row a GLWE of k mask polynomials (from the AES-CTR stream) and one body polynomial (stored).
 * Row r < k has phase −s_i·g·S_r(X), row k has phase s_i·g.
 */
import { AesCtrStream } from './csprng.js';
import { NegacyclicFft } from './fft.js';
import type { CompressedServerKeyFields, ModulusSwitchKind } from './layouts.js';
import type { NativeKernel } from './native.js';
import { ROUND_MAGIC, TWO_64, signedToWords, wordsToSigned } from './torus.js';

export interface FourierBootstrapKey {
  /**
   * For GGSW i, input row q = li·(k+1) + r, output polynomial c: N float64 at
   * ((i·Q + q)·(k+1) + c)·N — M real parts then M imaginary parts (bit-reversed frequency order).
   */
  readonly data: Float64Array;
  readonly inputDimension: number;
  readonly glweDimension: number;
  readonly polynomialSize: number;
  readonly baseLog: number;
  readonly level: number;
  /**
   * Frequency order of every N-slot: 'shared' — the bit-reversed order of this file's FFT (what expandBootstrapKey
   * computes); 'fftw' — FFTW's natural order, which the native kernel's FFTW transform reads without a per-product
   * permutation (reordered once, by ServerKey, with NativeKernel.fftwKeyOrder).
   */
  readonly order: 'shared' | 'fftw';
}

/** Regenerate the masks, then transform every polynomial of the key once into the Fourier domain. */
export function expandBootstrapKey(f: CompressedServerKeyFields['bsk'], fft: NegacyclicFft, shared = false): FourierBootstrapKey {
  const N = f.polynomialSize;
  const k1 = f.glweSize;
  const k = k1 - 1;
  const L = f.level;
  const M = N / 2;
  const n = f.bodies.length / 2 / (L * k1 * N);
  const bytes = n * L * k1 * k1 * N * 8;
  const data = new Float64Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  const stream = new AesCtrStream(f.seed);
  const maskWords = new Uint32Array(2 * k * N);
  const poly = new Float64Array(N);
  for (let i = 0; i < n; i++) {
    for (let li = 0; li < L; li++) {
      for (let r = 0; r < k1; r++) {
        const q = li * k1 + r;
        stream.fillU64(maskWords, 0, k * N);
        for (let c = 0; c < k1; c++) {
          if (c < k) {
            for (let j = 0; j < N; j++) poly[j] = wordsToSigned(maskWords[2 * (c * N + j)]!, maskWords[2 * (c * N + j) + 1]!);
          } else {
            const b = ((i * L + li) * k1 + r) * N;
            for (let j = 0; j < N; j++) poly[j] = wordsToSigned(f.bodies[2 * (b + j)]!, f.bodies[2 * (b + j) + 1]!);
          }
          const off = ((i * L * k1 + q) * k1 + c) * N;
          fft.forward(poly, 0, data, off, off + M);
        }
      }
    }
  }
  return { data, inputDimension: n, glweDimension: k, polynomialSize: N, baseLog: f.baseLog, level: L, order: 'shared' };
}

/**
 * Modulus switch of a (signed float64) small-key LWE to Z/2N. With the centered-mean correction
 * (the 'CenteredMean' mode of the named sets, facts from TFHE-rs 1.7 modulus_switch.rs) the body
 * gets Σ (round(a_i) − a_i)/2 − half_step added first: it removes the mean of the mask rounding error
 * (whose contribution is Σ err_i·s_i with s_i ∈ {0, 1}) and centres the rounding on the LUT boxes.
 */
export function modulusSwitch(lwe: Float64Array, n: number, log2N2: number, kind: ModulusSwitchKind, outMask: Int32Array): number {
  const toStep = 2 ** (log2N2 - 64);
  const step = 2 ** (64 - log2N2);
  const mod = 2 ** log2N2;
  let correction = 0;
  for (let i = 0; i < n; i++) {
    const a = lwe[i]!;
    const q = (a * toStep + ROUND_MAGIC) - ROUND_MAGIC;
    outMask[i] = ((q % mod) + mod) % mod;
    correction += q * step - a;
  }
  let body = lwe[n]!;
  if (kind === 'centered-mean') body += correction / 2 - step / 2;
  const qb = (body * toStep + ROUND_MAGIC) - ROUND_MAGIC;
  return ((qb % mod) + mod) % mod;
}

/** Scratch space and the blind-rotation loop for one key (one instance per thread). */
export class BlindRotator {
  private readonly N: number;
  private readonly k1: number;
  private readonly acc: Float64Array;
  private readonly diff: Float64Array;
  private readonly digit: Float64Array;
  /** Fourier digits, one N-slot (re | im) per input row q. */
  private readonly digF: Float64Array;
  /** Fourier accumulators of the external product, one N-slot per output polynomial. */
  private readonly outF: Float64Array;

  constructor(
    readonly bsk: FourierBootstrapKey,
    readonly fft: NegacyclicFft,
    /** If given, the whole loop runs in the native kernel (same algorithm, same layouts). */
    readonly native: NativeKernel | null = null,
  ) {
    if (bsk.order !== 'shared' && !native) throw new Error('BlindRotator: a Fourier key in FFTW order needs the native kernel');
    const N = bsk.polynomialSize;
    const k1 = bsk.glweDimension + 1;
    this.N = N;
    this.k1 = k1;
    this.acc = new Float64Array(k1 * N);
    this.diff = new Float64Array(k1 * N);
    this.digit = new Float64Array(N);
    this.digF = new Float64Array(bsk.level * k1 * N);
    this.outF = new Float64Array(k1 * N);
  }

  /**
   * acc ← T·X^{−b̃}, then for each i with ã_i ≠ 0: acc ← acc + ExtProd(BSK_i, X^{ã_i}·acc − acc),
   * which multiplies acc by X^{ã_i·s_i}. Ends with acc = T·X^{−(b̃ − Σ ã_i s_i)} (+ noise).
   */
  rotate(lut: Float64Array, mask: Int32Array, body: number): Float64Array {
    const { N, k1, acc } = this;
    if (this.native) {
      this.runNative(lut, mask, Int32Array.of(body), acc, 1);
      return acc;
    }
    const N2 = 2 * N;
    acc.fill(0, 0, (k1 - 1) * N);
    rotateInto(lut, 0, (N2 - body) % N2, acc, (k1 - 1) * N, N);
    for (let i = 0; i < this.bsk.inputDimension; i++) {
      const a = mask[i]!;
      if (a !== 0) this.cmux(i, a);
    }
    return acc;
  }

  private runNative(luts: Float64Array, masks: Int32Array, bodies: Int32Array, accs: Float64Array, batch: number): void {
    const { data, inputDimension, glweDimension, baseLog, level } = this.bsk;
    const f = this.fft;
    this.native!.blindRotate(data, luts, masks, bodies, accs, batch, inputDimension, glweDimension, this.N, baseLog, level, f.twRe, f.twIm, f.stRe, f.stIm, this.bsk.order === 'fftw' ? 1 : 0);
  }

  /**
   * Blind rotation of several ciphertexts: luts (batch×N), masks (batch×n), bodies. The native
   * kernel applies each GGSW to the whole batch before the next, so the Fourier key streams from
   * memory once per batch; results are identical to one rotate() per ciphertext. Returns the
   * accumulators, batch×(k+1)N.
   */
  rotateBatch(luts: Float64Array, masks: Int32Array, bodies: Int32Array): Float64Array {
    const batch = bodies.length;
    const size = this.k1 * this.N;
    const accs = new Float64Array(batch * size);
    if (this.native) {
      this.runNative(luts, masks, bodies, accs, batch);
      return accs;
    }
    const n = this.bsk.inputDimension;
    for (let b = 0; b < batch; b++) {
      const acc = this.rotate(luts.subarray(b * this.N, (b + 1) * this.N), masks.subarray(b * n, (b + 1) * n), bodies[b]!);
      accs.set(acc, b * size);
    }
    return accs;
  }

  private cmux(i: number, a: number): void {
    const { N, k1, acc, diff, digit, digF, outF, fft } = this;
    const { baseLog: B, level: L, data: bsk } = this.bsk;
    const M = N / 2;
    // diff = X^a·acc − acc, per polynomial.
    for (let r = 0; r < k1; r++) rotateSubInto(acc, r * N, a, diff, r * N, N);
    // Balanced decomposition of every coefficient, digit polynomials to the Fourier domain.
    const toTop = 2 ** (B * L - 64);
    const base = 2 ** B;
    const invBase = 1 / base;
    for (let r = 0; r < k1; r++) {
      const off = r * N;
      // Level li = 0 is the least significant digit: decompose L times, peeling digits off q.
      for (let li = 0; li < L; li++) {
        for (let j = 0; j < N; j++) {
          let q: number;
          if (li === 0) {
            q = (diff[off + j]! * toTop + ROUND_MAGIC) - ROUND_MAGIC;
          } else {
            q = diff[off + j]!; // holds the remaining quotient from the previous level
          }
          const d = q - base * ((q * invBase + ROUND_MAGIC) - ROUND_MAGIC);
          digit[j] = d;
          diff[off + j] = (q - d) * invBase;
        }
        const slot = (li * k1 + r) * N;
        fft.forward(digit, 0, digF, slot, slot + M);
      }
    }
    // outF[c] = Σ_q digF[q] ⊙ BSK[i][q][c]
    const Q = L * k1;
    const keyBase = i * Q * k1 * N;
    for (let c = 0; c < k1; c++) {
      const o = c * N;
      for (let q = 0; q < Q; q++) {
        const dq = q * N;
        const kq = keyBase + (q * k1 + c) * N;
        if (q === 0) {
          for (let j = 0; j < M; j++) {
            const dr = digF[dq + j]!, di = digF[dq + M + j]!;
            const br = bsk[kq + j]!, bi = bsk[kq + M + j]!;
            outF[o + j] = dr * br - di * bi;
            outF[o + M + j] = dr * bi + di * br;
          }
        } else {
          for (let j = 0; j < M; j++) {
            const dr = digF[dq + j]!, di = digF[dq + M + j]!;
            const br = bsk[kq + j]!, bi = bsk[kq + M + j]!;
            outF[o + j] += dr * br - di * bi;
            outF[o + M + j] += dr * bi + di * br;
          }
        }
      }
      fft.inverse(outF, o, o + M, acc, o, true);
    }
    // Back to [−2^63, 2^63].
    for (let j = 0; j < k1 * N; j++) {
      const v = acc[j]!;
      acc[j] = v - TWO_64 * ((v / TWO_64 + ROUND_MAGIC) - ROUND_MAGIC);
    }
  }
}

/** dst = X^a · src (negacyclic, a ∈ [0, 2N)). */
export function rotateInto(src: Float64Array, so: number, a: number, dst: Float64Array, d0: number, N: number): void {
  let sign = 1;
  if (a >= N) {
    a -= N;
    sign = -1;
  }
  for (let j = 0; j < N - a; j++) dst[d0 + j + a] = sign * src[so + j]!;
  for (let j = N - a; j < N; j++) dst[d0 + j + a - N] = -sign * src[so + j]!;
}

/** dst = X^a · src − src (negacyclic, a ∈ [1, 2N)). */
function rotateSubInto(src: Float64Array, so: number, a: number, dst: Float64Array, d0: number, N: number): void {
  let sign = 1;
  if (a >= N) {
    a -= N;
    sign = -1;
  }
  for (let j = 0; j < N - a; j++) dst[d0 + j + a] = sign * src[so + j]! - src[so + j + a]!;
  for (let j = N - a; j < N; j++) dst[d0 + j + a - N] = -sign * src[so + j]! - src[so + j + a - N]!;
}

/**
 * Sample extraction of the constant coefficient: an LWE of dimension k·N under the flattened GLWE
 * key: a'[rN] = A_r[0], a'[rN + j] = −A_r[N − j], body = B[0]. Returns (lo, hi) words.
 */
export function sampleExtract(acc: Float64Array, k: number, N: number): Uint32Array {
  const out = new Uint32Array(2 * (k * N + 1));
  for (let r = 0; r < k; r++) {
    const o = r * N;
    signedToWords(acc[o]!, out, o);
    for (let j = 1; j < N; j++) signedToWords(-acc[o + N - j]!, out, o + j);
  }
  signedToWords(acc[k * N]!, out, k * N);
  return out;
}
