/**
 * The weight leak of linear outputs (tests/hybrid/leak.test.ts, docs/glwe.md): a server that returned the LWE
 * extracted from the product A·W would hand the client a mask that is an integer combination of rotations of the
 * client's own (seed-derived) input mask, with the weights as coefficients — one query reveals them. The packed
 * result's mask is a sum of packing-key masks weighted by decomposition digits: the true weights do not satisfy the
 * linear relation, and solving for weights finds nothing.
 */
import { describe, expect, it } from 'vitest';
import { encryptVector } from '../../src/glwe/client.js';
import { seededStream } from '../../src/glwe/random.js';
import { serverMatVec } from '../../src/glwe/server.js';
import { transformWeights } from '../../src/glwe/weights.js';
import { P, testKeys } from './helpers.js';

const N = P.polynomialSize;

/** Solves Σ_i w_i·v_i[j] ≡ t[j] (mod 2^bits) for w over the first rows, checks every row; null if no solution. */
function solveLinear(v: bigint[][], t: bigint[], bits: bigint, rows = 64): bigint[] | null {
  const mod = (1n << bits) - 1n;
  const m = v.length;
  const A = Array.from({ length: rows }, (_, j) => [...v.map((vi) => vi[j]!), t[j]!]);
  let p = 0;
  for (let c = 0; c < m; c++) {
    const r = A.findIndex((row, i) => i >= p && (row[c]! & 1n) === 1n);
    if (r < 0) return null;
    [A[p], A[r]] = [A[r]!, A[p]!];
    let inv = A[p]![c]!; // inverse of an odd number mod 2^bits by Newton iteration
    for (let k = 0; k < 7; k++) inv = (inv * (2n - ((A[p]![c]! * inv) & mod))) & mod;
    A[p] = A[p]!.map((x) => (x * inv) & mod);
    for (let i = 0; i < rows; i++) {
      if (i === p || A[i]![c] === 0n) continue;
      const f = A[i]![c]!;
      A[i] = A[i]!.map((x, k) => (x - f * A[p]![k]!) & mod);
    }
    p++;
  }
  const w = A.slice(0, m).map((row) => row[m]!);
  for (let j = 0; j < t.length; j++) {
    let s = 0n;
    for (let i = 0; i < m; i++) s += w[i]! * v[i]![j]!;
    if ((s & mod) !== t[j]) return null;
  }
  return w.map((x) => BigInt.asIntN(Number(bits), x));
}

/** Mask of the LWE extracted at coefficient p of the polynomial P (negacyclic): a'_j = P[p−j] or −P[N+p−j]. */
function extractMask(poly: bigint[], p: number): bigint[] {
  return Array.from({ length: N }, (_, j) => BigInt.asUintN(64, j <= p ? poly[p - j]! : -poly[N + p - j]!));
}

/** A·X^s (negacyclic) over Z/2^64. */
function rotate(a: bigint[], s: number): bigint[] {
  return Array.from({ length: N }, (_, k) => (k >= s ? a[k - s]! : BigInt.asUintN(64, -a[N + k - s]!)));
}

describe('model IP: the weight leak of linear outputs', () => {
  it('an extracted (unpacked) output reveals the weights from one query; the packed result does not', () => {
    const { clientKey, prepared } = testKeys();
    const w = [3, -7, 11, 5];
    const tw = transformWeights(P, w, 1, 4);
    const ct = encryptVector(clientKey, [9, -2, 4, 1], tw.layout);
    // the client regenerates its own input mask from the seed it sent
    const words = new Uint32Array(2 * N);
    seededStream(ct.seed).fillU64(words, 0, N);
    const A = Array.from({ length: N }, (_, i) => (BigInt(words[2 * i + 1]!) << 32n) | BigInt(words[2 * i]!));
    const L = tw.layout.chunkLen;
    const p = L - 1;
    // v_i: extracted mask of A·X^(L−1−i) — what weight w_i multiplies
    const v = w.map((_, i) => extractMask(rotate(A, L - 1 - i), p));
    // an unpacked server would return a' = Σ w_i v_i: solving recovers w exactly
    const leaked = Array.from({ length: N }, (_, j) => BigInt.asUintN(64, w.reduce((s, wi, i) => s + BigInt(wi) * v[i]![j]!, 0n)));
    expect(solveLinear(v, leaked, 64n)?.map(Number)).toEqual(w);
    // the packed result: its 32-bit mask is not Σ w_i·(v_i's top 32 bits), neither exactly nor approximately
    const res = serverMatVec(prepared, tw, ct, { kernel: 'typescript' });
    const out = Array.from(res.masks, (m) => BigInt(m));
    const top = v.map((vi) => vi.map((x) => x >> 32n));
    expect(solveLinear(top, out, 32n)).toBeNull();
    let near = 0;
    for (let j = 0; j < N; j++) {
      const lin = BigInt.asUintN(32, w.reduce((s, wi, i) => s + BigInt(wi) * top[i]![j]!, 0n));
      const d = BigInt.asIntN(32, lin - out[j]!);
      if (d < 1n << 16n && d > -(1n << 16n)) near++;
    }
    expect(near).toBeLessThan(16); // uniform residuals: ≈ 2048·2^−15 ≈ 0 within ±2^16
  });
});
