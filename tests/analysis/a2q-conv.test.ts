/**
 * Accumulator-aware training on QuantConv2d: budgets per output channel over in_ch × kh × kw, checked against the
 * worst accumulator a real convolution can produce (adversarial inputs built per output channel, run through
 * tf.conv2d on the integer weights), for an unsigned input (split budgets) and a signed one (L1 budget), with and
 * without stride.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { Module } from '../../src/nn/module.js';
import { Flatten, Sequential } from '../../src/nn/layers.js';
import { manualSeed, uniform } from '../../src/nn/init.js';
import type { Activation } from '../../src/nn/quant-tensor.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../../src/quant/layers.js';
import { accumulatorAware } from '../../src/quant/a2q.js';
import { EncryptedCnn } from '../../src/models/encrypted-cnn.js';

beforeAll(async () => {
  await initBackend();
});

const wq = { bitWidth: 3, signed: true, narrow: true, scaling: 'const' as const, maxVal: 1, clampSte: true };

class ConvNet extends Module {
  readonly body: Sequential;
  constructor(signedInput: boolean, stride: number) {
    super();
    const inQ = signedInput
      ? { bitWidth: 3, signed: true, narrow: true, scaling: 'const' as const, maxVal: 1 } // integers −3 … 3
      : { bitWidth: 2, signed: false, narrow: false, scaling: 'const' as const, maxVal: 1 }; // 0 … 3
    const conv = new QuantConv2d(3, 5, 3, { stride, bias: false, weightQuant: wq });
    const u = uniform(conv.weight.shape, -1, 1);
    conv.weight.assign(u);
    u.dispose();
    this.body = this.addModule('body', new Sequential(new QuantIdentity({ actQuant: inQ }), conv, new QuantIdentity({ bitWidth: 4 }), new Flatten(), new QuantLinear(5 * (stride === 1 ? 6 * 6 : 3 * 3), 2, { weightQuant: wq })));
  }
  forward(x: Activation): Activation {
    return this.body.call(x);
  }
}

/** The extreme accumulators of every output channel over all inputs in [lo, hi], by running the convolution. */
function worstConvAccumulators(conv: QuantConv2d, lo: number, hi: number): { min: number; max: number }[] {
  return tf.tidy(() => {
    const q = conv.quantWeight().int(); // [O, I, kh, kw]
    const [o, i, kh, kw] = q.shape as [number, number, number, number];
    const wHwio = tf.transpose(q, [2, 3, 1, 0]) as tf.Tensor4D;
    const qd = q.dataSync();
    const out: { min: number; max: number }[] = [];
    for (let c = 0; c < o; c++) {
      // Max: inputs at hi where the weight is positive, lo where negative; min: the other way round.
      const hiIn = new Float32Array(kh * kw * i);
      const loIn = new Float32Array(kh * kw * i);
      for (let ci = 0; ci < i; ci++) {
        for (let y = 0; y < kh; y++) {
          for (let x = 0; x < kw; x++) {
            const w = qd[((c * i + ci) * kh + y) * kw + x]!;
            hiIn[(y * kw + x) * i + ci] = w > 0 ? hi : lo;
            loIn[(y * kw + x) * i + ci] = w > 0 ? lo : hi;
          }
        }
      }
      const yHi = tf.conv2d(tf.tensor4d(hiIn, [1, kh, kw, i]), wHwio, 1, 'valid').dataSync();
      const yLo = tf.conv2d(tf.tensor4d(loIn, [1, kh, kw, i]), wHwio, 1, 'valid').dataSync();
      out.push({ min: yLo[c]!, max: yHi[c]! });
    }
    return out;
  });
}

describe('accumulator-aware training on QuantConv2d', () => {
  for (const [signedInput, stride] of [[false, 1], [true, 1], [false, 2]] as const) {
    it(`${signedInput ? 'signed' : 'unsigned'} input, stride ${stride}: every output channel's worst accumulator fits the target`, () => {
      manualSeed(7);
      const net = new ConvNet(signedInput, stride);
      const conv = net.body.getModule('1') as QuantConv2d;
      const lo = signedInput ? -3 : 0;
      const before = worstConvAccumulators(conv, lo, 3);
      expect(Math.max(...before.map((r) => r.max))).toBeGreaterThan(15); // U(−1, 1) weights overflow 5 bits
      const c = accumulatorAware(net, { targetBits: 5, sampleShape: [8, 8, 3], layers: ['body.1'] });
      expect(c.budgets[0]!.kind).toBe(signedInput ? 'l1' : 'split');
      expect(c.budgets[0]!.input).toMatchObject({ min: lo, max: 3 });
      for (const r of worstConvAccumulators(conv, lo, 3)) {
        expect(r.min).toBeGreaterThanOrEqual(-16);
        expect(r.max).toBeLessThanOrEqual(15);
      }
      expect(c.worstCaseBits()).toEqual([{ layer: 'body.1', bits: expect.any(Number) }]);
      expect(c.worstCaseBits()[0]!.bits).toBeLessThanOrEqual(5);
      // Budgets are per output channel: a channel already within budget is left exactly as it was.
      net.dispose();
    });
  }

  it('leaves channels within budget untouched and projects only the violating ones', () => {
    manualSeed(3);
    const net = new ConvNet(false, 1);
    const conv = net.body.getModule('1') as QuantConv2d;
    // Channel 0: one weight of integer 1 (Σq⁺ = 1 ≤ 5); the others keep U(−1, 1).
    const w = Float32Array.from(conv.weight.dataSync());
    const per = 3 * 3 * 3;
    w.fill(0, 0, per);
    w[4] = 1 / 3;
    const t = tf.tensor(w, conv.weight.shape);
    conv.weight.assign(t);
    t.dispose();
    const changed = accumulatorAware(net, { targetBits: 5, sampleShape: [8, 8, 3], layers: ['body.1'] }).project();
    expect(changed).toBe(0); // already projected by accumulatorAware
    const after = conv.weight.dataSync();
    for (let i = 0; i < per; i++) expect(after[i]).toBe(w[i]);
    net.dispose();
  });

  it('EncryptedCnn: a 5-bit target on its convolutions guarantees 5-bit worst cases', () => {
    manualSeed(0);
    const net = new EncryptedCnn({ channels: [4, 8] });
    const c = accumulatorAware(net, { targetBits: 5, sampleShape: [28, 28, 1], layers: net.convNames() });
    expect(c.budgets.map((b) => [b.layer, b.kind, b.budget, b.negBudget])).toEqual([
      ['features.1', 'split', 5, 5], // 2-bit unsigned pixels 0 … 3
      ['features.4', 'l1', 15, 15], // ternary activations −1 … 1
    ]);
    for (const r of c.worstCaseBits()) expect(r.bits).toBeLessThanOrEqual(5);
    const conv1 = net.getModule('features.1') as QuantConv2d;
    for (const r of worstConvAccumulators(conv1, 0, 3)) expect(r.max).toBeLessThanOrEqual(15);
    const conv2 = net.getModule('features.4') as QuantConv2d;
    for (const r of worstConvAccumulators(conv2, -1, 1)) {
      expect(r.max).toBeLessThanOrEqual(15);
      expect(r.min).toBeGreaterThanOrEqual(-16);
    }
    expect(net.tableLookups()).toBe(13 * 13 * 4 + 6 * 6 * 8);
    net.dispose();
  });
});
