/**
 * EncryptedCnn — a small image CNN built so that every table lookup of its FHE circuit reads at most a 5-bit
 * accumulator, which fhenet's TFHE executor runs on the 5-bit parameter sets (N = 4096; docs/tfhe.md) instead of
 * the slow 6-bit 3_3 set, and the 12–13-bit accumulators of the full CNV cannot run at all.
 *
 *   QuantIdentity(inputBits unsigned, constant scale: pixels in [0, 1] → 0 … 2^inputBits − 1)
 *   per entry c of `channels`: QuantConv2d(cin → c, k×k, stride s, no padding, no bias) → BatchNorm2d →
 *                              QuantIdentity(actBits signed narrow, constant scale 1: {−1, 0, 1} at 2 bits)
 *   Flatten → QuantLinear(→ classes, with bias)   (the circuit's output: a linear layer, no table)
 *
 * Choices, each for the accumulator width or the table-lookup (PBS) count:
 * - a low-bit input quantizer: an 8-bit pixel makes the first accumulator ≥ 8 bits for any non-zero weight;
 * - strided convolutions instead of pooling: a sum-pooling after the table would widen the next accumulator, and
 *   the stride also cuts the number of table lookups (one per output element of each convolution);
 * - constant-scale weight quantizers (required by accumulator-aware training, src/quant/a2q.ts), clamped: integer
 *   weights in [−(2^(b−1) − 1), 2^(b−1) − 1] at scale 1/(2^(b−1) − 1);
 * - weights initialised U(−1, 1) (the span of the constant grid, as in Brevitas CNV);
 * - BatchNorm and the activation quantizer fuse into each convolution's table (the compiler folds them), so the
 *   accumulator is the integer sum Σ w·x alone.
 *
 * Weights are in PyTorch layout ([out, in, kh, kw]); inputs NHWC [side, side, inChannels].
 */
import { Flatten, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { uniform } from '../nn/init.js';
import type { Activation } from '../nn/quant-tensor.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../quant/layers.js';
import type { QuantizerOptions } from '../quant/quantizer.js';
import type { Rng } from '../util/rng.js';
import { ConfigError } from '../util/errors.js';
import { FastBatchNorm2d } from './cnv.js';

export interface EncryptedCnnOptions {
  /** Output channels of the convolutions (one conv block per entry). */
  channels?: number[];
  kernel?: number;
  stride?: number;
  /** Unsigned input bits on [0, 1]. */
  inputBits?: number;
  weightBits?: number;
  /** Signed narrow activation bits (2 → {−1, 0, 1}). */
  actBits?: number;
  inChannels?: number;
  inputSize?: number;
  numClasses?: number;
  rng?: Rng;
}

/** Spatial side after the convolutions (no padding). */
export function encryptedCnnSide(inputSize: number, convs: number, kernel: number, stride: number): number {
  let s = inputSize;
  for (let i = 0; i < convs; i++) s = Math.floor((s - kernel) / stride) + 1;
  return s;
}

export class EncryptedCnn extends Module {
  readonly features: Sequential;
  readonly flatten: Flatten;
  readonly fc: QuantLinear;
  readonly opts: Required<Omit<EncryptedCnnOptions, 'rng'>>;

  constructor(opts: EncryptedCnnOptions = {}) {
    super();
    const o = {
      channels: opts.channels ?? [8, 16],
      kernel: opts.kernel ?? 3,
      stride: opts.stride ?? 2,
      inputBits: opts.inputBits ?? 2,
      weightBits: opts.weightBits ?? 3,
      actBits: opts.actBits ?? 2,
      inChannels: opts.inChannels ?? 1,
      inputSize: opts.inputSize ?? 28,
      numClasses: opts.numClasses ?? 10,
    };
    if (o.channels.length < 1) throw new ConfigError('EncryptedCnn: channels needs at least one entry');
    const side = encryptedCnnSide(o.inputSize, o.channels.length, o.kernel, o.stride);
    if (side < 1) throw new ConfigError(`EncryptedCnn: a ${o.inputSize}×${o.inputSize} input is too small for ${o.channels.length} convolutions`);
    this.opts = o;
    const rng = opts.rng;
    const weightQuant: Partial<QuantizerOptions> = { bitWidth: o.weightBits, signed: true, narrow: true, scaling: 'const', maxVal: 1, clampSte: true };
    const act = () => new QuantIdentity({ actQuant: { bitWidth: o.actBits, signed: true, narrow: true, scaling: 'const', maxVal: 1 } });
    const layers: Module[] = [
      new QuantIdentity({ actQuant: { bitWidth: o.inputBits, signed: false, narrow: false, scaling: 'const', maxVal: 1 } }),
    ];
    let cin = o.inChannels;
    for (const c of o.channels) {
      layers.push(new QuantConv2d(cin, c, o.kernel, { stride: o.stride, bias: false, weightQuant, rng }), new FastBatchNorm2d(c), act());
      cin = c;
    }
    this.features = this.addModule('features', new Sequential(...layers));
    this.flatten = this.addModule('flatten', new Flatten());
    this.fc = this.addModule('fc', new QuantLinear(cin * side * side, o.numClasses, { weightQuant, rng }));
    // Initialise every quantized weight U(−1, 1), the span of the constant weight grid (as Brevitas CNV does): the
    // default fan-in-scaled initialisation rounds a wide layer's weights to integer 0 at scale 1/(2^(b−1) − 1).
    for (const [, m] of this.namedModules()) {
      if (m instanceof QuantConv2d || m instanceof QuantLinear) {
        const u = uniform(m.weight.shape, -1, 1, rng);
        m.weight.assign(u);
        u.dispose();
      }
    }
  }

  /** Dotted names of the convolutions (the layers whose accumulators feed table lookups). */
  convNames(): string[] {
    return this.namedModules()
      .filter(([, m]) => m instanceof QuantConv2d)
      .map(([n]) => n);
  }

  /** Table lookups per image: one per output element of each convolution. */
  tableLookups(): number {
    let s = this.opts.inputSize;
    let total = 0;
    for (const c of this.opts.channels) {
      s = Math.floor((s - this.opts.kernel) / this.opts.stride) + 1;
      total += s * s * c;
    }
    return total;
  }

  forward(x: Activation): Activation {
    return this.fc.call(this.flatten.call(this.features.call(x)));
  }
}
