/** Shared fixtures for the TFHE tests: one client + server key per test file (keygen ≈ 3 s). */
import { TfheClient } from '../../src/tfhe/client.js';
import { ServerKey } from '../../src/tfhe/server-key.js';

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
