/**
 * Seed expansion is exact: fhenet's decompression of seeded ciphertexts equals node-tfhe's own
 * `decompress_ciphertext` byte for byte, and the regenerated keyswitching / bootstrapping key rows
 * have the phases TFHE-rs puts in them (checked with the secret key: this test plays the client).
 */
import * as tfhe from 'node-tfhe';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseClientKey, type ClientKeyContents } from '../../src/tfhe/client-key-layout.js';
import { AesCtrStream } from '../../src/tfhe/csprng.js';
import {
  parseCiphertext,
  parseCompressedCiphertext,
  parseCompressedServerKey,
  serializeCiphertextFields,
  serializeCompressedCiphertextFields,
  type CompressedServerKeyFields,
} from '../../src/tfhe/layouts.js';
import { ServerKey } from '../../src/tfhe/server-key.js';
import { wordsToBigInt, wordsToSigned } from '../../src/tfhe/torus.js';

const { Shortint, ShortintParameters, ShortintParametersName } = tfhe;

let ck: tfhe.ShortintClientKey;
let secret: ClientKeyContents;
let keyBytes: Uint8Array;
let fields: CompressedServerKeyFields;
let sk: ServerKey;

beforeAll(() => {
  ck = Shortint.new_client_key(new ShortintParameters(ShortintParametersName.PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128));
  secret = parseClientKey(Shortint.serialize_client_key(ck));
  keyBytes = Shortint.serialize_compressed_server_key(Shortint.new_compressed_server_key(ck));
  fields = parseCompressedServerKey(keyBytes);
  sk = ServerKey.fromCompressedBytes(keyBytes);
});

const MASK64 = (1n << 64n) - 1n;
/** Signed distance of x from y on the 2^64 torus. */
const dist = (x: bigint, y: bigint) => BigInt.asIntN(64, (x - y) & MASK64);
const abs = (x: bigint) => (x < 0n ? -x : x);

describe('layouts', () => {
  it('round-trips node-tfhe ciphertexts and compressed ciphertexts byte for byte', () => {
    for (const m of [0n, 1n, 3n]) {
      const b = Shortint.serialize_ciphertext(Shortint.encrypt(ck, m));
      expect(serializeCiphertextFields(parseCiphertext(b))).toEqual(b);
      const c = Shortint.serialize_compressed_ciphertext(Shortint.encrypt_compressed(ck, m));
      expect(c.byteLength).toBe(124);
      expect(serializeCompressedCiphertextFields(parseCompressedCiphertext(c))).toEqual(c);
    }
  });

  it('reads the parameters of the key', () => {
    expect(fields.ksk.baseLog).toBe(4);
    expect(fields.ksk.level).toBe(4);
    expect(fields.ksk.outputLweSize).toBe(919);
    expect(fields.bsk.polynomialSize).toBe(2048);
    expect(fields.bsk.glweSize).toBe(2);
    expect(fields.bsk.baseLog).toBe(23);
    expect(fields.modulusSwitch).toBe('centered-mean');
    expect(fields.messageModulus * fields.carryModulus).toBe(16);
    expect(sk.params.name).toBe('PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128');
  });
});

