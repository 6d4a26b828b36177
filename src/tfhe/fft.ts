/**
 * Negacyclic FFT over R[X]/(X^N + 1) with N real coefficients folded into N/2 complex values.
 *
 * Why it works: X^N + 1 = (X^{N/2} − i)(X^{N/2} + i). For a real polynomial a = a_lo + X^{N/2} a_hi,
 * reducing modulo X^{N/2} − i gives the complex polynomial a_lo + i·a_hi (degree < N/2); the other
 * factor gives its conjugate, so nothing is lost. The roots of X^{N/2} − i are ω·ζ^m with
 * ω = e^{iπ/N} and ζ = e^{2πi/(N/2)}, so evaluating there is a plain size-N/2 DFT of the
 * "twisted" sequence (a_j + i·a_{j+N/2})·ω^j. Products of polynomials become pointwise products,
 * and the inverse untwists by ω^{−j} and unfolds real/imaginary parts back into the two halves.
 *
 * The forward transform is a decimation-in-frequency FFT that leaves its output in bit-reversed
 * order, and the inverse a decimation-in-time FFT that takes bit-reversed input: the frequency
 * order never matters for pointwise products, so no permutation is ever done. The bootstrapping
 * key is transformed with the same plan, so it is stored in the same order.
 *
 * Precision: inputs are integers up to 2^63 (key) and small digits (≤ 2^22); float64 keeps the
 * product's top 53 bits, an error of ≈ 2^39 on a torus of 2^64, below the PBS noise (≈ 2^49).
 */

export class NegacyclicFft {
  /** Complex size M = N/2. */
  readonly m: number;
  /** Twist factors ω^j = e^{iπj/N}, j < M. */
  readonly twRe: Float64Array;
  readonly twIm: Float64Array;
  /** Stage twiddles e^{−2πij/len} of the stage of span len, stored at offset len/2 (j < len/2). */
  readonly stRe: Float64Array;
  readonly stIm: Float64Array;

  constructor(readonly n: number) {
    if (n < 4 || (n & (n - 1)) !== 0) throw new Error(`FFT size ${n} must be a power of two ≥ 4`);
    const m = n / 2;
    this.m = m;
    this.twRe = new Float64Array(m);
    this.twIm = new Float64Array(m);
    for (let j = 0; j < m; j++) {
      const t = (Math.PI * j) / n;
      this.twRe[j] = Math.cos(t);
      this.twIm[j] = Math.sin(t);
    }
    // Stage twiddles e^{−2πi j/len} for len = 2, 4, …, M stored at offset len/2 .. len−1.
    this.stRe = new Float64Array(m);
    this.stIm = new Float64Array(m);
    for (let len = 2; len <= m; len *= 2) {
      const half = len / 2;
      for (let j = 0; j < half; j++) {
        const t = (-2 * Math.PI * j) / len;
        this.stRe[half + j] = Math.cos(t);
        this.stIm[half + j] = Math.sin(t);
      }
    }
  }

  /**
   * Forward transform of the real polynomial `src[srcOff .. srcOff+N)` into `dst`: M real parts at
   * `dst[reOff ..]`, M imaginary parts at `dst[imOff ..]`.
   */
  forward(src: Float64Array, srcOff: number, dst: Float64Array, reOff: number, imOff: number): void {
    const m = this.m;
    const twRe = this.twRe;
    const twIm = this.twIm;
    for (let j = 0; j < m; j++) {
      const x = src[srcOff + j]!;
      const y = src[srcOff + j + m]!;
      const c = twRe[j]!;
      const s = twIm[j]!;
      dst[reOff + j] = x * c - y * s;
      dst[imOff + j] = x * s + y * c;
    }
    this.difInPlace(dst, reOff, imOff);
  }

  /**
   * Inverse transform of the spectrum in `buf` (real parts at reOff, imaginary at imOff; destroyed)
   * into the real polynomial `dst[dstOff .. dstOff+N)`; `accumulate` adds instead of overwriting.
   */
  inverse(buf: Float64Array, reOff: number, imOff: number, dst: Float64Array, dstOff: number, accumulate: boolean): void {
    const m = this.m;
    this.ditInPlace(buf, reOff, imOff);
    const scale = 1 / m;
    const twRe = this.twRe;
    const twIm = this.twIm;
    for (let j = 0; j < m; j++) {
      const x = buf[reOff + j]! * scale;
      const y = buf[imOff + j]! * scale;
      const c = twRe[j]!;
      const s = twIm[j]!;
      // multiply by conj(ω^j) = c − i s
      const a = x * c + y * s;
      const b = y * c - x * s;
      if (accumulate) {
        dst[dstOff + j] += a;
        dst[dstOff + j + m] += b;
      } else {
        dst[dstOff + j] = a;
        dst[dstOff + j + m] = b;
      }
    }
  }

