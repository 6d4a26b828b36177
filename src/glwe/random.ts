/**
 * Randomness of the GLWE engine: one AES-128-CTR stream (src/tfhe/csprng.ts, the TFHE-rs stream) per purpose.
 * Secret keys and noise come from a stream keyed by node:crypto `randomBytes` unless the caller passes a seed
 * (tests and benches, for reproducibility); public masks come from a stream whose 16-byte seed travels instead of
 * the masks themselves ("seeded" ciphertexts and keys).
 */
import { randomBytes } from 'node:crypto';
import { AesCtrStream } from '../tfhe/csprng.js';

/** A source of random bytes: a CSPRNG stream. */
export interface GlweRng {
  fill(out: Uint8Array): void;
}

/** AES-CTR stream on a 16-byte seed (counter 0); the same seed always gives the same stream. */
export function seededStream(seed: Uint8Array): AesCtrStream {
  return new AesCtrStream({ key: seed, aesIndex: 0n, byteIndex: 0 });
}

/** A cryptographic RNG: the given 16-byte seed (reproducible runs) or a fresh one from node:crypto. */
export function cryptoRng(seed?: Uint8Array): GlweRng {
  return seededStream(seed ?? new Uint8Array(randomBytes(16)));
}

export function randomSeed(rng: GlweRng): Uint8Array {
  const s = new Uint8Array(16);
  rng.fill(s);
  return s;
}

/** n uniform bits (0/1) — a binary secret key, as TFHE-rs's GLWE secret keys. */
export function binaryKey(rng: GlweRng, n: number): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(n / 8));
  rng.fill(bytes);
  const key = new Uint8Array(n);
  for (let i = 0; i < n; i++) key[i] = (bytes[i >> 3]! >> (i & 7)) & 1;
  return key;
}

/**
 * n samples of TUniform(b) into `out` (as float64 integers): v uniform on [−2^(b+1), 2^(b+1)) and
 * ⌊(v+1)/2⌋ gives −2^b..2^b with the interior values twice as likely as the two end points, as TFHE-rs defines it.
 */
export function tuniform(rng: GlweRng, boundLog2: number, out: Float64Array): void {
  const words = new Uint32Array(out.length);
  rng.fill(new Uint8Array(words.buffer));
  const bits = boundLog2 + 2;
  const mask = 2 ** bits - 1;
  const half = 2 ** (bits - 1);
  for (let i = 0; i < out.length; i++) {
    const v = (words[i]! & mask) - half;
    out[i] = Math.floor((v + 1) / 2);
  }
}
