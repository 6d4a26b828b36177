/**
 * Model IP (docs/hybrid.md, threat model). Two levels:
 *
 * A. Ciphertext level, on fhenet's real TFHE primitives (node-tfhe client, fhenet's KS-PBS evaluator): a server that
 *    returns a linear combination Σ wᵢ·ctᵢ hands the client an output mask equal to Σ wᵢ·aᵢ (mod 2^64), where the
 *    aᵢ are the masks of the client's own ciphertexts — one query reveals w exactly, whatever the noise. After a
 *    programmable bootstrap (what every fhenet remote output ends with) the output mask comes from the blind
 *    rotation, and the linear system in w has no solution.
 * B. Function level, on the simulate backend: a remote module compiled with `allowLinearOutput` returns its integer
 *    accumulator, so unit-vector queries read the integer weight columns exactly; fhenet's default (an output
 *    quantizer fused into the last table lookup) does not give them exactly. What B cannot show: simulate
 *    "ciphertexts" are clear integers with no mask, so B says nothing about the ciphertext-level leak (that is A);
 *    and approximate extraction from many queries of any deployed function remains possible (docs/hybrid.md).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { TfheClient } from '../../src/tfhe/client.js';
import { ServerKey } from '../../src/tfhe/server-key.js';
import { parseCiphertext } from '../../src/tfhe/layouts.js';
import { manualSeed } from '../../src/nn/init.js';
import { Linear } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import type { Activation } from '../../src/nn/quant-tensor.js';
import { HybridFHEModel, outputIsBootstrapped } from '../../src/hybrid/hybrid-model.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';

const M64 = (1n << 64n) - 1n;

function u64s(bytes: Uint8Array): bigint[] {
  const w = parseCiphertext(bytes).data;
  const out: bigint[] = [];
  for (let i = 0; i < w.length / 2; i++) out.push((BigInt(w[2 * i + 1]!) << 32n) | BigInt(w[2 * i]!));
  return out; // mask then body
}

function inv64(a: bigint): bigint {
  let x = a; // Newton iteration for the inverse of an odd number mod 2^64
  for (let i = 0; i < 6; i++) x = (x * (2n - ((a * x) & M64))) & M64;
  return x;
}

/**
 * Solves out[j] = Σ_i w_i·in_i[j] (mod 2^64) for w from the first `rows` coordinates, then checks the solution on
 * every coordinate. Returns the signed solution, or null when no w satisfies all equations.
 */
function solveWeights(inputs: bigint[][], out: bigint[], rows = 96): bigint[] | null {
  const m = inputs.length;
  const A = Array.from({ length: rows }, (_, j) => [...inputs.map((a) => a[j]!), out[j]!]);
  let p = 0;
  for (let c = 0; c < m; c++) {
    const r = A.findIndex((row, i) => i >= p && (row[c]! & 1n) === 1n);
    if (r < 0) return null;
    [A[p], A[r]] = [A[r]!, A[p]!];
    const iv = inv64(A[p]![c]!);
    A[p] = A[p]!.map((v) => (v * iv) & M64);
    for (let i = 0; i < rows; i++) {
      if (i === p || A[i]![c] === 0n) continue;
      const f = A[i]![c]!;
      A[i] = A[i]!.map((v, k) => (v - f * A[p]![k]!) & M64);
    }
    p++;
  }
  const w = A.slice(0, m).map((row) => row[m]!);
  const n = out.length - 1; // mask length
  for (let j = 0; j < n; j++) {
    let s = 0n;
    for (let i = 0; i < m; i++) s += w[i]! * inputs[i]![j]!;
    if ((s & M64) !== out[j]) return null;
  }
  return w.map((v) => BigInt.asIntN(64, v));
}

