/**
 * Wire formats (little-endian, versioned). Every parser checks the magic, the version tag, the parameter set, the
 * declared dimensions (against MAX_DIM and, when given, the matrix layout) and the exact byte length those imply
 * BEFORE allocating or reading anything else, so truncated, oversized or inconsistent input is a typed error.
 *
 *   input ciphertext  "FGLC" u16 version u16 params u32 dIn u32 chunkLen u32 chunks u8 messageBits u8 bodyBits
 *                     u16 0 | seed[16] | chunks·N bodies, bodyBits each, bit-packed LSB first
 *   result            "FGLR" u16 version u16 params u32 dOut u8 messageBits u8 outputBits u16 0
 *                     | ⌈dOut/N⌉·N masks then dOut bodies, outputBits each, bit-packed
 *   evaluation key    "FGLK" u16 version u16 params u8 baseLog u8 level u8 bodyBits u8 0 | seed[16]
 *                     | N·ℓ·N bodies (their top bodyBits = 48 bits: the low 16 are below the TUniform(17) noise), bit-packed
 *
 * Secret keys have no wire format here: they never leave the client.
 */
import { GlweFormatError, GlweLimitError, GlweParameterError } from './errors.js';
import type { InputCiphertext, MatVecResult } from './client.js';
import type { EvaluationKey } from './keys.js';
import { MAX_DIM, type MatVecLayout } from './layout.js';
import { glweParamsByCode, type GlweParams } from './params.js';

export const GLWE_FORMAT_VERSION = 1;
const MAGIC_INPUT = 0x434c4746; // "FGLC"
const MAGIC_RESULT = 0x524c4746; // "FGLR"
const MAGIC_KEY = 0x4b4c4746; // "FGLK"
const KEY_BODY_BITS = 48;

export interface GlweParseLimits {
  /** Largest accepted input in bytes (checked first). Defaults: 64 MiB for ciphertexts/results, 128 MiB for keys. */
  maxBytes?: number;
}

function packBits(values: ArrayLike<number>, bits: number, out: Uint8Array, offset: number): number {
  if (bits % 8 === 0) return packBytes(values, bits / 8, out, offset);
  let pos = offset;
  let acc = 0;
  let accBits = 0;
  for (let i = 0; i < values.length; i++) {
    let x = values[i]!;
    let rem = bits;
    while (rem > 0) {
      const take = rem < 16 ? rem : 16;
      const unit = 2 ** take;
      const part = x % unit;
      x = (x - part) / unit;
      acc += part * 2 ** accBits;
      accBits += take;
      while (accBits >= 8) {
        out[pos++] = acc & 255;
        acc = Math.floor(acc / 256);
        accBits -= 8;
      }
      rem -= take;
    }
  }
  if (accBits > 0) out[pos++] = acc & 255;
  return pos;
}

/** Byte-aligned widths (32, 48 bits): little-endian bytes, no bit arithmetic. */
function packBytes(values: ArrayLike<number>, width: number, out: Uint8Array, offset: number): number {
  let pos = offset;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const lo = v % 4294967296;
    const hi = (v - lo) / 4294967296;
    out[pos] = lo & 255;
    out[pos + 1] = (lo >>> 8) & 255;
    out[pos + 2] = (lo >>> 16) & 255;
    out[pos + 3] = lo >>> 24;
    for (let b = 4; b < width; b++) out[pos + b] = (hi >>> (8 * (b - 4))) & 255;
    pos += width;
  }
  return pos;
}

function unpackBytes(bytes: Uint8Array, offset: number, count: number, width: number, out: { [i: number]: number }): void {
  let pos = offset;
  for (let i = 0; i < count; i++) {
    const lo = (bytes[pos]! | (bytes[pos + 1]! << 8) | (bytes[pos + 2]! << 16) | (bytes[pos + 3]! << 24)) >>> 0;
    let hi = 0;
    for (let b = width - 1; b >= 4; b--) hi = hi * 256 + bytes[pos + b]!;
    out[i] = hi * 4294967296 + lo;
    pos += width;
  }
}

function unpackBits(bytes: Uint8Array, offset: number, count: number, bits: number, out: { [i: number]: number }): void {
  if (bits % 8 === 0) return unpackBytes(bytes, offset, count, bits / 8, out);
  let pos = offset;
  let acc = 0;
  let accBits = 0;
  for (let i = 0; i < count; i++) {
    let v = 0;
    let got = 0;
    while (got < bits) {
      if (accBits === 0) {
        acc = bytes[pos++]!;
        accBits = 8;
      }
      const take = Math.min(accBits, bits - got);
      v += (acc & ((1 << take) - 1)) * 2 ** got;
      acc >>>= take;
      accBits -= take;
      got += take;
    }
    out[i] = v;
  }
}

