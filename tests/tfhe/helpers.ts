/** Shared fixtures for the TFHE tests: one client + server key per test file (keygen ≈ 3 s). */
import { TfheClient } from '../../src/tfhe/client.js';
import { FFTW_AUTO_MAX_POLYNOMIAL_SIZE, ServerKey } from '../../src/tfhe/server-key.js';
import { nativeFftwError } from '../../src/tfhe/native.js';
import { envDisabled } from '../../src/util/native-addon.js';
import { expectNativeWhenRequired } from '../require-native.js';
import { type Circuit, type TluOp, CIRCUIT_FORMAT } from '../../src/compiler/circuit.js';

export interface Fixture {
  client: TfheClient;
  serverKeyBytes: Uint8Array;
  sk: ServerKey;
}

export function makeFixture(params?: string): Fixture {
  const client = TfheClient.create(params);
  const serverKeyBytes = client.compressedServerKey();
  const sk = ServerKey.fromCompressedBytes(serverKeyBytes);
  return { client, serverKeyBytes, sk };
}

/**
 * Under FHENET_REQUIRE_NATIVE=1 the default KS-PBS must run FFTW (CI installs libfftw3-dev) where 'auto' picks it (N up to
 * FFTW_AUTO_MAX_POLYNOMIAL_SIZE) unless FHENET_TFHE_FFTW=0
 * asks for the shared FFT: a failed FFTW build must not silently leave the slower transform as the default.
 */
export function expectFftwWhenRequired(sk: ServerKey): void {
  if (!envDisabled(process.env.FHENET_TFHE_FFTW) && sk.params.polynomialSize <= FFTW_AUTO_MAX_POLYNOMIAL_SIZE) expectNativeWhenRequired('TFHE PBS (FFTW transform)', sk.backend === 'native' && sk.transform === 'fftw', nativeFftwError());
}

/** FHENET_LONG_TESTS=1 enables the large runs (thousands of PBS). */
export const LONG = process.env.FHENET_LONG_TESTS === '1';

/** Deterministic PRNG for test data (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A hand-built circuit: n one-bit inputs → table t0 (one row, `t0` = [f(0), f(1)]) → one dot product with `weight`
 * everywhere → table t1 (`t1`: its rounding, width, entries and flags) → output. The accumulator's noise grows with
 * ‖w‖₂ = |weight|·√n over bootstrapped inputs, which is what the noise-budget tests dial.
 */
export function bitSumCircuit(n: number, weight: number, t0: Int32Array, t1: Pick<TluOp, 'roundBits' | 'inputBits' | 'tables'> & Partial<TluOp>, graph = 'bit-sum'): Circuit {
  return {
    format: CIRCUIT_FORMAT,
    input: { name: 'x', shape: [n], scale: 1, bitWidth: 1, signed: false, narrow: false },
    values: [
      { name: 'x', shape: [n] },
      { name: 'h', shape: [n] },
      { name: 'acc', shape: [1] },
      { name: 'y', shape: [1] },
    ],
    ops: [
      { kind: 'tlu', name: 't0', input: 'x', output: 'h', roundBits: 0, inputBits: 1, inputSigned: false, channels: 1, channelStride: 1, tables: t0 },
      { kind: 'gemm', name: 'dense', input: 'h', output: 'acc', weight: new Int32Array(n).fill(weight), outFeatures: 1, inFeatures: n },
      { kind: 'tlu', name: 't1', input: 'acc', output: 'y', inputSigned: false, channels: 1, channelStride: 1, ...t1 },
    ],
    output: { value: 'y', name: 'y', shape: [1], channels: 1, channelStride: 1, a: Float64Array.of(1), c: Float64Array.of(0) },
    ranges: {},
    metadata: { graph },
  };
}
