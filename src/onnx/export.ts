/**
 * Writing graphs as ONNX files.
 *
 * - {@link exportQonnx}: the graph as Brevitas writes it — Quant nodes in domain `onnx.brevitas` (opset 1) or
 *   `qonnx.custom_op.general` (opset 2), default domain first at opset 14, all Quant attributes, symbolic batch,
 *   producer `fhenet` + version. Concrete ML and QONNX tooling read it.
 * - {@link exportQcdq}: a graph transform to standard ONNX (QuantizeLinear / Clip / DequantizeLinear, integer
 *   weight initializers) at opset 13, or 21 when int4/int16 storage is needed; onnxruntime runs it.
 */
import { packageInfo } from '../util/package-root.js';
import {
  Attr,
  type Attribute,
  BREVITAS_DOMAIN,
  cloneGraph,
  type DType,
  elementCount,
  type Graph,
  INT_RANGE,
  isQuantNode,
  isBipolarQuantNode,
  type Node,
  QONNX_DOMAIN,
  QUANT_DOMAINS,
  type TensorData,
  allocate,
  getAttrInt,
  getAttrString,
  pruneUnusedInitializers,
  type ValueInfo,
  constantInterner,
} from './graph.js';
import { encodeModel } from './proto.js';
import { OnnxFormatError } from './errors.js';
import { inferShapes, quantBounds, roundHalfEven } from './interpret.js';
import { validateGraph } from './import.js';

let cachedVersion: string | undefined;
/** fhenet's version from package.json ('0.0.0' if it cannot be read). */
export function fhenetVersion(): string {
  if (cachedVersion === undefined) {
    try {
      cachedVersion = packageInfo().version;
    } catch {
      cachedVersion = '0.0.0';
    }
  }
  return cachedVersion;
}

export interface CommonExportOptions {
  /** Name of the symbolic batch dimension of inputs and outputs (default 'batch'); false keeps the dims as they are. */
  batchDim?: string | false;
  /** Also list initializers as graph inputs (Brevitas/torch default). Default false. */
  keepInitializersAsInputs?: boolean;
  /** Extra metadata_props. */
  metadata?: Record<string, string>;
}

export interface QonnxExportOptions extends CommonExportOptions {
  /** Domain of Quant nodes: 'onnx.brevitas' (opset 1, Brevitas ≤ 0.11 / Concrete ML; default) or 'qonnx.custom_op.general' (opset 2). */
  domain?: typeof BREVITAS_DOMAIN | typeof QONNX_DOMAIN;
  /** Allow Quant(signed=0, narrow=1), which Concrete ML rewrites (default false: refuse). */
  allowUnsignedNarrow?: boolean;
}

export interface QcdqExportOptions extends CommonExportOptions {
  /** Store ≤ 4-bit quantizers whose range is exactly int4/uint4 as int4/uint4 (opset 21). Default false. */
  int4?: boolean;
}

/** Symbolic batch on inputs and outputs; output shapes inferred when possible. */
function finishIo(graph: Graph, batchDim: string | false): void {
  let shapes: Map<string, number[]> | undefined;
  try {
    shapes = inferShapes(graph, 1, { maxElements: 2 ** 24 });
  } catch {
    shapes = undefined;
  }
  // Inferred sizes are exact only when every input dimension but the batch is fixed.
  const inputsFixed = graph.inputs.every((v) => v.shape !== null && v.shape.slice(1).every((d) => typeof d === 'number'));
  const fix = (v: ValueInfo): void => {
    const inferred = shapes?.get(v.name);
    if (inferred && (v.shape === null || v.shape.length === inferred.length)) {
      v.shape = inferred.map((d, i) => (!inputsFixed && v.shape && typeof v.shape[i] === 'string' && i !== 0 ? v.shape[i]! : d));
    }
    if (batchDim !== false && v.shape && v.shape.length > 0) v.shape[0] = batchDim;
  };
  graph.inputs.forEach(fix);
  graph.outputs.forEach(fix);
}

function stampProducer(graph: Graph, format: string, extra: Record<string, string> | undefined): void {
  graph.producerName = 'fhenet';
  graph.producerVersion = fhenetVersion();
  graph.metadata = { ...graph.metadata, 'fhenet.format': format, ...(extra ?? {}) };
}