describe('A. ciphertext level (real TFHE primitives)', () => {
  it('a linear output reveals the weights from one query; a bootstrapped output does not', () => {
    const client = TfheClient.create();
    const sk = ServerKey.fromCompressedBytes(client.compressedServerKey());
    const secretW = [1, -2, 3, 0, 2, -1];
    const xs = [1, 0, 2, 1, 0, 1];
    const enc = xs.map((m) => client.encrypt(m));
    // server side: the linear remote layer
    const lin = sk.dot(secretW, enc.map((b) => sk.parseCiphertext(b)));
    const linBytes = sk.serializeCiphertext(lin);
    const expected = xs.reduce((a, x, i) => a + x * secretW[i]!, 0);
    const p = client.plaintextModulus;
    expect(client.decrypt(linBytes)).toBe(((expected % p) + p) % p);
    // client side: its own input masks and the output mask
    const inMasks = enc.map(u64s);
    const recovered = solveWeights(inMasks, u64s(linBytes));
    expect(recovered?.map(Number)).toEqual(secretW);
    // fhenet's remote outputs end with a table lookup (KS-PBS): same value, unrelated mask
    const boot = sk.applyLut(lin, (m) => m);
    const bootBytes = sk.serializeCiphertext(boot);
    expect(client.decrypt(bootBytes)).toBe(client.decrypt(linBytes));
    expect(solveWeights(inMasks, u64s(bootBytes))).toBeNull();
    client.dispose();
  });
});

class OneLinear extends Module {
  readonly fc = this.addModule('fc', new Linear(6, 4));
  forward(x: Activation): Activation {
    return this.fc.call(x);
  }

  override forwardAsync(x: Activation): Promise<Activation> {
    return this.fc.callAsync(x);
  }
}

describe('B. function level (simulate backend)', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('an unbootstrapped remote output gives the integer weights to unit-vector queries; fhenet’s default does not', () => {
    const calib = tf.randomUniform([200, 6], -1, 1, 'float32', 4);
    const build = (allowLinearOutput: boolean) => {
      manualSeed(3);
      const h = new HybridFHEModel(new OneLinear(), ['fc']);
      h.compileModel(calib, { nBits: 6, allowLinearOutput });
      return h.fheModel('fc').circuit;
    };
    const leaky = build(true);
    const safe = build(false);
    expect(outputIsBootstrapped(leaky)).toBe(false);
    expect(outputIsBootstrapped(safe)).toBe(true);
    expect(() => {
      manualSeed(3);
      const h = new HybridFHEModel(new OneLinear(), ['fc']);
      h.compileModel(calib, { nBits: 6 });
      return h;
    }).not.toThrow();
    const gemm = leaky.ops.find((o) => o.kind === 'gemm')! as Extract<(typeof leaky.ops)[number], { kind: 'gemm' }>;
    // the client's attack: query the zero vector and each unit vector (as integers), read the answers
    const query = (c: typeof leaky, xInt: number[]) => Array.from(simulate(c, Float64Array.from(xInt), 1).output);
    const recover = (c: typeof leaky) => {
      const y0 = query(c, [0, 0, 0, 0, 0, 0]);
      const W: number[] = [];
      for (let o = 0; o < 4; o++) for (let i = 0; i < 6; i++) W.push(query(c, [0, 0, 0, 0, 0, 0].map((_, k) => (k === i ? 1 : 0)))[o]! - y0[o]!);
      return W;
    };
    expect(recover(leaky)).toEqual(Array.from(gemm.weight));
    // the default circuit has the same linear layer, but its outputs pass a table lookup: the attack's answers are
    // not the weights (at most a few coincide)
    const safeGemm = safe.ops.find((o) => o.kind === 'gemm') as typeof gemm | undefined;
    expect(safeGemm).toBeDefined();
    expect(Array.from(safeGemm!.weight)).toEqual(Array.from(gemm.weight));
    const got = recover(safe);
    const same = got.filter((v, k) => v === safeGemm!.weight[k]).length;
    expect(same).toBeLessThan(got.length / 4);
    // the input quantizer maps real inputs to these integers, so the attack needs no access to the integers
    expect(Array.from(quantizeInput(leaky, [0, 0, 0, 0, 0, 0]))).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