describe('seed expansion', () => {
  it("decompressed ciphertexts equal node-tfhe's decompress_ciphertext exactly", () => {
    for (let m = 0; m < 4; m++) {
      for (let rep = 0; rep < 4; rep++) {
        const cc = Shortint.encrypt_compressed(ck, BigInt(m));
        const theirs = Shortint.serialize_ciphertext(Shortint.decompress_ciphertext(cc));
        const ours = sk.serializeCiphertext(sk.decompressCiphertext(Shortint.serialize_compressed_ciphertext(cc)));
        expect(Buffer.from(ours).equals(Buffer.from(theirs))).toBe(true);
      }
    }
  });

  it('keyswitching-key rows decrypt (small key) to s_big[i]·2^(64 − B(L−j)) within TUniform(45)', () => {
    const { level: L, baseLog: B, outputLweSize } = fields.ksk;
    const n = outputLweSize - 1;
    const count = fields.ksk.bodies.length / 2;
    const mask = new Uint32Array(2 * n);
    const check = (c: number, stream: AesCtrStream) => {
      stream.fillU64(mask, 0, n);
      let dot = 0n;
      for (let t = 0; t < n; t++) if (secret.lweKey[2 * t] === 1) dot += wordsToBigInt(mask, t);
      const phase = (wordsToBigInt(fields.ksk.bodies, c) - dot) & MASK64;
      const i = Math.floor(c / L);
      const j = c % L;
      const expected = BigInt(secret.glweKey[2 * i]!) << BigInt(64 - B * (L - j));
      expect(abs(dist(phase, expected & MASK64)) <= 1n << 45n, `row ${c}`).toBe(true);
      // The evaluator's copy of the row is the same key material, rounded to its top 32 bits.
      for (const t of [0, 1, n - 1]) {
        const full = wordsToBigInt(mask, t);
        const top = BigInt.asIntN(32, (full + (1n << 31n)) >> 32n);
        expect(sk.ksk.rows[c * outputLweSize + t]).toBe(Number(top));
      }
    };
    const s = new AesCtrStream(fields.ksk.seed);
    for (let c = 0; c < 64; c++) check(c, s);
    // The last rows: skip the stream to them (children are contiguous, n·8 bytes each).
    const s2 = new AesCtrStream(fields.ksk.seed);
    s2.skip((count - 8) * n * 8);
    for (let c = count - 8; c < count; c++) check(c, s2);
  });

  it('bootstrapping-key GGSW rows have phase −s_i·g·S_r (mask rows) and s_i·g (body row) within TUniform(17)', () => {
    const { level: L, baseLog: B, glweSize: k1, polynomialSize: N } = fields.bsk;
    const k = k1 - 1;
    const n = fields.ksk.outputLweSize - 1;
    const S = (r: number, t: number) => BigInt(secret.glweKey[2 * (r * N + t)]!);
    const maskWords = new Uint32Array(2 * k * N);
    const checkGgsw = (i: number, stream: AesCtrStream) => {
      const si = BigInt(secret.lweKey[2 * i]!);
      for (let li = 0; li < L; li++) {
        const g = 1n << BigInt(64 - B * (L - li));
        for (let r = 0; r < k1; r++) {
          stream.fillU64(maskWords, 0, k * N);
          for (const t of [0, 1, 17, N - 1]) {
            // (Σ_c A_c·S_c)[t] in Z[X]/(X^N + 1)
            let dot = 0n;
            for (let c = 0; c < k; c++) {
              for (let j = 0; j < N; j++) {
                const a = wordsToBigInt(maskWords, c * N + j);
                if (j <= t) dot += a * S(c, t - j);
                else dot -= a * S(c, N + t - j);
              }
            }
            const body = wordsToBigInt(fields.bsk.bodies, ((i * L + li) * k1 + r) * N + t);
            const phase = (body - dot) & MASK64;
            const expected = r < k ? -si * g * S(r, t) : t === 0 ? si * g : 0n;
            expect(abs(dist(phase, expected & MASK64)) <= 1n << 17n, `GGSW ${i} level ${li} row ${r} coef ${t}`).toBe(true);
          }
        }
      }
    };
    const s = new AesCtrStream(fields.bsk.seed);
    checkGgsw(0, s);
    checkGgsw(1, s);
    const s2 = new AesCtrStream(fields.bsk.seed);
    s2.skip((n - 1) * L * k1 * k * N * 8);
    checkGgsw(n - 1, s2);
  });

  it('the Fourier-domain key transforms back to the regenerated polynomials (and the FFTW-order key is a reordering)', () => {
    const { polynomialSize: N, glweSize: k1 } = fields.bsk;
    const M = N / 2;
    const shared = sk.transform === 'shared' ? sk : ServerKey.fromCompressedBytes(keyBytes, { transform: 'shared' });
    expect(shared.bsk.order).toBe('shared');
    if (sk.bsk.order === 'fftw') {
      // Every N-slot holds the same M complex values, in FFTW's natural order instead of the shared FFT's.
      for (const slot of [0, 1, sk.bsk.data.length / N - 1]) {
        const pairs = (d: Float64Array) => Array.from({ length: M }, (_, x) => `${d[slot * N + x]},${d[slot * N + M + x]}`).sort();
        expect(pairs(sk.bsk.data)).toEqual(pairs(shared.bsk.data));
      }
    }
    // GGSW 0, row q = 0, body polynomial c = k.
    const off = (0 * k1 + (k1 - 1)) * N;
    const spec = shared.bsk.data.slice(off, off + N);
    const back = new Float64Array(N);
    shared.fft.inverse(spec, 0, M, back, 0, false);
    let worst = 0;
    for (let t = 0; t < N; t++) {
      const want = wordsToSigned(fields.bsk.bodies[2 * t]!, fields.bsk.bodies[2 * t + 1]!);
      const d = Math.abs(back[t]! - want);
      worst = Math.max(worst, Math.min(d, 2 ** 64 - d));
    }
    expect(worst).toBeLessThan(2 ** 16);
  });
});
