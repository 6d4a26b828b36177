/**
 * Optional native kernel of the circuit simulator (native/dgemm.c): the integer linear ops as float64 OpenBLAS
 * matrix products, exact because all operands and partial sums are integers below 2^53. Built at first use by the
 * shared loader (src/util/native-addon.ts; cached in node_modules/.cache/fhenet-simulate/). No OpenBLAS, no
 * compiler, or FHENET_SIMULATE_NATIVE=0 → null, and simulate.ts keeps its TypeScript loops (the reference).
 * Measured speed-up on the full CNV: bench figures in experiments/cifar/RESULTS.md.
 */
import { findOpenBlas, findSource, loadNativeAddon } from '../util/native-addon.js';

export interface SimulateKernel {
  /** C[M×N] = A[M×K] · (transB ? Bᵀ with B [N×K] : B [K×N]), row-major. */
  dgemm(a: Float64Array, b: Float64Array, c: Float64Array, m: number, n: number, k: number, transB: number): void;
}

let loaded: { kernel: SimulateKernel | null; error?: string } | undefined;

/** The kernel (building it on first call), or null; `simulateKernelError()` says why. */
export function loadSimulateKernel(): SimulateKernel | null {
  if (loaded) return loaded.kernel;
  try {
    const { include, libs } = findOpenBlas();
    const r = loadNativeAddon<SimulateKernel>({
      name: 'fhenet-simulate',
      sources: [findSource(import.meta.url, ['native/dgemm.c', '../../src/compiler/native/dgemm.c'])],
      flags: ['-O2'],
      includeDirs: [include],
      libs: [...libs, '-lm'],
      disableEnv: 'FHENET_SIMULATE_NATIVE',
      exports: ['dgemm'],
    });
    loaded = { kernel: r.addon, error: r.error };
  } catch (e) {
    loaded = { kernel: null, error: (e as Error).message.split('\n')[0] };
  }
  return loaded.kernel;
}

export function simulateKernelError(): string | undefined {
  return loaded?.error;
}
