/**
 * fhenet's in-memory ONNX graph: the single representation shared by the importer, the Module exporter, the
 * clear interpreter, the FHE compiler and the file writers.
 *
 * It mirrors ONNX's GraphProto without protobuf types: plain objects, typed arrays for tensor data, and a tagged
 * union for attributes (so that an `int` 1 and a `float` 1.0 stay distinct when written back). Quantization is
 * expressed the QONNX way — a `Quant` node (domain {@link BREVITAS_DOMAIN} or {@link QONNX_DOMAIN}) whose
 * inputs are (x, scale, zero_point, bit_width) — so that a graph built from a fhenet Module and a graph read from a
 * Brevitas file look the same. See docs/onnx.md.
 *
 * No TensorFlow.js here (nor anywhere under src/onnx): the compiler and the server use this without it.
 */
import { OnnxFormatError } from './errors.js';

// ---------------------------------------------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------------------------------------------

/** Element types fhenet handles. int4/uint4 are stored unpacked, one element per Int8Array/Uint8Array entry. */
export type DType =
  | 'float32'
  | 'float64'
  | 'int4'
  | 'uint4'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A dense, row-major tensor. `data.length` always equals the product of `dims` (1 for a scalar, dims = []). */
export interface TensorData {
  dtype: DType;
  dims: number[];
  data: TypedArray;
}

/** Integer range of each integer dtype (used for saturation and Clip bounds). */
export const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  int4: [-8, 7],
  uint4: [0, 15],
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  bool: [0, 1],
};

export function isFloatDType(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Allocates a zero-filled typed array of the right kind for `dtype`. */
export function allocate(dtype: DType, length: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
    case 'int4':
    case 'int8':
      return new Int8Array(length);
    case 'uint4':
    case 'uint8':
    case 'bool':
      return new Uint8Array(length);
    case 'int16':
      return new Int16Array(length);
    case 'uint16':
      return new Uint16Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'uint32':
      return new Uint32Array(length);
    case 'int64':
      return new BigInt64Array(length);
    case 'uint64':
      return new BigUint64Array(length);
  }
}

/** Builds a tensor of `dtype` from plain numbers (int64 values must be safe integers). */
export function tensorFrom(dtype: DType, dims: readonly number[], values: ArrayLike<number>): TensorData {
  const n = elementCount(dims);
  if (values.length !== n) {
    throw new OnnxFormatError('tensor', `${values.length} values given for dims [${dims.join(', ')}] (${n} elements)`);
  }
  const data = allocate(dtype, n);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) data[i] = BigInt(Math.trunc(values[i]!));
  } else {
    for (let i = 0; i < n; i++) data[i] = values[i]!;
  }
  return { dtype, dims: [...dims], data };
}

/** A float32 tensor (the common case). */
export function floatTensor(dims: readonly number[], values: ArrayLike<number>): TensorData {
  return tensorFrom('float32', dims, values);
}

/** A 0-d float32 tensor. */
export function scalarTensor(value: number, dtype: DType = 'float32'): TensorData {
  return tensorFrom(dtype, [], [value]);
}

/** Reads element `i` of any tensor as a JS number. */
export function elementAt(t: TensorData, i: number): number {
  return Number(t.data[i]!);
}

/** All elements as plain numbers (int64 converted with Number()). */
export function toNumbers(t: TensorData): number[] {
  const out = new Array<number>(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]!);
  return out;
}

/** If the tensor has exactly one element, its value; otherwise undefined. */
export function scalarValue(t: TensorData): number | undefined {
  return t.data.length === 1 ? Number(t.data[0]!) : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Attributes, nodes, values, graph
// ---------------------------------------------------------------------------------------------------------------

/** A node attribute, tagged with its ONNX attribute type. */
export type Attribute =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: TensorData };

/** Constructors for attributes: `{ transB: Attr.int(1), alpha: Attr.float(1) }`. */
export const Attr = {
  int: (value: number): Attribute => ({ type: 'int', value }),
  float: (value: number): Attribute => ({ type: 'float', value }),
  string: (value: string): Attribute => ({ type: 'string', value }),
  ints: (value: number[]): Attribute => ({ type: 'ints', value }),
  floats: (value: number[]): Attribute => ({ type: 'floats', value }),
  strings: (value: string[]): Attribute => ({ type: 'strings', value }),
  tensor: (value: TensorData): Attribute => ({ type: 'tensor', value }),
};

