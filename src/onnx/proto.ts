/**
 * ModelProto bytes ⇄ fhenet {@link Graph}, via the `onnx-proto` protobuf schema.
 *
 * Decoding treats its input as hostile: the byte length is checked before parsing, every protobuf failure becomes
 * an {@link OnnxFormatError}, and each tensor's claimed element count is checked against a limit and against the
 * bytes actually present *before* anything is allocated, so a 10^12-element claim fails at once.
 *
 * This layer converts representations only; which operators are supported and whether the graph makes sense is
 * checked by import.ts.
 */
import { endianness } from 'node:os';
import onnxProto from 'onnx-proto';
import {
  allocate,
  type Attribute,
  type Dim,
  type DType,
  elementCount,
  type Graph,
  type Node,
  type TensorData,
  type ValueInfo,
} from './graph.js';
import { OnnxFormatError } from './errors.js';

const { onnx } = onnxProto;

/** Limits applied while decoding untrusted bytes. */
export interface DecodeLimits {
  /**
   * Largest accepted file, in bytes (default 256 MiB). Decoding memory is bounded separately by
   * `maxDecodedBytes` (a pre-scan counts the fields protobufjs would allocate).
   */
  maxBytes?: number;
  /** Largest accepted element count of one tensor (default 2^28). */
  maxTensorElements?: number;
  /** Largest accepted rank of a tensor or value shape (default 16). */
  maxRank?: number;
  /** Largest estimated memory for decoding, checked by a pre-scan of the wire format (default 1 GiB). */
  maxDecodedBytes?: number;
}

export const DEFAULT_LIMITS: Required<DecodeLimits> = {
  maxBytes: 256 * 1024 * 1024,
  maxTensorElements: 2 ** 28,
  maxRank: 16,
  maxDecodedBytes: 1024 * 1024 * 1024,
};

// ONNX TensorProto.DataType numbers.
const DTYPE_BY_CODE: Record<number, DType> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  21: 'uint4',
  22: 'int4',
};
const DTYPE_NAMES: Record<number, string> = {
  0: 'UNDEFINED',
  8: 'STRING',
  10: 'FLOAT16',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  16: 'BFLOAT16',
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
};
export const DTYPE_CODE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
  uint32: 12,
  uint64: 13,
  uint4: 21,
  int4: 22,
};
/** Bytes per element in raw_data (int4/uint4 are packed two per byte and handled separately). */
const BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  int4: 0.5,
  uint4: 0.5,
  int8: 1,
  uint8: 1,
  bool: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
};

// AttributeProto.AttributeType numbers.
const A = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10 };

/** protobufjs decodes int64 fields as `Long` objects (or numbers when long.js is absent). */
interface LongLike {
  low: number;
  high: number;
  unsigned?: boolean;
  toNumber(): number;
}
type Int64 = number | LongLike;

function int64ToNumber(v: Int64 | null | undefined, what: string, where: { node?: string; tensor?: string }): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  const n = v.toNumber();
  if (!Number.isSafeInteger(n)) {
    throw new OnnxFormatError('size', `${what} ${n} is outside the safe integer range`, where);
  }
  return n;
}

function int64ToBigInt(v: Int64): bigint {
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  const big = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned ? big : BigInt.asIntN(64, big);
}

const utf8 = new TextDecoder('utf-8');
const bytesToString = (b: Uint8Array | string | null | undefined): string =>
  b === null || b === undefined ? '' : typeof b === 'string' ? b : utf8.decode(b);

