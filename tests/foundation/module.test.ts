import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import type { Activation } from '../../src/nn/quant-tensor.js';
import { manualSeed } from '../../src/nn/init.js';
import { loadModule, saveModule } from '../../src/nn/checkpoint.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../../src/quant/layers.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { decodeSafetensors } from '../../src/util/safetensors.js';

beforeAll(async () => {
  await initBackend();
});

class Net extends Module {
  readonly seq = this.addModule('seq', new Sequential(new Linear(10, 10), new ReLU(), new Linear(10, 10)));
  readonly fc2 = this.addModule('fc2', new Linear(10, 2));
  forward(x: Activation): Activation {
    return this.fc2.call(this.seq.call(x));
  }
}

describe('Module', () => {
  it('names modules, parameters and buffers the PyTorch way', () => {
    const net = new Net();
    expect(net.namedModules().map(([n]) => n)).toEqual(['', 'seq', 'seq.0', 'seq.1', 'seq.2', 'fc2']);
    expect(net.namedParameters().map(([n]) => n)).toEqual(['seq.0.weight', 'seq.0.bias', 'seq.2.weight', 'seq.2.bias', 'fc2.weight', 'fc2.bias']);
    expect(net.getModule('seq.2')).toBeInstanceOf(Linear);
    expect(net.getModule('seq.2').path()).toBe('seq.2');
    const bn = new BatchNorm1d(3);
    expect([...bn.stateDict().keys()]).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
  });

  it('train()/eval() propagate to every child', () => {
    const net = new Net().eval();
    expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
    net.train();
    expect(net.getModule('seq.1').training).toBe(true);
  });

  it('setModule swaps a layer by dotted name', () => {
    const net = new Net();
    const replacement = new Linear(10, 10);
    net.setModule('seq.0', replacement);
    expect(net.getModule('seq.0')).toBe(replacement);
    expect(replacement.path()).toBe('seq.0');
  });

  it('same seed gives the same weights; a different seed does not', () => {
    manualSeed(7);
    const a = new QuantSimpleNet({ hidden: 16 }).fc2.weight.dataSync();
    manualSeed(7);
    const b = new QuantSimpleNet({ hidden: 16 }).fc2.weight.dataSync();
    manualSeed(8);
    const c = new QuantSimpleNet({ hidden: 16 }).fc2.weight.dataSync();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  it('round-trips a QAT model through .safetensors, buffers included', () => {
    manualSeed(1);
    const q = new QuantIdentity({ bitWidth: 4 });
    const net = new Sequential(q, new QuantLinear(3, 4, { weightBitWidth: 4 }), new BatchNorm1d(4));
    net.train();
    net.call(tf.randomNormal([8, 3], 0, 1, 'float32', 1)); // moves quantizer and BN statistics
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-'));
    const file = path.join(dir, 'm.safetensors');
    saveModule(file, net, { note: 'test' });
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(fs.readFileSync(file)));
    expect(metadata.note).toBe('test');
    expect([...tensors.keys()]).toContain('0.act_quant.stat');
    expect([...tensors.keys()]).toContain('2.running_var');
    manualSeed(2);
    const other = new Sequential(new QuantIdentity({ bitWidth: 4 }), new QuantLinear(3, 4, { weightBitWidth: 4 }), new BatchNorm1d(4));
    loadModule(file, other);
    net.eval();
    other.eval();
    const x = tf.randomNormal([5, 3], 0, 1, 'float32', 3);
    expect(Array.from((other.call(x) as tf.Tensor).dataSync())).toEqual(Array.from((net.call(x) as tf.Tensor).dataSync()));
    // The safetensors header is the standard layout: u64 length, then JSON.
    const bytes = fs.readFileSync(file);
    const len = Number(bytes.readBigUInt64LE(0));
    expect(JSON.parse(bytes.subarray(8, 8 + len).toString()).__metadata__.note).toBe('test');
  });
});

describe('layers', () => {
  it('Conv2d (NHWC input, OIHW weight) matches a direct convolution', () => {
    const conv = new Conv2d(2, 3, 3, { padding: 1, stride: 2 });
    const x = tf.randomNormal([1, 5, 5, 2], 0, 1, 'float32', 4);
    const y = conv.call(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 3, 3, 3]);
    const xv = x.arraySync() as number[][][][];
    const w = conv.weight.arraySync() as number[][][][];
    const b = conv.bias!.dataSync();
    const yv = y.arraySync() as number[][][][];
    for (let oy = 0; oy < 3; oy++) {
      for (let ox = 0; ox < 3; ox++) {
        for (let o = 0; o < 3; o++) {
          let acc = b[o]!;
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const iy = oy * 2 + ky - 1;
              const ix = ox * 2 + kx - 1;
              if (iy < 0 || ix < 0 || iy >= 5 || ix >= 5) continue;
              for (let c = 0; c < 2; c++) acc += xv[0]![iy]![ix]![c]! * w[o]![c]![ky]![kx]!;
            }
          }
          expect(yv[0]![oy]![ox]![o]).toBeCloseTo(acc, 4);
        }
      }
    }
  });

  it('BatchNorm2d: batch statistics in training, running statistics (unbiased variance, momentum 0.1) in eval', () => {
    const bn = new BatchNorm2d(2);
    const x = tf.tensor4d([1, 10, 3, 20, 5, 30, 7, 40], [1, 2, 2, 2]);
    const y = (bn.call(x) as tf.Tensor).arraySync() as number[][][][];
    // channel 0 values 1,3,5,7: mean 4, biased var 5
    expect(y[0]![0]![0]![0]).toBeCloseTo((1 - 4) / Math.sqrt(5 + 1e-5), 4);
    expect(Array.from(bn.runningMean.dataSync())).toEqual([0.4, 2.5].map(Math.fround));
    expect(bn.runningVar.dataSync()[0]).toBeCloseTo(0.9 + 0.1 * (20 / 3), 5);
    bn.eval();
    const z = (bn.call(x) as tf.Tensor).arraySync() as number[][][][];
    expect(z[0]![0]![0]![0]).toBeCloseTo((1 - 0.4) / Math.sqrt(0.9 + 0.1 * (20 / 3) + 1e-5), 4);
  });

  it('AvgPool2d and Flatten', () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const p = new AvgPool2d(2).call(x) as tf.Tensor;
    expect(Array.from(p.dataSync())).toEqual([4, 5]);
    expect((new Flatten().call(x) as tf.Tensor).shape).toEqual([1, 8]);
  });

  it('QuantConv2d quantizes weights per channel and trains end to end', () => {
    const conv = new QuantConv2d(3, 4, 3, { padding: 1, weightBitWidth: 4, weightQuant: { perChannel: true } });
    const w = conv.quantWeight();
    expect(w.scale.shape).toEqual([4, 1, 1, 1]);
    const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 5);
    const { grads } = tf.variableGrads(() => tf.sum(conv.call(x) as tf.Tensor) as tf.Scalar, conv.parameters());
    expect(grads[conv.weight.name]!.shape).toEqual([4, 3, 3, 3]);
  });
});
