/**
 * The TFHE-rs CSPRNG (tfhe-csprng 0.9, software AES-CTR flavour) as far as seed expansion needs it.
 *
 * Facts (reference, section "Seeded keys and ciphertexts"): the stream is AES-128 in counter mode
 * with key = the 16 seed bytes, block i = AES_k(LE128(aes_index + i)) — a *little-endian* 128-bit
 * counter, so OpenSSL's big-endian `aes-128-ctr` cannot be used: we build the counter blocks
 * ourselves and encrypt them with AES-128-ECB. The first `byte_index` bytes are skipped. A uniform
 * u64 is 8 consecutive stream bytes read little-endian; with the native modulus every forked child
 * generator consumes exactly 8 bytes per mask value, so a whole key's masks are one sequential
 * stream read in key order.
 */
import { createCipheriv, type Cipher } from 'node:crypto';
import type { CompressionSeed } from './layouts.js';

/** Blocks encrypted per node:crypto call: big enough to amortize the call, small enough for cache. */
const CHUNK_BLOCKS = 1 << 14; // 256 KiB

export class AesCtrStream {
  private readonly cipher: Cipher;
  /** The next counter value as four little-endian u32 words (c0 least significant). */
  private c0: number;
  private c1: number;
  private c2: number;
  private c3: number;
  private readonly counters = Buffer.alloc(CHUNK_BLOCKS * 16);
  private readonly counterWords = new Uint32Array(this.counters.buffer, this.counters.byteOffset, CHUNK_BLOCKS * 4);
  /** Unconsumed keystream bytes (tail of the last encrypted chunk). */
  private pending: Uint8Array = new Uint8Array(0);

  constructor(seed: CompressionSeed) {
    if (seed.key.byteLength !== 16) throw new Error('AES-128 seed must be 16 bytes');
    this.cipher = createCipheriv('aes-128-ecb', seed.key, null);
    this.cipher.setAutoPadding(false);
    const i = seed.aesIndex;
    this.c0 = Number(i & 0xffffffffn);
    this.c1 = Number((i >> 32n) & 0xffffffffn);
    this.c2 = Number((i >> 64n) & 0xffffffffn);
    this.c3 = Number((i >> 96n) & 0xffffffffn);
    if (seed.byteIndex > 0) this.skip(seed.byteIndex);
  }

  private nextChunk(blocks: number): Uint8Array {
    const w = this.counterWords;
    for (let b = 0; b < blocks; b++) {
      const o = b * 4;
      w[o] = this.c0;
      w[o + 1] = this.c1;
      w[o + 2] = this.c2;
      w[o + 3] = this.c3;
      // 128-bit increment with carries (wraps at 2^128 like a u128 counter).
      if (++this.c0 === 0x100000000) {
        this.c0 = 0;
        if (++this.c1 === 0x100000000) {
          this.c1 = 0;
          if (++this.c2 === 0x100000000) {
            this.c2 = 0;
            this.c3 = (this.c3 + 1) >>> 0;
          }
        }
      }
    }
    return this.cipher.update(this.counters.subarray(0, blocks * 16));
  }

  /** Write the next `out.byteLength` stream bytes into `out`. */
  fill(out: Uint8Array): void {
    let done = 0;
    const take = Math.min(this.pending.byteLength, out.byteLength);
    if (take > 0) {
      out.set(this.pending.subarray(0, take));
      this.pending = this.pending.subarray(take);
      done = take;
    }
    while (done < out.byteLength) {
      const need = out.byteLength - done;
      const blocks = Math.min(CHUNK_BLOCKS, Math.ceil(need / 16));
      const ks = this.nextChunk(blocks);
      const n = Math.min(need, ks.byteLength);
      out.set(ks.subarray(0, n), done);
      done += n;
      if (n < ks.byteLength) this.pending = ks.subarray(n);
    }
  }

  skip(bytes: number): void {
    this.fill(new Uint8Array(bytes));
  }

  /** The next `count` uniform u64 values into `out` (interleaved lo, hi words) from word `at`. */
  fillU64(out: Uint32Array, at: number, count: number): void {
    this.fill(new Uint8Array(out.buffer, out.byteOffset + at * 4, count * 8));
  }
}