/** Converts a TensorProto, checking sizes before allocating. */
export function tensorFromProto(
  t: onnxProto.onnx.ITensorProto,
  limits: Required<DecodeLimits>,
  where: { node?: string; tensor?: string } = {},
): TensorData {
  const loc = { ...where, tensor: where.tensor ?? (t.name || '<unnamed>') };
  const code = t.dataType ?? 0;
  const dtype = DTYPE_BY_CODE[code];
  if (dtype === undefined) {
    throw new OnnxFormatError('unsupported', `data type ${DTYPE_NAMES[code] ?? code} is not supported`, loc);
  }
  if (t.dataLocation === 1 || (t.externalData && t.externalData.length > 0)) {
    throw new OnnxFormatError('unsupported', 'external tensor data is not supported (save the model with all data inside the file)', loc);
  }
  if (t.segment) throw new OnnxFormatError('unsupported', 'segmented tensors are not supported', loc);
  const rawDims = t.dims ?? [];
  if (rawDims.length > limits.maxRank) {
    throw new OnnxFormatError('size', `rank ${rawDims.length} exceeds the limit ${limits.maxRank}`, loc);
  }
  const dims: number[] = [];
  let count = 1;
  for (const d of rawDims) {
    const n = int64ToNumber(d, 'dimension', loc);
    if (!Number.isInteger(n) || n < 0) throw new OnnxFormatError('tensor', `invalid dimension ${n}`, loc);
    dims.push(n);
    count *= n;
    // Checked after every factor, so the product never grows beyond limit × one dimension.
    if (count > limits.maxTensorElements) {
      throw new OnnxFormatError(
        'size',
        `claims ${rawDims.map((x) => int64ToNumber(x, 'dimension', loc)).join('×')} elements, more than the limit of ${limits.maxTensorElements}`,
        loc,
      );
    }
  }
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const expected = dtype === 'int4' || dtype === 'uint4' ? Math.ceil(count / 2) : count * BYTES[dtype];
    if (raw.length !== expected) {
      throw new OnnxFormatError(
        'tensor',
        `raw_data has ${raw.length} bytes but dims [${dims.join(', ')}] of ${dtype} need ${expected}`,
        loc,
      );
    }
    return { dtype, dims, data: fromRaw(dtype, count, raw) };
  }
  // Typed repeated fields.
  let field: ArrayLike<number | LongLike>;
  let fieldName: string;
  switch (dtype) {
    case 'float32':
      field = t.floatData ?? [];
      fieldName = 'float_data';
      break;
    case 'float64':
      field = t.doubleData ?? [];
      fieldName = 'double_data';
      break;
    case 'int64':
      field = (t.int64Data ?? []) as Int64[];
      fieldName = 'int64_data';
      break;
    case 'uint32':
    case 'uint64':
      field = (t.uint64Data ?? []) as Int64[];
      fieldName = 'uint64_data';
      break;
    case 'int4':
    case 'uint4':
      if ((t.int32Data?.length ?? 0) === 0 && count === 0) return { dtype, dims, data: allocate(dtype, 0) };
      throw new OnnxFormatError('unsupported', `${dtype} tensors must use raw_data`, loc);
    default:
      field = t.int32Data ?? [];
      fieldName = 'int32_data';
  }
  if (field.length !== count) {
    throw new OnnxFormatError('tensor', `${fieldName} has ${field.length} values but dims [${dims.join(', ')}] need ${count}`, loc);
  }
  const data = allocate(dtype, count);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < count; i++) {
      const b = int64ToBigInt(field[i] as Int64);
      data[i] = data instanceof BigUint64Array ? BigInt.asUintN(64, b) : b;
    }
  } else {
    for (let i = 0; i < count; i++) {
      const v = field[i]!;
      data[i] = typeof v === 'number' ? v : v.toNumber();
    }
  }
  return { dtype, dims, data };
}

function fromRaw(dtype: DType, count: number, raw: Uint8Array): TensorData['data'] {
  if (dtype === 'int4' || dtype === 'uint4') {
    const out = allocate(dtype, count);
    for (let i = 0; i < count; i++) {
      const byte = raw[i >> 1]!;
      let v = i & 1 ? byte >> 4 : byte & 0x0f;
      if (dtype === 'int4' && v >= 8) v -= 16;
      out[i] = v;
    }
    return out;
  }
  const out = allocate(dtype, count);
  // Copy into the (aligned) buffer of the new array; the host is little-endian like ONNX raw_data.
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw);
  return out;
}

