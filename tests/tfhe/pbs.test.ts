/**
 * KS-PBS end to end on node-tfhe ciphertexts: encrypted by node-tfhe, bootstrapped by fhenet,
 * serialized back and decrypted by node-tfhe (the oracle).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TfheNoiseError, TfheParameterError } from '../../src/tfhe/errors.js';
import { ServerKey } from '../../src/tfhe/server-key.js';
import { PbsPool } from '../../src/tfhe/pool.js';
import { loadNativeKernel, nativeFftwError, nativeKernelError } from '../../src/tfhe/native.js';
import { transformDifferenceBounds } from '../../src/tfhe/noise.js';
import { expectNativeWhenRequired } from '../require-native.js';
import { expectFftwWhenRequired } from './helpers.js';
import { makeFixture, LONG, rng, type Fixture } from './helpers.js';

let fx: Fixture;
beforeAll(() => {
  fx = makeFixture();
});

/** The same key expanded for the shared FFT (its Fourier key in the shared order), made on first use. */
let sharedKey: ServerKey | undefined;
const sharedTransformKey = () => (sharedKey ??= ServerKey.fromCompressedBytes(fx.serverKeyBytes, { transform: 'shared' }));

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

  it('the native kernel with the shared FFT is bit-identical to the TypeScript reference (the oracle pins the kernel)', () => {
    const { client, sk, serverKeyBytes } = fx;
    console.log(`default backend: ${sk.backend}${sk.backend === 'typescript' ? ` (${nativeKernelError()})` : ` (transform ${sk.transform})`}`);
    expectNativeWhenRequired('TFHE PBS', sk.backend === 'native', nativeKernelError());
    expectFftwWhenRequired(sk);
    const ref = ServerKey.fromCompressedBytes(serverKeyBytes, { backend: 'typescript' });
    expect(ref.backend).toBe('typescript');
    const shared = sharedTransformKey();
    expect(shared.transform).toBe('shared');
    expect(shared.bsk.order).toBe('shared');
    if (sk.transform === 'fftw') {
      // An expanded key in FFTW's order serves only the FFTW transform (worker threads rebuild keys around it).
      expect(sk.bsk.order).toBe('fftw');
      expect(() => ServerKey.fromExpanded(sk.params, sk.ksk, sk.bsk, { backend: 'typescript' })).toThrow(/FFTW transform unavailable/);
      expect(() => ServerKey.fromExpanded(sk.params, sk.ksk, sk.bsk, { transform: 'shared' })).toThrow(TfheParameterError);
    }
    const f = tables.square!;
    for (const m of [0, 7, 13]) {
      const ct = sk.parseCiphertext(client.encrypt(m));
      const a = shared.serializeCiphertext(shared.pbs(ct, shared.lut(f)));
      const b = ref.serializeCiphertext(ref.pbs(ct, ref.lut(f)));
      expect(client.decrypt(a)).toBe(f(m));
      expect(client.decrypt(b)).toBe(f(m));
      // Same algorithm, same operations in the same order, no FMA contraction: bit-identical.
      if (shared.backend === 'native') expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
      // The keyswitch runs the same float64 operations in the same order on both backends, whatever the transform.
      expect(sk.keyswitch(ct).data).toEqual(ref.keyswitch(ct).data);
    }
  });

  it('FFTW (the default transform where built) differs from the shared FFT by float rounding within the model', () => {
    const { client, sk } = fx;
    const kernel = loadNativeKernel();
    if (sk.transform !== 'fftw' || !kernel) {
      console.log(`skipped: default transform is ${sk.transform} (${nativeFftwError() ?? nativeKernelError() ?? 'FHENET_TFHE_FFTW=0'})`);
      expectFftwWhenRequired(sk);
      return;
    }
    const shared = sharedTransformKey();
    const bounds = transformDifferenceBounds(sk.params, sk.budget.log2PError);

    // One external product (a blind rotation over GGSW 0 alone, each transform with its key's order) on the same
    // random accumulator.
    const { polynomialSize: N, glweDimension: k, baseLog, level } = sk.bsk;
    const k1 = k + 1;
    const r = rng(24);
    const ggsw0 = [shared, sk].map((key) => key.bsk.data.subarray(0, level * k1 * k1 * N));
    let worstProduct = 0;
    for (let t = 0; t < 8; t++) {
      const lut = Float64Array.from({ length: N }, () => (r() - 0.5) * 2 ** 64);
      const mask = Int32Array.of(1 + Math.floor(r() * (2 * N - 1)));
      const body = Int32Array.of(Math.floor(r() * 2 * N));
      const accs = [0, 1].map((useFftw) => {
        const acc = new Float64Array(k1 * N);
        const f = sk.fft;
        kernel.blindRotate(ggsw0[useFftw]!, lut, mask, body, acc, 1, 1, k, N, baseLog, level, f.twRe, f.twIm, f.stRe, f.stIm, useFftw as 0 | 1);
        return acc;
      });
      for (let j = 0; j < k1 * N; j++) {
        let d = accs[0]![j]! - accs[1]![j]!; // mod 2^64: both are reduced to [−2^63, 2^63]
        if (d > 2 ** 63) d -= 2 ** 64;
        if (d < -(2 ** 63)) d += 2 ** 64;
        worstProduct = Math.max(worstProduct, Math.abs(d));
      }
    }
    const lg = (x: number) => `2^${Math.log2(x).toFixed(2)}`;
    console.log(`FFTW vs shared FFT (2_2): one external product max |Δcoef| ${lg(worstProduct)} (bound ${lg(bounds.externalProduct)})`);
    expect(worstProduct).toBeGreaterThan(0); // really another transform (else this test compares the FFT with itself)
    expect(worstProduct).toBeLessThanOrEqual(bounds.externalProduct);

    // Whole KS-PBS: same message on every sample, phases within the bound.
    const lut = sk.lut(tables.square!);
    const diffs: number[] = [];
    for (let i = 0; i < 32; i++) {
      const m = i % P;
      const ct = sk.decompressCiphertext(client.encryptCompressed(m));
      const a = sk.serializeCiphertext(sk.pbs(ct, lut));
      const b = shared.serializeCiphertext(shared.pbs(ct, lut));
      expect(client.decrypt(a, 2 * P), `FFTW square(${m})`).toBe(tables.square!(m));
      expect(client.decrypt(b, 2 * P), `shared square(${m})`).toBe(tables.square!(m));
      diffs.push(client.noise(a, tables.square!(m)) - client.noise(b, tables.square!(m)));
    }
    const worstPhase = Math.max(...diffs.map(Math.abs));
    const rmsPhase = Math.sqrt(diffs.reduce((s, d) => s + d * d, 0) / diffs.length);
    console.log(
      `FFTW vs shared FFT (2_2): KS-PBS phase difference rms ${lg(rmsPhase)}, max ${lg(worstPhase)} over ${diffs.length} (bound ${lg(bounds.pbsPhase)}, ` +
        `PBS noise model σ ${lg(Math.sqrt(sk.budget.pbsOutputVariance))}, decoding bound Δ/2 = 2^${Math.log2(2 ** 63 / P / 2).toFixed(0)})`,
    );
    expect(worstPhase).toBeLessThanOrEqual(bounds.pbsPhase);
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
