/**
 * Hostile bytes: truncated, bit-flipped, absurd lengths, wrong modulus, wrong parameter set. Each
 * must end in a typed TfheError (never a RangeError or a crash), fast, and leave the key usable.
 */
import * as tfhe from 'node-tfhe';
import { beforeAll, describe, expect, it } from 'vitest';
import { TfheError, TfheFormatError, TfheLimitError, TfheParameterError } from '../../src/tfhe/errors.js';
import { parseCiphertext, parseCompressedCiphertext, parseCompressedServerKey } from '../../src/tfhe/layouts.js';
import { ServerKey } from '../../src/tfhe/server-key.js';
import { makeFixture, rng, type Fixture } from './helpers.js';

let fx: Fixture;
let ct: Uint8Array;
let cct: Uint8Array;
beforeAll(() => {
  fx = makeFixture();
  ct = fx.client.encrypt(5);
  cct = fx.client.encryptCompressed(5);
});

/** Runs f; returns the error it threw (or null), asserting it is a TfheError and took < `ms`. */
function typedFailure(f: () => unknown, ms = 200): TfheError | null {
  const t = performance.now();
  try {
    f();
    return null;
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(TfheError);
    return e as TfheError;
  } finally {
    expect(performance.now() - t).toBeLessThan(ms);
  }
}

const setU64 = (b: Uint8Array, at: number, v: bigint) => new DataView(b.buffer, b.byteOffset).setBigUint64(at, v, true);

describe('hostile ciphertext bytes', () => {
  it('every truncation of a ciphertext and of a compressed ciphertext is a TfheFormatError', () => {
    const { sk } = fx;
    for (let len = 0; len < ct.byteLength; len += len < 64 ? 1 : 997) {
      const e = typedFailure(() => sk.parseCiphertext(ct.subarray(0, len)));
      expect(e).toBeInstanceOf(TfheFormatError);
    }
    for (let len = ct.byteLength - 64; len < ct.byteLength; len++) {
      expect(typedFailure(() => sk.parseCiphertext(ct.subarray(0, len)))).toBeInstanceOf(TfheFormatError);
    }
    for (let len = 0; len < cct.byteLength; len++) {
      expect(typedFailure(() => sk.decompressCiphertext(cct.subarray(0, len)))).toBeInstanceOf(TfheFormatError);
    }
  });

  it('absurd vector lengths are refused before allocating, naming the field', () => {
    const { sk } = fx;
    for (const len of [2n ** 63n, 2n ** 40n, 10n ** 9n, 2049n + 1n, 0n]) {
      const b = ct.slice();
      setU64(b, 0, len);
      const e = typedFailure(() => sk.parseCiphertext(b), 20);
      expect(e).toBeInstanceOf(TfheFormatError);
      expect(e!.message).toMatch(/ciphertext\.data\.len/);
    }
    const c = cct.slice();
    setU64(c, 8, 2n ** 62n); // lwe_size
    expect(typedFailure(() => sk.decompressCiphertext(c), 20)!.message).toMatch(/lwe_size/);
  });

  it('trailing bytes, unknown enum tags and zero moduli are refused', () => {
    const { sk } = fx;
    const longer = new Uint8Array(ct.byteLength + 3);
    longer.set(ct);
    expect(typedFailure(() => sk.parseCiphertext(longer))!.message).toMatch(/trailing/);
    const n = ct.byteLength;
    const badAp = ct.slice();
    badAp[n - 8] = 7; // atomic pattern tag
    expect(typedFailure(() => sk.parseCiphertext(badAp))).toBeInstanceOf(TfheFormatError);
    const zeroMsg = ct.slice();
    setU64(zeroMsg, n - 8 - 16, 0n); // message_modulus
    expect(typedFailure(() => sk.parseCiphertext(zeroMsg))!.message).toMatch(/message_modulus/);
  });

  it('wrong ciphertext modulus is refused with a clear error', () => {
    const { sk } = fx;
    const modAt = ct.byteLength - 8 - 4 * 8 - 24; // data | modulus(24) | 4×u64 | atomic pattern(8)
    const bits32 = ct.slice();
    setU64(bits32, modAt + 16, 32n);
    expect(typedFailure(() => sk.parseCiphertext(bits32))!.message).toMatch(/scalar bits 32/);
    const mod63 = ct.slice();
    mod63[modAt + 7] = 0x80; // modulus = 2^63
    const e = typedFailure(() => sk.parseCiphertext(mod63));
    expect(e).toBeInstanceOf(TfheParameterError);
    expect(e!.message).toMatch(/not the native 2\^64/);
  });

  it('ciphertexts of another parameter set are refused', () => {
    const { sk } = fx;
    const { Shortint, ShortintParameters, ShortintParametersName } = tfhe;
    const ck11 = Shortint.new_client_key(new ShortintParameters(ShortintParametersName.V1_7_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M128));
    // Same dimension (4·512 = 2048) but message/carry 2/2.
    const b = Shortint.serialize_ciphertext(Shortint.encrypt(ck11, 1n));
    expect(typedFailure(() => sk.parseCiphertext(b))!.message).toMatch(/message\/carry modulus 2\/2/);
    const ck33 = Shortint.new_client_key(new ShortintParameters(ShortintParametersName.V1_7_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128));
    const b33 = Shortint.serialize_compressed_ciphertext(Shortint.encrypt_compressed(ck33, 1n));
    expect(typedFailure(() => sk.decompressCiphertext(b33))!.message).toMatch(/lwe_size.*8193 exceeds the limit 2049/);
  });

  it('random bit flips and random garbage never escape as untyped errors', () => {
    const { sk } = fx;
    const r = rng(9);
    for (let t = 0; t < 300; t++) {
      const b = ct.slice();
      // Flip bits in the metadata tail (the data itself is uniformly random: any value is valid).
      const at = b.byteLength - 1 - Math.floor(r() * 72);
      b[at]! ^= 1 << Math.floor(r() * 8);
      typedFailure(() => sk.parseCiphertext(b));
      const c = cct.slice();
      c[Math.floor(r() * c.byteLength)]! ^= 1 << Math.floor(r() * 8);
      typedFailure(() => sk.decompressCiphertext(c));
      const g = new Uint8Array(Math.floor(r() * 300));
      for (let i = 0; i < g.length; i++) g[i] = Math.floor(r() * 256);
      typedFailure(() => parseCiphertext(g));
      typedFailure(() => parseCompressedCiphertext(g));
      typedFailure(() => parseCompressedServerKey(g));
    }
  });
});