function tensorToProto(name: string, t: TensorData): onnxProto.onnx.ITensorProto {
  let raw: Uint8Array;
  if (t.dtype === 'int4' || t.dtype === 'uint4') {
    raw = new Uint8Array(Math.ceil(t.data.length / 2));
    for (let i = 0; i < t.data.length; i++) {
      const nib = Number(t.data[i]!) & 0x0f;
      raw[i >> 1]! |= i & 1 ? nib << 4 : nib;
    }
  } else {
    raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice();
  }
  return { name, dataType: DTYPE_CODE[t.dtype], dims: [...t.dims], rawData: raw };
}

function attributeFromProto(a: onnxProto.onnx.IAttributeProto, node: string, limits: Required<DecodeLimits>): Attribute {
  const where = { node };
  const name = a.name ?? '';
  let type = a.type ?? 0;
  if (type === 0) {
    // Very old files omit the type; infer it from the populated field.
    if (a.ints && a.ints.length) type = A.INTS;
    else if (a.floats && a.floats.length) type = A.FLOATS;
    else if (a.strings && a.strings.length) type = A.STRINGS;
    else if (a.t) type = A.TENSOR;
    else if (a.s && a.s.length) type = A.STRING;
    else if (a.f) type = A.FLOAT;
    else type = A.INT;
  }
  switch (type) {
    case A.FLOAT:
      return { type: 'float', value: a.f ?? 0 };
    case A.INT:
      return { type: 'int', value: int64ToNumber(a.i as Int64, `attribute '${name}'`, where) };
    case A.STRING:
      return { type: 'string', value: bytesToString(a.s) };
    case A.FLOATS:
      return { type: 'floats', value: [...(a.floats ?? [])] };
    case A.INTS:
      return { type: 'ints', value: (a.ints ?? []).map((v) => int64ToNumber(v as Int64, `attribute '${name}'`, where)) };
    case A.STRINGS:
      return { type: 'strings', value: (a.strings ?? []).map(bytesToString) };
    case A.TENSOR:
      if (!a.t) throw new OnnxFormatError('attribute', `tensor attribute '${name}' has no tensor`, where);
      return { type: 'tensor', value: tensorFromProto(a.t, limits, { node, tensor: a.t.name || name }) };
    default:
      throw new OnnxFormatError('unsupported', `attribute '${name}' has unsupported type ${type} (graphs, sparse tensors and type protos are not supported)`, where);
  }
}

function attributeToProto(name: string, a: Attribute): onnxProto.onnx.IAttributeProto {
  const enc = new TextEncoder();
  switch (a.type) {
    case 'int':
      return { name, type: A.INT, i: a.value };
    case 'float':
      return { name, type: A.FLOAT, f: a.value };
    case 'string':
      return { name, type: A.STRING, s: enc.encode(a.value) };
    case 'ints':
      return { name, type: A.INTS, ints: [...a.value] };
    case 'floats':
      return { name, type: A.FLOATS, floats: [...a.value] };
    case 'strings':
      return { name, type: A.STRINGS, strings: a.value.map((s) => enc.encode(s)) };
    case 'tensor':
      return { name, type: A.TENSOR, t: tensorToProto('', a.value) };
  }
}

function valueInfoFromProto(v: onnxProto.onnx.IValueInfoProto, limits: Required<DecodeLimits>): ValueInfo {
  const name = v.name ?? '';
  const tt = v.type?.tensorType;
  if (v.type && !tt) throw new OnnxFormatError('unsupported', 'only tensor-typed values are supported', { tensor: name });
  const code = tt?.elemType ?? 1;
  const elemType = DTYPE_BY_CODE[code];
  if (elemType === undefined) {
    throw new OnnxFormatError('unsupported', `element type ${DTYPE_NAMES[code] ?? code} is not supported`, { tensor: name });
  }
  let shape: Dim[] | null = null;
  if (tt?.shape) {
    const dims = tt.shape.dim ?? [];
    if (dims.length > limits.maxRank) throw new OnnxFormatError('size', `rank ${dims.length} exceeds the limit ${limits.maxRank}`, { tensor: name });
    shape = dims.map((d) => {
      if (d.dimParam) return d.dimParam;
      if (d.dimValue !== undefined && d.dimValue !== null) {
        const n = int64ToNumber(d.dimValue as Int64, 'dimension', { tensor: name });
        return n >= 0 ? n : null;
      }
      return null;
    });
  }
  return { name, elemType, shape };
}

