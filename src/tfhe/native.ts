/**
 * Loader of the optional native kernel (native/kernel.c): the keyswitch and blind-rotation loops in
 * C, compiled at first use by the shared loader (src/util/native-addon.ts: system C compiler, Node-API headers,
 * cached in node_modules/.cache/fhenet-tfhe/, keyed by source, flags, Node ABI and CPU features). Chosen by measurement
 * (bench/results/tfhe.md): ≈ 10× faster than the TypeScript loops on this machine.
 *
 * Anything that goes wrong — no compiler, no headers, a failing build, FHENET_TFHE_NATIVE=0 —
 * yields `null` and the TypeScript implementation (the reference) is used instead.
 */
import { findSource, loadNativeAddon } from '../util/native-addon.js';

export interface NativeKernel {
  /** Blind rotation of `batch` ciphertexts (luts batch×N, masks batch×n, accs batch×(k+1)N). */
  blindRotate(
    bsk: Float64Array, luts: Float64Array, masks: Int32Array, bodies: Int32Array, accs: Float64Array,
    batch: number, n: number, k: number, N: number, baseLog: number, level: number,
    twRe: Float64Array, twIm: Float64Array, stRe: Float64Array, stIm: Float64Array,
  ): void;
  keyswitch(rows: Float64Array, input: Uint32Array, out: Float64Array, inputDim: number, outputSize: number, baseLog: number, level: number): void;
}

let loadError: string | undefined;

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
  const r = loadNativeAddon<NativeKernel>({
    name: 'fhenet-tfhe',
    sources,
    headers,
    // -ffp-contract=off keeps the C arithmetic bit-identical to the TypeScript reference (no fused multiply-add).
    flags: ['-O3', '-march=native', '-ffp-contract=off'],
    libs: ['-lm'],
    disableEnv: 'FHENET_TFHE_NATIVE',
    exports: ['blindRotate', 'keyswitch'],
  });
  loadError = r.error;
  return r.addon;
}
