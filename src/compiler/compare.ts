/**
 * Accuracy drift, explained: runs a labelled data set through the float network (every quantizer bypassed), the
 * quantized network in clear ('disable') and the circuit ('simulate'), then bypasses one quantizer at a time to
 * find which node's quantization costs the most accuracy — the question Concrete ML users are left to answer alone.
 */
import { type Graph, type Node, isQuantNode } from '../onnx/graph.js';
import { runGraph } from '../onnx/interpret.js';
import type { FheModel } from './fhe-model.js';

export interface CompareResult {
  n: number;
  accuracy: { float: number; disable: number; simulate: number };
  /** Agreement of simulate's argmax with disable's. */
  simulateVsDisable: number;
  /** Per activation/weight quantizer: accuracy with only that quantizer bypassed, and the gain over 'disable'. */
  quantizers: { node: string; kind: 'activation' | 'weight' | 'input'; accuracyWithout: number; gain: number }[];
}

function bypass(graph: Graph, which: (n: Node) => boolean): Graph {
  return {
    ...graph,
    nodes: graph.nodes.map((n) => (isQuantNode(n) && which(n) ? { ...n, opType: 'Identity', domain: '', inputs: [n.inputs[0]!], attributes: {} } : n)),
  };
}

/** Fraction of rows whose largest logit is the label's. */
export function accuracy(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (Number(logits[i * classes + c]) > Number(logits[i * classes + best])) best = c;
    if (best === labels[i]) ok++;
  }
  return ok / labels.length;
}

export async function compareModes(model: FheModel, x: Float32Array, labels: ArrayLike<number>, opts: { perQuantizer?: boolean } = {}): Promise<CompareResult> {
  const n = labels.length;
  const graph = model.graph;
  const inName = graph.inputs[0]!.name;
  const outName = graph.outputs[0]!.name;
  const feeds = { [inName]: { dims: [n, ...model.inputShape], data: x } };
  const run = (g: Graph) => Float64Array.from(runGraph(g, feeds).outputs.get(outName)!.data as ArrayLike<number>);
  const disable = run(graph);
  const classes = disable.length / n;
  const sim = await model.forward(x, n, { fhe: 'simulate' });
  let agree = 0;
  const simArgmax = (i: number, v: ArrayLike<number>) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (Number(v[i * classes + c]) > Number(v[i * classes + best])) best = c;
    return best;
  };
  for (let i = 0; i < n; i++) if (simArgmax(i, sim.output) === simArgmax(i, disable)) agree++;
  const accDisable = accuracy(disable, labels, classes);
  const result: CompareResult = {
    n,
    accuracy: { float: accuracy(run(bypass(graph, () => true)), labels, classes), disable: accDisable, simulate: accuracy(sim.output, labels, classes) },
    simulateVsDisable: agree / n,
    quantizers: [],
  };
  if (opts.perQuantizer !== false) {
    for (const q of graph.nodes.filter(isQuantNode)) {
      const kind = graph.initializers.has(q.inputs[0]!) ? 'weight' : q.inputs[0] === inName ? 'input' : 'activation';
      const acc = accuracy(run(bypass(graph, (m) => m === q)), labels, classes);
      result.quantizers.push({ node: q.name, kind, accuracyWithout: acc, gain: acc - accDisable });
    }
    result.quantizers.sort((a, b) => b.gain - a.gain);
  }
  return result;
}

export function formatCompare(r: CompareResult): string {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const lines = [
    `samples: ${r.n}`,
    `accuracy  float ${pct(r.accuracy.float)}   disable (quantized, clear) ${pct(r.accuracy.disable)}   simulate (circuit) ${pct(r.accuracy.simulate)}`,
    `simulate agrees with disable on ${pct(r.simulateVsDisable)} of argmaxes`,
  ];
  if (r.accuracy.float < r.accuracy.disable) {
    lines.push(
      `float is below disable: 'float' bypasses every quantizer of a network that was trained with them (QAT), which gives a network it was never ` +
        `trained as (unclipped activations, unrounded inputs) — not an upper bound here; disable vs simulate is the comparison that matters`,
    );
  }
  if (r.quantizers.length) {
    lines.push('quantizers by the accuracy their quantization costs (cost = accuracy with only this one bypassed − disable; a negative cost means the net relies on it, usual after QAT):');
    for (const q of r.quantizers) {
      lines.push(`  ${q.node.padEnd(28)} ${q.kind.padEnd(11)} bypassed ${pct(q.accuracyWithout).padStart(7)}   cost ${q.gain >= 0 ? '+' : ''}${(100 * q.gain).toFixed(2)} points`);
    }
  }
  return lines.join('\n');
}