function valueInfoToProto(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  const tensorType: onnxProto.onnx.TypeProto.ITensor = { elemType: DTYPE_CODE[v.elemType] };
  if (v.shape) {
    tensorType.shape = {
      dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return { name: v.name, type: { tensorType } };
}


// ---------------------------------------------------------------------------------------------------------------
// Pre-scan: bound what protobufjs would allocate before letting it decode
// ---------------------------------------------------------------------------------------------------------------

/**
 * The ONNX schema as the pre-scan needs it: for each field of each message, a sub-message schema (recursed into),
 * a packed numeric kind (elements counted), or the wire type of a scalar/string field. protobufjs's generated
 * decoders read a known field by its declared type whatever the wire type says, so the scan refuses any mismatch;
 * that keeps its view of the bytes identical to the decoder's. Unknown fields are skipped by both.
 */
interface ScanSchema {
  [field: number]: ScanSchema | PackedKind | 0 | 1 | 2 | 5;
}
type PackedKind = 'varint' | 'varint64' | 'f32' | 'f64';
const S_ENTRY: ScanSchema = { 1: 2, 2: 2 }; // StringStringEntryProto
const S_OPSET: ScanSchema = { 1: 2, 2: 0 };
const S_TENSOR: ScanSchema = {
  1: 'varint64', 2: 0, 3: { 1: 0, 2: 0 }, 4: 'f32', 5: 'varint', 6: 2, 7: 'varint64', 8: 2, 12: 2, 9: 2, 13: S_ENTRY, 14: 0, 10: 'f64', 11: 'varint64',
};
const S_TYPE: ScanSchema = {};
const S_SHAPE: ScanSchema = { 1: { 1: 0, 2: 2, 3: 2 } };
Object.assign(S_TYPE, { 1: { 1: 0, 2: S_SHAPE }, 4: { 1: S_TYPE }, 5: { 1: 0, 2: S_TYPE }, 8: { 1: 0, 2: S_SHAPE }, 9: { 1: S_TYPE }, 6: 2 });
const S_VALUE_INFO: ScanSchema = { 1: 2, 2: S_TYPE, 3: 2 };
const S_SPARSE: ScanSchema = { 1: S_TENSOR, 2: S_TENSOR, 3: 'varint64' };
const S_GRAPH: ScanSchema = {};
const S_ATTRIBUTE: ScanSchema = {
  1: 2, 21: 2, 13: 2, 20: 0, 2: 5, 3: 0, 4: 2, 5: S_TENSOR, 6: S_GRAPH, 22: S_SPARSE, 14: S_TYPE,
  7: 'f32', 8: 'varint64', 9: 2, 10: S_TENSOR, 11: S_GRAPH, 23: S_SPARSE, 15: S_TYPE,
};
const S_NODE: ScanSchema = { 1: 2, 2: 2, 3: 2, 4: 2, 5: S_ATTRIBUTE, 6: 2, 7: 2 };
Object.assign(S_GRAPH, { 1: S_NODE, 2: 2, 5: S_TENSOR, 15: S_SPARSE, 10: 2, 11: S_VALUE_INFO, 12: S_VALUE_INFO, 13: S_VALUE_INFO, 14: { 1: 2, 2: S_ENTRY } });
const S_FUNCTION: ScanSchema = { 1: 2, 4: 2, 5: 2, 6: 2, 7: S_NODE, 8: 2, 9: S_OPSET, 10: 2 };
const S_MODEL: ScanSchema = {
  1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: S_GRAPH, 8: S_OPSET, 14: S_ENTRY, 20: { 1: S_GRAPH, 2: S_GRAPH, 3: S_ENTRY, 4: S_ENTRY }, 25: S_FUNCTION,
};
const PACKED_WIRE: Record<PackedKind, number> = { varint: 0, varint64: 0, f32: 5, f64: 1 };

/** Approximate JS heap bytes per decoded value (an object or string) and per packed element. */
const OBJECT_COST = 200;
const PACKED_COST: Record<PackedKind, number> = { varint: 8, varint64: 48, f32: 8, f64: 8 };

/**
 * Walks the protobuf wire format without allocating and estimates the memory protobufjs would need to decode it.
 * Throws OnnxFormatError('size') above `maxDecodedBytes`, ('decode') for malformed framing.
 */
export function estimateDecodedBytes(bytes: Uint8Array, maxDecodedBytes: number, maxDepth = 64): number {
  let cost = 0;
  const bad = (why: string): never => {
    throw new OnnxFormatError('decode', `not a valid ONNX ModelProto (truncated or corrupted?): ${why}`);
  };
  const varint = (pos: number, end: number): [number, number] => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) bad('varint runs past the end');
      const b = bytes[pos++]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return [v, pos];
    }
    return bad('varint longer than 10 bytes');
  };
  const walk = (start: number, end: number, schema: ScanSchema, depth: number): void => {
    if (depth > maxDepth) throw new OnnxFormatError('size', `messages nested deeper than ${maxDepth}`);
    let pos = start;
    while (pos < end) {
      let tag: number;
      [tag, pos] = varint(pos, end);
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      cost += OBJECT_COST;
      const sub = schema[field];
      if (sub !== undefined) {
        const want = typeof sub === 'object' ? 2 : typeof sub === 'string' ? (wire === 2 ? 2 : PACKED_WIRE[sub]) : sub;
        if (wire !== want) bad(`field ${field} has wire type ${wire}, expected ${want}`);
      }
      if (wire === 0) [, pos] = varint(pos, end);
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        let len: number;
        [len, pos] = varint(pos, end);
        if (pos + len > end) bad(`field ${field} claims ${len} bytes past the end`);
        if (typeof sub === 'object') walk(pos, pos + len, sub, depth + 1);
        else if (sub === 'f32') cost += (len / 4) * PACKED_COST.f32;
        else if (sub === 'f64') cost += (len / 8) * PACKED_COST.f64;
        else if (typeof sub === 'string') {
          let n = 0;
          for (let i = pos; i < pos + len; i++) if (bytes[i]! < 0x80) n++;
          cost += n * PACKED_COST[sub];
        }
        pos += len;
      } else if (wire === 3 || wire === 4) {
        // Groups (deprecated): protobufjs skips them; nothing to allocate.
      } else bad(`invalid wire type ${wire}`);
      if (pos > end) bad('field runs past the end');
      if (cost > maxDecodedBytes) {
        throw new OnnxFormatError('size', `decoding would need more than ${maxDecodedBytes} bytes of memory (too many fields)`);
      }
    }
  };
  walk(0, bytes.length, S_MODEL, 0);
  return cost;
}

