/**
 * Loader of the native GLWE kernel (native/glwe.c): the server's per-call work (input FFTs, products, packing
 * keyswitch, modulus switch) in C with pthreads, compiled at first use by src/util/native-addon.ts (system C
 * compiler, Node-API headers, FFTW — Debian libfftw3-dev; cached by source, flags, Node ABI and CPU features). The
 * products use the negacyclic FFT of the TFHE kernel (src/tfhe/native/negacyclic_fft.h) with TypeScript's twiddle
 * tables, so weights transformed in TypeScript serve both kernels; the packing keyswitch uses FFTW, so the packing
 * key is prepared for one kernel or the other (PreparedEvaluationKey.kernel).
 *
 * `-march=native` selects the instruction set at build time on the machine that runs it (AVX-512/AVX2 where the
 * CPU has them, plain x86-64 or arm64 code elsewhere; the cache key holds the CPU's feature flags, so a copied
 * cache never runs unsupported instructions). FHENET_GLWE_NATIVE=0 disables it (TypeScript oracle);
 * FHENET_REQUIRE_NATIVE=1 makes `kernel: 'auto'` fail instead of falling back.
 */
import { findSource, loadNativeAddon } from '../util/native-addon.js';
import { GlweError } from './errors.js';

export interface GlweKernel {
  matvec(
    a: Float64Array, b: Float64Array, weightSpectra: Float64Array, keySpectra: Float64Array, biasTorus: Float64Array,
    masksOut: Uint32Array, bodiesOut: Uint32Array,
    /** [N, dIn, dOut, chunkLen, chunks, packingBaseLog, packingLevel, outputBits, threads] */
    dims: number[],
    twRe: Float64Array, twIm: Float64Array, stRe: Float64Array, stIm: Float64Array,
  ): void;
  /** FFTW-order spectra of `polys.length / N` real polynomials (the packing key's form for this kernel). */
  keySpectra(polys: Float64Array, out: Float64Array, n: number, twRe: Float64Array, twIm: Float64Array): void;
}

let loadError: string | undefined;
let kernel: GlweKernel | null | undefined;

/** Why the native kernel is not in use (undefined when it is, or before the first attempt). */
export function glweKernelError(): string | undefined {
  return loadError;
}

/** The native kernel, building it if needed; null if unavailable (unless FHENET_REQUIRE_NATIVE=1: then it throws). */
export function loadGlweKernel(): GlweKernel | null {
  if (kernel !== undefined) return kernel;
  try {
    const sources = [findSource(import.meta.url, ['native/glwe.c', '../../src/glwe/native/glwe.c'])];
    const headers = ['negacyclic_fft.h', 'napi_typed.h', 'fftw_order.h'].map((h) => findSource(import.meta.url, [`../tfhe/native/${h}`, `../../src/tfhe/native/${h}`]));
    const r = loadNativeAddon<GlweKernel>({
      name: 'fhenet-glwe',
      sources,
      headers,
      flags: ['-O3', '-march=native', '-ffp-contract=off', '-pthread'],
      libs: ['-lfftw3', '-lm', '-lpthread'],
      disableEnv: 'FHENET_GLWE_NATIVE',
      exports: ['matvec', 'keySpectra'],
    });
    loadError = r.error;
    kernel = r.addon;
  } catch (e) {
    loadError = (e as Error).message;
    kernel = null;
  }
  if (!kernel && process.env.FHENET_REQUIRE_NATIVE === '1' && process.env.FHENET_GLWE_NATIVE !== '0') {
    throw new GlweError(`native GLWE kernel required (FHENET_REQUIRE_NATIVE=1) but unavailable: ${loadError}`);
  }
  return kernel;
}

/** The native kernel or a GlweError saying why it is unavailable. */
export function requireGlweKernel(): GlweKernel {
  const k = loadGlweKernel();
  if (!k) throw new GlweError(`native GLWE kernel unavailable: ${loadError}`);
  return k;
}
