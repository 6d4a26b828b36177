/**
 * KS-PBS end to end on node-tfhe ciphertexts: encrypted by node-tfhe, bootstrapped by fhenet,
 * serialized back and decrypted by node-tfhe (the oracle).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TfheNoiseError, TfheParameterError } from '../../src/tfhe/errors.js';
import { ServerKey } from '../../src/tfhe/server-key.js';
import { PbsPool } from '../../src/tfhe/pool.js';
import { nativeKernelError } from '../../src/tfhe/native.js';
import { expectNativeWhenRequired } from '../require-native.js';
import { makeFixture, LONG, rng, type Fixture } from './helpers.js';

let fx: Fixture;
beforeAll(() => {
  fx = makeFixture();
});

const P = 16; // 2_2 set: message 4 × carry 4

const tables: Record<string, (m: number) => number> = {
  identity: (m) => m,
  negation: (m) => (P - m) % P,
  // ReLU on the signed reading of [0, 16) (8..15 are −8..−1).
  relu: (m) => (m < P / 2 ? m : 0),
  square: (m) => (m * m) % P,
};

describe('KS-PBS (2_2 set)', () => {
  for (const [name, f] of Object.entries(tables)) {
    it(`every message through ${name} decrypts right (full plaintext and padding bit)`, () => {
      const { client, sk } = fx;
      const lut = sk.lut(f);
      for (let m = 0; m < P; m++) {
        const ct = sk.decompressCiphertext(client.encryptCompressed(m));
        const out = sk.pbs(ct, lut);
        expect(out.noiseLevel).toBe(1);
        const bytes = sk.serializeCiphertext(out);
        // modulus 2p: the padding bit must be clear, so this reads exactly f(m).
        expect(client.decrypt(bytes, 2 * P), `${name}(${m})`).toBe(f(m));
        // The default serialization (message_modulus 4) decrypts to f(m) mod 4, like TFHE-rs.
        expect(client.decrypt(bytes, 4)).toBe(f(m) % 4);
      }
    });
  }

  it('the TypeScript reference path agrees with the default backend (native kernel when it builds)', () => {
    const { client, sk, serverKeyBytes } = fx;
    console.log(`default backend: ${sk.backend}${sk.backend === 'typescript' ? ` (${nativeKernelError()})` : ''}`);
    expectNativeWhenRequired('TFHE PBS', sk.backend === 'native', nativeKernelError());
    const ref = ServerKey.fromCompressedBytes(serverKeyBytes, { backend: 'typescript' });
    expect(ref.backend).toBe('typescript');
    const f = tables.square!;
    for (const m of [0, 7, 13]) {
      const ct = sk.parseCiphertext(client.encrypt(m));
      const a = sk.serializeCiphertext(sk.pbs(ct, sk.lut(f)));
      const b = ref.serializeCiphertext(ref.pbs(ct, ref.lut(f)));
      expect(client.decrypt(a)).toBe(f(m));
      expect(client.decrypt(b)).toBe(f(m));
      // Same algorithm, same operations in the same order, no FMA contraction: bit-identical.
      if (sk.backend === 'native') expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    }
  });

  it('pbsBatch (one pass over the key for several ciphertexts) equals pbs() on each, bit for bit', () => {
    const { client, sk } = fx;
    const luts = [sk.lut(tables.square!), sk.lut(tables.relu!), sk.lut(tables.identity!)];
    const ms = [3, 9, 14, 6, 1];
    const cts = ms.map((m) => sk.parseCiphertext(client.encrypt(m)));
    const perCt = cts.map((_, i) => luts[i % 3]!);
    const batch = sk.pbsBatch(cts, perCt);
    batch.forEach((o, i) => {
      expect(Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength).equals(Buffer.from(sk.pbs(cts[i]!, perCt[i]!).data.buffer))).toBe(true);
      expect(client.decrypt(sk.serializeCiphertext(o))).toBe(perCt[i]!.values[ms[i]!]);
    });
    expect(sk.pbsBatch([], luts[0]!)).toEqual([]);
    expect(() => sk.pbsBatch(cts, luts)).toThrow(TfheParameterError);
  });

  it('a worker pool sharing the expanded key gives the same results', async () => {
    const { client, serverKeyBytes } = fx;
    const pool = await PbsPool.create(serverKeyBytes, { threads: 2 });
    try {
      const sk = pool.key;
      const f = tables.negation!;
      const lut = sk.lut(f);
      const cts = Array.from({ length: 8 }, (_, i) => sk.parseCiphertext(client.encrypt(i * 2)));
      const outs = await pool.pbsMany(cts, lut);
      outs.forEach((o, i) => expect(client.decrypt(sk.serializeCiphertext(o))).toBe(f(i * 2)));
      // The noise check runs in the calling thread, before dispatch.
      const noisy = sk.dot(new Array(50).fill(7), new Array(50).fill(outs[0]!));
      expect(() => pool.pbs(noisy, lut)).toThrow(TfheNoiseError);
    } finally {
      await pool.close();
    }
  });

  it('chains bootstraps and linear layers (PBS output feeds a dot product feeding a PBS)', () => {
    const { client, sk } = fx;
    const r = rng(7);
    const half = sk.lut((m) => m >> 1);
    for (let t = 0; t < 12; t++) {
      const a = Math.floor(r() * 16);
      const b = Math.floor(r() * 16);
      const ea = sk.pbs(sk.parseCiphertext(client.encrypt(a)), half); // a >> 1 ∈ [0, 8)
      const eb = sk.pbs(sk.parseCiphertext(client.encrypt(b)), half);
      const s = sk.add(ea, eb); // < 16
      const out = sk.pbs(s, sk.lut((m) => (3 * m) % 16));
      expect(client.decrypt(sk.serializeCiphertext(out))).toBe((3 * ((a >> 1) + (b >> 1))) % 16);
    }
  });

  it('keeps TFHE-rs padding-bit semantics: an input with the padding bit set yields −f(m − p)', () => {
    const { client, sk } = fx;
    const f = (m: number) => m + 1; // values 1..16 mod 32
    const lut = sk.lut((m) => f(m) % P);
    for (const m of [0, 5, 15]) {
      const ct = sk.parseCiphertext(client.encrypt(m + P)); // padding bit set
      const out = sk.pbs(ct, lut);
      expect(client.decrypt(sk.serializeCiphertext(out), 2 * P)).toBe((2 * P - (f(m) % P)) % (2 * P));
    }
  });

  it('measured PBS output noise matches the model (σ within a factor 2)', () => {
    const { client, sk } = fx;
    const lut = sk.lut((m) => m);
    let sum = 0;
    const count = 24;
    for (let i = 0; i < count; i++) {
      const m = i % P;
      const out = sk.pbs(sk.decompressCiphertext(client.encryptCompressed(m)), lut);
      const e = client.noise(sk.serializeCiphertext(out), m);
      sum += e * e;
    }
    const measured = Math.sqrt(sum / count);
    const model = Math.sqrt(sk.budget.pbsOutputVariance);
    expect(measured / model).toBeGreaterThan(0.5);
    expect(measured / model).toBeLessThan(2);
  });

  it('refuses a PBS input beyond the noise budget and a LUT of the wrong size', () => {
    const { client, sk } = fx;
    const lut = sk.lut((m) => m);
    const y = sk.pbs(sk.parseCiphertext(client.encrypt(1)), lut);
    // 8 copies with weight 8 → ‖w‖₂ = 8·√8 ≈ 22.6: fine; weight 7 on 50 terms: ‖w‖₂ ≈ 49.5, still
    // decryptable (budget ≈ 56) but above the PBS-input budget (≈ 48, keyswitch + modulus switch noise)
    const ok = sk.dot(new Array(8).fill(8), new Array(8).fill(y));
    expect(() => sk.pbs(ok, lut)).not.toThrow();
    const noisy = sk.dot(new Array(50).fill(7), new Array(50).fill(y));
    expect(() => sk.pbs(noisy, lut)).toThrow(TfheNoiseError);
    expect(() => sk.pbs(y, { ...lut, poly: new Float64Array(1024) })).toThrow(TfheParameterError);
  });

  it.runIf(LONG)('long run: thousands of PBS over all tables, zero failures', () => {
    const { client, sk } = fx;
    const luts = Object.values(tables).map((f) => ({ f, lut: sk.lut(f) }));
    const r = rng(1234);
    const total = Number(process.env.FHENET_LONG_PBS ?? 2048);
    let failures = 0;
    let sq = 0;
    let worst = 0;
    const t0 = performance.now();
    for (let i = 0; i < total; i++) {
      // Inputs built as E(m mod 4) + 4·E(m div 4): noise level 5, like the reference prototype.
      const m = Math.floor(r() * P);
      const lo = sk.parseCiphertext(client.encrypt(m % 4));
      const hi = sk.parseCiphertext(client.encrypt(m >> 2));
      const ct = sk.dot([1, 4], [lo, hi]);
      const { f, lut } = luts[i % luts.length]!;
      const bytes = sk.serializeCiphertext(sk.pbs(ct, lut));
      const v = client.decrypt(bytes, 2 * P);
      if (v !== f(m)) failures++;
      const e = client.noise(bytes, f(m));
      sq += e * e;
      worst = Math.max(worst, Math.abs(e));
    }
    const ms = (performance.now() - t0) / total;
    const sigma = Math.sqrt(sq / total);
    console.log(
      `long PBS run: ${failures} failures / ${total} PBS, ${ms.toFixed(1)} ms per iteration (incl. encrypt/decrypt); ` +
        `output noise rms 2^${Math.log2(sigma).toFixed(2)} (model 2^${(Math.log2(sk.budget.pbsOutputVariance) / 2).toFixed(2)}), ` +
        `max 2^${Math.log2(worst).toFixed(2)} vs decoding bound Δ/2 = 2^58`,
    );
    expect(sigma / Math.sqrt(sk.budget.pbsOutputVariance)).toBeLessThan(1.5);
    expect(failures).toBe(0);
  }, 3_600_000);
});