/** What {@link decodeModel} returns besides the graph. */
export interface DecodedModel {
  graph: Graph;
  irVersion: number;
  /** Names that the file listed both as initializers and as graph inputs (keep_initializers_as_inputs). */
  initializersAsInputs: string[];
}

/**
 * Parses ModelProto bytes into a Graph. Graph inputs that are also initializers are dropped from `inputs`
 * (reported in `initializersAsInputs`); `ai.onnx` is normalised to ''. Throws OnnxFormatError.
 */
export function decodeModel(bytes: Uint8Array, limitsIn: DecodeLimits = {}): DecodedModel {
  const limits = { ...DEFAULT_LIMITS, ...limitsIn };
  if (endianness() !== 'LE') throw new OnnxFormatError('unsupported', 'big-endian hosts are not supported');
  if (!(bytes instanceof Uint8Array)) throw new OnnxFormatError('decode', 'expected the model as a Uint8Array');
  if (bytes.length > limits.maxBytes) {
    throw new OnnxFormatError('size', `the file has ${bytes.length} bytes, more than the limit of ${limits.maxBytes}`);
  }
  if (bytes.length === 0) throw new OnnxFormatError('decode', 'the file is empty');
  estimateDecodedBytes(bytes, limits.maxDecodedBytes);
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new OnnxFormatError('decode', `not a valid ONNX ModelProto (truncated or corrupted?): ${msg}`);
  }
  const g = model.graph;
  if (!g) throw new OnnxFormatError('decode', 'the model has no graph');
  if ((g.sparseInitializer?.length ?? 0) > 0) throw new OnnxFormatError('unsupported', 'sparse initializers are not supported');

  const initializers = new Map<string, TensorData>();
  for (const t of g.initializer ?? []) {
    const name = t.name ?? '';
    if (name === '') throw new OnnxFormatError('tensor', 'an initializer has no name');
    if (initializers.has(name)) throw new OnnxFormatError('duplicate', 'initializer defined twice', { tensor: name });
    initializers.set(name, tensorFromProto(t, limits, { tensor: name }));
  }
  const allInputs = (g.input ?? []).map((v) => valueInfoFromProto(v, limits));
  const inputs = allInputs.filter((v) => !initializers.has(v.name));
  const initializersAsInputs = allInputs.filter((v) => initializers.has(v.name)).map((v) => v.name);
  const outputs = (g.output ?? []).map((v) => valueInfoFromProto(v, limits));

  const usedNames = new Set<string>();
  const nodes: Node[] = (g.node ?? []).map((n, i) => {
    const opType = n.opType ?? '';
    let name = n.name || `${opType || 'node'}_${i}`;
    while (usedNames.has(name)) name = `${name}_${i}`;
    usedNames.add(name);
    if (opType === '') throw new OnnxFormatError('decode', 'node has no op_type', { node: name });
    const attributes: Record<string, Attribute> = {};
    for (const a of n.attribute ?? []) {
      const an = a.name ?? '';
      if (an === '') throw new OnnxFormatError('attribute', 'an attribute has no name', { node: name });
      if (an in attributes) throw new OnnxFormatError('attribute', `attribute '${an}' given twice`, { node: name });
      attributes[an] = attributeFromProto(a, name, limits);
    }
    const domain = n.domain === 'ai.onnx' ? '' : (n.domain ?? '');
    return { name, opType, domain, inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attributes };
  });

  const opsetImports = (model.opsetImport ?? []).map((o) => ({
    domain: o.domain === 'ai.onnx' ? '' : (o.domain ?? ''),
    version: int64ToNumber(o.version as Int64, 'opset version', {}),
  }));
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) metadata[p.key ?? ''] = p.value ?? '';

  const graph: Graph = {
    name: g.name ?? '',
    inputs,
    outputs,
    nodes,
    initializers,
    opsetImports,
    metadata,
  };
  if (model.producerName) graph.producerName = model.producerName;
  if (model.producerVersion) graph.producerVersion = model.producerVersion;
  if (model.docString) graph.docString = model.docString;
  return { graph, irVersion: int64ToNumber(model.irVersion as Int64, 'ir_version', {}), initializersAsInputs };
}

