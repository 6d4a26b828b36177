import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { type Graph, isQuantNode } from '../../src/onnx/graph.js';
import { runGraph } from '../../src/onnx/interpret.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { deserializeCircuit, serializeCircuit } from '../../src/compiler/circuit.js';
import { manualSeed } from '../../src/nn/init.js';
import { AvgPool2d, BatchNorm2d, Flatten, Sequential } from '../../src/nn/layers.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../../src/quant/layers.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { fit } from '../../src/train/trainer.js';

beforeAll(async () => {
  await initBackend();
});

/**
 * Compares every quantizer's integers between the graph interpreter (the quantized model in clear, which equals
 * the tfjs QAT model within 1e-5 — tests/export) and the circuit simulation.
 */
function compareQuantizers(graph: Graph, model: FheModel, x: Float32Array, n: number) {
  const quantOuts = graph.nodes.filter((nd) => isQuantNode(nd) && !graph.initializers.has(nd.inputs[0]!));
  const ref = runGraph(graph, { [graph.inputs[0]!.name]: { dims: [n, ...model.inputShape], data: x } }, { keep: true });
  const sim = new Map<string, Float64Array>();
  simulate(model.circuit, quantizeInput(model.circuit, x), n, { onValue: (name, d) => sim.set(name, d) });
  let total = 0;
  let same = 0;
  const diffs: string[] = [];
  for (const q of quantOuts) {
    const circuitValue = model.compiled.nodeValues.get(q.name)!;
    const scale = Number(graph.initializers.get(q.inputs[1]!)!.data[0]);
    const refVals = ref.values.get(q.outputs[0]!)!.data;
    const simVals = sim.get(circuitValue)!;
    expect(simVals.length).toBe(refVals.length);
    for (let i = 0; i < simVals.length; i++) {
      total++;
      const r = Math.round(Number(refVals[i]) / scale);
      if (r === simVals[i]) same++;
      else if (diffs.length < 5) diffs.push(`${q.name}[${i}]: clear ${r}, simulate ${simVals[i]}`);
    }
  }
  return { total, same, diffs, refOut: ref.outputs.get(graph.outputs[0]!.name)!.data as Float32Array };
}

function argmaxAgreement(a: ArrayLike<number>, b: ArrayLike<number>, classes: number): number {
  let ok = 0;
  const n = a.length / classes;
  const am = (v: ArrayLike<number>, i: number) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (Number(v[i * classes + c]) > Number(v[i * classes + best])) best = c;
    return best;
  };
  for (let i = 0; i < n; i++) if (am(a, i) === am(b, i)) ok++;
  return ok / n;
}

describe('simulate equals the quantized model', () => {
  it('checkerboard QAT net: identical integers at every quantizer and identical argmax on the test set', async () => {
    manualSeed(0);
    const data = generateCheckerboard({ seed: 42 });
    const net = new QuantSimpleNet({ hidden: 100, bits: 3 });
    await fit(net, data, { epochs: 1, batchSize: 32, lr: 1e-3, progress: 'silent' });
    net.eval();
    const graph = moduleToGraph(net, [2]);
    const model = FheModel.compile(graph, { data: data.train.x, n: data.train.y.length });
    const { total, same, diffs, refOut } = compareQuantizers(graph, model, data.test.x, 500);
    if (diffs.length) console.log('quantizer differences (float ties):', diffs);
    console.log(`quantizer integers identical: ${same}/${total}`);
    expect(same / total).toBeGreaterThanOrEqual(0.999);
    const sim = await model.forward(data.test.x, 500, { fhe: 'simulate' });
    expect(argmaxAgreement(sim.output, refOut, 2)).toBeGreaterThanOrEqual(0.999);
    const clear = await model.forward(data.test.x, 500, { fhe: 'disable' });
    expect(Array.from(clear.output)).toEqual(Array.from(refOut as Float32Array));
    const report = model.report();
    expect(report.tluCount).toBe(200); // two hidden layers of 100 quantized activations
    expect(report.maxBitWidth).toBeGreaterThanOrEqual(report.maxTluInputBits);
  });

  it('CNN (QuantConv2d + BatchNorm + AvgPool + QuantLinear): identical integers and argmax', async () => {
    manualSeed(2);
    const net = new Sequential(
      new QuantIdentity({ bitWidth: 8 }),
      new QuantConv2d(3, 8, 3, { padding: 1, bias: false, weightBitWidth: 4 }),
      new BatchNorm2d(8),
      new QuantIdentity({ bitWidth: 4 }),
      new AvgPool2d(2),
      new QuantIdentity({ bitWidth: 4 }),
      new Flatten(),
      new QuantLinear(8 * 4 * 4, 10, { weightBitWidth: 4 }),
    );
    net.train();
    for (let i = 0; i < 4; i++) net.call(tf.randomNormal([16, 8, 8, 3], 0, 1, 'float32', 20 + i));
    const bn = net.at(2) as BatchNorm2d;
    bn.weight.assign(tf.randomUniform([8], 0.5, 1.5, 'float32', 3));
    bn.bias.assign(tf.randomUniform([8], -0.5, 0.5, 'float32', 4));
    net.eval();
    const graph = moduleToGraph(net, [8, 8, 3]);
    const nchw = (seed: number, n: number) => tf.transpose(tf.randomNormal([n, 8, 8, 3], 0, 1, 'float32', seed), [0, 3, 1, 2]).dataSync() as Float32Array;
    const model = FheModel.compile(graph, { data: nchw(5, 256), n: 256 });
    const x = nchw(6, 200);
    const { total, same, diffs, refOut } = compareQuantizers(graph, model, x, 200);
    if (diffs.length) console.log('quantizer differences (float ties):', diffs);
    console.log(`quantizer integers identical: ${same}/${total}`);
    expect(same / total).toBeGreaterThanOrEqual(0.999);
    const sim = await model.forward(x, 200, { fhe: 'simulate' });
    expect(argmaxAgreement(sim.output, refOut, 10)).toBeGreaterThanOrEqual(0.999);
    expect(Object.keys(sim.overflows ?? {})).toEqual([]);
    // the circuit survives serialization bit for bit
    const bytes = serializeCircuit(model.circuit);
    expect(Buffer.from(serializeCircuit(deserializeCircuit(bytes))).equals(Buffer.from(bytes))).toBe(true);
  });
});
