/**
 * A readable report of a graph: operators, quantizers (bit width, signed, narrow, scales, integer range), shapes.
 * `fhenet inspect model.onnx` prints `inspectGraph(loadOnnxFile(path)).text`.
 */
import {
  type Dim,
  GraphIndex,
  type Graph,
  getAttrInt,
  getAttrString,
  isQuantNode,
  isBipolarQuantNode,
  type TensorData,
} from './graph.js';
import { inferShapes, quantBounds } from './interpret.js';

export { loadOnnxFile } from './import.js';

export interface QuantizerReport {
  node: string;
  /** The quantized value: a weight initializer's name, or the activation value's name. */
  input: string;
  kind: 'weight' | 'activation' | 'bias';
  bitWidth: number | null;
  signed: boolean;
  narrow: boolean;
  roundingMode: string;
  /** The scale if per tensor; per-channel scales are summarised. */
  scale: number | { channels: number; min: number; max: number } | null;
  zeroPoint: number | null;
  intRange: [number, number] | null;
  bipolar?: boolean;
}

export interface InspectReport {
  name: string;
  producer: string;
  opsets: { domain: string; version: number }[];
  inputs: { name: string; elemType: string; shape: Dim[] | null }[];
  outputs: { name: string; elemType: string; shape: Dim[] | null }[];
  /** Operator counts, 'domain::Op' for non-default domains. */
  ops: Record<string, number>;
  nodes: { name: string; op: string; inputs: string[]; outputs: string[]; outputShape: number[] | null }[];
  quantizers: QuantizerReport[];
  initializers: { count: number; parameters: number };
  /** Shapes were inferred for this batch size (null if inference failed, with the reason). */
  shapeBatch: number | null;
  shapeError?: string;
}

function summarise(t: TensorData | undefined): QuantizerReport['scale'] {
  if (!t) return null;
  if (t.data.length === 1) return Number(t.data[0]!);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < t.data.length; i++) {
    const v = Number(t.data[i]!);
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return { channels: t.data.length, min, max };
}

const fmtShape = (s: readonly (Dim | number)[] | null) => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '?');
const fmtNum = (v: number) => (Number.isInteger(v) ? String(v) : v.toPrecision(6));