/** Options of {@link encodeModel}. */
export interface EncodeOptions {
  /** ModelProto ir_version (default 7, which opset ≤ 15 readers accept; use ≥ 10 for opset 21). */
  irVersion?: number;
  /** Also list every initializer as a graph input (what Brevitas/torch write by default). Default false. */
  keepInitializersAsInputs?: boolean;
}

/** Serialises a Graph as ModelProto bytes, exactly as given (no validation, no rewriting). */
export function encodeModel(graph: Graph, opts: EncodeOptions = {}): Uint8Array {
  const initializer = [...graph.initializers].map(([name, t]) => tensorToProto(name, t));
  const input = graph.inputs.map(valueInfoToProto);
  if (opts.keepInitializersAsInputs) {
    for (const [name, t] of graph.initializers) input.push(valueInfoToProto({ name, elemType: t.dtype, shape: t.dims }));
  }
  const model: onnxProto.onnx.IModelProto = {
    irVersion: opts.irVersion ?? 7,
    opsetImport: graph.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: graph.producerName ?? '',
    producerVersion: graph.producerVersion ?? '',
    docString: graph.docString ?? '',
    graph: {
      name: graph.name,
      node: graph.nodes.map((n) => ({
        name: n.name,
        opType: n.opType,
        domain: n.domain,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attributes).map(([k, a]) => attributeToProto(k, a)),
      })),
      initializer,
      input,
      output: graph.outputs.map(valueInfoToProto),
    },
    metadataProps: Object.entries(graph.metadata).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(model).finish();
}
