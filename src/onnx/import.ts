/**
 * Loading ONNX files (QONNX, QCDQ, plain float) into a validated fhenet {@link Graph}.
 *
 * Steps: decode (proto.ts, size-checked) → normalise (Constant nodes become initializers; opset < 11 Clip/Pad
 * attributes become inputs; optionally QCDQ patterns become QONNX Quant nodes) → validate (domains, supported
 * operators and their attributes, Quant parameters, missing values, cycles) → nodes in topological order.
 *
 * Every problem is an {@link OnnxFormatError} naming the node or tensor.
 */
import { readFileSync, statSync } from 'node:fs';
import {
  Attr,
  type Attribute,
  BREVITAS_DOMAIN,
  elementCount,
  type Graph,
  INT_RANGE,
  type Node,
  type TensorData,
  QUANT_DOMAINS,
  QONNX_DOMAIN,
  getAttrInt,
  getAttrString,
  isFloatDType,
  opsetVersion,
  pruneUnusedInitializers,
  topologicalOrder,
  GraphIndex,
  type DType,
  getAttrFloat,
  getAttrInts,
  constantInterner,
} from './graph.js';
import { decodeModel, DEFAULT_LIMITS, type DecodeLimits } from './proto.js';
import { OnnxFormatError } from './errors.js';
import { quantBounds } from './interpret.js';

export interface ImportOptions extends DecodeLimits {
  /**
   * Rewrite QCDQ patterns (QuantizeLinear → [Clip] → DequantizeLinear on activations, int initializer → [Clip] →
   * DequantizeLinear on weights) into QONNX `Quant` nodes, so downstream code sees one representation.
   * Default true. Patterns that have no exact Quant equivalent are left as they are.
   */
  normalizeQcdq?: boolean;
}

