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
  const { clientKey, prepared } = testKeys();
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

  it.runIf(native)('native kernel agrees with the oracle (same noise, float-level differences only)', () => {
    const ts = check(300, 700, 'typescript', 9, true);
    const nat = check(300, 700, 'native', 9, true);
    // same inputs but fresh encryptions: compare each to the exact product, and their spreads to each other
    let maxDiff = 0;
    for (let o = 0; o < 300; o++) maxDiff = Math.max(maxDiff, Math.abs(nat.phases[o]! - nat.exact[o]!), Math.abs(ts.phases[o]! - ts.exact[o]!));
    expect(maxDiff).toBeLessThan(2);
  });

  it.runIf(native)('native kernel: bit-identical to the oracle on the same ciphertext with one thread', () => {
    const { clientKey, prepared } = testKeys();
    const w = randomInts(21, 64 * 900, -128, 127);
    const x = randomInts(22, 900, -255, 255);
    const tw = transformWeights(P, w, 64, 900);
    const ct = encryptVector(clientKey, x, tw.layout);
    const a = serverMatVec(prepared, tw, ct, { kernel: 'typescript' });
    const b = serverMatVec(prepared, tw, ct, { kernel: 'native', threads: 1 });
    expect(Array.from(b.bodies)).toEqual(Array.from(a.bodies));
    expect(Array.from(b.masks)).toEqual(Array.from(a.masks));
  });

  it('768×768 (a GPT-2 attention projection shape)', () => {
    check(768, 768, native ? 'native' : 'typescript', 31, true);
  });
});