/** Builds the report as JSON-ready data and as text. */
export function inspectGraph(graph: Graph, opts: { batch?: number } = {}): { json: InspectReport; text: string } {
  const index = new GraphIndex(graph);
  const batch = opts.batch ?? 1;
  let shapes: Map<string, number[]> | undefined;
  let shapeError: string | undefined;
  try {
    shapes = inferShapes(graph, batch, { maxElements: 2 ** 26 });
  } catch (e) {
    shapeError = e instanceof Error ? e.message : String(e);
  }
  const ops: Record<string, number> = {};
  for (const n of graph.nodes) {
    const key = n.domain ? `${n.domain}::${n.opType}` : n.opType;
    ops[key] = (ops[key] ?? 0) + 1;
  }
  const quantizers: QuantizerReport[] = [];
  for (const n of graph.nodes) {
    const bipolar = isBipolarQuantNode(n);
    if (!isQuantNode(n) && !bipolar) continue;
    const x = n.inputs[0]!;
    const isInit = graph.initializers.has(x);
    const consumers = index.consumersOf(n.outputs[0]!);
    // A constant feeding the bias slot (#2) of Gemm/Conv is a bias quantizer.
    const isBias = isInit && consumers.some((c) => (c.opType === 'Gemm' || c.opType === 'Conv') && c.inputs[2] === n.outputs[0]);
    const bwT = graph.initializers.get(n.inputs[3] ?? '');
    const bitWidth = bipolar ? 1 : bwT && bwT.data.length === 1 ? Number(bwT.data[0]!) : null;
    const signed = bipolar ? true : getAttrInt(n, 'signed', 1) !== 0;
    const narrow = bipolar ? false : getAttrInt(n, 'narrow', 0) !== 0;
    const zpT = graph.initializers.get(n.inputs[2] ?? '');
    const q: QuantizerReport = {
      node: n.name,
      input: x,
      kind: isBias ? 'bias' : isInit ? 'weight' : 'activation',
      bitWidth,
      signed,
      narrow,
      roundingMode: bipolar ? '-' : getAttrString(n, 'rounding_mode', 'ROUND'),
      scale: summarise(graph.initializers.get(n.inputs[1]!)),
      zeroPoint: bipolar ? 0 : zpT && zpT.data.length === 1 ? Number(zpT.data[0]!) : null,
      intRange: bipolar ? [-1, 1] : bitWidth !== null && Number.isInteger(bitWidth) ? quantBounds(bitWidth, signed, narrow) : null,
    };
    if (bipolar) q.bipolar = true;
    quantizers.push(q);
  }
  let parameters = 0;
  for (const t of graph.initializers.values()) parameters += t.data.length;
  const json: InspectReport = {
    name: graph.name,
    producer: `${graph.producerName ?? '?'} ${graph.producerVersion ?? ''}`.trim(),
    opsets: graph.opsetImports.map((o) => ({ domain: o.domain || 'ai.onnx', version: o.version })),
    inputs: graph.inputs.map((v) => ({ name: v.name, elemType: v.elemType, shape: v.shape })),
    outputs: graph.outputs.map((v) => ({ name: v.name, elemType: v.elemType, shape: v.shape })),
    ops,
    nodes: graph.nodes.map((n) => ({
      name: n.name,
      op: n.domain ? `${n.domain}::${n.opType}` : n.opType,
      inputs: [...n.inputs],
      outputs: [...n.outputs],
      outputShape: shapes?.get(n.outputs[0] ?? '') ?? null,
    })),
    quantizers,
    initializers: { count: graph.initializers.size, parameters },
    shapeBatch: shapes ? batch : null,
  };
  if (shapeError !== undefined) json.shapeError = shapeError;

  const lines: string[] = [];
  lines.push(`graph ${json.name || '(unnamed)'}  producer: ${json.producer}`);
  lines.push(`opsets: ${json.opsets.map((o) => `${o.domain} v${o.version}`).join(', ')}`);
  for (const v of json.inputs) lines.push(`input  ${v.name}: ${v.elemType} ${fmtShape(v.shape)}`);
  for (const v of json.outputs) lines.push(`output ${v.name}: ${v.elemType} ${fmtShape(v.shape)}`);
  lines.push(`ops: ${Object.entries(ops).map(([k, c]) => `${k}×${c}`).join(', ')}`);
  lines.push(`initializers: ${json.initializers.count} (${json.initializers.parameters} values)`);
  lines.push(`nodes${shapes ? ` (shapes for batch ${batch})` : shapeError ? ` (no shapes: ${shapeError})` : ''}:`);
  for (const n of json.nodes) lines.push(`  ${n.op.padEnd(22)} ${n.name}  → ${fmtShape(n.outputShape)}`);
  lines.push(`quantizers: ${quantizers.length}`);
  for (const q of quantizers) {
    const scale =
      q.scale === null ? '?' : typeof q.scale === 'number' ? fmtNum(q.scale) : `per-channel ×${q.scale.channels} [${fmtNum(q.scale.min)}, ${fmtNum(q.scale.max)}]`;
    const range = q.intRange ? `[${q.intRange[0]}, ${q.intRange[1]}]` : '?';
    const kind = q.bipolar ? 'bipolar' : `${q.bitWidth ?? '?'}-bit ${q.signed ? 'signed' : 'unsigned'}${q.narrow ? ' narrow' : ''}`;
    lines.push(`  ${q.kind.padEnd(10)} ${kind.padEnd(22)} scale ${scale}  zp ${q.zeroPoint ?? '?'}  ints ${range}  ${q.input}`);
  }
  return { json, text: lines.join('\n') };
}
