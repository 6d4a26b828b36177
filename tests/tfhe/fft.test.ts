/** The negacyclic float64 FFT against exact integer products in Z[X]/(X^N + 1). */
import { describe, expect, it } from 'vitest';
import { NegacyclicFft } from '../../src/tfhe/fft.js';
import { rng } from './helpers.js';

function exactNegacyclic(a: bigint[], b: bigint[]): bigint[] {
  const N = a.length;
  const out = new Array<bigint>(N).fill(0n);
  for (let i = 0; i < N; i++) {
    if (a[i] === 0n) continue;
    for (let j = 0; j < N; j++) {
      const k = i + j;
      if (k < N) out[k]! += a[i]! * b[j]!;
      else out[k - N]! -= a[i]! * b[j]!;
    }
  }
  return out;
}

function fftProduct(fft: NegacyclicFft, a: Float64Array, b: Float64Array): Float64Array {
  const N = fft.n;
  const M = N / 2;
  const fa = new Float64Array(N);
  const fb = new Float64Array(N);
  fft.forward(a, 0, fa, 0, M);
  fft.forward(b, 0, fb, 0, M);
  const prod = new Float64Array(N);
  for (let j = 0; j < M; j++) {
    prod[j] = fa[j]! * fb[j]! - fa[M + j]! * fb[M + j]!;
    prod[M + j] = fa[j]! * fb[M + j]! + fa[M + j]! * fb[j]!;
  }
  const out = new Float64Array(N);
  fft.inverse(prod, 0, M, out, 0, false);
  return out;
}

describe('negacyclic FFT', () => {
  it('is exact (after rounding) on small integer polynomials, all sizes', () => {
    const r = rng(5);
    for (const N of [4, 8, 64, 512, 2048]) {
      const fft = new NegacyclicFft(N);
      const a = Float64Array.from({ length: N }, () => Math.floor(r() * 200) - 100);
      const b = Float64Array.from({ length: N }, () => Math.floor(r() * 200) - 100);
      const got = fftProduct(fft, a, b);
      const want = exactNegacyclic(Array.from(a, BigInt), Array.from(b, BigInt));
      for (let i = 0; i < N; i++) expect(Math.round(got[i]!)).toBe(Number(want[i]!));
    }
  });

  it('digit × torus products (the external product case) are within 2^44 of exact mod 2^64 at N = 2048', () => {
    const r = rng(6);
    const N = 2048;
    const fft = new NegacyclicFft(N);
    const d = Float64Array.from({ length: N }, () => Math.floor(r() * 2 ** 23) - 2 ** 22);
    const keyBig = Array.from({ length: N }, () => BigInt(Math.floor(r() * 2 ** 32)) * 2n ** 31n - 2n ** 62n);
    const key = Float64Array.from(keyBig, Number);
    const got = fftProduct(fft, d, key);
    const want = exactNegacyclic(Array.from(d, BigInt), keyBig);
    let worst = 0;
    for (let i = 0; i < N; i++) {
      const w = Number(BigInt.asIntN(64, want[i]!));
      let diff = (got[i]! - w) % 2 ** 64;
      if (diff > 2 ** 63) diff -= 2 ** 64;
      if (diff < -(2 ** 63)) diff += 2 ** 64;
      worst = Math.max(worst, Math.abs(diff));
    }
    expect(worst).toBeLessThan(2 ** 44);
  });
});
