/**
 * Safetensors files read and written piece by piece, for checkpoints too large to hold twice: the reader parses
 * the header and then reads one tensor's byte range at a time; the writer writes the header and then each tensor as
 * it is produced. Adds the half-precision dtypes of Hugging Face checkpoints (F16, BF16), decoded to float32.
 * (./safetensors.ts handles whole in-memory files; this file does not change its behaviour.)
 */
import * as fs from 'node:fs';
import { getFloat16, setFloat16 } from '@petamoriken/float16';
import { SafetensorsError } from './safetensors.js';

export type FileDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
const BYTES: Record<FileDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER = 100 * 1024 * 1024;

export interface TensorEntry {
  name: string;
  dtype: FileDtype;
  shape: number[];
  /** Byte range inside the data region. */
  begin: number;
  end: number;
}

/** An open safetensors file: header parsed and checked, tensors read on demand. Call `close()` when done. */
export class SafetensorsFile {
  readonly entries = new Map<string, TensorEntry>();
  readonly metadata: Record<string, string>;
  private readonly dataStart: number;
  private fd: number | undefined;

  private constructor(readonly file: string, fd: number) {
    this.fd = fd;
    const size = fs.fstatSync(fd).size;
    if (size < 8) throw new SafetensorsError(`${file}: ${size} bytes is too short for a safetensors file (truncated?)`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = lenBuf.readBigUInt64LE(0);
    if (headerLen > BigInt(Math.min(MAX_HEADER, size - 8))) {
      throw new SafetensorsError(`${file}: header length ${headerLen} exceeds the file (${size} bytes) or the ${MAX_HEADER}-byte limit (truncated or not a safetensors file)`);
    }
    const head = Buffer.alloc(Number(headerLen));
    fs.readSync(fd, head, 0, head.length, 8);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head));
    } catch (e) {
      throw new SafetensorsError(`${file}: header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new SafetensorsError(`${file}: header is not a JSON object`);
    this.dataStart = 8 + head.length;
    const dataLen = size - this.dataStart;
    const h = header as Record<string, unknown>;
    this.metadata = (h.__metadata__ ?? {}) as Record<string, string>;
    let maxEnd = 0;
    for (const [name, v] of Object.entries(h)) {
      if (name === '__metadata__') continue;
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e.dtype !== 'string' || !(e.dtype in BYTES)) {
        throw new SafetensorsError(`${file}: tensor '${name}' has unsupported dtype ${String(e.dtype)} (supported: ${Object.keys(BYTES).join(', ')})`);
      }
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(`${file}: tensor '${name}' has a bad shape`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
        throw new SafetensorsError(`${file}: tensor '${name}' has bad data_offsets ${JSON.stringify(off)}`);
      }
      const dtype = e.dtype as FileDtype;
      const n = (e.shape as number[]).reduce((a, b) => a * b, 1);
      if (n * BYTES[dtype] !== off[1] - off[0]) {
        throw new SafetensorsError(`${file}: tensor '${name}' of shape [${e.shape}] ${dtype} needs ${n * BYTES[dtype]} bytes, its offsets span ${off[1] - off[0]}`);
      }
      if (off[1] > dataLen) {
        throw new SafetensorsError(`${file}: tensor '${name}' ends at byte ${off[1]} of the data but the file holds only ${dataLen} data bytes (truncated file?)`);
      }
      maxEnd = Math.max(maxEnd, off[1]);
      this.entries.set(name, { name, dtype, shape: e.shape as number[], begin: off[0], end: off[1] });
    }
    if (maxEnd !== dataLen) throw new SafetensorsError(`${file}: ${dataLen - maxEnd} bytes after the last tensor (corrupt file?)`);
  }

  static open(file: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new SafetensorsError(`cannot open ${file}: ${(e as Error).message}`);
    }
    try {
      return new SafetensorsFile(file, fd);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** The raw bytes of one tensor (read from disk now; nothing else is held). */
  readBytes(name: string): Uint8Array {
    const e = this.entry(name);
    if (this.fd === undefined) throw new SafetensorsError(`${this.file} is closed`);
    const buf = new Uint8Array(e.end - e.begin);
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(this.fd, buf, got, buf.length - got, this.dataStart + e.begin + got);
      if (n === 0) throw new SafetensorsError(`${this.file}: unexpected end of file reading '${name}' (truncated file?)`);
      got += n;
    }
    return buf;
  }

  /** One floating-point tensor decoded to float32 (F32, F16, BF16 or F64). */
  readFloat32(name: string): Float32Array {
    const e = this.entry(name);
    return toFloat32(this.readBytes(name), e.dtype, `${this.file}: tensor '${name}'`);
  }

  private entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError(`${this.file}: no tensor named '${name}'`);
    return e;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

let f16Table: Float32Array | undefined;

/** Decodes little-endian F32/F16/BF16/F64 bytes to float32. */
export function toFloat32(bytes: Uint8Array, dtype: FileDtype, what = 'tensor'): Float32Array {
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    case 'F64':
      return Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 8));
    case 'F16': {
      if (!f16Table) {
        // Every half-precision bit pattern decoded once (by a well-tested library), then a table lookup per value.
        f16Table = new Float32Array(65536);
        const view = new DataView(new ArrayBuffer(2));
        for (let i = 0; i < 65536; i++) {
          view.setUint16(0, i, true);
          f16Table[i] = getFloat16(view, 0, true);
        }
      }
      const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
      const out = new Float32Array(halves.length);
      for (let i = 0; i < halves.length; i++) out[i] = f16Table[halves[i]!]!;
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
      const words = new Uint32Array(halves.length);
      for (let i = 0; i < halves.length; i++) words[i] = halves[i]! << 16;
      return new Float32Array(words.buffer);
    }
    default:
      throw new SafetensorsError(`${what} has dtype ${dtype}; a floating-point dtype (F32, F16, BF16, F64) is needed`);
  }
}

/** Encodes float32 values as little-endian F32, F16 (round to nearest even) or BF16 (round to nearest even). */
export function fromFloat32(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  switch (dtype) {
    case 'F32':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'F16': {
      const out = new Uint8Array(values.length * 2);
      const view = new DataView(out.buffer);
      for (let i = 0; i < values.length; i++) setFloat16(view, 2 * i, values[i]!, true);
      return out;
    }
    case 'BF16': {
      const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const w = words[i]!;
        if ((w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0) out[i] = (w >>> 16) | 0x40; // NaN stays NaN
        else out[i] = (w + 0x7fff + ((w >>> 16) & 1)) >>> 16;
      }
      return new Uint8Array(out.buffer);
    }
  }
}

export interface TensorToWrite {
  name: string;
  dtype: FileDtype;
  shape: number[];
  /** Produces the tensor's bytes when the writer reaches it (so only one tensor is in memory at a time). */
  bytes: () => Uint8Array;
}

/** Writes a safetensors file tensor by tensor, to a temporary name renamed into place at the end. */
export function writeSafetensorsFile(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const nbytes = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8); // 8-byte aligned data region
  const head = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length), 0);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, head);
    for (const t of tensors) {
      const bytes = t.bytes();
      const expect = (header[t.name] as { data_offsets: [number, number] }).data_offsets;
      if (bytes.length !== expect[1] - expect[0]) {
        throw new SafetensorsError(`tensor '${t.name}': produced ${bytes.length} bytes, its shape [${t.shape}] ${t.dtype} needs ${expect[1] - expect[0]}`);
      }
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    }
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}
