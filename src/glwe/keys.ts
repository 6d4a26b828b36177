/**
 * Keys. The client holds two binary GLWE secret keys (k = 1, N coefficients each): S encrypts inputs, S' receives
 * the packed results. The evaluation key is the packing keyswitching key: for every coefficient j of S and digit
 * level l, a GLWE under S' of the constant s_j·2^(64 − B·(ℓ − l)); it is seeded (only the bodies and one 16-byte
 * seed travel) and the server expands and Fourier-transforms it once (`prepareEvaluationKey`).
 * Secret keys never leave the client: nothing in this module serializes them for the server.
 */
import { GlweParameterError } from './errors.js';
import type { GlweParams } from './params.js';
import { fftPlan, keySpectrum, mulBinaryKey } from './poly.js';
import { binaryKey, cryptoRng, randomSeed, seededStream, tuniform, type GlweRng } from './random.js';
import { TWO_32 } from '../tfhe/torus.js';
import { loadGlweKernel, requireGlweKernel } from './native.js';

export interface ClientKey {
  readonly params: GlweParams;
  /** S: input key (N bits). */
  readonly inputKey: Uint8Array;
  /** S': output key (N bits). */
  readonly outputKey: Uint8Array;
  /** Spectra of S and S' (cached for exact products). */
  readonly inputKeySpectrum: Float64Array;
  readonly outputKeySpectrum: Float64Array;
  /** Noise source for encryptions (a CSPRNG stream). */
  readonly rng: GlweRng;
}

export interface EvaluationKey {
  readonly params: GlweParams;
  /** Seed of the masks of all N·ℓ packing GLWEs (one stream, in (j, l) order, N u64 each). */
  readonly seed: Uint8Array;
  /** Bodies: N·ℓ polynomials of N u64 (interleaved lo/hi u32 words), in (j, l) order. */
  readonly bodies: Uint32Array;
}

/**
 * The server's form of the evaluation key: for every packing GLWE (j, l), its mask and body spectra (N f64 each), in
 * the frequency order of the kernel that will use it (the native kernel's packing uses FFTW; the TypeScript oracle
 * its own FFT).
 */
export interface PreparedEvaluationKey {
  readonly params: GlweParams;
  readonly kernel: 'native' | 'typescript';
  /** (j·ℓ + l)·2N: mask spectrum, then body spectrum. */
  readonly spectra: Float64Array;
}

/** Signed float value of u64 words (top 53 bits kept: the server's approximate torus form). */
export function wordToSigned(lo: number, hi: number): number {
  return hi >= 0x80000000 ? (hi - TWO_32) * TWO_32 + lo : hi * TWO_32 + lo;
}

/**
 * Generates the client's secret keys and the packing evaluation key. `rng` (default: a fresh node:crypto seed)
 * drives the secrets and the noise; pass `cryptoRng(seed)` for a reproducible run.
 */
export function generateKeys(params: GlweParams, rng: GlweRng = cryptoRng()): { clientKey: ClientKey; evaluationKey: EvaluationKey } {
  const n = params.polynomialSize;
  const inputKey = binaryKey(rng, n);
  const outputKey = binaryKey(rng, n);
  const clientKey: ClientKey = {
    params,
    inputKey,
    outputKey,
    inputKeySpectrum: keySpectrum(inputKey),
    outputKeySpectrum: keySpectrum(outputKey),
    rng,
  };
  const seed = randomSeed(rng);
  const masks = seededStream(seed);
  const level = params.packingLevel;
  const bodies = new Uint32Array(2 * n * n * level);
  const mask = new Uint32Array(2 * n);
  const msg = new Float64Array(n);
  const noise = new Float64Array(n);
  const out = new Uint32Array(2 * n);
  for (let j = 0; j < n; j++) {
    for (let l = 0; l < level; l++) {
      masks.fillU64(mask, 0, n);
      tuniform(rng, params.noiseBoundLog2, noise);
      // message s_j·2^(64 − B(ℓ − l)) in the constant coefficient: 2^(16·limb)·scale
      const log2g = 64 - params.packingBaseLog * (level - l);
      const limb = Math.floor(log2g / 16);
      msg[0] = inputKey[j]!;
      mulBinaryKey(mask, clientKey.outputKeySpectrum, out, 4, { values: msg, limb, scale: 2 ** (log2g - 16 * limb) }, noise);
      bodies.set(out, 2 * n * (j * level + l));
    }
  }
  return { clientKey, evaluationKey: { params, seed, bodies } };
}

/**
 * Expands the seeded masks and transforms every packing GLWE to the Fourier domain (server, once per client).
 * `kernel` (default 'auto': native when it builds) picks whose FFT the spectra are for.
 */
export function prepareEvaluationKey(key: EvaluationKey, options: { kernel?: 'auto' | 'native' | 'typescript' } = {}): PreparedEvaluationKey {
  const { params } = key;
  const n = params.polynomialSize;
  const level = params.packingLevel;
  const count = n * level;
  if (key.bodies.length !== 2 * n * count) {
    throw new GlweParameterError(`evaluation key: ${key.bodies.length / 2} body values, expected ${n * count} for ${params.name}`);
  }
  const kernel = options.kernel ?? 'auto';
  const native = kernel === 'typescript' ? null : kernel === 'native' ? requireGlweKernel() : loadGlweKernel();
  const fft = fftPlan(n);
  const m = fft.m;
  const spectra = new Float64Array(2 * n * count);
  const masks = seededStream(key.seed);
  const words = new Uint32Array(2 * n);
  const BATCH = 256; // polynomials per native call (bounded scratch)
  const polys = new Float64Array(2 * n * BATCH);
  for (let t0 = 0; t0 < count; t0 += BATCH) {
    const nt = Math.min(BATCH, count - t0);
    for (let t = 0; t < nt; t++) {
      const o = 2 * n * t;
      masks.fillU64(words, 0, n);
      for (let i = 0; i < n; i++) polys[o + i] = wordToSigned(words[2 * i]!, words[2 * i + 1]!);
      const b = key.bodies;
      const ob = 2 * n * (t0 + t);
      for (let i = 0; i < n; i++) polys[o + n + i] = wordToSigned(b[ob + 2 * i]!, b[ob + 2 * i + 1]!);
    }
    if (native) {
      native.keySpectra(polys.subarray(0, 2 * n * nt), spectra.subarray(2 * n * t0, 2 * n * (t0 + nt)), n, fft.twRe, fft.twIm);
    } else {
      for (let q = 0; q < 2 * nt; q++) fft.forward(polys, q * n, spectra, (2 * t0 + q) * n, (2 * t0 + q) * n + m);
    }
  }
  return { params, kernel: native ? 'native' : 'typescript', spectra };
}