const packedBytes = (count: number, bits: number): number => Math.ceil((count * bits) / 8);

class Header {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array, readonly what: string, limits: GlweParseLimits | undefined, defaultMax: number, minLength: number) {
    const max = limits?.maxBytes ?? defaultMax;
    if (bytes.byteLength > max) throw new GlweLimitError(`${what}: ${bytes.byteLength} bytes, over the limit of ${max}`);
    if (bytes.byteLength < minLength) throw new GlweFormatError(`${what}: ${bytes.byteLength} bytes, shorter than its ${minLength}-byte header (truncated?)`);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(at: number): number {
    return this.view.getUint8(at);
  }
  u16(at: number): number {
    return this.view.getUint16(at, true);
  }
  u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  check(magic: number): GlweParams {
    if (this.u32(0) !== magic) throw new GlweFormatError(`${this.what}: wrong magic bytes (not a fhenet ${this.what})`);
    const version = this.u16(4);
    if (version !== GLWE_FORMAT_VERSION) {
      throw new GlweFormatError(`${this.what}: format version ${version}, this fhenet reads version ${GLWE_FORMAT_VERSION} (upgrade the older side)`);
    }
    return glweParamsByCode(this.u16(6));
  }
  expectLength(total: number): void {
    if (this.bytes.byteLength !== total) {
      throw new GlweFormatError(`${this.what}: ${this.bytes.byteLength} bytes, its header declares ${total} (${this.bytes.byteLength < total ? 'truncated' : 'trailing bytes'})`);
    }
  }
}

function writeHeader(view: DataView, magic: number, params: GlweParams): void {
  view.setUint32(0, magic, true);
  view.setUint16(4, GLWE_FORMAT_VERSION, true);
  view.setUint16(6, params.code, true);
}

const INPUT_HEADER = 40;

export function serializeInputCiphertext(ct: InputCiphertext): Uint8Array {
  const bits = ct.params.inputBodyBits;
  const out = new Uint8Array(INPUT_HEADER + packedBytes(ct.bodies.length, bits));
  const v = new DataView(out.buffer);
  writeHeader(v, MAGIC_INPUT, ct.params);
  v.setUint32(8, ct.dIn, true);
  v.setUint32(12, ct.chunkLen, true);
  v.setUint32(16, ct.chunks, true);
  v.setUint8(20, ct.messageBits);
  v.setUint8(21, bits);
  out.set(ct.seed, 24);
  packBits(ct.bodies, bits, out, INPUT_HEADER);
  return out;
}

/** Parses a client's input ciphertext; with `expect`, its dimensions must match that matrix layout. */
export function deserializeInputCiphertext(bytes: Uint8Array, expect?: MatVecLayout, limits?: GlweParseLimits): InputCiphertext {
  const h = new Header(bytes, 'input ciphertext', limits, 64 << 20, INPUT_HEADER);
  const params = h.check(MAGIC_INPUT);
  const dIn = h.u32(8), chunkLen = h.u32(12), chunks = h.u32(16), messageBits = h.u8(20), bits = h.u8(21);
  const n = params.polynomialSize;
  if (bits !== params.inputBodyBits) throw new GlweParameterError(`input ciphertext: ${bits}-bit bodies, parameter set ${params.name} uses ${params.inputBodyBits}`);
  if (dIn < 1 || dIn > MAX_DIM || chunkLen < 1 || chunkLen > n || chunks < 1 || chunks * chunkLen < dIn || (chunks - 1) * chunkLen >= dIn) {
    throw new GlweFormatError(`input ciphertext: inconsistent dimensions d_in ${dIn}, ${chunks} pieces of ${chunkLen}`);
  }
  if (expect && (dIn !== expect.dIn || chunkLen !== expect.chunkLen || chunks !== expect.chunks || messageBits !== expect.messageBits)) {
    throw new GlweParameterError(
      `input ciphertext: declares d_in ${dIn} (${chunks} × ${chunkLen}, ${messageBits}-bit messages), the matrix expects d_in ${expect.dIn} (${expect.chunks} × ${expect.chunkLen}, ${expect.messageBits}-bit messages)`,
    );
  }
  h.expectLength(INPUT_HEADER + packedBytes(chunks * n, bits));
  const bodies = new Float64Array(chunks * n);
  unpackBits(bytes, INPUT_HEADER, chunks * n, bits, bodies);
  return { params, dIn, chunkLen, chunks, messageBits, seed: bytes.slice(24, 40), bodies };
}

const RESULT_HEADER = 16;

