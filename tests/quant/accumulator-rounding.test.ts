/**
 * Rounding-aware fine-tuning (src/quant/accumulator-rounding.ts): with the compiled circuit's rounding attached, the
 * QAT model computes what the rounded circuit computes; the rounding acts in training mode, leaves plain evaluation
 * alone, and passes gradients straight through.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { createCnv } from '../../src/models/cnv.js';
import { manualSeed } from '../../src/nn/init.js';
import { valueOf } from '../../src/nn/quant-tensor.js';
import { QuantConv2d, QuantLinear } from '../../src/quant/layers.js';
import { roundAccumulator } from '../../src/quant/accumulator-rounding.js';
import { attachAccumulatorRounding, detachAccumulatorRounding } from '../../src/analysis/circuit-rounding.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { Rng } from '../../src/util/rng.js';
import { fit } from '../../src/train/trainer.js';

beforeAll(async () => {
  await initBackend();
});

/** NHWC images in [−1, 1] and their NCHW copy for the circuit. */
function images(n: number, seed: number) {
  const r = new Rng(seed);
  const nhwc = Float32Array.from({ length: n * 32 * 32 * 3 }, () => r.uniform(-1, 1));
  const nchw = new Float32Array(nhwc.length);
  for (let s = 0; s < n; s++) for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) nchw[s * 3072 + c * 1024 + p] = nhwc[s * 3072 + p * 3 + c]!;
  return { nhwc, nchw, n };
}

function logits(m: ReturnType<typeof createCnv>, x: Float32Array, n: number): Float32Array {
  return tf.tidy(() => valueOf(m.call(tf.tensor4d(x, [n, 32, 32, 3]))).dataSync() as Float32Array).slice();
}

describe('accumulator rounding in the training graph', () => {
  it('rounds each channel as the circuit does: 2^k·round((a + o)/2^k) − o, round half up', () => {
    const y = tf.tensor2d([[5, 6, -6], [7, 10, -10]]); // scale 0.5: accumulators [10, 12, −12], [14, 20, −20]
    const r = roundAccumulator(y, tf.scalar(0.5), { k: Int32Array.of(2, 3, 1), offsets: Int32Array.of(0, -4, 1) });
    // ch0: 4·round(10/4 = 2.5 → 3) = 12, 4·round(3.5 → 4) = 16; ch1: 8·round(8/8) + 4 = 12, 8·round(16/8) + 4 = 20;
    // ch2: 2·round(−11/2 = −5.5 → −5) − 1 = −11, 2·round(−19/2 → −9) − 1 = −19 (all × 0.5)
    expect(Array.from(r.dataSync())).toEqual([6, 6, -5.5, 8, 10, -9.5]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(roundAccumulator(t, tf.scalar(0.5), { k: Int32Array.of(2, 3, 1), offsets: new Int32Array(3) }), tf.tensor1d([1, 2, 3]))))(y);
    expect(Array.from(g.dataSync())).toEqual([1, 2, 3, 1, 2, 3]);
  });

  it('with the circuit\'s rounding attached, the model computes the rounded circuit (and without it, it does not)', async () => {
    manualSeed(4);
    const m = createCnv('small');
    // A few steps so that BatchNorm's running statistics put the thresholds where the data are.
    const train = images(48, 1);
    const y = Int32Array.from({ length: 48 }, (_, i) => i % 10);
    await fit(m, { train: { x: train.nhwc, y, sampleShape: [32, 32, 3], numClasses: 10 } }, { epochs: 1, batchSize: 16, lr: 0.01, optimizer: 'adam', progress: 'silent', seed: 1 });
    m.eval();
    const graph = moduleToGraph(m, [32, 32, 3]);
    const calib = images(64, 2);
    const test = images(24, 3);
    const fhe = FheModel.compile(graph, { data: calib.nchw, n: calib.n }, { roundingThresholdBits: { bits: 4, perChannel: true, align: true, headroom: 0.5 } });
    const circuit = (await fhe.forward(test.nchw, test.n, { fhe: 'simulate' })).output;
    const plain = logits(m, test.nhwc, test.n);
    const set = attachAccumulatorRounding(m, fhe.circuit, { inEval: true });
    expect(set.length).toBeGreaterThanOrEqual(6);
    for (const name of set) expect(m.getModule(name) instanceof QuantConv2d || m.getModule(name) instanceof QuantLinear).toBe(true);
    const rounded = logits(m, test.nhwc, test.n);
    const step = (fhe.circuit.output.a as Float64Array).reduce((a, b) => Math.max(a, Math.abs(b)), 0);
    const near = (a: Float32Array) => a.reduce((k, v, i) => k + (Math.abs(v - circuit[i]!) <= step / 2 + 1e-4 ? 1 : 0), 0) / a.length;
    // Float BatchNorm against integer tables: a value exactly on a threshold may land either side; and the training
    // graph does not wrap values past a table's domain (the generous headroom keeps these few).
    expect(near(rounded)).toBeGreaterThan(0.95);
    expect(near(plain)).toBeLessThan(near(rounded) - 0.2);
    // Attached without inEval: evaluation is the plain model; detached: the plain model again.
    attachAccumulatorRounding(m, fhe.circuit);
    expect(Array.from(logits(m, test.nhwc, test.n))).toEqual(Array.from(plain));
    m.train();
    const trainMode = tf.tidy(() => (valueOf(m.call(tf.tensor4d(test.nhwc, [test.n, 32, 32, 3]))).dataSync() as Float32Array).slice());
    m.eval();
    detachAccumulatorRounding(m);
    m.train();
    const trainModePlain = tf.tidy(() => (valueOf(m.call(tf.tensor4d(test.nhwc, [test.n, 32, 32, 3]))).dataSync() as Float32Array).slice());
    expect(Array.from(trainMode)).not.toEqual(Array.from(trainModePlain));
    m.dispose();
  }, 120_000);

  it('refuses a circuit that does not belong to the model', () => {
    manualSeed(5);
    const m = createCnv('small');
    const other = { ops: [{ kind: 'conv', name: 'nope.1', input: 'x', output: 'a', weight: new Int32Array(0), weightDims: [16, 3, 3, 3], strides: [1, 1], pads: [0, 0, 0, 0] }, { kind: 'tlu', name: 't', input: 'a', output: 'b', roundBits: 2, channels: 16, channelStride: 1, inputBits: 4, inputSigned: true, tables: new Int32Array(0) }] };
    expect(() => attachAccumulatorRounding(m, other as never)).toThrow(/nope\.1/);
    m.dispose();
  });
});