/** Summary of what the importer found and did, for diagnostics. */
export interface ImportInfo {
  format: 'qonnx' | 'qcdq' | 'float' | 'mixed';
  irVersion: number;
  /** Initializers that the file also listed as graph inputs (keep_initializers_as_inputs). */
  initializersAsInputs: string[];
  /** Number of QCDQ patterns rewritten to Quant nodes. */
  qcdqRewritten: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Operator specifications used by validation
// ---------------------------------------------------------------------------------------------------------------

interface OpSpec {
  inputs: [number, number];
  outputs: [number, number];
  attrs: Record<string, Attribute['type']>;
  required?: string[];
  check?: (node: Node, graph: Graph) => void;
}

const POOL_ATTRS: OpSpec['attrs'] = {
  auto_pad: 'string',
  ceil_mode: 'int',
  count_include_pad: 'int',
  kernel_shape: 'ints',
  pads: 'ints',
  strides: 'ints',
  dilations: 'ints',
  storage_order: 'int',
};

const AUTO_PADS = ['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER'];

function checkAutoPad(node: Node): void {
  const p = getAttrString(node, 'auto_pad', 'NOTSET');
  if (!AUTO_PADS.includes(p)) throw new OnnxFormatError('attribute', `auto_pad '${p}' is not one of ${AUTO_PADS.join(', ')}`, { node: node.name });
}

function checkPositiveInts(node: Node, name: string): void {
  const v = getAttrInts(node, name);
  if (v && v.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new OnnxFormatError('attribute', `${name} [${v.join(', ')}] must be positive integers`, { node: node.name });
  }
}

function checkPads(node: Node): void {
  const v = getAttrInts(node, 'pads');
  if (v && v.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new OnnxFormatError('attribute', `pads [${v.join(', ')}] must be non-negative integers`, { node: node.name });
  }
}

function checkFlag(node: Node, name: string): void {
  const v = getAttrInt(node, name);
  if (v !== undefined && v !== 0 && v !== 1) throw new OnnxFormatError('attribute', `${name} must be 0 or 1, got ${v}`, { node: node.name });
}

const unary: OpSpec = { inputs: [1, 1], outputs: [1, 1], attrs: {} };
const binaryOp: OpSpec = { inputs: [2, 2], outputs: [1, 1], attrs: {} };

const DEFAULT_SPECS: Record<string, OpSpec> = {
  Gemm: { inputs: [2, 3], outputs: [1, 1], attrs: { alpha: 'float', beta: 'float', transA: 'int', transB: 'int' } },
  MatMul: binaryOp,
  Add: binaryOp,
  Sub: binaryOp,
  Mul: binaryOp,
  Div: binaryOp,
  Conv: {
    inputs: [2, 3],
    outputs: [1, 1],
    attrs: { auto_pad: 'string', dilations: 'ints', group: 'int', kernel_shape: 'ints', pads: 'ints', strides: 'ints' },
    check: (n) => {
      checkAutoPad(n);
      checkPositiveInts(n, 'dilations');
      checkPositiveInts(n, 'strides');
      checkPositiveInts(n, 'kernel_shape');
      checkPads(n);
      const g = getAttrInt(n, 'group', 1);
      if (g < 1) throw new OnnxFormatError('attribute', `group must be ≥ 1, got ${g}`, { node: n.name });
    },
  },
  BatchNormalization: {
    inputs: [5, 5],
    outputs: [1, 1],
    attrs: { epsilon: 'float', momentum: 'float', training_mode: 'int', spatial: 'int' },
    check: (n) => {
      if (getAttrInt(n, 'training_mode', 0) !== 0) {
        throw new OnnxFormatError('unsupported', 'BatchNormalization in training mode is not supported (export the model in eval mode)', { node: n.name });
      }
      if (getAttrInt(n, 'spatial', 1) !== 1) throw new OnnxFormatError('unsupported', 'BatchNormalization spatial=0 is not supported', { node: n.name });
      const eps = getAttrFloat(n, 'epsilon', 1e-5);
      if (!(eps >= 0) || !Number.isFinite(eps)) throw new OnnxFormatError('attribute', `epsilon must be ≥ 0, got ${eps}`, { node: n.name });
    },
  },
  AveragePool: {
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: POOL_ATTRS,
    required: ['kernel_shape'],
    check: (n) => {
      checkAutoPad(n);
      checkPositiveInts(n, 'kernel_shape');
      checkPositiveInts(n, 'strides');
      checkPositiveInts(n, 'dilations');
      checkPads(n);
      checkFlag(n, 'ceil_mode');
      checkFlag(n, 'count_include_pad');
    },
  },
  MaxPool: {
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: POOL_ATTRS,
    required: ['kernel_shape'],
    check: (n) => {
      checkAutoPad(n);
      checkPositiveInts(n, 'kernel_shape');
      checkPositiveInts(n, 'strides');
      checkPositiveInts(n, 'dilations');
      checkPads(n);
      checkFlag(n, 'ceil_mode');
    },
  },
  GlobalAveragePool: unary,
  GlobalMaxPool: unary,
  Relu: unary,
  Sigmoid: unary,
  Identity: unary,
  Flatten: { inputs: [1, 1], outputs: [1, 1], attrs: { axis: 'int' } },
  Reshape: { inputs: [2, 2], outputs: [1, 1], attrs: { allowzero: 'int' } },
  Clip: { inputs: [1, 3], outputs: [1, 1], attrs: { min: 'float', max: 'float' } },
  Transpose: { inputs: [1, 1], outputs: [1, 1], attrs: { perm: 'ints' } },
  Pad: {
    inputs: [1, 4],
    outputs: [1, 1],
    attrs: { mode: 'string', pads: 'ints', value: 'float' },
    check: (n) => {
      const mode = getAttrString(n, 'mode', 'constant');
      if (!['constant', 'edge', 'reflect'].includes(mode)) {
        throw new OnnxFormatError('unsupported', `Pad mode '${mode}' is not supported (constant, edge, reflect)`, { node: n.name });
      }
    },
  },
  Concat: { inputs: [1, 1 << 16], outputs: [1, 1], attrs: { axis: 'int' }, required: ['axis'] },
  Constant: {
    inputs: [0, 0],
    outputs: [1, 1],
    attrs: { value: 'tensor', value_float: 'float', value_floats: 'floats', value_int: 'int', value_ints: 'ints' },
  },
  QuantizeLinear: {
    inputs: [2, 3],
    outputs: [1, 1],
    attrs: { axis: 'int', saturate: 'int', block_size: 'int', output_dtype: 'int' },
    check: (n) => {
      if (getAttrInt(n, 'block_size', 0) !== 0) throw new OnnxFormatError('unsupported', 'blocked quantization (block_size) is not supported', { node: n.name });
      if (getAttrInt(n, 'output_dtype', 0) !== 0 && n.inputs[2] === undefined) {
        throw new OnnxFormatError('unsupported', 'output_dtype without a zero point is not supported', { node: n.name });
      }
    },
  },
  DequantizeLinear: {
    inputs: [2, 3],
    outputs: [1, 1],
    attrs: { axis: 'int', block_size: 'int' },
    check: (n) => {
      if (getAttrInt(n, 'block_size', 0) !== 0) throw new OnnxFormatError('unsupported', 'blocked quantization (block_size) is not supported', { node: n.name });
    },
  },
};

/** Checks a QONNX Quant node's parameters: constant integer bit width, flags, ROUND. */
function checkQuant(node: Node, graph: Graph): void {
  const where = { node: node.name };
  for (const flag of ['signed', 'narrow']) {
    if (node.attributes[flag] === undefined) continue; // QONNX defaults apply (signed=1, narrow=0)
    checkFlag(node, flag);
  }
  const mode = getAttrString(node, 'rounding_mode', 'ROUND');
  if (mode !== 'ROUND') {
    throw new OnnxFormatError('quant', `rounding_mode '${mode}' is not supported: fhenet (like Concrete ML) only implements ROUND (round half to even)`, where);
  }
  const bwName = node.inputs[3]!;
  const bw = graph.initializers.get(bwName);
  if (!bw) throw new OnnxFormatError('quant', `bit width '${bwName}' must be a constant (initializer)`, where);
  if (bw.data.length !== 1) throw new OnnxFormatError('quant', `bit width '${bwName}' must be a scalar, got dims [${bw.dims.join(', ')}]`, where);
  const b = Number(bw.data[0]!);
  if (!Number.isInteger(b) || b < 1 || b > 32) {
    throw new OnnxFormatError('quant', `bit width must be an integer between 1 and 32, got ${b}`, where);
  }
  const scale = graph.initializers.get(node.inputs[1]!);
  if (scale) {
    for (let i = 0; i < scale.data.length; i++) {
      const s = Number(scale.data[i]!);
      if (!(s > 0) || !Number.isFinite(s)) throw new OnnxFormatError('quant', `scale must be positive and finite, got ${s}`, where);
    }
  }
  const zp = graph.initializers.get(node.inputs[2]!);
  if (zp) {
    for (let i = 0; i < zp.data.length; i++) {
      const z = Number(zp.data[i]!);
      if (!Number.isFinite(z)) throw new OnnxFormatError('quant', `zero point must be finite, got ${z}`, where);
    }
  }
}

const CUSTOM_SPECS: Record<string, OpSpec> = {
  Quant: { inputs: [4, 4], outputs: [1, 1], attrs: { signed: 'int', narrow: 'int', rounding_mode: 'string' }, check: checkQuant },
  BipolarQuant: { inputs: [2, 2], outputs: [1, 1], attrs: {} },
};

/** Operators fhenet imports, by domain ('' = default ONNX domain). */
export const IMPORTABLE_OPS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(DEFAULT_SPECS),
  [BREVITAS_DOMAIN]: Object.keys(CUSTOM_SPECS),
  [QONNX_DOMAIN]: Object.keys(CUSTOM_SPECS),
};

