/**
 * Wire formats and hostile input: round trips are lossless (the key's bodies keep their top 48 bits by design), and
 * truncated, oversized, mis-tagged or inconsistent bytes, dimensions that disagree with the matrix, and parameters
 * of another set are refused with typed errors — the size checks before anything is allocated.
 */
import { describe, expect, it } from 'vitest';
import { decryptVector, encryptVector } from '../../src/glwe/client.js';
import { GlweFormatError, GlweLimitError, GlweParameterError } from '../../src/glwe/errors.js';
import { prepareEvaluationKey } from '../../src/glwe/keys.js';
import { serverMatVec } from '../../src/glwe/server.js';
import {
  deserializeEvaluationKey,
  deserializeInputCiphertext,
  deserializeResult,
  serializeEvaluationKey,
  serializeInputCiphertext,
  serializeResult,
} from '../../src/glwe/serialize.js';
import { transformWeights } from '../../src/glwe/weights.js';
import { FhenetError } from '../../src/util/errors.js';
import { exactMatVec, P, randomInts, testKeys } from './helpers.js';

const dOut = 40;
const dIn = 300;
const w = randomInts(1, dOut * dIn, -128, 127);
const x = randomInts(2, dIn, -255, 255);

function setup() {
  const { clientKey, evaluationKey, prepared } = testKeys();
  const tw = transformWeights(P, w, dOut, dIn);
  const ct = encryptVector(clientKey, x, tw.layout);
  return { clientKey, evaluationKey, prepared, tw, ct };
}

describe('wire formats', () => {
  it('ciphertext, result and evaluation key survive serialization; sizes are the documented ones', () => {
    const { clientKey, evaluationKey, tw, ct } = setup();
    const ctBytes = serializeInputCiphertext(ct);
    expect(ctBytes.byteLength).toBe(40 + Math.ceil((P.polynomialSize * P.inputBodyBits) / 8));
    const ct2 = deserializeInputCiphertext(ctBytes, tw.layout);
    expect(Array.from(ct2.bodies)).toEqual(Array.from(ct.bodies));
    const keyBytes = serializeEvaluationKey(evaluationKey);
    expect(keyBytes.byteLength).toBe(28 + P.polynomialSize ** 2 * P.packingLevel * 6);
    // the server works from the parsed key (bodies rounded to 48 bits): results still decrypt within the bound
    const prepared = prepareEvaluationKey(deserializeEvaluationKey(keyBytes));
    const res = serverMatVec(prepared, tw, ct2);
    const resBytes = serializeResult(res);
    expect(resBytes.byteLength).toBe(16 + Math.ceil(((P.polynomialSize + dOut) * P.outputBits) / 8));
    const res2 = deserializeResult(resBytes, dOut);
    expect(Array.from(res2.masks)).toEqual(Array.from(res.masks));
    expect(Array.from(res2.bodies)).toEqual(Array.from(res.bodies));
    const y = decryptVector(clientKey, res2);
    const exact = exactMatVec(w, x, dOut, dIn);
    for (let o = 0; o < dOut; o++) expect(Math.abs(y[o]! - exact[o]!)).toBeLessThanOrEqual(2);
  });
});

describe('hostile input', () => {
  const { tw, ct } = setup();
  const good = serializeInputCiphertext(ct);

  it('truncated and oversized ciphertexts', () => {
    expect(() => deserializeInputCiphertext(good.subarray(0, 10))).toThrow(GlweFormatError);
    expect(() => deserializeInputCiphertext(good.subarray(0, good.byteLength - 1))).toThrow(/truncated/);
    const longer = new Uint8Array(good.byteLength + 8);
    longer.set(good);
    expect(() => deserializeInputCiphertext(longer)).toThrow(/trailing bytes/);
    expect(() => deserializeInputCiphertext(good, undefined, { maxBytes: 1000 })).toThrow(GlweLimitError);
  });

  it('a wrong magic, version tag or parameter set', () => {
    const bad = good.slice();
    bad[0] = 0x58;
    expect(() => deserializeInputCiphertext(bad)).toThrow(/magic/);
    const v2 = good.slice();
    v2[4] = 2;
    expect(() => deserializeInputCiphertext(v2)).toThrow(/format version 2/);
    const p9 = good.slice();
    p9[6] = 9;
    expect(() => deserializeInputCiphertext(p9)).toThrow(GlweParameterError);
    const keyish = good.slice();
    keyish.set([0x46, 0x47, 0x4c, 0x4b], 0); // an evaluation key's magic on ciphertext bytes
    expect(() => deserializeInputCiphertext(keyish)).toThrow(GlweFormatError);
  });

  it('declared dimensions that disagree with the matrix, or with themselves', () => {
    const other = transformWeights(P, randomInts(3, 40 * 301, -128, 127), 40, 301);
    expect(() => deserializeInputCiphertext(good, other.layout)).toThrow(/matrix expects d_in 301/);
    const absurd = good.slice();
    new DataView(absurd.buffer).setUint32(16, 0xffffffff, true); // 4 billion pieces
    expect(() => deserializeInputCiphertext(absurd)).toThrow(GlweFormatError);
    const { prepared } = testKeys();
    expect(() => serverMatVec(prepared, other, ct)).toThrow(GlweParameterError);
    expect(() => serverMatVec(prepared, tw, ct, { bias: [1, 2, 3] })).toThrow(/bias of length 3/);
    expect(() => serverMatVec(prepared, tw, ct, { bias: new Array(dOut).fill(2 ** 30) })).toThrow(/overflows/);
  });

  it('a key of another parameter set, and client-side misuse', () => {
    const { clientKey, prepared } = testKeys();
    const otherParams = { ...P, code: 2, name: 'other' };
    expect(() => serverMatVec({ ...prepared, params: otherParams }, tw, ct)).toThrow(/parameter sets disagree/);
    const keyBytes = new Uint8Array(28);
    keyBytes.set([0x46, 0x47, 0x4c, 0x4b, 1, 0, 1, 0, 16, 2, 48, 0]); // base 2^16, 2 levels: not this set's
    expect(() => deserializeEvaluationKey(keyBytes)).toThrow(/does not match parameter set/);
    expect(() => deserializeEvaluationKey(new Uint8Array(200 << 20))).toThrow(GlweLimitError);
    expect(() => encryptVector(clientKey, new Array(dIn).fill(256), tw.layout)).toThrow(/within ±255/);
    expect(() => encryptVector(clientKey, [1, 2], tw.layout)).toThrow(/2 values/);
    expect(() => transformWeights(P, [300], 1, 1)).toThrow(/int8/);
    // every refusal is a FhenetError (the CLI and servers print it as one line / answer 4xx)
    expect(() => deserializeResult(new Uint8Array(3))).toThrow(FhenetError);
  });
});
