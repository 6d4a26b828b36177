/**
 * Named parameter sets: every value in params.ts equals what node-tfhe 1.7.0 serializes in a client key of that
 * name, and the 5-bit (N = 4096) sets added for the checkerboard circuit bootstrap right end to end.
 */
import { describe, expect, it } from 'vitest';
import { TfheClient, chooseParameterSet } from '../../src/tfhe/client.js';
import { EXECUTOR_SETS } from '../../src/runtime/executor-plan.js';
import { noiseBudget } from '../../src/tfhe/noise.js';
import { NAMED_PARAMS, plaintextModulus } from '../../src/tfhe/params.js';
import { ServerKey } from '../../src/tfhe/server-key.js';

describe('named parameter sets', () => {
  it.each(Object.keys(NAMED_PARAMS))('%s: every field equals node-tfhe 1.7.0 client key', (name) => {
    const client = TfheClient.create(name); // reads the exact parameters back from the serialized key
    expect(client.params).toEqual(NAMED_PARAMS[name]);
    client.dispose();
  });

  it('the executor tries the 5-bit set between 2_2 and 3_3 (sets ordered by measured KS-PBS cost)', () => {
    const bits = EXECUTOR_SETS.map((n) => Math.log2(plaintextModulus(NAMED_PARAMS[n]!)));
    expect(bits).toEqual([2, 4, 5, 5, 6]);
    expect(chooseParameterSet(5, 1).name).toBe('V1_6_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128');
  });

  it('5-bit set noise: the keyswitch + modulus switch leave room for 5-bit table inputs only', () => {
    const p = NAMED_PARAMS[EXECUTOR_SETS[2]]!;
    const b = noiseBudget(p, -40);
    // PBS-input budget (for the key's own p = 32) well above the PBS output: dot products of bootstrapped values fit.
    expect(b.maxPbsInputVariance / b.pbsOutputVariance).toBeGreaterThan(100);
  });
});

describe('KS-PBS on the 5-bit set (N = 4096), node-tfhe decrypts', () => {
  it('all 32 messages through x² + 1 and 31 − x, and a PBS → dot → PBS chain', () => {
    const name = EXECUTOR_SETS[2];
    const client = TfheClient.create(name);
    const sk = ServerKey.fromCompressedBytes(client.compressedServerKey());
    expect(sk.params.name).toBe(name);
    const P = 32;
    const sq = sk.lut((m) => (m * m + 1) % P);
    const neg = sk.lut((m) => P - 1 - m);
    const cts = Array.from({ length: P }, (_, m) => sk.decompressCiphertext(client.encryptCompressed(m)));
    const outSq = sk.pbsBatch(cts, sq);
    const outNeg = sk.pbsBatch(cts, neg);
    for (let m = 0; m < P; m++) {
      expect(client.decrypt(sk.serializeCiphertext(outSq[m]!), 2 * P)).toBe((m * m + 1) % P);
      expect(client.decrypt(sk.serializeCiphertext(outNeg[m]!), 2 * P)).toBe(P - 1 - m);
    }
    // 3·sq(2) − 2·neg(20) + 4 = 15 − 22 + 4 ≡ −3 → padding-bit set; use 3·sq(2) + 2·neg(20) − 30 = 15 + 22 − 30 = 7
    const y = sk.dot([3, 2], [outSq[2]!, outNeg[20]!], -30);
    const z = sk.pbs(y, sq);
    expect(client.decrypt(sk.serializeCiphertext(z), 2 * P)).toBe((7 * 7 + 1) % P);
    client.dispose();
  });
});
