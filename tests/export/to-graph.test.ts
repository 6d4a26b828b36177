import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { runGraph } from '../../src/onnx/interpret.js';
import { isQuantNode } from '../../src/onnx/graph.js';
import { manualSeed } from '../../src/nn/init.js';
import { AvgPool2d, BatchNorm2d, Flatten, Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import { type Activation, valueOf } from '../../src/nn/quant-tensor.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../../src/quant/layers.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { smallCnn } from './models.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { fit } from '../../src/train/trainer.js';
import { head } from '../../src/train/dataset.js';

beforeAll(async () => {
  await initBackend();
});

function nhwcToNchw(x: tf.Tensor): Float32Array {
  return tf.transpose(x, [0, 3, 1, 2]).dataSync() as Float32Array;
}

describe('Module → QONNX graph', () => {
  it('the trained checkerboard net exports to the Brevitas node sequence and runs identically', async () => {
    manualSeed(0);
    const data = generateCheckerboard({ seed: 42 });
    const model = new QuantSimpleNet({ hidden: 100, bits: 3 });
    await fit(model, { train: head(data.train, 2000) }, { epochs: 1, batchSize: 32, lr: 1e-3, progress: 'silent' });
    model.eval();
    const graph = moduleToGraph(model, [2]);
    const ops = graph.nodes.map((n) => (isQuantNode(n) ? 'Quant' : n.opType));
    expect(ops).toEqual(['Quant', 'Quant', 'Gemm', 'Relu', 'Quant', 'Quant', 'Gemm', 'Relu', 'Quant', 'Quant', 'Gemm', 'Identity']);
    expect(graph.inputs[0]!.shape).toEqual(['batch', 2]);
    const x = tf.tensor2d(data.test.x, [500, 2]);
    const want = valueOf(model.call(x)).dataSync();
    const got = runGraph(graph, { x: { dims: [500, 2], data: data.test.x } }).outputs.get('y')!.data;
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i]! - Number(got[i])));
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
  });

  it('a CNN with BatchNorm, average pooling and Flatten exports NCHW and matches fhenet within 1e-5', () => {
    manualSeed(1);
    const model = smallCnn();
    model.train();
    for (let i = 0; i < 3; i++) model.call(tf.randomNormal([8, 8, 8, 3], 0, 1, 'float32', 10 + i));
    const bn = model.at(2) as BatchNorm2d;
    bn.weight.assign(tf.randomUniform([4], 0.5, 1.5, 'float32', 3));
    bn.bias.assign(tf.randomUniform([4], -0.5, 0.5, 'float32', 4));
    model.eval();
    const graph = moduleToGraph(model, [8, 8, 3]);
    expect(graph.inputs[0]!.shape).toEqual(['batch', 3, 8, 8]);
    const ops = graph.nodes.map((n) => (isQuantNode(n) ? 'Quant' : n.opType));
    expect(ops).toEqual(['Quant', 'Quant', 'Conv', 'BatchNormalization', 'Quant', 'AveragePool', 'Quant', 'Flatten', 'Quant', 'Gemm', 'Identity']);
    const x = tf.randomNormal([5, 8, 8, 3], 0, 1, 'float32', 7);
    const want = valueOf(model.call(x)).dataSync();
    const got = runGraph(graph, { x: { dims: [5, 3, 8, 8], data: nhwcToNchw(x) } }).outputs.get('y')!.data;
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i]! - Number(got[i])));
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
  });

  it('float layers export too (Gemm, Relu)', () => {
    const model = new Sequential(new Linear(3, 4), new ReLU(), new Linear(4, 2));
    const graph = moduleToGraph(model, [3]);
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Gemm', 'Relu', 'Gemm', 'Identity']);
  });

  it('operations outside modules are reported, not dropped', () => {
    class Bad extends Module {
      readonly a = this.addModule('a', new Linear(2, 2));
      readonly b = this.addModule('b', new Linear(2, 2));
      forward(x: Activation): Activation {
        return this.b.call(tf.mul(valueOf(this.a.call(x)), 2));
      }
    }
    expect(() => moduleToGraph(new Bad(), [2])).toThrow(/module 'b' consumes a tensor that no exported module produced/);
  });
});
