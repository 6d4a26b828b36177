import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { Conv2d, Linear, Sequential, ReLU } from '../../src/nn/layers.js';
import { QuantLinear, QuantIdentity } from '../../src/quant/layers.js';
import { IntQuantizer } from '../../src/quant/quantizer.js';
import { loadModule, saveModule } from '../../src/nn/checkpoint.js';
import { ConfigError, ShapeError, StateDictError } from '../../src/util/errors.js';
import { SafetensorsError, decodeSafetensors, encodeSafetensors } from '../../src/util/safetensors.js';
import { fit } from '../../src/train/trainer.js';

beforeAll(async () => {
  await initBackend();
});

describe('clear errors for bad input', () => {
  it('wrong input shape names the layer and the expectation', () => {
    const net = new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2));
    expect(() => net.call(tf.zeros([2, 5]))).toThrow(ShapeError);
    expect(() => net.call(tf.zeros([2, 5]))).toThrow(/Linear '0' expects 4 input features, got shape \[2,5\]/);
    expect(() => new Conv2d(3, 4, 3).call(tf.zeros([1, 8, 8, 2]))).toThrow(/expects 3 input channels/);
    expect(() => new Conv2d(3, 4, 3).call(tf.zeros([8, 8, 3]))).toThrow(/rank-4/);
  });

  it('bit width 0 or 33 is refused', () => {
    expect(() => new QuantLinear(2, 2, { weightBitWidth: 0 })).toThrow(ConfigError);
    expect(() => new QuantIdentity({ bitWidth: 33 })).toThrow(/bit width must be an integer in \[1, 16\], got 33/);
    expect(() => new IntQuantizer({ bitWidth: 2.5, signed: true, narrow: false, scaling: 'absmax' })).toThrow(ConfigError);
    expect(() => new IntQuantizer({ bitWidth: 1, signed: true, narrow: true, scaling: 'absmax' })).toThrow(/cannot represent/);
    expect(() => new IntQuantizer({ bitWidth: 4, signed: true, narrow: false, scaling: 'const' })).toThrow(/maxVal/);
  });

  it('unknown module names list the valid ones', () => {
    const net = new Sequential(new Linear(4, 3), new ReLU());
    expect(() => net.getModule('fc9')).toThrow(/no module named 'fc9'; modules are: 0, 1/);
    expect(() => net.setModule('2', new ReLU())).toThrow(ConfigError);
  });

  it('a checkpoint with mismatched names or shapes is refused with every problem listed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-'));
    const file = path.join(dir, 'a.safetensors');
    saveModule(file, new Sequential(new Linear(4, 3)));
    expect(() => loadModule(file, new Sequential(new Linear(5, 3)))).toThrow(/'0.weight' has shape \[3,4\] but the model expects \[3,5\]/);
    expect(() => loadModule(file, new Sequential(new Linear(4, 3), new Linear(3, 1)))).toThrow(/missing key '1.weight'/);
    expect(() => loadModule(file, new Sequential(new Linear(4, 3, { bias: false })))).toThrow(StateDictError);
    const ok = new Sequential(new Linear(4, 3));
    loadModule(file, ok);
  });

  it('corrupt safetensors bytes give a SafetensorsError', () => {
    const good = encodeSafetensors(new Map([['a', { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]]));
    expect(() => decodeSafetensors(good.subarray(0, 5))).toThrow(SafetensorsError);
    expect(() => decodeSafetensors(good.subarray(0, good.length - 1))).toThrow(SafetensorsError);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 60n, true);
    expect(() => decodeSafetensors(huge)).toThrow(/header length/);
    const garbage = good.slice();
    garbage[8] = 0x78; // the header's opening brace becomes 'x'
    expect(() => decodeSafetensors(garbage)).toThrow(SafetensorsError);
  });

  it('training options and data are validated', async () => {
    const net = new Linear(2, 2);
    const d = { x: new Float32Array(4), y: new Int32Array(2), sampleShape: [2], numClasses: 2 };
    await expect(fit(net, { train: d }, { epochs: 0, batchSize: 1, lr: 1e-3 })).rejects.toThrow(/epochs must be a positive integer/);
    await expect(fit(net, { train: { ...d, y: new Int32Array(0), x: new Float32Array(0) } }, { epochs: 1, batchSize: 1, lr: 1e-3 })).rejects.toThrow(/empty/);
    await expect(fit(net, { train: { ...d, x: new Float32Array(3) } }, { epochs: 1, batchSize: 1, lr: 1e-3 })).rejects.toThrow(/do not make/);
  });
});