export function serializeResult(r: MatVecResult): Uint8Array {
  const bits = r.params.outputBits;
  const out = new Uint8Array(RESULT_HEADER + packedBytes(r.masks.length + r.bodies.length, bits));
  const v = new DataView(out.buffer);
  writeHeader(v, MAGIC_RESULT, r.params);
  v.setUint32(8, r.dOut, true);
  v.setUint8(12, r.messageBits);
  v.setUint8(13, bits);
  // masks then bodies, one bit stream
  const all = new Float64Array(r.masks.length + r.bodies.length);
  all.set(r.masks);
  all.set(r.bodies, r.masks.length);
  packBits(all, bits, out, RESULT_HEADER);
  return out;
}

/** Parses a server's result (client side); with `expectDOut`, its d_out must be that. */
export function deserializeResult(bytes: Uint8Array, expectDOut?: number, limits?: GlweParseLimits): MatVecResult {
  const h = new Header(bytes, 'result', limits, 64 << 20, RESULT_HEADER);
  const params = h.check(MAGIC_RESULT);
  const dOut = h.u32(8), messageBits = h.u8(12), bits = h.u8(13);
  if (bits !== params.outputBits) throw new GlweParameterError(`result: ${bits}-bit coefficients, parameter set ${params.name} uses ${params.outputBits}`);
  if (dOut < 1 || dOut > MAX_DIM || messageBits < 2 || messageBits >= bits) throw new GlweFormatError(`result: inconsistent header (d_out ${dOut}, ${messageBits}-bit messages)`);
  if (expectDOut !== undefined && dOut !== expectDOut) throw new GlweParameterError(`result: d_out ${dOut}, expected ${expectDOut}`);
  const n = params.polynomialSize;
  const maskCount = Math.ceil(dOut / n) * n;
  h.expectLength(RESULT_HEADER + packedBytes(maskCount + dOut, bits));
  const all = new Float64Array(maskCount + dOut);
  unpackBits(bytes, RESULT_HEADER, maskCount + dOut, bits, all);
  return { params, dOut, messageBits, masks: Uint32Array.from(all.subarray(0, maskCount)), bodies: Uint32Array.from(all.subarray(maskCount)) };
}

const KEY_HEADER = 28;

export function serializeEvaluationKey(key: EvaluationKey): Uint8Array {
  const count = key.bodies.length / 2;
  const out = new Uint8Array(KEY_HEADER + packedBytes(count, KEY_BODY_BITS));
  const v = new DataView(out.buffer);
  writeHeader(v, MAGIC_KEY, key.params);
  v.setUint8(8, key.params.packingBaseLog);
  v.setUint8(9, key.params.packingLevel);
  v.setUint8(10, KEY_BODY_BITS);
  out.set(key.seed, 12);
  // top 48 bits of each u64 body, rounded (the rounding error, ≤ 2^15, is far below the TUniform(17) noise)
  const shift = 64 - KEY_BODY_BITS;
  const top = new Float64Array(count);
  const wrap = 2 ** KEY_BODY_BITS;
  for (let i = 0; i < count; i++) {
    const lo = key.bodies[2 * i]!, hi = key.bodies[2 * i + 1]!;
    top[i] = (hi * 2 ** (32 - shift) + Math.floor((lo + 2 ** (shift - 1)) / 2 ** shift)) % wrap;
  }
  packBits(top, KEY_BODY_BITS, out, KEY_HEADER);
  return out;
}

/** Parses a client's evaluation key (server side, once per client). */
export function deserializeEvaluationKey(bytes: Uint8Array, limits?: GlweParseLimits): EvaluationKey {
  const h = new Header(bytes, 'evaluation key', limits, 128 << 20, KEY_HEADER);
  const params = h.check(MAGIC_KEY);
  if (h.u8(8) !== params.packingBaseLog || h.u8(9) !== params.packingLevel || h.u8(10) !== KEY_BODY_BITS) {
    throw new GlweParameterError(`evaluation key: decomposition 2^${h.u8(8)} × ${h.u8(9)} with ${h.u8(10)}-bit bodies does not match parameter set ${params.name}`);
  }
  const n = params.polynomialSize;
  const count = n * n * params.packingLevel;
  h.expectLength(KEY_HEADER + packedBytes(count, KEY_BODY_BITS));
  const top = new Float64Array(count);
  unpackBits(bytes, KEY_HEADER, count, KEY_BODY_BITS, top);
  const bodies = new Uint32Array(2 * count);
  const shift = 64 - KEY_BODY_BITS;
  for (let i = 0; i < count; i++) {
    const t = top[i]!;
    const hi = Math.floor(t / 2 ** (32 - shift));
    bodies[2 * i] = (t - hi * 2 ** (32 - shift)) * 2 ** shift;
    bodies[2 * i + 1] = hi;
  }
  return { params, seed: bytes.slice(12, 28), bodies };
}