/** The graph as it will be written by {@link exportQonnx} (a validated copy). */
export function toQonnxGraph(graph: Graph, opts: QonnxExportOptions = {}): Graph {
  const domain = opts.domain ?? BREVITAS_DOMAIN;
  if (domain !== BREVITAS_DOMAIN && domain !== QONNX_DOMAIN) throw new OnnxFormatError('export', `unknown QONNX domain '${domain}'`);
  const g = cloneGraph(graph);
  for (const n of g.nodes) {
    if (n.domain === '' || QUANT_DOMAINS.includes(n.domain)) {
      if (QUANT_DOMAINS.includes(n.domain)) n.domain = domain;
    } else {
      throw new OnnxFormatError('export', `domain '${n.domain}' cannot be written to QONNX`, { node: n.name });
    }
    if (isQuantNode(n)) {
      // Write all three attributes explicitly (QONNX docs and code disagree on defaults).
      const signed = getAttrInt(n, 'signed', 1);
      const narrow = getAttrInt(n, 'narrow', 0);
      const mode = getAttrString(n, 'rounding_mode', 'ROUND');
      if (mode !== 'ROUND') throw new OnnxFormatError('export', `rounding_mode '${mode}' cannot be exported (only ROUND)`, { node: n.name });
      if (signed === 0 && narrow === 1 && !opts.allowUnsignedNarrow) {
        throw new OnnxFormatError('export', 'Quant with signed=0, narrow=1 is rewritten by Concrete ML; use narrow=0 or pass allowUnsignedNarrow', { node: n.name });
      }
      n.attributes = { narrow: Attr.int(narrow), rounding_mode: Attr.string(mode), signed: Attr.int(signed) };
    }
  }
  const usesQuant = g.nodes.some((n) => n.domain === domain);
  g.opsetImports = [{ domain: '', version: 14 }];
  if (usesQuant) g.opsetImports.push({ domain, version: domain === BREVITAS_DOMAIN ? 1 : 2 });
  validateGraph(g);
  finishIo(g, opts.batchDim ?? 'batch');
  stampProducer(g, 'qonnx', opts.metadata);
  return g;
}

/** Graph → QONNX ModelProto bytes. */
export function exportQonnx(graph: Graph, opts: QonnxExportOptions = {}): Uint8Array {
  return encodeModel(toQonnxGraph(graph, opts), { irVersion: 7, keepInitializersAsInputs: opts.keepInitializersAsInputs ?? false });
}

// ---------------------------------------------------------------------------------------------------------------
// QONNX → QCDQ
// ---------------------------------------------------------------------------------------------------------------

/** The integer storage type for a quantizer, and whether a Clip is needed to express its range. */
function storageFor(
  node: Node,
  bits: number,
  signed: boolean,
  lo: number,
  hi: number,
  isWeight: boolean,
  int4: boolean,
): { dtype: DType; clip: boolean; floatClip: boolean } {
  const candidates: DType[] = [];
  if (int4 && bits <= 4) candidates.push(signed ? 'int4' : 'uint4');
  if (bits <= 8) candidates.push(signed ? 'int8' : 'uint8');
  else if (bits <= 16) candidates.push(signed ? 'int16' : 'uint16');
  else if (isWeight && signed) candidates.push('int32');
  for (const dtype of candidates) {
    const [a, b] = INT_RANGE[dtype]!;
    const clip = a !== lo || b !== hi;
    // onnxruntime's Clip takes no int4/int16 values. Weights are clamped when written instead; an int4 activation
    // falls back to int8 storage; an int16 activation is clipped in float before QuantizeLinear, which gives the same
    // integers because rounding is monotone and the bounds are integers.
    if (clip && !isWeight && (dtype === 'int4' || dtype === 'uint4')) continue;
    if (clip && !isWeight && (dtype === 'int16' || dtype === 'uint16')) return { dtype, clip: false, floatClip: true };
    return { dtype, clip: clip && !(isWeight && (dtype === 'int4' || dtype === 'uint4')), floatClip: false };
  }
  throw new OnnxFormatError('export', `a ${bits}-bit ${signed ? 'signed' : 'unsigned'} ${isWeight ? 'weight' : 'activation'} quantizer has no QCDQ form`, {
    node: node.name,
  });
}

/**
 * Rewrites every Quant node into standard ONNX (a new graph; the input is not modified):
 *   weight:     W (float initializer) → Quant  ⇒  Wint (integer initializer) → [Clip] → DequantizeLinear
 *   activation: X → Quant                      ⇒  X → QuantizeLinear → [Clip] → DequantizeLinear
 *   9–16-bit activation narrower than int16:  ⇒  X → Clip (float bounds) → QuantizeLinear → DequantizeLinear
 * Per-channel scales become 1-D with `axis`. Clip appears when the range is narrower than the storage type.
 */