/** One operator application. An empty string in `inputs` marks an omitted optional input (ONNX convention). */
export interface Node {
  name: string;
  opType: string;
  /** '' for the default ONNX domain; e.g. 'onnx.brevitas' for QONNX Quant. */
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
}

/** A dimension: a fixed size, or a symbolic name (e.g. 'batch'), or null when unknown. */
export type Dim = number | string | null;

/** Name, element type and (optional) shape of a graph input, output or intermediate value. */
export interface ValueInfo {
  name: string;
  elemType: DType;
  /** null when the rank is unknown. */
  shape: Dim[] | null;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface Graph {
  name: string;
  /** The real inputs only (never initializers, even if the file listed them: keep_initializers_as_inputs). */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** In topological order once imported or built. */
  nodes: Node[];
  /** Constant tensors by name (weights, scales, zero points, bit widths, shapes...). */
  initializers: Map<string, TensorData>;
  /** Operator sets, default domain ('') first. */
  opsetImports: OpsetImport[];
  /** Model metadata_props (key → value). */
  metadata: Record<string, string>;
  /** Optional extra fields of the model, kept for information and round trips. */
  producerName?: string;
  producerVersion?: string;
  docString?: string;
}

/** Domains of the QONNX custom operators (Quant, BipolarQuant, Trunc). */
export const BREVITAS_DOMAIN = 'onnx.brevitas';
export const QONNX_DOMAIN = 'qonnx.custom_op.general';
export const QUANT_DOMAINS: readonly string[] = [BREVITAS_DOMAIN, QONNX_DOMAIN];

/** True for a QONNX `Quant` node in either domain. */
export function isQuantNode(node: Node): boolean {
  return node.opType === 'Quant' && QUANT_DOMAINS.includes(node.domain);
}

/** True for a QONNX `BipolarQuant` node in either domain. */
export function isBipolarQuantNode(node: Node): boolean {
  return node.opType === 'BipolarQuant' && QUANT_DOMAINS.includes(node.domain);
}

/** An empty graph with the default opset import (version 14) only. */
export function emptyGraph(name = 'graph'): Graph {
  return {
    name,
    inputs: [],
    outputs: [],
    nodes: [],
    initializers: new Map(),
    opsetImports: [{ domain: '', version: 14 }],
    metadata: {},
  };
}

/** Version of `domain` in the graph's opset imports ('' and 'ai.onnx' are the same), or undefined. */
export function opsetVersion(graph: Graph, domain: string): number | undefined {
  const norm = (d: string) => (d === 'ai.onnx' ? '' : d);
  return graph.opsetImports.find((o) => norm(o.domain) === norm(domain))?.version;
}

// ---------------------------------------------------------------------------------------------------------------
// Attribute readers (throw an OnnxFormatError naming the node when the type is wrong)
// ---------------------------------------------------------------------------------------------------------------

function attrOfType<T extends Attribute['type']>(node: Node, name: string, type: T): Extract<Attribute, { type: T }> | undefined {
  const a = node.attributes[name];
  if (a === undefined) return undefined;
  if (a.type !== type) {
    throw new OnnxFormatError('attribute', `attribute '${name}' of ${node.opType} must be ${type}, got ${a.type}`, { node: node.name });
  }
  return a as Extract<Attribute, { type: T }>;
}

export function getAttrInt(node: Node, name: string): number | undefined;
export function getAttrInt(node: Node, name: string, dflt: number): number;
export function getAttrInt(node: Node, name: string, dflt?: number): number | undefined {
  return attrOfType(node, name, 'int')?.value ?? dflt;
}
export function getAttrFloat(node: Node, name: string): number | undefined;
export function getAttrFloat(node: Node, name: string, dflt: number): number;
export function getAttrFloat(node: Node, name: string, dflt?: number): number | undefined {
  return attrOfType(node, name, 'float')?.value ?? dflt;
}
export function getAttrString(node: Node, name: string): string | undefined;
export function getAttrString(node: Node, name: string, dflt: string): string;
export function getAttrString(node: Node, name: string, dflt?: string): string | undefined {
  return attrOfType(node, name, 'string')?.value ?? dflt;
}
export function getAttrInts(node: Node, name: string): number[] | undefined;
export function getAttrInts(node: Node, name: string, dflt: number[]): number[];
export function getAttrInts(node: Node, name: string, dflt?: number[]): number[] | undefined {
  return attrOfType(node, name, 'ints')?.value ?? dflt;
}
export function getAttrFloats(node: Node, name: string): number[] | undefined {
  return attrOfType(node, name, 'floats')?.value;
}
export function getAttrTensor(node: Node, name: string): TensorData | undefined {
  return attrOfType(node, name, 'tensor')?.value;
}

// ---------------------------------------------------------------------------------------------------------------
// Structure: producers, consumers, topological order
// ---------------------------------------------------------------------------------------------------------------

/** Lookups over a graph's values. Build once (O(nodes)); rebuild after editing the graph. */
export class GraphIndex {
  /** value name → node that produces it. */
  readonly producers = new Map<string, Node>();
  /** value name → nodes that read it (each node once, in graph order). */
  readonly consumers = new Map<string, Node[]>();
  readonly inputNames: Set<string>;

