/**
 * Arithmetic on the 64-bit discretized torus Z/2^64 without BigInt in hot loops.
 *
 * Two representations are used:
 * - exact: u64 as interleaved (lo, hi) u32 words in a Uint32Array — the byte layout of a bincode
 *   `Vec<u64>` on little-endian hosts, so parsing and serializing are plain copies. Linear
 *   operations (whose results a client may decrypt directly) stay exact in this form.
 * - approximate: a signed value in [−2^63, 2^63) held in a float64. Keyswitch and blind rotation
 *   work in this form: f64 keeps the top 53 bits, far below the noise these steps add anyway
 *   (≈ 2^49 and more), which is the same precision TFHE-rs's own f64 FFT provides.
 */

export const TWO_32 = 4294967296;
export const TWO_64 = 18446744073709551616;
/** 1.5·2^52: adding and subtracting it rounds a float64 with |x| < 2^51 to the nearest integer. */
export const ROUND_MAGIC = 6755399441055744;

/** Signed f64 value of the u64 (lo, hi); exact to within the f64 rounding of a 64-bit integer. */
export function wordsToSigned(lo: number, hi: number): number {
  return hi >= 0x80000000 ? (hi - TWO_32) * TWO_32 + lo : hi * TWO_32 + lo;
}

/**
 * Write the float64 `x` (integer-valued or rounded here, any magnitude below 2^84) modulo 2^64
 * as u64 words at out[2i], out[2i+1].
 */
export function signedToWords(x: number, out: Uint32Array, i: number): void {
  const r = Math.round(x);
  const hi = Math.floor(r / TWO_32);
  out[2 * i] = r - hi * TWO_32;
  out[2 * i + 1] = hi >>> 0; // ToUint32 is the exact value mod 2^32
}

/** u64 words → bigint (tests, serialization of single values; not for hot loops). */
export function wordsToBigInt(words: Uint32Array, i: number): bigint {
  return (BigInt(words[2 * i + 1]!) << 32n) | BigInt(words[2 * i]!);
}

