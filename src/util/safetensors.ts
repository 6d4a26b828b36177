/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header mapping tensor names
 * to { dtype, shape, data_offsets } (plus an optional "__metadata__" string map), then the raw little-endian data.
 * Independent of tfjs so any layer (checkpoints, circuits) can use it. Decoding treats the bytes as untrusted:
 * the header size is bounded, offsets must tile the data region exactly, and shapes must match byte lengths.
 */
import { FhenetError } from './errors.js';

export type SafeDtype = 'F32' | 'F64' | 'I32' | 'I64' | 'I8' | 'U8' | 'I16' | 'U16';
export type SafeArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array | Uint8Array | Int16Array | Uint16Array;

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  data: SafeArray;
}

const CTOR = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  I64: BigInt64Array,
  I8: Int8Array,
  U8: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
} as const;

export class SafetensorsError extends FhenetError {
  override name = 'SafetensorsError';
}

const MAX_HEADER = 100 * 1024 * 1024;

export function encodeSafetensors(tensors: Map<string, SafeTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new SafetensorsError(`tensor '${name}': shape [${t.shape}] does not match ${t.data.length} values`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8); // align the data region to 8 bytes
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new SafetensorsError(`file too short (${bytes.length} bytes) for a safetensors header`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) {
    throw new SafetensorsError(`header length ${headerLen} exceeds the file (${bytes.length} bytes) or the ${MAX_HEADER}-byte limit`);
  }
  const start = 8 + Number(headerLen);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, start)));
  } catch (e) {
    throw new SafetensorsError(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new SafetensorsError('header is not a JSON object');
  const dataLen = bytes.length - start;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const entries: [string, { dtype: SafeDtype; shape: number[]; data_offsets: [number, number] }][] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string' || !(e.dtype in CTOR)) throw new SafetensorsError(`tensor '${name}': unsupported dtype ${String(e.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(`tensor '${name}': bad shape`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1] || off[1] > dataLen) {
      throw new SafetensorsError(`tensor '${name}': data_offsets ${JSON.stringify(off)} outside the ${dataLen}-byte data region`);
    }
    entries.push([name, e as never]);
  }
  // Offsets must tile the data region with no gap or overlap.
  const sorted = [...entries].sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let expect = 0;
  for (const [name, e] of sorted) {
    if (e.data_offsets[0] !== expect) throw new SafetensorsError(`tensor '${name}': data does not follow the previous tensor (gap or overlap)`);
    expect = e.data_offsets[1];
  }
  if (expect !== dataLen) throw new SafetensorsError(`${dataLen - expect} trailing bytes after the last tensor`);
  const tensors = new Map<string, SafeTensor>();
  for (const [name, e] of entries) {
    const C = CTOR[e.dtype];
    const nbytes = e.data_offsets[1] - e.data_offsets[0];
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (n * C.BYTES_PER_ELEMENT !== nbytes) throw new SafetensorsError(`tensor '${name}': shape [${e.shape}] needs ${n * C.BYTES_PER_ELEMENT} bytes, found ${nbytes}`);
    // Copy into a fresh buffer so the typed array is aligned regardless of where the data region starts. Not
    // `bytes.slice()`: on a Node Buffer (what readFileSync returns, often a view into a shared pool) slice is a
    // view, and its `.buffer` at offset 0 is someone else's bytes.
    const copy = new Uint8Array(nbytes);
    copy.set(bytes.subarray(start + e.data_offsets[0], start + e.data_offsets[1]));
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data: new C(copy.buffer, 0, n) as SafeArray });
  }
  return { tensors, metadata };
}