function validateNode(node: Node, graph: Graph): void {
  const where = { node: node.name };
  const domain = node.domain;
  let spec: OpSpec | undefined;
  if (domain === '') spec = DEFAULT_SPECS[node.opType];
  else if (QUANT_DOMAINS.includes(domain)) spec = CUSTOM_SPECS[node.opType];
  else throw new OnnxFormatError('unsupported', `operator domain '${domain}' (op ${node.opType}) is not supported`, where);
  if (!spec) {
    throw new OnnxFormatError(
      'unsupported',
      `operator ${domain ? domain + '::' : ''}${node.opType} is not supported (supported: ${(domain ? Object.keys(CUSTOM_SPECS) : Object.keys(DEFAULT_SPECS)).join(', ')})`,
      where,
    );
  }
  if (opsetVersion(graph, domain) === undefined) {
    throw new OnnxFormatError('unsupported', `domain '${domain || 'ai.onnx'}' of ${node.opType} is not in the model's opset_import`, where);
  }
  // Trailing '' inputs are omitted optional inputs.
  let nIn = node.inputs.length;
  while (nIn > 0 && node.inputs[nIn - 1] === '') nIn--;
  if (nIn < spec.inputs[0] || nIn > spec.inputs[1]) {
    const range = spec.inputs[0] === spec.inputs[1] ? `${spec.inputs[0]}` : `${spec.inputs[0]} to ${spec.inputs[1]}`;
    throw new OnnxFormatError('attribute', `${node.opType} takes ${range} input(s), got ${nIn}`, where);
  }
  for (let i = 0; i < spec.inputs[0]; i++) {
    if (node.inputs[i] === '') throw new OnnxFormatError('attribute', `${node.opType} input #${i} is required`, where);
  }
  const nOut = node.outputs.filter((o) => o !== '').length;
  if (nOut < spec.outputs[0] || node.outputs.length > spec.outputs[1]) {
    throw new OnnxFormatError('unsupported', `${node.opType} with ${node.outputs.length} outputs is not supported (expected ${spec.outputs[1]})`, where);
  }
  for (const [name, a] of Object.entries(node.attributes)) {
    const want = spec.attrs[name];
    if (want !== undefined && a.type !== want) {
      throw new OnnxFormatError('attribute', `attribute '${name}' of ${node.opType} must be ${want}, got ${a.type}`, where);
    }
  }
  for (const name of spec.required ?? []) {
    if (node.attributes[name] === undefined) throw new OnnxFormatError('attribute', `${node.opType} needs attribute '${name}'`, where);
  }
  spec.check?.(node, graph);
}

