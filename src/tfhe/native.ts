/**
 * Loader of the optional native kernel (native/kernel.c): the keyswitch and blind-rotation loops in
 * C, compiled at first use by the shared loader (src/util/native-addon.ts: system C compiler, Node-API headers,
 * cached in node_modules/.cache/fhenet-tfhe/, keyed by source, flags, Node ABI and CPU features). Chosen by measurement
 * (bench/results/tfhe.md): ≈ 10× faster than the TypeScript loops on this machine.
 *
 * Anything that goes wrong — no compiler, no headers, a failing build, FHENET_TFHE_NATIVE=0 —
 * yields `null` and the TypeScript implementation (the reference) is used instead.
 */
import { findIncludeDir, findSource, loadNativeAddon } from '../util/native-addon.js';

export interface NativeKernel {
  /** Blind rotation of `batch` ciphertexts (luts batch×N, masks batch×n, accs batch×(k+1)N). */
  blindRotate(
    bsk: Float64Array, luts: Float64Array, masks: Int32Array, bodies: Int32Array, accs: Float64Array,
    batch: number, n: number, k: number, N: number, baseLog: number, level: number,
    twRe: Float64Array, twIm: Float64Array, stRe: Float64Array, stIm: Float64Array,
    useFftw: 0 | 1,
  ): void;
  keyswitch(rows: Int32Array, input: Uint32Array, out: Float64Array, inputDim: number, outputSize: number, baseLog: number, level: number): void;
  /** Whether this build links FFTW (fftw3.h and libfftw3 were found when it was compiled). */
  readonly fftwBuilt: boolean;
  /**
   * Whether blindRotate(..., useFftw = 1) runs FFTW for polynomials of size N (built with FFTW, N/2 a multiple of 8,
   * FFTW's spectrum order matched to the shared FFT's); false: it would run the shared FFT.
   */
  fftwUsable(N: number, twRe: Float64Array, twIm: Float64Array, stRe: Float64Array, stIm: Float64Array): boolean;
  /**
   * Reorders a Fourier key in place, every N-slot, from the shared FFT's order to FFTW's (the order blindRotate with
   * useFftw = 1 reads); false, data untouched, where FFTW is not usable for N.
   */
  fftwKeyOrder(data: Float64Array, N: number, twRe: Float64Array, twIm: Float64Array, stRe: Float64Array, stIm: Float64Array): boolean;
}

/** Where fftw3.h may be (Debian/Ubuntu libfftw3-dev, /usr/local builds, Homebrew). */
const FFTW_INCLUDE_DIRS = ['/usr/include', '/usr/local/include', '/opt/homebrew/include', '/usr/include/x86_64-linux-gnu', '/usr/include/aarch64-linux-gnu'];

let loadError: string | undefined;
let fftwError: string | undefined;

/** Why the native kernel was built without FFTW (undefined when it links FFTW, or before the first attempt). */
export function nativeFftwError(): string | undefined {
  return fftwError;
}

/** Why the native kernel is not in use (undefined when it is, or before the first attempt). */
export function nativeKernelError(): string | undefined {
  return loadError;
}

/** The native kernel, building it if needed; null if unavailable (TypeScript fallback). */
export function loadNativeKernel(): NativeKernel | null {
  let sources: string[];
  let headers: string[];
  try {
    // From src/tfhe (tsx, tests) the source sits next to this file; from a tsc build (dist/tfhe, which does not copy
    // .c files) it is found in the package's src/ folder.
    sources = [findSource(import.meta.url, ['native/kernel.c', '../../src/tfhe/native/kernel.c'])];
    headers = ['negacyclic_fft.h', 'napi_typed.h'].map((h) => findSource(import.meta.url, [`native/${h}`, `../../src/tfhe/native/${h}`]));
  } catch (e) {
    loadError = (e as Error).message;
    return null;
  }
  // -ffp-contract=off keeps the C arithmetic bit-identical to the TypeScript reference (no fused multiply-add).
  const base = { sources, disableEnv: 'FHENET_TFHE_NATIVE', exports: ['blindRotate', 'keyswitch', 'fftwUsable', 'fftwKeyOrder'] };
  const plain = { ...base, name: 'fhenet-tfhe', headers, flags: ['-O3', '-march=native', '-ffp-contract=off'], libs: ['-lm'] };
  // With FFTW (libfftw3-dev) the kernel can also run the blind rotation's transforms with it (the default transform,
  // see ServerKey); without it, or if that build fails, the kernel is built without (shared FFT only).
  const fftwHeader = findIncludeDir('fftw3.h', FFTW_INCLUDE_DIRS);
  let r = fftwHeader
    ? loadNativeAddon<NativeKernel>({
        ...plain,
        name: 'fhenet-tfhe-fftw',
        headers: [...headers, findSource(import.meta.url, ['native/fftw_order.h', '../../src/tfhe/native/fftw_order.h'])],
        flags: [...plain.flags, '-DFHENET_FFTW', '-pthread'],
        includeDirs: [fftwHeader],
        libs: ['-lfftw3', '-lm', '-lpthread'],
      })
    : null;
  fftwError = fftwHeader ? r?.error : `fftw3.h not found in ${FFTW_INCLUDE_DIRS.join(', ')} (Debian: apt-get install libfftw3-dev)`;
  if (!r?.addon) r = loadNativeAddon<NativeKernel>(plain);
  loadError = r.error;
  return r.addon;
}
