/**
 * End-to-end correctness of the packed GLWE matrix-vector product: decrypted results equal the exact integer
 * product within the noise model's bound (src/glwe/noise.ts), for the TypeScript oracle and the native kernel,
 * with several input pieces, several result GLWEs, a bias, and a 768×768 layer. The ≥ 10^6-output evidence on the
 * GPT-2 shapes is bench/glwe.ts (bench/RESULTS.md), not a test.
 */
import { describe, expect, it } from 'vitest';
import { decryptPhases, decryptVector, encryptVector } from '../../src/glwe/client.js';
import { loadGlweKernel, glweKernelError } from '../../src/glwe/native.js';
import { predictNoise } from '../../src/glwe/noise.js';
import { serverMatVec } from '../../src/glwe/server.js';
import { transformWeights } from '../../src/glwe/weights.js';
import { exactMatVec, P, randomInts, testKeys } from './helpers.js';

const native = loadGlweKernel();
if (!native) console.warn(`native GLWE kernel unavailable (${glweKernelError()}): native cases skipped`);

function check(dOut: number, dIn: number, kernel: 'typescript' | 'native', seed: number, withBias = false) {
  const { clientKey, prepared: ts, preparedNative } = testKeys();
  const prepared = kernel === 'native' ? preparedNative! : ts;
  const w = randomInts(seed, dOut * dIn, -128, 127);
  const x = randomInts(seed + 1, dIn, -255, 255);
  const bias = withBias ? randomInts(seed + 2, dOut, -5000, 5000) : undefined;
  const tw = transformWeights(P, w, dOut, dIn, { maxAbsBias: withBias ? 5000 : 0 });
  const ct = encryptVector(clientKey, x, tw.layout);
  const res = serverMatVec(prepared, tw, ct, { kernel, bias, threads: 2 });
  const y = decryptVector(clientKey, res);
  const exact = exactMatVec(w, x, dOut, dIn, bias);
  let worst = 0;
  let worstBound = 0;
  for (let o = 0; o < dOut; o++) {
    const slots = Math.min(P.polynomialSize, dOut - Math.floor(o / P.polynomialSize) * P.polynomialSize);
    const bound = predictNoise(P, tw.layout, tw.rowSqSum[o]!, slots).bound;
    const err = Math.abs(y[o]! - exact[o]!);
    if (err - bound > worst - worstBound) {
      worst = err;
      worstBound = bound;
    }
    expect(err, `output ${o}: ${y[o]} vs exact ${exact[o]} (bound ${bound})`).toBeLessThanOrEqual(bound);
  }
  return { tw, res, y, exact, phases: decryptPhases(clientKey, res) };
}

describe('packed GLWE matrix-vector product', () => {
  it('TypeScript oracle: one input GLWE, many outputs per product, bias added by the server', () => {
    const r = check(37, 100, 'typescript', 1, true);
    expect(r.tw.layout).toMatchObject({ chunks: 1, perProduct: 20, outputGlwes: 1 });
  });

  it('TypeScript oracle: input over N (three pieces summed in the Fourier domain, two rows per product) and two result GLWEs', () => {
    const r = check(2100, 2500, 'typescript', 5);
    expect(r.tw.layout).toMatchObject({ chunks: 3, chunkLen: 834, perProduct: 2, outputGlwes: 2 });
  });

  it.runIf(native)('native kernel: within the bound, and equal to the oracle up to float rounding on the same ciphertext', () => {
    check(300, 700, 'native', 9, true);
    const { clientKey, prepared, preparedNative } = testKeys();
    const w = randomInts(21, 64 * 900, -128, 127);
    const x = randomInts(22, 900, -255, 255);
    const tw = transformWeights(P, w, 64, 900);
    const ct = encryptVector(clientKey, x, tw.layout);
    const a = decryptPhases(clientKey, serverMatVec(prepared, tw, ct, { kernel: 'typescript' }));
    const b = decryptPhases(clientKey, serverMatVec(preparedNative!, tw, ct, { kernel: 'native', threads: 2 }));
    // same ciphertext, same key, same noise: only the FFTs' rounding differs (≈ 2^35 torus units ≪ Δ = 2^39 here)
    for (let o = 0; o < 64; o++) expect(Math.abs(a[o]! - b[o]!)).toBeLessThan(0.5);
    // a key prepared for one kernel is refused by the other (different frequency order)
    expect(() => serverMatVec(prepared, tw, ct, { kernel: 'native' })).toThrow(/prepared for the typescript kernel/);
  });

  it('768×768 (a GPT-2 attention projection shape)', () => {
    check(768, 768, native ? 'native' : 'typescript', 31, true);
  });
});
