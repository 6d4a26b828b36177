import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCnv } from '../../src/models/cnv.js';
import { Sequential } from '../../src/nn/layers.js';
import { saveModule } from '../../src/nn/checkpoint.js';
import { manualSeed } from '../../src/nn/init.js';
import { valueOf } from '../../src/nn/quant-tensor.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../../src/quant/layers.js';
import { decodePackedModule, encodePackedModule, loadPackedModule, packInts, savePackedModule, unpackInts } from '../../src/quant/packed-checkpoint.js';
import { pruneL1Unstructured } from '../../src/prune/index.js';
import { initBackend } from '../../src/backend/index.js';
import { StateDictError } from '../../src/util/errors.js';
import { encodeSafetensors, decodeSafetensors } from '../../src/util/safetensors.js';

beforeAll(async () => {
  await initBackend();
});

function weightInts(m: QuantLinear | QuantConv2d): number[] {
  return tf.tidy(() => Array.from(m.quantWeight().int().dataSync()));
}

describe('packInts / unpackInts', () => {
  it('round-trips every bit width on random integers', () => {
    for (const bits of [1, 2, 3, 5, 7, 8, 11, 16]) {
      const min = -(2 ** (bits - 1));
      const vals = Array.from({ length: 1001 }, (_, i) => min + ((i * 7919) % 2 ** bits));
      const packed = packInts(vals, bits, min);
      expect(packed.length).toBe(Math.ceil((1001 * bits) / 8));
      expect(Array.from(unpackInts(packed, 1001, bits, min))).toEqual(vals);
    }
  });

  it('refuses data of the wrong length', () => {
    expect(() => unpackInts(new Uint8Array(3), 100, 2, -1)).toThrow(StateDictError);
  });
});

describe('packed checkpoints', () => {
  it('a 2-bit CNV round-trips to the same integers, outputs and a fraction of the float size', () => {
    const make = (seed: number) => (manualSeed(seed), createCnv('small'));
    const a = make(1);
    const b = make(2);
    const bytes = encodePackedModule(a, { note: 'x' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'packed-'));
    saveModule(path.join(dir, 'float.safetensors'), a);
    const floatSize = fs.statSync(path.join(dir, 'float.safetensors')).size;
    expect(bytes.length).toBeLessThan(floatSize / 8);
    const meta = decodePackedModule(bytes, b);
    expect(meta.note).toBe('x');
    const la = a.namedModules().filter(([, m]) => m instanceof QuantConv2d || m instanceof QuantLinear);
    const lb = new Map(b.namedModules());
    expect(la.length).toBeGreaterThan(5);
    for (const [n, m] of la) expect(weightInts(lb.get(n) as QuantConv2d)).toEqual(weightInts(m as QuantConv2d));
    a.eval();
    b.eval();
    const x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 5);
    const ya = tf.tidy(() => Array.from(valueOf(a.call(x)).dataSync()));
    const yb = tf.tidy(() => Array.from(valueOf(b.call(x)).dataSync()));
    expect(yb).toEqual(ya);
  });

  it('abs-max 3-bit weights with a pruning mask come back pruned and identical', () => {
    const build = (seed: number) =>
      (manualSeed(seed), new Sequential(
        new QuantIdentity({ actQuant: { bitWidth: 3, signed: true, narrow: false, scaling: 'const', maxVal: 1 } }),
        new QuantLinear(6, 5, { bias: true, weightBitWidth: 3 }),
      ));
    const a = build(3);
    pruneL1Unstructured(a, '1', 0.5);
    const b = build(4);
    pruneL1Unstructured(b, '1', 0.2);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'packed-'));
    const file = path.join(dir, 'm.safetensors');
    savePackedModule(file, a);
    loadPackedModule(file, b);
    const ia = weightInts(a.getModule('1') as QuantLinear);
    expect(ia.filter((v) => v === 0).length).toBeGreaterThanOrEqual(15);
    expect(weightInts(b.getModule('1') as QuantLinear)).toEqual(ia);
  });

  it('rejects float checkpoints, tampered integers and mismatched models with clear errors', () => {
    const a = (manualSeed(1), createCnv('small'));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'packed-'));
    saveModule(path.join(dir, 'float.safetensors'), a);
    expect(() => loadPackedModule(path.join(dir, 'float.safetensors'), a)).toThrow(/not a packed checkpoint/);
    const bytes = encodePackedModule(a);
    const { tensors, metadata } = decodeSafetensors(bytes);
    const key = [...tensors.keys()].find((k) => k.endsWith('.packed'))!;
    tensors.get(key)!.data = (tensors.get(key)!.data as Uint8Array).slice(1);
    tensors.get(key)!.shape = [tensors.get(key)!.data.length];
    expect(() => decodePackedModule(encodeSafetensors(tensors, metadata), a)).toThrow(StateDictError);
    expect(() => decodePackedModule(bytes, createCnv('full'))).toThrow(StateDictError);
  });
});
