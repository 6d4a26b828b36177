/** Client wrapper (node-tfhe), custom parameter sets (Standard modulus switch), set selection. */
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseParameterSet, TfheClient } from '../../src/tfhe/client.js';
import { TfheParameterError } from '../../src/tfhe/errors.js';
import { NAMED_PARAMS } from '../../src/tfhe/params.js';
import { ServerKey } from '../../src/tfhe/server-key.js';
import { nativeKernelError } from '../../src/tfhe/native.js';
import { transformDifferenceBounds } from '../../src/tfhe/noise.js';
import { expectNativeWhenRequired } from '../require-native.js';
import { expectFftwWhenRequired } from './helpers.js';

const base = NAMED_PARAMS.PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128!;

let client: TfheClient;
let keyBytes: Uint8Array;
beforeAll(() => {
  // Same dimensions and noise as the 2_2 set, but message 16 / carry 1: custom sets get the
  // Standard modulus switch, so this exercises the path without the CenteredMean correction.
  client = TfheClient.create({ ...base, messageModulus: 16, carryModulus: 1, log2PFail: -40 });
  keyBytes = client.compressedServerKey();
});

describe('TfheClient', () => {
  it('reads the exact parameters back from its own key', () => {
    expect(client.params.name).toBe('custom');
    expect(client.params.messageModulus).toBe(16);
    expect(client.params.carryModulus).toBe(1);
    expect(client.params.modulusSwitch).toBe('standard');
    expect(client.params.lweNoise).toEqual({ kind: 'tuniform', boundLog2: 45 });
  });

  it('encrypts and decrypts every value of [0, 2p), compressed or not', () => {
    for (let m = 0; m < 32; m++) {
      expect(client.decrypt(client.encrypt(m), 32)).toBe(m);
      expect(client.decrypt(client.encrypt(m))).toBe(m % 16);
    }
  });

  it('a custom-set key needs its parameters; then KS-PBS (standard modulus switch) decrypts right', () => {
    expect(() => ServerKey.inspect(keyBytes)).toThrow(TfheParameterError);
    const sk = ServerKey.fromCompressedBytes(keyBytes, { params: client.params });
    const f = (m: number) => (5 * m + 3) % 16;
    const lut = sk.lut(f);
    for (let m = 0; m < 16; m++) {
      const out = sk.pbs(sk.decompressCiphertext(client.encryptCompressed(m)), lut);
      expect(client.decrypt(sk.serializeCiphertext(out))).toBe(f(m));
    }
  });

  it('rejects a decryption modulus that is not a power of two ≤ 2p and foreign bytes', () => {
    const c = client.encrypt(3);
    expect(() => client.decrypt(c, 3)).toThrow(TfheParameterError);
    expect(() => client.decrypt(c, 64)).toThrow(TfheParameterError);
    expect(() => client.decrypt(c.subarray(0, 100))).toThrow(/ciphertext.data.len/);
  });
});

describe('chooseParameterSet', () => {
  it('picks the smallest named set that covers the width and the weight norm', () => {
    expect(chooseParameterSet(2, 1).name).toBe('V1_7_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M128');
    expect(chooseParameterSet(4, 10).name).toBe('PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128');
    expect(chooseParameterSet(5, 1).name).toBe('V1_6_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128');
    expect(chooseParameterSet(6, 1).name).toBe('V1_7_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128');
    expect(() => chooseParameterSet(9, 1)).toThrow(TfheParameterError);
    expect(() => chooseParameterSet(4, 1e6)).toThrow(/no named parameter set/);
  });
});

describe('1_1 set (GLWE dimension k = 4, N = 512): the k > 1 paths', () => {
  it('KS-PBS decrypts right on every backend and transform: shared FFT bit-identical to TypeScript, FFTW within the bound', () => {
    const c11 = TfheClient.create('V1_7_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M128');
    const kb = c11.compressedServerKey();
    const native = ServerKey.fromCompressedBytes(kb);
    const shared = ServerKey.fromCompressedBytes(kb, { transform: 'shared' });
    const ref = ServerKey.fromCompressedBytes(kb, { backend: 'typescript' });
    expectNativeWhenRequired('TFHE PBS', native.backend === 'native', nativeKernelError());
    expectFftwWhenRequired(native);
    expect(native.params.glweDimension).toBe(4);
    const bound = transformDifferenceBounds(native.params, native.budget.log2PError).pbsPhase;
    let worst = 0;
    for (const f of [(m: number) => 3 - m, (m: number) => (m * m) % 4]) {
      for (let m = 0; m < 4; m++) {
        const ct = native.decompressCiphertext(c11.encryptCompressed(m));
        const a = native.serializeCiphertext(native.pbs(ct, native.lut(f)));
        const s = shared.serializeCiphertext(shared.pbs(ct, shared.lut(f)));
        const b = ref.serializeCiphertext(ref.pbs(ct, ref.lut(f)));
        expect(c11.decrypt(a, 8)).toBe(f(m));
        expect(c11.decrypt(s, 8)).toBe(f(m));
        if (shared.backend === 'native') expect(Buffer.from(s).equals(Buffer.from(b))).toBe(true);
        worst = Math.max(worst, Math.abs(c11.noise(a, f(m)) - c11.noise(b, f(m))));
      }
    }
    console.log(`1_1, default transform ${native.transform} vs TypeScript: max phase difference 2^${Math.log2(worst).toFixed(2)} (bound 2^${Math.log2(bound).toFixed(2)})`);
    expect(worst).toBeLessThanOrEqual(bound);
    c11.dispose();
  });
});
