/** Leveled linear operations: exact mod 2p, decrypted by node-tfhe; noise tracking and refusal. */
import { beforeAll, describe, expect, it } from 'vitest';
import { TfheNoiseError, TfheParameterError } from '../../src/tfhe/errors.js';
import { reduceWeight } from '../../src/tfhe/lwe.js';
import { ServerKey } from '../../src/tfhe/server-key.js';
import { makeFixture, rng, type Fixture } from './helpers.js';

let fx: Fixture;
beforeAll(() => {
  fx = makeFixture();
});

const P = 16;
const mod = (x: number, m: number) => ((x % m) + m) % m;

describe('linear operations (2_2 set)', () => {
  it('add, sub, neg, scalar multiply and plaintext add decrypt right mod 2p', () => {
    const { client, sk } = fx;
    const r = rng(1);
    for (let t = 0; t < 10; t++) {
      const a = Math.floor(r() * P);
      const b = Math.floor(r() * P);
      const w = Math.floor(r() * 41) - 20;
      const ea = sk.parseCiphertext(client.encrypt(a));
      const eb = sk.decompressCiphertext(client.encryptCompressed(b));
      const dec = (c: ReturnType<typeof sk.add>) => client.decrypt(sk.serializeCiphertext(c), 2 * P);
      expect(dec(sk.add(ea, eb))).toBe(mod(a + b, 2 * P));
      expect(dec(sk.sub(ea, eb))).toBe(mod(a - b, 2 * P));
      expect(dec(sk.neg(ea))).toBe(mod(-a, 2 * P));
      expect(dec(sk.mulScalar(ea, w))).toBe(mod(w * a, 2 * P));
      expect(dec(sk.addPlain(ea, 7))).toBe(mod(a + 7, 2 * P));
      expect(dec(sk.trivial(b))).toBe(b);
    }
  });

  it('weights act modulo 2p (reduced to [−p, p) for less noise)', () => {
    expect(reduceWeight(33, 16)).toBe(1);
    expect(reduceWeight(-1, 16)).toBe(-1);
    expect(reduceWeight(16, 16)).toBe(-16);
    expect(reduceWeight(1e12 + 3, 16)).toBe(mod(1e12 + 3, 32) >= 16 ? mod(1e12 + 3, 32) - 32 : mod(1e12 + 3, 32));
    expect(() => reduceWeight(0.5, 16)).toThrow(TfheParameterError);
  });

  it('dot products and matrix products of fresh inputs with large weights decrypt right', () => {
    const { client, sk } = fx;
    const r = rng(2);
    const cols = 64;
    const xs = Array.from({ length: cols }, () => Math.floor(r() * P));
    const ex = xs.map((x) => sk.parseCiphertext(client.encrypt(x)));
    const rows = 4;
    const w = Array.from({ length: rows * cols }, () => Math.floor(r() * 2001) - 1000);
    const bias = [3, -5, 0, 31];
    const ys = sk.matmul(w, rows, cols, ex, bias);
    for (let i = 0; i < rows; i++) {
      let want = bias[i]!;
      for (let j = 0; j < cols; j++) want += w[i * cols + j]! * xs[j]!;
      expect(client.decrypt(sk.serializeCiphertext(ys[i]!), 2 * P)).toBe(mod(want, 2 * P));
    }
  });

  it('bootstrapped inputs combined with weights up to the noise budget decrypt right; beyond it is refused', () => {
    const { client, sk } = fx;
    const r = rng(3);
    const lut = sk.lut((m) => m & 1);
    const bits = Array.from({ length: 8 }, () => (r() < 0.5 ? 1 : 0));
    const eb = bits.map((b) => sk.pbs(sk.parseCiphertext(client.encrypt(b)), lut));
    // ‖w‖₂ budget for PBS outputs at p_error 2^-40: σ_in ≤ 2^54.9 with σ_pbs ≈ 2^49 → ‖w‖₂ ≲ 60.
    const maxNorm = Math.sqrt(sk.budget.maxDecryptVariance / sk.budget.pbsOutputVariance);
    expect(maxNorm).toBeGreaterThan(40);
    // Weights ±16 on 8 inputs (‖w‖₂ ≈ 45): the heaviest allowed after reduction mod 2p.
    const w = bits.map((_, i) => (i % 2 ? 16 : -15));
    const norm = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
    expect(norm).toBeLessThan(maxNorm);
    const y = sk.dot(w, eb);
    const want = mod(w.reduce((s, wi, i) => s + wi * bits[i]!, 0), 2 * P);
    expect(client.decrypt(sk.serializeCiphertext(y), 2 * P)).toBe(want);
    // Measured noise agrees with the tracked estimate (same order of magnitude).
    const e = Math.abs(client.noise(sk.serializeCiphertext(y), want));
    expect(e).toBeLessThan(8 * Math.sqrt(y.variance));
    // 40 PBS outputs with weight 15: ‖w‖₂ ≈ 95 > budget → refused before computing anything.
    const many = Array.from({ length: 40 }, (_, i) => eb[i % 8]!);
    expect(() => sk.dot(new Array(40).fill(15), many)).toThrow(TfheNoiseError);
    expect(() => sk.dot(new Array(40).fill(15), many)).toThrow(/exceeds the budget/);
  });

  it('optionally enforces the TFHE-rs nominal noise-level rule', () => {
    const { client, serverKeyBytes } = fx;
    const strict = ServerKey.fromCompressedBytes(serverKeyBytes, { enforceNoiseLevel: true, backend: 'typescript' });
    const a = strict.parseCiphertext(client.encrypt(1));
    expect(() => strict.dot([1, 1, 1, 1, 1], [a, a, a, a, a])).not.toThrow();
    expect(() => strict.dot([3, 3], [a, a])).toThrow(/noise level 6/);
  });

  it('rejects mismatched shapes', () => {
    const { client, sk } = fx;
    const a = sk.parseCiphertext(client.encrypt(1));
    expect(() => sk.dot([1, 2], [a])).toThrow(TfheParameterError);
    expect(() => sk.matmul([1, 2, 3], 2, 2, [a, a])).toThrow(TfheParameterError);
    const small = sk.keyswitch(a);
    expect(small.dimension).toBe(918);
    expect(() => sk.add(a, small)).toThrow(TfheParameterError);
    expect(() => sk.serializeCiphertext(small)).toThrow(TfheParameterError);
  });
});