// ---------------------------------------------------------------------------------------------------------------
// Normalisation passes
// ---------------------------------------------------------------------------------------------------------------

/** Constant nodes → initializers (what Brevitas's exporter does with onnxoptimizer too). */
function constantsToInitializers(graph: Graph): void {
  const keep: Node[] = [];
  for (const node of graph.nodes) {
    if (node.opType !== 'Constant' || node.domain !== '') {
      keep.push(node);
      continue;
    }
    validateNode(node, graph);
    const out = node.outputs[0]!;
    const a = node.attributes;
    let t: TensorData | undefined;
    if (a.value?.type === 'tensor') t = a.value.value;
    else if (a.value_float?.type === 'float') t = { dtype: 'float32', dims: [], data: Float32Array.of(a.value_float.value) };
    else if (a.value_floats?.type === 'floats') t = { dtype: 'float32', dims: [a.value_floats.value.length], data: Float32Array.from(a.value_floats.value) };
    else if (a.value_int?.type === 'int') t = { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(a.value_int.value)) };
    else if (a.value_ints?.type === 'ints') {
      t = { dtype: 'int64', dims: [a.value_ints.value.length], data: BigInt64Array.from(a.value_ints.value.map((v) => BigInt(v))) };
    }
    if (!t) throw new OnnxFormatError('unsupported', 'Constant needs a value, value_float(s) or value_int(s) attribute', { node: node.name });
    if (graph.initializers.has(out)) throw new OnnxFormatError('duplicate', 'Constant output is also an initializer', { node: node.name, tensor: out });
    graph.initializers.set(out, t);
  }
  graph.nodes = keep;
}

