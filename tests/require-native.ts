/**
 * `FHENET_REQUIRE_NATIVE=1` (set by .ci/run) turns every silently optional native kernel into a requirement: the
 * training kernels (tests/backend/native-kernels.test.ts), the TFHE PBS kernel (src/tfhe/native.ts) and the
 * compiler's simulation dgemm (src/compiler/native.ts). Without it a test that compares native with TypeScript
 * would, on a failed build, compare TypeScript with itself and pass.
 */
import { expect } from 'vitest';

export const nativeRequired = process.env.FHENET_REQUIRE_NATIVE === '1';

/** Fails (with the build error) when native kernels are required and `kernel` did not load. */
export function expectNativeWhenRequired(kernel: string, loaded: boolean, error: string | undefined): void {
  if (nativeRequired) expect(loaded, `${kernel} native kernel required (FHENET_REQUIRE_NATIVE=1) but unavailable: ${error}`).toBe(true);
}
