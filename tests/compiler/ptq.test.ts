import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { isQuantNode } from '../../src/onnx/graph.js';
import { quantizeFloatGraph } from '../../src/compiler/graph-ptq.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { compareModes } from '../../src/compiler/compare.js';
import { manualSeed } from '../../src/nn/init.js';
import { SimpleNet } from '../../src/models/checkerboard.js';
import type { Linear } from '../../src/nn/layers.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { evaluate, fit } from '../../src/train/trainer.js';
import { head } from '../../src/train/dataset.js';

beforeAll(async () => {
  await initBackend();
});

describe('post-training quantization of a float graph', () => {
  it('8 bits keeps the float accuracy, 3 bits loses it (the reference guide\'s point), and both compile', async () => {
    manualSeed(0);
    const data = generateCheckerboard({ seed: 42 });
    const net = new SimpleNet(30);
    await fit(net, data, { epochs: 4, batchSize: 16, lr: 3e-3, progress: 'silent' });
    const floatAcc = evaluate(net, data.test).accuracy;
    const graph = moduleToGraph(net, [2]);
    expect(graph.nodes.some(isQuantNode)).toBe(false);
    const calib = head(data.train, 2000);
    const acc = async (bits: number, rounding?: number) => {
      const q = quantizeFloatGraph(graph, { data: calib.x, n: calib.y.length }, { nBits: bits });
      expect(q.nodes.filter(isQuantNode).length).toBe(6); // input, 3 weights, 2 activations
      const m = FheModel.compile(q, { data: calib.x, n: calib.y.length }, { roundingThresholdBits: rounding });
      const r = await compareModes(m, data.test.x, data.test.y, { perQuantizer: false });
      // Without rounding the circuit is exact; rounding the accumulators may move a few argmaxes.
      expect(r.simulateVsDisable).toBeGreaterThanOrEqual(rounding ? 0.97 : 0.998);
      return { r, bits: m.report().maxBitWidth };
    };
    // 8-bit PTQ of h = 30 needs 17-bit accumulators (over Concrete's 16-bit limit, like the reference): round to 10.
    expect(() => FheModel.compile(quantizeFloatGraph(graph, { data: calib.x, n: calib.y.length }, { nBits: 8 }), { data: calib.x, n: calib.y.length })).toThrow(
      /needs 1[6-9] bits .*roundingThresholdBits/,
    );
    const eight = await acc(8, 10);
    const three = await acc(3);
    expect(eight.r.accuracy.float).toBeCloseTo(floatAcc, 2);
    expect(eight.r.accuracy.simulate).toBeGreaterThanOrEqual(floatAcc - 0.03);
    expect(three.r.accuracy.simulate).toBeLessThan(eight.r.accuracy.simulate);
    expect(three.bits).toBeLessThan(eight.bits);
    void tf;
  });

  it('refuses an already quantized graph and bad bit widths', () => {
    const net = new SimpleNet(4);
    const graph = moduleToGraph(net, [2]);
    const calib = { data: new Float32Array([0, 0, 1, 1]), n: 2 };
    expect(() => quantizeFloatGraph(graph, calib, { nBits: 1 })).toThrow(/nBits.weights must be an integer in \[2, 16\]/);
    const q = quantizeFloatGraph(graph, calib, { nBits: 4 });
    expect(() => quantizeFloatGraph(q, calib, { nBits: 4 })).toThrow(/already quantized/);
  });

  it("follows Concrete ML's calibration: asymmetric input scale (max − min)/(2^b − 1), ranges from the quantized graph", () => {
    // A fixed 2 → 2 → ReLU → 2 float net.
    const net = new SimpleNet(2);
    const fc = [net.getModule('fc1'), net.getModule('fc2'), net.getModule('fc3')] as Linear[];
    fc[0]!.weight.assign(tf.tensor2d([1.5, -0.6, 0.2, 0.9], [2, 2]));
    fc[0]!.bias!.assign(tf.tensor1d([0.05, -0.1]));
    fc[1]!.weight.assign(tf.tensor2d([1, 0.4, -0.3, 0.8], [2, 2]));
    fc[1]!.bias!.assign(tf.tensor1d([0, 0.02]));
    fc[2]!.weight.assign(tf.tensor2d([1, -1, 0.3, 0.2], [2, 2]));
    fc[2]!.bias!.assign(tf.tensor1d([0, 0]));
    const graph = moduleToGraph(net, [2]);
    const xs = [[-0.03, 0.2], [1.04, 0.5], [0.33, 0.71], [0.6, 0.1], [0.9, 0.95]];
    const calib = { data: Float32Array.from(xs.flat()), n: xs.length };
    const scaleOf = (g: ReturnType<typeof quantizeFloatGraph>, i: number) => {
      const acts = g.nodes.filter((n) => isQuantNode(n) && n.name.endsWith('.ptq_quant'));
      const node = acts[i]!;
      return { scale: Number(g.initializers.get(node.inputs[1]!)!.data[0]), signed: (node.attributes.signed as { value: number }).value };
    };
    const q = quantizeFloatGraph(graph, calib, { nBits: 3 });
    const inp = scaleOf(q, 0);
    expect(inp.scale).toBeCloseTo(1.07 / 7, 6); // (max − min)/7, zero point round(0.03·7/1.07) = 0
    expect(Number(inp.signed)).toBe(0);
    // The first hidden quantizer: max of relu(fc1) on the quantized input with quantized weights.
    const s = 1.07 / 7;
    const wq = [[1.5, -0.5], [0, 1]]; // scale 0.5: 3, −1.2 → −1, 0.4 → 0, 1.8 → 2
    const rint = (v: number) => Math.round(v) - (Math.round(v) - v === 0.5 && Math.round(v) % 2 !== 0 ? 1 : 0);
    let max = 0;
    for (const [a, b] of xs) {
      const qa = Math.min(7, Math.max(0, rint(a! / s))) * s;
      const qb = Math.min(7, Math.max(0, rint(b! / s))) * s;
      max = Math.max(max, wq[0]![0]! * qa + wq[0]![1]! * qb + 0.05, wq[1]![0]! * qa + wq[1]![1]! * qb - 0.1);
    }
    expect(scaleOf(q, 1).scale).toBeCloseTo(max / 7, 6);
    const qf = quantizeFloatGraph(graph, calib, { nBits: 3, sequential: false });
    const floatMax = Math.max(...xs.flatMap(([a, b]) => [1.5 * a! - 0.6 * b! + 0.05, 0.2 * a! + 0.9 * b! - 0.1]));
    expect(scaleOf(qf, 1).scale).toBeCloseTo(floatMax / 7, 6);
  });
});