describe('hostile server-key bytes', () => {
  it('truncations at every structural boundary are TfheFormatErrors, fast', () => {
    const kb = fx.serverKeyBytes;
    const points = [0, 3, 4, 11, 12, 100, kb.byteLength >> 1, kb.byteLength - 200, kb.byteLength - 40, kb.byteLength - 1];
    for (let i = kb.byteLength - 140; i < kb.byteLength; i += 3) points.push(i);
    for (const len of points) {
      expect(typedFailure(() => ServerKey.fromCompressedBytes(kb.subarray(0, len)), 500)).toBeInstanceOf(TfheFormatError);
    }
  });

  it('an absurd keyswitch-key length is refused without allocating', () => {
    const b = fx.serverKeyBytes.slice(0, 4096);
    setU64(b, 4, 2n ** 61n);
    const e = typedFailure(() => parseCompressedServerKey(b), 20);
    expect(e!.message).toMatch(/ksk\.data\.len/);
  });

  it('bit flips in the key header fields give typed errors (wrong set, inconsistent dimensions)', () => {
    const kb = fx.serverKeyBytes;
    const kskLen = Number(new DataView(kb.buffer, kb.byteOffset).getBigUint64(4, true));
    const afterKskData = 4 + 8 + kskLen * 8;
    // ksk: base_log at afterKskData, level +8, output size +16
    for (const [off, bit] of [[0, 0], [8, 1], [16, 0], [16, 4]] as const) {
      const b = kb.slice();
      b[afterKskData + off]! ^= 1 << bit;
      expect(typedFailure(() => ServerKey.inspect(b), 500)).toBeInstanceOf(TfheError);
    }
    // The tail: message/carry/max degree/max noise level + pbs order + ms mode.
    for (let back = 1; back <= 48; back += 1) {
      const b = kb.slice();
      b[kb.byteLength - back]! ^= 0x10;
      try {
        ServerKey.inspect(b, { params: 'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128' });
        // max_degree / max_noise_level flips are not checked against the set: acceptable.
      } catch (e) {
        expect(e).toBeInstanceOf(TfheError);
      }
    }
  });

  it('a key of one set presented as another set is refused with the mismatch named', () => {
    const e = typedFailure(
      () => ServerKey.fromCompressedBytes(fx.serverKeyBytes, { params: 'V1_7_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128' }),
      5000,
    );
    expect(e).toBeInstanceOf(TfheParameterError);
    expect(e!.message).toMatch(/keyswitch base log is 4, expected 3/);
  });

  it('a key whose expansion would exceed the memory limit is refused before expanding', () => {
    const e = typedFailure(() => ServerKey.fromCompressedBytes(fx.serverKeyBytes, { maxExpandedBytes: 64 * 2 ** 20 }), 2000);
    expect(e).toBeInstanceOf(TfheLimitError);
    expect(e!.message).toMatch(/needs 1\d\d MiB/);
  });

  it('after all of that the key still bootstraps correctly', () => {
    const { client, sk } = fx;
    const out = sk.pbs(sk.parseCiphertext(client.encrypt(6)), sk.lut((m) => 15 - m));
    expect(client.decrypt(sk.serializeCiphertext(out))).toBe(9);
  });
});