export function toQcdqGraph(graph: Graph, opts: QcdqExportOptions = {}): Graph {
  const g = cloneGraph(graph);
  let needOpset21 = false;
  let shapes: Map<string, number[]> | undefined;
  const rankOf = (value: string, node: Node): number => {
    const init = g.initializers.get(value);
    if (init) return init.dims.length;
    if (!shapes) {
      try {
        shapes = inferShapes(graph, 1, { maxElements: 2 ** 24 });
      } catch (e) {
        throw new OnnxFormatError('export', `per-channel activation quantizer needs known shapes: ${(e as Error).message}`, { node: node.name });
      }
    }
    const s = shapes.get(value);
    if (!s) throw new OnnxFormatError('export', `shape of '${value}' is unknown`, { node: node.name });
    return s.length;
  };
  const constant = constantInterner(g);
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (isBipolarQuantNode(n)) throw new OnnxFormatError('export', 'BipolarQuant has no QCDQ equivalent', { node: n.name });
    if (QUANT_DOMAINS.includes(n.domain) && !isQuantNode(n)) throw new OnnxFormatError('export', `${n.opType} has no QCDQ equivalent`, { node: n.name });
    if (!isQuantNode(n)) {
      nodes.push(n);
      continue;
    }
    const where = { node: n.name };
    const [x, sName, zName, bName] = n.inputs as [string, string, string, string];
    const S = g.initializers.get(sName);
    const Z = g.initializers.get(zName);
    const B = g.initializers.get(bName);
    if (!S || !Z || !B) throw new OnnxFormatError('export', 'QCDQ export needs constant scale, zero point and bit width', where);
    const bits = Number(B.data[0]!);
    const signed = getAttrInt(n, 'signed', 1) !== 0;
    const narrow = getAttrInt(n, 'narrow', 0) !== 0;
    if (getAttrString(n, 'rounding_mode', 'ROUND') !== 'ROUND') throw new OnnxFormatError('export', 'only ROUND can be exported to QCDQ', where);
    const [lo, hi] = quantBounds(bits, signed, narrow);
    const W = g.initializers.get(x);
    const isWeight = W !== undefined;
    const { dtype, clip, floatClip } = storageFor(n, bits, signed, lo, hi, isWeight, opts.int4 ?? false);
    if (dtype === 'int4' || dtype === 'uint4' || dtype === 'int16' || dtype === 'uint16') needOpset21 = true;

    // Scale: scalar or one non-1 axis (per channel).
    const rank = rankOf(x, n);
    let axis: number | undefined;
    if (S.data.length > 1) {
      const nonOne = S.dims.map((d, i) => (d !== 1 ? i : -1)).filter((i) => i >= 0);
      if (nonOne.length !== 1 || S.dims.length > rank) throw new OnnxFormatError('export', `scale dims [${S.dims}] are not per-tensor or per-channel`, where);
      axis = rank - S.dims.length + nonOne[0]!;
    }
    const C = S.data.length;
    if (Z.data.length !== 1 && Z.data.length !== C) throw new OnnxFormatError('export', `zero point dims [${Z.dims}] do not match scale dims [${S.dims}]`, where);
    const zs = Array.from({ length: C }, (_, i) => Number(Z.data[Z.data.length === 1 ? 0 : i]!));
    const [tlo, thi] = INT_RANGE[dtype]!;
    if (zs.some((z) => !Number.isInteger(z) || z < tlo || z > thi)) throw new OnnxFormatError('export', `zero point must be an integer within ${dtype}`, where);
    if (dtype === 'int32' && zs.some((z) => z !== 0)) throw new OnnxFormatError('export', 'int32 storage needs zero point 0', where);
    const scaleT: TensorData = axis === undefined
      ? { dtype: 'float32', dims: [], data: Float32Array.of(Number(S.data[0]!)) }
      : { dtype: 'float32', dims: [C], data: Float32Array.from(S.data as ArrayLike<number>, Number) };
    const zpT: TensorData = { dtype, dims: axis === undefined ? [] : [C], data: allocate(dtype, axis === undefined ? 1 : C) };
    zs.forEach((z, i) => {
      if (i < zpT.data.length) (zpT.data as Int32Array)[i] = z;
    });
    const base = n.name.replace(/\/Quant$/, '');
    const sConst = constant(scaleT, `${base}/scale`);
    const zConst = constant(zpT, `${base}/zero_point`);
    const axisAttr: Record<string, Attribute> = axis === undefined ? {} : { axis: Attr.int(axis) };
    let intValue: string;
    if (isWeight) {
      // Integer weights: clamp(round(W / s + zp)) computed exactly as Quant does.
      const cnt = W.data.length;
      const ints = allocate(dtype, cnt) as Int32Array;
      const inner = axis === undefined ? 1 : elementCount(W.dims.slice(axis + 1));
      for (let i = 0; i < cnt; i++) {
        const c = axis === undefined ? 0 : Math.floor(i / inner) % C;
        const s = Number(scaleT.data[c]!);
        let q = roundHalfEven(Math.fround(Math.fround(Number(W.data[i]!) / s) + zs[c]!));
        q = Math.min(Math.max(q, lo), hi);
        ints[i] = q;
      }
      let wName = `${x}_int`;
      for (let i = 1; g.initializers.has(wName); i++) wName = `${x}_int_${i}`;
      g.initializers.set(wName, { dtype, dims: [...W.dims], data: ints });
      intValue = wName;
    } else {
      let qIn = x;
      if (floatClip) {
        // Float bounds (lo − zp)·s and (hi − zp)·s: x/s then lands within an ulp of the integer bound, so
        // QuantizeLinear rounds it onto that bound (|bound| ≤ 65535 leaves a margin of about 0.004).
        if (axis !== undefined) throw new OnnxFormatError('export', `a per-channel ${bits}-bit activation quantizer narrower than ${dtype} has no QCDQ form`, where);
        const s = Number(scaleT.data[0]!);
        const bound = (v: number): TensorData => ({ dtype: 'float32', dims: [], data: Float32Array.of((v - zs[0]!) * s) });
        qIn = `${base}/Clip_output_0`;
        nodes.push({
          name: `${base}/Clip`,
          opType: 'Clip',
          domain: '',
          inputs: [x, constant(bound(lo), `${base}/clip_min`), constant(bound(hi), `${base}/clip_max`)],
          outputs: [qIn],
          attributes: {},
        });
      }
      intValue = `${base}/QuantizeLinear_output_0`;
      nodes.push({
        name: `${base}/QuantizeLinear`,
        opType: 'QuantizeLinear',
        domain: '',
        inputs: [qIn, sConst, zConst],
        outputs: [intValue],
        attributes: { ...axisAttr },
      });
    }
    if (clip) {
      const intScalar = (v: number): TensorData => {
        const data = allocate(dtype, 1) as Int32Array;
        data[0] = v;
        return { dtype, dims: [], data };
      };
      const loT = constant(intScalar(lo), `${base}/clip_min`);
      const hiT = constant(intScalar(hi), `${base}/clip_max`);
      const clipOut = `${base}/Clip_output_0`;
      nodes.push({ name: `${base}/Clip`, opType: 'Clip', domain: '', inputs: [intValue, loT, hiT], outputs: [clipOut], attributes: {} });
      intValue = clipOut;
    }
    nodes.push({
      name: `${base}/DequantizeLinear`,
      opType: 'DequantizeLinear',
      domain: '',
      inputs: [intValue, sConst, zConst],
      outputs: [n.outputs[0]!],
      attributes: { ...axisAttr },
    });
  }
  // Attributes that opset 13 does not know yet (both only restate the default).
  for (const n of nodes) {
    if (n.opType === 'BatchNormalization' && getAttrInt(n, 'training_mode', 0) === 0) delete n.attributes.training_mode;
    if (n.opType === 'Reshape' && getAttrInt(n, 'allowzero', 0) === 0) delete n.attributes.allowzero;
  }
  g.nodes = nodes;
  pruneUnusedInitializers(g);
  g.opsetImports = [{ domain: '', version: needOpset21 ? 21 : 13 }];
  validateGraph(g);
  return g;
}

/** Graph → QCDQ ModelProto bytes (standard ONNX; onnxruntime runs it). */
export function exportQcdq(graph: Graph, opts: QcdqExportOptions = {}): Uint8Array {
  const g = toQcdqGraph(graph, opts);
  finishIo(g, opts.batchDim ?? 'batch');
  stampProducer(g, 'qcdq', opts.metadata);
  const opset = g.opsetImports[0]!.version;
  return encodeModel(g, { irVersion: opset >= 21 ? 10 : 7, keepInitializersAsInputs: opts.keepInitializersAsInputs ?? false });
}
