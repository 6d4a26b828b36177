/**
 * Exact polynomial arithmetic the client needs: products with its binary secret keys modulo X^N + 1 and 2^64
 * (encryption, packing-key generation, decryption), done with the f64 FFT of src/tfhe/fft.ts on 16-bit limbs.
 *
 * Why exact: a 64-bit operand is split into four 16-bit limbs; each limb times a binary polynomial has integer
 * coefficients below 2^16·N = 2^27, so the f64 FFT's error (≈ 2^27·2^−53·log N ≪ 1/2) vanishes in the rounding.
 * The limb results are recombined with carries in float64 (all partial sums < 2^53), giving the exact u64.
 */
import { NegacyclicFft } from '../tfhe/fft.js';
import { ROUND_MAGIC } from '../tfhe/torus.js';

const fftCache = new Map<number, NegacyclicFft>();

/** The shared FFT plan of size N (twiddles computed once per process). */
export function fftPlan(n: number): NegacyclicFft {
  let f = fftCache.get(n);
  if (!f) {
    f = new NegacyclicFft(n);
    fftCache.set(n, f);
  }
  return f;
}

/** Spectrum (M real parts then M imaginary parts) of a real polynomial given as numbers. */
export function spectrum(fft: NegacyclicFft, coeffs: Float64Array, out = new Float64Array(fft.n)): Float64Array {
  fft.forward(coeffs, 0, out, 0, fft.m);
  return out;
}

/** The spectrum of a binary key polynomial, cached in the client key. */
export function keySpectrum(key: Uint8Array): Float64Array {
  const fft = fftPlan(key.length);
  return spectrum(fft, Float64Array.from(key));
}

const scratch = new Map<number, { limb: Float64Array; spec: Float64Array; acc: Float64Array[] }>();

/** Per-size scratch buffers of mulBinaryKey (the client calls it thousands of times during key generation). */
function scratchFor(n: number): { limb: Float64Array; spec: Float64Array; acc: Float64Array[] } {
  let s = scratch.get(n);
  if (!s) {
    s = { limb: new Float64Array(n), spec: new Float64Array(n), acc: Array.from({ length: 4 }, () => new Float64Array(n)) };
    scratch.set(n, s);
  }
  return s;
}

/**
 * Exact negacyclic product of the u64 polynomial `a` (interleaved lo/hi words, N values) with a binary key
 * (given by its spectrum), plus `add` (optional signed integer coefficients, |·| < 2^52) placed at the 2^shiftBits
 * position; result as u64 words into `out`. `limbs` = number of 16-bit limbs of `a` that may be non-zero (4 for
 * full 64-bit values, 2 for 32-bit ones): fewer limbs, fewer FFTs.
 */
export function mulBinaryKey(
  a: Uint32Array,
  keySpec: Float64Array,
  out: Uint32Array,
  limbs = 4,
  add?: { values: Float64Array; limb: number; scale: number },
  noise?: Float64Array,
): void {
  const n = keySpec.length;
  const fft = fftPlan(n);
  const m = fft.m;
  const { limb, spec, acc } = scratchFor(n);
  for (let t = limbs; t < 4; t++) acc[t]!.fill(0);
  for (let t = 0; t < limbs; t++) {
    const word = t >> 1;
    const shift = (t & 1) * 16;
    for (let i = 0; i < n; i++) limb[i] = (a[2 * i + word]! >>> shift) & 0xffff;
    fft.forward(limb, 0, spec, 0, m);
    for (let j = 0; j < m; j++) {
      const xr = spec[j]!, xi = spec[m + j]!, yr = keySpec[j]!, yi = keySpec[m + j]!;
      spec[j] = xr * yr - xi * yi;
      spec[m + j] = xr * yi + xi * yr;
    }
    fft.inverse(spec, 0, m, acc[t]!, 0, false);
    const r = acc[t]!;
    for (let i = 0; i < n; i++) r[i] = (r[i]! + ROUND_MAGIC) - ROUND_MAGIC;
  }
  if (add) {
    const r = acc[add.limb]!;
    for (let i = 0; i < n; i++) r[i] = r[i]! + add.values[i]! * add.scale;
  }
  if (noise) for (let i = 0; i < n; i++) acc[0]![i] = acc[0]![i]! + noise[i]!;
  for (let i = 0; i < n; i++) {
    let c0 = acc[0]![i]!;
    let carry = Math.floor(c0 / 65536);
    c0 -= carry * 65536;
    let c1 = acc[1]![i]! + carry;
    carry = Math.floor(c1 / 65536);
    c1 -= carry * 65536;
    let c2 = acc[2]![i]! + carry;
    carry = Math.floor(c2 / 65536);
    c2 -= carry * 65536;
    let c3 = acc[3]![i]! + carry;
    c3 -= Math.floor(c3 / 65536) * 65536;
    out[2 * i] = c0 + c1 * 65536;
    out[2 * i + 1] = c2 + c3 * 65536;
  }
}