/** Opset < 11: Clip min/max and Pad pads/value attributes become inputs, and the opset is raised to 11. */
function upgradeOldOpset(graph: Graph): void {
  const v = opsetVersion(graph, '');
  if (v === undefined || v >= 11) return;
  let k = 0;
  const addConst = (t: TensorData, hint: string) => {
    let name = `${hint}_${k++}`;
    while (graph.initializers.has(name)) name = `${hint}_${k++}`;
    graph.initializers.set(name, t);
    return name;
  };
  for (const node of graph.nodes) {
    if (node.domain !== '') continue;
    if (node.opType === 'Clip') {
      const lo = getAttrFloat(node, 'min');
      const hi = getAttrFloat(node, 'max');
      node.inputs = [
        node.inputs[0]!,
        lo === undefined ? '' : addConst({ dtype: 'float32', dims: [], data: Float32Array.of(lo) }, `${node.name}_min`),
        hi === undefined ? '' : addConst({ dtype: 'float32', dims: [], data: Float32Array.of(hi) }, `${node.name}_max`),
      ];
      delete node.attributes.min;
      delete node.attributes.max;
    } else if (node.opType === 'Pad') {
      const pads = getAttrInts(node, 'pads', []);
      const value = getAttrFloat(node, 'value', 0);
      node.inputs = [
        node.inputs[0]!,
        addConst({ dtype: 'int64', dims: [pads.length], data: BigInt64Array.from(pads.map((p) => BigInt(p))) }, `${node.name}_pads`),
        addConst({ dtype: 'float32', dims: [], data: Float32Array.of(value) }, `${node.name}_value`),
      ];
      delete node.attributes.pads;
      delete node.attributes.value;
    }
  }
  for (const o of graph.opsetImports) if (o.domain === '') o.version = 11;
}

/** Integer bit width/signed/narrow whose bounds are exactly [lo, hi], or undefined. */
export function quantizerForRange(lo: number, hi: number): { bitWidth: number; signed: boolean; narrow: boolean } | undefined {
  for (let b = 1; b <= 32; b++) {
    for (const signed of [true, false]) {
      for (const narrow of [false, true]) {
        if (signed && b === 1 && narrow) continue;
        const [l, h] = quantBounds(b, signed, narrow);
        if (l === lo && h === hi) return { bitWidth: b, signed, narrow };
      }
    }
  }
  return undefined;
}