  /**
   * Decimation in frequency, natural order in, bit-reversed out. Radix-2 stages are applied two at
   * a time (stage len then len/2 on four points held in locals): each point sees exactly the same
   * floating-point operations as with one stage per pass, with half the memory passes. The C kernel
   * does the same, which keeps the two bit-identical.
   */
  private difInPlace(x: Float64Array, re: number, im: number): void {
    const m = this.m;
    const stRe = this.stRe;
    const stIm = this.stIm;
    let len = m;
    while (len >= 4) {
      if (len >= 8) {
        const half = len >> 1;
        const q = len >> 2;
        for (let s = 0; s < m; s += len) {
          for (let j = 0; j < q; j++) {
            const p0 = s + j, p1 = p0 + q, p2 = p1 + q, p3 = p2 + q;
            const w1r = stRe[half + j]!, w1i = stIm[half + j]!;
            const w3r = stRe[half + j + q]!, w3i = stIm[half + j + q]!;
            const w2r = stRe[q + j]!, w2i = stIm[q + j]!;
            let ar = x[re + p0]!, ai = x[im + p0]!, br = x[re + p2]!, bi = x[im + p2]!;
            const x0r = ar + br, x0i = ai + bi;
            let dr = ar - br, di = ai - bi;
            const x2r = dr * w1r - di * w1i, x2i = dr * w1i + di * w1r;
            ar = x[re + p1]!; ai = x[im + p1]!; br = x[re + p3]!; bi = x[im + p3]!;
            const x1r = ar + br, x1i = ai + bi;
            dr = ar - br; di = ai - bi;
            const x3r = dr * w3r - di * w3i, x3i = dr * w3i + di * w3r;
            x[re + p0] = x0r + x1r; x[im + p0] = x0i + x1i;
            dr = x0r - x1r; di = x0i - x1i;
            x[re + p1] = dr * w2r - di * w2i; x[im + p1] = dr * w2i + di * w2r;
            x[re + p2] = x2r + x3r; x[im + p2] = x2i + x3i;
            dr = x2r - x3r; di = x2i - x3i;
            x[re + p3] = dr * w2r - di * w2i; x[im + p3] = dr * w2i + di * w2r;
          }
        }
        len >>= 2;
      } else {
        const half = len >> 1;
        for (let s = 0; s < m; s += len) {
          for (let j = 0; j < half; j++) {
            const a = s + j;
            const b = a + half;
            const ar = x[re + a]!, ai = x[im + a]!, br = x[re + b]!, bi = x[im + b]!;
            x[re + a] = ar + br;
            x[im + a] = ai + bi;
            const dr = ar - br, di = ai - bi;
            const wr = stRe[half + j]!, wi = stIm[half + j]!;
            x[re + b] = dr * wr - di * wi;
            x[im + b] = dr * wi + di * wr;
          }
        }
        len >>= 1;
      }
    }
    // len = 2: twiddle 1
    for (let a = 0; a < m; a += 2) {
      const ar = x[re + a]!, ai = x[im + a]!, br = x[re + a + 1]!, bi = x[im + a + 1]!;
      x[re + a] = ar + br;
      x[im + a] = ai + bi;
      x[re + a + 1] = ar - br;
      x[im + a + 1] = ai - bi;
    }
  }

  /** Decimation in time, bit-reversed in, natural order out, conjugate twiddles (inverse); stages fused in pairs. */
  private ditInPlace(x: Float64Array, re: number, im: number): void {
    const m = this.m;
    const stRe = this.stRe;
    const stIm = this.stIm;
    for (let a = 0; a < m; a += 2) {
      const ar = x[re + a]!, ai = x[im + a]!, br = x[re + a + 1]!, bi = x[im + a + 1]!;
      x[re + a] = ar + br;
      x[im + a] = ai + bi;
      x[re + a + 1] = ar - br;
      x[im + a + 1] = ai - bi;
    }
    let len = 4;
    while (len <= m) {
      if (2 * len <= m) {
        const q = len >> 1;
        const blk = len << 1;
        for (let s = 0; s < m; s += blk) {
          for (let j = 0; j < q; j++) {
            const p0 = s + j, p1 = p0 + q, p2 = p1 + q, p3 = p2 + q;
            let cr = stRe[q + j]!, ci = -stIm[q + j]!;
            let br = x[re + p1]!, bi = x[im + p1]!;
            let yr = br * cr - bi * ci, yi = br * ci + bi * cr;
            let ar = x[re + p0]!, ai = x[im + p0]!;
            const a0r = ar + yr, a0i = ai + yi, a1r = ar - yr, a1i = ai - yi;
            br = x[re + p3]!; bi = x[im + p3]!;
            yr = br * cr - bi * ci; yi = br * ci + bi * cr;
            ar = x[re + p2]!; ai = x[im + p2]!;
            const a2r = ar + yr, a2i = ai + yi, a3r = ar - yr, a3i = ai - yi;
            cr = stRe[len + j]!; ci = -stIm[len + j]!;
            yr = a2r * cr - a2i * ci; yi = a2r * ci + a2i * cr;
            x[re + p0] = a0r + yr; x[im + p0] = a0i + yi; x[re + p2] = a0r - yr; x[im + p2] = a0i - yi;
            cr = stRe[len + j + q]!; ci = -stIm[len + j + q]!;
            yr = a3r * cr - a3i * ci; yi = a3r * ci + a3i * cr;
            x[re + p1] = a1r + yr; x[im + p1] = a1i + yi; x[re + p3] = a1r - yr; x[im + p3] = a1i - yi;
          }
        }
        len <<= 2;
      } else {
        const half = len >> 1;
        for (let s = 0; s < m; s += len) {
          for (let j = 0; j < half; j++) {
            const a = s + j;
            const b = a + half;
            const wr = stRe[half + j]!, wi = -stIm[half + j]!;
            const br0 = x[re + b]!, bi0 = x[im + b]!;
            const br = br0 * wr - bi0 * wi;
            const bi = br0 * wi + bi0 * wr;
            const ar = x[re + a]!, ai = x[im + a]!;
            x[re + a] = ar + br;
            x[im + a] = ai + bi;
            x[re + b] = ar - br;
            x[im + b] = ai - bi;
          }
        }
        len <<= 1;
      }
    }
  }
}
