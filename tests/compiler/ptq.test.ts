import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { isQuantNode } from '../../src/onnx/graph.js';
import { quantizeFloatGraph } from '../../src/compiler/ptq.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { compareModes } from '../../src/compiler/compare.js';
import { manualSeed } from '../../src/nn/init.js';
import { SimpleNet } from '../../src/models/checkerboard.js';
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
});