function sameValues(a: TensorData, b: TensorData): boolean {
  if (a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (Number(a.data[i]!) !== Number(b.data[i]!)) return false;
  return true;
}

/**
 * Rewrites QCDQ patterns into QONNX Quant nodes (domain onnx.brevitas), in place:
 *   activation: X → QuantizeLinear(s, zp) → [Clip(lo, hi)] → DequantizeLinear(s, zp)  ⇒  Quant(X, s, zp, b)
 *   activation: X → Clip((lo − zp)·s, (hi − zp)·s) → QuantizeLinear → DequantizeLinear  ⇒  the same (int16 storage)
 *   weight:     Wint → [Clip(lo, hi)] → DequantizeLinear(s, zp)  ⇒  Quant(W = (Wint − zp)·s, s, zp, b)
 * (b, signed, narrow) come from the integer range [lo, hi] (the Clip bounds, else the integer type's range).
 * Returns the number of patterns rewritten. Anything without an exact Quant equivalent is left unchanged.
 */
export function qcdqToQonnx(graph: Graph): number {
  const index = new GraphIndex(graph);
  const remove = new Set<Node>();
  const replace = new Map<Node, Node>();
  const constant = constantInterner(graph);
  const single = (value: string, reader: Node) => {
    const c = index.consumersOf(value);
    return c.length === 1 && c[0] === reader && !graph.outputs.some((o) => o.name === value);
  };
  let count = 0;
  for (const dq of graph.nodes) {
    if (dq.opType !== 'DequantizeLinear' || dq.domain !== '') continue;
    const scale = graph.initializers.get(dq.inputs[1]!);
    const zpName = dq.inputs[2] ?? '';
    const zp = zpName ? graph.initializers.get(zpName) : undefined;
    if (!scale || (zpName && !zp) || !isFloatDType(scale.dtype)) continue;
    let src = dq.inputs[0]!;
    let clipNode: Node | undefined;
    let qNode: Node | undefined;
    let p = index.producer(src);
    if (p && p.opType === 'Clip' && p.domain === '' && single(src, dq)) {
      clipNode = p;
      src = p.inputs[0]!;
      p = index.producer(src);
    }
    if (p && p.opType === 'QuantizeLinear' && p.domain === '' && single(src, clipNode ?? dq)) {
      qNode = p;
    } else if (p) continue; // produced by something else: not a pattern we rewrite
    // Integer storage type.
    let intType: DType;
    if (qNode) {
      const qs = graph.initializers.get(qNode.inputs[1]!);
      const qzName = qNode.inputs[2] ?? '';
      const qz = qzName ? graph.initializers.get(qzName) : undefined;
      if (!qs || !sameValues(qs, scale) || (qzName && !qz)) continue;
      if ((zp === undefined) !== (qz === undefined) || (zp && qz && !sameValues(zp, qz))) continue;
      if (getAttrInt(qNode, 'axis', 1) !== getAttrInt(dq, 'axis', 1) && scale.data.length > 1) continue;
      intType = qz ? qz.dtype : 'uint8';
    } else {
      const w = graph.initializers.get(src);
      if (!w) continue;
      intType = w.dtype;
    }
    const range = INT_RANGE[intType];
    if (!range || intType === 'bool') continue;
    let [lo, hi] = range;
    if (clipNode) {
      const cl = clipNode.inputs[1] ? graph.initializers.get(clipNode.inputs[1]) : undefined;
      const ch = clipNode.inputs[2] ? graph.initializers.get(clipNode.inputs[2]) : undefined;
      if ((clipNode.inputs[1] && !cl) || (clipNode.inputs[2] && !ch)) continue;
      if ((cl && cl.data.length !== 1) || (ch && ch.data.length !== 1)) continue;
      if (cl) lo = Math.max(lo, Number(cl.data[0]!));
      if (ch) hi = Math.min(hi, Number(ch.data[0]!));
    }
    // fhenet's QCDQ form of a 9–16-bit activation narrower than its storage type: X → Clip (float bounds
    // (lo − zp)·s, (hi − zp)·s) → QuantizeLinear. The bounds must be exactly those for the rewrite to be exact.
    let floatClip: Node | undefined;
    const fc = qNode ? index.producer(qNode.inputs[0]!) : undefined;
    if (fc && fc.opType === 'Clip' && fc.domain === '' && scale.data.length === 1 && single(qNode!.inputs[0]!, qNode!)) {
      const s = Number(scale.data[0]!);
      const z = zp ? Number(zp.data[0]!) : 0;
      const onGrid = (name: string | undefined): number | undefined => {
        const t = name ? graph.initializers.get(name) : undefined;
        if (!t || t.data.length !== 1 || !isFloatDType(t.dtype)) return undefined;
        const v = Number(t.data[0]!);
        const k = Math.round(v / s) + z;
        return Math.fround((k - z) * s) === v ? k : undefined;
      };
      const flo = onGrid(fc.inputs[1]);
      const fhi = onGrid(fc.inputs[2]);
      if (flo !== undefined && fhi !== undefined) {
        floatClip = fc;
        lo = Math.max(lo, flo);
        hi = Math.min(hi, fhi);
      }
    }
    const q = quantizerForRange(lo, hi);
    if (!q) continue;
    // Scale and zero point in Quant form: per-axis 1-D parameters are reshaped to broadcast along their axis.
    let qDims = [...scale.dims];
    let axis = getAttrInt(dq, 'axis', 1);
    const perChannel = scale.data.length > 1;
    const weight = qNode ? undefined : graph.initializers.get(src)!;
    if (perChannel) {
      if (!weight) continue; // per-channel activations: rank unknown here, keep QCDQ
      const r = weight.dims.length;
      if (axis < 0) axis += r;
      if (axis < 0 || axis >= r || weight.dims[axis] !== scale.data.length) continue;
      qDims = weight.dims.map((d, i) => (i === axis ? d : 1)).slice(axis);
    }
    const fScale: TensorData = { dtype: 'float32', dims: qDims, data: Float32Array.from(scale.data as ArrayLike<number>, Number) };
    const zpValues = new Float32Array(scale.data.length);
    if (zp) {
      if (zp.data.length !== 1 && zp.data.length !== scale.data.length) continue;
      for (let i = 0; i < zpValues.length; i++) zpValues[i] = Number(zp.data[zp.data.length === 1 ? 0 : i]!);
    }
    const allZero = zpValues.every((z) => z === 0);
    const fZp: TensorData = allZero ? { dtype: 'float32', dims: [], data: Float32Array.of(0) } : { dtype: 'float32', dims: qDims, data: zpValues };
    const base = dq.name.replace(/\/DequantizeLinear$/, '');
    const inputs: string[] = [];
    if (weight) {
      // Float weight = (clip(Wint) − zp)·s, what Brevitas 0.11 stores in QONNX.
      const n = weight.data.length;
      const wf = new Float32Array(n);
      const inner = perChannel ? elementCount(weight.dims.slice(axis + 1)) : 1;
      const C = scale.data.length;
      for (let i = 0; i < n; i++) {
        const c = perChannel ? Math.floor(i / inner) % C : 0;
        const v = Math.min(Math.max(Number(weight.data[i]!), lo), hi);
        wf[i] = Math.fround((v - zpValues[c]!) * Number(scale.data[c]!));
      }
      let wName = `${src}_float`;
      for (let i = 1; graph.initializers.has(wName); i++) wName = `${src}_float_${i}`;
      graph.initializers.set(wName, { dtype: 'float32', dims: [...weight.dims], data: wf });
      inputs.push(wName);
    } else {
      inputs.push((floatClip ?? qNode!).inputs[0]!);
    }
    inputs.push(
      constant(fScale, `${base}/scale`),
      constant(fZp, `${base}/zero_point`),
      constant({ dtype: 'float32', dims: [], data: Float32Array.of(q.bitWidth) }, `${base}/bit_width`),
    );
    const quantNode: Node = {
      name: `${base}/Quant`,
      opType: 'Quant',
      domain: BREVITAS_DOMAIN,
      inputs,
      outputs: [dq.outputs[0]!],
      attributes: { signed: Attr.int(q.signed ? 1 : 0), narrow: Attr.int(q.narrow ? 1 : 0), rounding_mode: Attr.string('ROUND') },
    };
    replace.set(dq, quantNode);
    if (clipNode) remove.add(clipNode);
    if (floatClip) remove.add(floatClip);
    if (qNode) remove.add(qNode);
    count++;
  }
  if (count === 0) return 0;
  const names = new Set(graph.nodes.map((n) => n.name));
  graph.nodes = graph.nodes.filter((n) => !remove.has(n)).map((n) => {
    const r = replace.get(n);
    if (!r) return n;
    let name = r.name;
    for (let i = 1; names.has(name); i++) name = `${r.name}_${i}`;
    names.add(name);
    r.name = name;
    return r;
  });
  if (opsetVersion(graph, BREVITAS_DOMAIN) === undefined && opsetVersion(graph, QONNX_DOMAIN) === undefined) {
    graph.opsetImports.push({ domain: BREVITAS_DOMAIN, version: 1 });
  }
  // A QONNX Quant in domain onnx.brevitas is what we created; if the file already used qonnx.custom_op.general, use it.
  if (opsetVersion(graph, BREVITAS_DOMAIN) === undefined) {
    for (const n of replace.values()) n.domain = QONNX_DOMAIN;
  }
  pruneUnusedInitializers(graph);
  return count;
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------------------------

/**
 * Validates an in-memory graph (from a file or from GraphBuilder): supported operators, attributes, Quant
 * parameters, defined inputs, no cycles, declared outputs produced. Reorders nodes topologically. Returns it.
 */
export function validateGraph(graph: Graph): Graph {
  if (graph.opsetImports.length > 0 && opsetVersion(graph, '') === undefined && graph.nodes.some((n) => n.domain === '')) {
    throw new OnnxFormatError('unsupported', 'the model uses default-domain operators but does not import the default opset');
  }
  const v = opsetVersion(graph, '');
  if (v !== undefined && (v < 7 || v > 23)) {
    throw new OnnxFormatError('unsupported', `default-domain opset ${v} is not supported (7 to 23)`);
  }
  for (const input of graph.inputs) {
    if (input.name === '') throw new OnnxFormatError('missing', 'a graph input has no name');
  }
  for (const node of graph.nodes) validateNode(node, graph);
  graph.nodes = topologicalOrder(graph);
  const index = new GraphIndex(graph);
  for (const out of graph.outputs) {
    if (!index.isDefined(out.name)) {
      throw new OnnxFormatError('missing', 'graph output is not produced by any node, input or initializer', { tensor: out.name });
    }
  }
  return graph;
}

function classify(graph: Graph): ImportInfo['format'] {
  const hasQuant = graph.nodes.some((n) => QUANT_DOMAINS.includes(n.domain));
  const hasQdq = graph.nodes.some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
  if (hasQuant && hasQdq) return 'mixed';
  if (hasQuant) return 'qonnx';
  if (hasQdq) return 'qcdq';
  return 'float';
}

/** Decodes, normalises and validates model bytes. Throws OnnxFormatError. */
export function importModelWithInfo(bytes: Uint8Array, opts: ImportOptions = {}): { graph: Graph; info: ImportInfo } {
  const decoded = decodeModel(bytes, opts);
  const graph = decoded.graph;
  constantsToInitializers(graph);
  upgradeOldOpset(graph);
  const format = classify(graph);
  validateGraph(graph);
  let qcdqRewritten = 0;
  if (opts.normalizeQcdq ?? true) {
    qcdqRewritten = qcdqToQonnx(graph);
    if (qcdqRewritten > 0) validateGraph(graph);
  }
  return { graph, info: { format, irVersion: decoded.irVersion, initializersAsInputs: decoded.initializersAsInputs, qcdqRewritten } };
}

/** Decodes, normalises and validates model bytes into a Graph. Throws OnnxFormatError. */
export function importModel(bytes: Uint8Array, opts: ImportOptions = {}): Graph {
  return importModelWithInfo(bytes, opts).graph;
}

/** Reads and imports an .onnx file (the size limit is checked before reading). */
export function loadOnnxFile(path: string, opts: ImportOptions = {}): Graph {
  const maxBytes = opts.maxBytes ?? DEFAULT_LIMITS.maxBytes;
  const size = statSync(path).size;
  if (size > maxBytes) throw new OnnxFormatError('size', `${path} has ${size} bytes, more than the limit of ${maxBytes}`);
  return importModel(new Uint8Array(readFileSync(path)), opts);
}
