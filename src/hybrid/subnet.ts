/**
 * Builds the quantized sub-network a remote module becomes, exported through the one road (moduleToGraph).
 *
 *   input quantizer → the module → output quantizer
 *
 * - Input quantizer: when the module receives a QuantTensor (a QAT network), a constant quantizer with exactly that
 *   tensor's scale, width and sign, so the integers the client encrypts are the ones the QAT model computes with.
 *   When it receives floats, a quantizer calibrated on the captured inputs (`nBits`).
 * - A float module (any Linear/Conv2d that is not a QuantLinear/QuantConv2d) is post-training quantized with
 *   src/ptq/module-ptq.ts (per-tensor n-bit weights, calibrated input quantizer); QAT modules keep their quantizers.
 * - Output quantizer: unless the module already ends with a quantizer, one calibrated on the module's outputs
 *   (`outputBits`). The bias add and this quantizer fuse into the circuit's last table lookup, so the remote output
 *   is a bootstrapped value, never the bare linear accumulator (docs/hybrid.md, "Model IP").
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Linear, WeightedLayer } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { QuantTensor, valueOf } from '../nn/quant-tensor.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../quant/layers.js';
import { QuantChain, calibratedActQuant, quantizePostTraining } from '../ptq/module-ptq.js';
import { threshold } from '../quant/int-range.js';
import { ConfigError } from '../util/errors.js';

export interface InputQuantMeta {
  scale: number;
  bitWidth: number;
  signed: boolean;
  narrow: boolean;
}

export function isFloatModule(m: Module): boolean {
  return m.namedModules().some(([, x]) => x instanceof WeightedLayer && (x instanceof Linear || x instanceof Conv2d) && !(x instanceof QuantLinear || x instanceof QuantConv2d));
}

function minMax(a: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

export interface SubnetOptions {
  nBits: number;
  outputBits: number;
  /** Append an output quantizer when the module does not end with one (default true). */
  outputQuant?: boolean;
}

export function buildSubnet(name: string, module: Module, x: Float32Array, n: number, sampleShape: number[], inQuant: InputQuantMeta | undefined, opts: SubnetOptions): QuantChain {
  let entries: [string, Module][];
  if (isFloatModule(module)) {
    const ds = { x, y: new Int32Array(n), sampleShape, numClasses: 1 };
    try {
      entries = quantizePostTraining(new QuantChain([['m', module]]), ds, { bits: opts.nBits }).namedChildren();
    } catch (e) {
      throw new ConfigError(`remote module '${name}': post-training quantization failed: ${(e as Error).message}`);
    }
  } else {
    let q: QuantIdentity;
    if (inQuant) {
      const t = threshold(inQuant);
      q = new QuantIdentity({ actQuant: { bitWidth: inQuant.bitWidth, signed: inQuant.signed, narrow: inQuant.narrow, scaling: 'const', maxVal: inQuant.scale * t } });
    } else {
      const [lo, hi] = minMax(x);
      q = new QuantIdentity({ actQuant: calibratedActQuant(lo, hi, opts.nBits) });
    }
    entries = [['input_quant', q], ['m', module]];
  }
  let chain = new QuantChain(entries).eval();
  const probe = tf.tidy(() => {
    const y = chain.call(tf.tensor(x, [n, ...sampleShape]));
    const v = valueOf(y);
    return { quantized: y instanceof QuantTensor, min: tf.min(v).dataSync()[0]!, max: tf.max(v).dataSync()[0]! };
  });
  if (!probe.quantized && opts.outputQuant !== false) {
    chain = new QuantChain([...chain.namedChildren(), ['output_quant', new QuantIdentity({ actQuant: calibratedActQuant(probe.min, probe.max, opts.outputBits) })]]).eval();
  }
  return chain;
}
