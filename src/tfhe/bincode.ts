/**
 * Strict, size-limited reader and writer for the bincode 1.x "legacy" encoding that TFHE-rs's
 * `Shortint.serialize_*` functions use (facts from /work/shared/reference/tfhe-rs.md):
 * little-endian fixed-width integers, `u64` lengths before every `Vec`, `u32` enum variant indices,
 * `u8` option tags, no padding, no version tags.
 *
 * Every byte given to the reader may come from a hostile client. The rules that keep it safe:
 * - every read checks the remaining length first and throws a TfheFormatError naming the field;
 * - a Vec length is checked against the bytes actually remaining AND a caller limit before anything
 *   is allocated, so a forged length of 2^60 costs nothing;
 * - integers that must fit in a JS number are checked to do so (no silent precision loss).
 */
import { TfheFormatError } from './errors.js';

const TWO_32 = 4294967296;

export class BincodeReader {
  private readonly view: DataView;
  private pos = 0;

  constructor(
    readonly bytes: Uint8Array,
    /** Prefix for field names in error messages (e.g. `ciphertext`). */
    readonly root = '',
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.pos;
  }

  fail(field: string, message: string, at = this.pos): never {
    throw new TfheFormatError(this.root ? `${this.root}.${field}` : field, at, message);
  }

  private need(field: string, n: number): number {
    if (this.remaining < n) {
      this.fail(field, `truncated: needs ${n} bytes, ${this.remaining} left`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(field: string): number {
    return this.view.getUint8(this.need(field, 1));
  }

  u32(field: string): number {
    return this.view.getUint32(this.need(field, 4), true);
  }

  /** A u64 as a bigint (exact, for values that are compared or re-serialized). */
  u64(field: string): bigint {
    return this.view.getBigUint64(this.need(field, 8), true);
  }

  /** A u64 that must be a number ≤ `max` (lengths, dimensions, moduli). */
  u64Number(field: string, max = Number.MAX_SAFE_INTEGER): number {
    const at = this.pos;
    const lo = this.view.getUint32(this.need(field, 8), true);
    const hi = this.view.getUint32(at + 4, true);
    const v = hi * TWO_32 + lo;
    if (hi >= 0x200000 || v > max) this.fail(field, `value ${hi * TWO_32 + lo} exceeds the limit ${max}`, at);
    return v;
  }

  u128(field: string): bigint {
    const at = this.need(field, 16);
    const lo = this.view.getBigUint64(at, true);
    const hi = this.view.getBigUint64(at + 8, true);
    return (hi << 64n) | lo;
  }

  f64(field: string): number {
    return this.view.getFloat64(this.need(field, 8), true);
  }

  /** An enum variant index (u32) that must be < `count`. */
  variant(field: string, count: number): number {
    const at = this.pos;
    const v = this.u32(field);
    if (v >= count) this.fail(field, `unknown enum variant ${v} (expected < ${count})`, at);
    return v;
  }

  /** Raw bytes (copied, so the result does not pin the input buffer). */
  bytesN(field: string, n: number): Uint8Array {
    const at = this.need(field, n);
    return Uint8Array.from(this.bytes.subarray(at, at + n)); // a copy even when the input is a Node Buffer (whose slice is a view)
  }

  /**
   * A `Vec<T>` length prefix, checked against the caller's `maxLen` and against the bytes left
   * (`elemSize` bytes per element) before the caller allocates anything.
   */
  vecLen(field: string, elemSize: number, maxLen: number): number {
    const at = this.pos;
    const len = this.u64Number(`${field}.len`);
    if (len > maxLen) this.fail(`${field}.len`, `length ${len} exceeds the limit ${maxLen}`, at);
    if (len * elemSize > this.remaining) {
      this.fail(`${field}.len`, `length ${len} needs ${len * elemSize} bytes but only ${this.remaining} remain`, at);
    }
    return len;
  }

  /**
   * A `Vec<u64>` as interleaved (lo, hi) u32 words, the representation the evaluator uses.
   * `exactLen` (if given) must match.
   */
  vecU64(field: string, maxLen: number, exactLen?: number): Uint32Array {
    const at = this.pos;
    const len = this.vecLen(field, 8, maxLen);
    if (exactLen !== undefined && len !== exactLen) {
      this.fail(`${field}.len`, `length ${len}, expected ${exactLen}`, at);
    }
    const start = this.need(field, len * 8);
    const out = new Uint32Array(len * 2);
    // One memcpy: the LE byte layout of a u64 is exactly (lo u32 LE, hi u32 LE).
    new Uint8Array(out.buffer).set(this.bytes.subarray(start, start + len * 8));
    return out;
  }

  /** Refuse trailing bytes: a valid message is exactly consumed. */
  end(): void {
    if (this.remaining !== 0) this.fail('end', `${this.remaining} trailing bytes`);
  }
}

export class BincodeWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): number {
    if (this.pos + n > this.buf.byteLength) {
      let cap = this.buf.byteLength * 2;
      while (cap < this.pos + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.pos));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(v: number): this {
    this.view.setUint8(this.ensure(1), v);
    return this;
  }

  u32(v: number): this {
    this.view.setUint32(this.ensure(4), v, true);
    return this;
  }

  u64(v: bigint | number): this {
    this.view.setBigUint64(this.ensure(8), BigInt(v), true);
    return this;
  }

  u128(v: bigint): this {
    const at = this.ensure(16);
    this.view.setBigUint64(at, v & 0xffffffffffffffffn, true);
    this.view.setBigUint64(at + 8, v >> 64n, true);
    return this;
  }

  f64(v: number): this {
    this.view.setFloat64(this.ensure(8), v, true);
    return this;
  }

  raw(bytes: Uint8Array): this {
    this.buf.set(bytes, this.ensure(bytes.byteLength));
    return this;
  }

  /** A `Vec<u64>` from interleaved (lo, hi) words. */
  vecU64(words: Uint32Array): this {
    this.u64(words.length / 2);
    return this.raw(new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}