  constructor(readonly graph: Graph) {
    this.inputNames = new Set(graph.inputs.map((v) => v.name));
    for (const node of graph.nodes) {
      for (const out of node.outputs) if (out !== '') this.producers.set(out, node);
      for (const inp of new Set(node.inputs)) {
        if (inp === '') continue;
        let list = this.consumers.get(inp);
        if (!list) this.consumers.set(inp, (list = []));
        list.push(node);
      }
    }
  }

  producer(value: string): Node | undefined {
    return this.producers.get(value);
  }
  consumersOf(value: string): Node[] {
    return this.consumers.get(value) ?? [];
  }
  isInitializer(value: string): boolean {
    return this.graph.initializers.has(value);
  }
  isGraphInput(value: string): boolean {
    return this.inputNames.has(value);
  }
  /** True when a value is defined by a graph input, an initializer or a node output. */
  isDefined(value: string): boolean {
    return this.inputNames.has(value) || this.graph.initializers.has(value) || this.producers.has(value);
  }
}

/** Node producing `value`, or undefined (graph input, initializer, or unknown). */
export function producerOf(graph: Graph, value: string): Node | undefined {
  return graph.nodes.find((n) => n.outputs.includes(value));
}

/** Nodes reading `value`, in graph order. */
export function consumersOf(graph: Graph, value: string): Node[] {
  return graph.nodes.filter((n) => n.inputs.includes(value));
}

/**
 * Checks that every value is defined exactly once and every node input is defined somewhere, then returns the
 * nodes in a topological order (stable: the original order wherever it is already valid).
 * Throws an OnnxFormatError naming the node for a missing input ('missing'), a value produced twice
 * ('duplicate') or a cycle ('cycle').
 */
export function topologicalOrder(graph: Graph): Node[] {
  const available = new Set<string>([...graph.inputs.map((v) => v.name), ...graph.initializers.keys()]);
  const producers = new Map<string, Node>();
  for (const node of graph.nodes) {
    for (const out of node.outputs) {
      if (out === '') continue;
      if (producers.has(out) || available.has(out)) {
        const what = producers.has(out) ? `node '${producers.get(out)!.name}'` : 'a graph input or initializer';
        throw new OnnxFormatError('duplicate', `output '${out}' is already produced by ${what}`, { node: node.name, tensor: out });
      }
      producers.set(out, node);
    }
  }
  for (const node of graph.nodes) {
    for (const inp of node.inputs) {
      if (inp !== '' && !available.has(inp) && !producers.has(inp)) {
        throw new OnnxFormatError(
          'missing',
          `${node.opType} input '${inp}' is not a graph input, an initializer or any node's output`,
          { node: node.name, tensor: inp },
        );
      }
    }
  }
  // Kahn's algorithm; `pending[i]` counts the inputs of node i not yet available.
  const nodes = graph.nodes;
  const pending = new Array<number>(nodes.length).fill(0);
  const waiting = new Map<string, number[]>();
  nodes.forEach((node, i) => {
    for (const inp of new Set(node.inputs)) {
      if (inp === '' || available.has(inp)) continue;
      pending[i]!++;
      let w = waiting.get(inp);
      if (!w) waiting.set(inp, (w = []));
      w.push(i);
    }
  });
  const order: Node[] = [];
  // A simple sorted ready-list keeps the original order when possible (graphs are small; O(n^2) worst case is fine
  // up to tens of thousands of nodes, and ready sets are normally tiny).
  const ready: number[] = [];
  nodes.forEach((_, i) => {
    if (pending[i] === 0) ready.push(i);
  });
  while (ready.length > 0) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    const node = nodes[i]!;
    order.push(node);
    for (const out of node.outputs) {
      for (const j of waiting.get(out) ?? []) {
        if (--pending[j]! === 0) ready.push(j);
      }
      waiting.delete(out);
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.filter((_, i) => pending[i]! > 0);
    const names = stuck.slice(0, 5).map((n) => `'${n.name}' (${n.opType})`);
    throw new OnnxFormatError(
      'cycle',
      `the graph has a cycle through ${stuck.length} node(s): ${names.join(', ')}${stuck.length > 5 ? ', ...' : ''}`,
      { node: stuck[0]!.name },
    );
  }
  return order;
}

/** A deep copy (tensor data copied too), so that transforms can edit freely. */
export function cloneGraph(graph: Graph): Graph {
  const cloneTensor = (t: TensorData): TensorData => ({ dtype: t.dtype, dims: [...t.dims], data: t.data.slice() });
  const cloneAttr = (a: Attribute): Attribute => {
    switch (a.type) {
      case 'ints':
      case 'floats':
        return { type: a.type, value: [...a.value] };
      case 'strings':
        return { type: 'strings', value: [...a.value] };
      case 'tensor':
        return { type: 'tensor', value: cloneTensor(a.value) };
      default:
        return { ...a };
    }
  };
  const cloneVI = (v: ValueInfo): ValueInfo => ({ name: v.name, elemType: v.elemType, shape: v.shape ? [...v.shape] : null });
  const g: Graph = {
    name: graph.name,
    inputs: graph.inputs.map(cloneVI),
    outputs: graph.outputs.map(cloneVI),
    nodes: graph.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      inputs: [...n.inputs],
      outputs: [...n.outputs],
      attributes: Object.fromEntries(Object.entries(n.attributes).map(([k, a]) => [k, cloneAttr(a)])),
    })),
    initializers: new Map([...graph.initializers].map(([k, t]) => [k, cloneTensor(t)])),
    opsetImports: graph.opsetImports.map((o) => ({ ...o })),
    metadata: { ...graph.metadata },
  };
  if (graph.producerName !== undefined) g.producerName = graph.producerName;
  if (graph.producerVersion !== undefined) g.producerVersion = graph.producerVersion;
  if (graph.docString !== undefined) g.docString = graph.docString;
  return g;
}

/** Removes initializers that no node reads and that are not graph outputs. Returns the graph. */
export function pruneUnusedInitializers(graph: Graph): Graph {
  const used = new Set<string>(graph.outputs.map((o) => o.name));
  for (const n of graph.nodes) for (const i of n.inputs) used.add(i);
  for (const name of [...graph.initializers.keys()]) if (!used.has(name)) graph.initializers.delete(name);
  return graph;
}

/**
 * A function that adds constant tensors as initializers of `graph`, returning the existing name when an equal
 * constant (same dtype, dims and values) was already added through it, else a fresh name derived from `hint`.
 */
export function constantInterner(graph: Graph): (t: TensorData, hint: string) => string {
  const cache = new Map<string, string>();
  return (t, hint) => {
    const key = `${t.dtype}|${t.dims.join(',')}|${Array.from(t.data as ArrayLike<number>, Number).join(',')}`;
    const hit = cache.get(key);
    if (hit) return hit;
    let name = hint;
    for (let i = 1; graph.initializers.has(name); i++) name = `${hint}_${i}`;
    graph.initializers.set(name, t);
    cache.set(key, name);
    return name;
  };
}
