/**
 * Post-training quantization of a float ONNX graph — the reference's `compile_torch_model` / `compile_onnx_model`
 * path for networks trained without QAT. Quant nodes are inserted where the circuit needs integers:
 * - every weight of Gemm / MatMul / Conv: per-tensor, symmetric, narrow range, scale = max|w| / (2^(b−1) − 1);
 * - the data input of every operation that consumes encrypted values linearly or as an index map (Gemm, MatMul,
 *   Conv, AveragePool, Flatten, Reshape, Transpose, Pad, and Add of two encrypted values) unless it already comes from
 *   a Quant node: per-tensor, zero-point 0, calibrated on the data — unsigned when the calibrated minimum is ≥ 0
 *   (after a ReLU), else signed; scale = max|v| / threshold.
 * Everything univariate between those quantizers (bias, ReLU, BatchNorm…) then fuses into table lookups as usual.
 */
import { BREVITAS_DOMAIN, type Graph, type Node, cloneGraph, constantInterner, floatTensor, isQuantNode, Attr } from '../onnx/graph.js';
import { runGraph } from '../onnx/interpret.js';
import type { Calibration } from './compile.js';
import { CompileError } from './errors.js';

export interface PtqOptions {
  /** Bits for weights, activations and the model input (a number sets all three). */
  nBits: number | { weights: number; activations: number; inputs?: number };
}

const CONSUMERS = new Set(['Gemm', 'MatMul', 'Conv', 'AveragePool', 'Flatten', 'Reshape', 'Transpose', 'Pad']);
const WEIGHTED = new Set(['Gemm', 'MatMul', 'Conv']);

export function hasQuantizers(graph: Graph): boolean {
  return graph.nodes.some(isQuantNode);
}

export function quantizeFloatGraph(graph: Graph, calib: Calibration, opts: PtqOptions): Graph {
  const bits = typeof opts.nBits === 'number' ? { weights: opts.nBits, activations: opts.nBits, inputs: opts.nBits } : { inputs: opts.nBits.activations, ...opts.nBits };
  for (const [k, b] of Object.entries(bits)) {
    if (!Number.isInteger(b) || b < 2 || b > 16) throw new CompileError('ptq', `nBits.${k} must be an integer in [2, 16], got ${b}`);
  }
  if (hasQuantizers(graph)) throw new CompileError(graph.name, 'the graph is already quantized (it has Quant nodes); post-training quantization is for float graphs');
  const g = cloneGraph(graph);
  const inName = g.inputs[0]!.name;
  const inShape = (g.inputs[0]!.shape ?? []).slice(1).map((d) => (typeof d === 'number' ? d : 0));
  // Calibration: the range of every value.
  const ranges = new Map<string, { min: number; max: number }>();
  const result = runGraph(g, { [inName]: { dims: [calib.n, ...inShape], data: Float32Array.from(calib.data) } }, { keep: true });
  for (const [name, t] of result.values) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < t.data.length; i++) {
      const v = Number(t.data[i]);
      if (v < min) min = v;
      if (v > max) max = v;
    }
    ranges.set(name, { min, max });
  }
  const producers = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producers.set(o, n);
  const out: Node[] = [];
  const quantized = new Map<string, string>();
  let counter = 0;
  const intern = constantInterner(g);
  const constant = (value: number, hint: string): string => intern(floatTensor([], [value]), `ptq_${hint}`);
  const quantNode = (x: string, scale: number, b: number, signed: boolean, narrow: boolean, name: string): string => {
    const y = `${x}_q${counter++}`;
    out.push({
      name,
      opType: 'Quant',
      domain: BREVITAS_DOMAIN,
      inputs: [x, constant(scale, 'scale'), constant(0, 'zp'), constant(b, 'bits')],
      outputs: [y],
      attributes: { narrow: Attr.int(narrow ? 1 : 0), rounding_mode: Attr.string('ROUND'), signed: Attr.int(signed ? 1 : 0) },
    });
    return y;
  };
  const activation = (v: string, consumer: string): string => {
    const done = quantized.get(v);
    if (done) return done;
    const r = ranges.get(v);
    if (!r) throw new CompileError(consumer, `no calibration range for '${v}'`);
    const signed = r.min < 0;
    const b = v === inName ? bits.inputs : bits.activations;
    const threshold = signed ? 2 ** (b - 1) : 2 ** b - 1;
    const mag = Math.max(Math.abs(r.min), Math.abs(r.max));
    const q = quantNode(v, mag > 0 ? mag / threshold : 1, b, signed, false, `${v}.ptq_quant`);
    quantized.set(v, q);
    return q;
  };
  for (const n of g.nodes) {
    const node = { ...n, inputs: [...n.inputs] };
    const isEncrypted = (v: string) => v !== '' && !g.initializers.has(v);
    if (CONSUMERS.has(n.opType) && isEncrypted(n.inputs[0]!) && !isQuantNode(producers.get(n.inputs[0]!) ?? ({} as Node))) {
      node.inputs[0] = activation(n.inputs[0]!, n.name);
    }
    if (n.opType === 'Add' && n.inputs.every(isEncrypted)) node.inputs = n.inputs.map((v) => activation(v, n.name));
    if (WEIGHTED.has(n.opType) && g.initializers.has(n.inputs[1]!)) {
      const w = g.initializers.get(n.inputs[1]!)!;
      let mag = 0;
      for (let i = 0; i < w.data.length; i++) mag = Math.max(mag, Math.abs(Number(w.data[i])));
      node.inputs[1] = quantNode(n.inputs[1]!, mag > 0 ? mag / (2 ** (bits.weights - 1) - 1) : 1, bits.weights, true, true, `${n.name}.weight_quant`);
    }
    out.push(node);
  }
  g.nodes = out;
  if (!g.opsetImports.some((o) => o.domain === BREVITAS_DOMAIN)) g.opsetImports.push({ domain: BREVITAS_DOMAIN, version: 1 });
  return g;
}
