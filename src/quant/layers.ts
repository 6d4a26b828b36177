/**
 * QAT layers with Brevitas semantics and Brevitas-style options:
 * - QuantIdentity: an activation quantizer (default Int8ActPerTensorFloat: signed, 8 bits, learned scale).
 * - QuantReLU: ReLU then an unsigned activation quantizer (default Uint8ActPerTensorFloat).
 * - QuantLinear / QuantConv2d: the weight goes through a weight quantizer (default Int8WeightPerTensorFloat:
 *   signed narrow, abs-max scale every call); bias float unless `biasBitWidth` is given (then quantized with scale
 *   s_in·s_w, which needs a quantized input); optional input/output quantizers (off by default, as in Brevitas).
 * Overrides are partial quantizer options: `weightQuant`, `actQuant`, `inputQuant`, `outputQuant`, plus the
 * shorthands `weightBitWidth` and `bitWidth`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, type Conv2dOptions, Linear, type WeightedLayer, conv2d, linear } from '../nn/layers.js';
import { Module, expectShape } from '../nn/module.js';
import { type Activation, QuantTensor, isQuantTensor, valueOf } from '../nn/quant-tensor.js';
import type { Rng } from '../util/rng.js';
import { ConfigError } from '../util/errors.js';
import { checkBitWidth } from './int-range.js';
import { INT8_ACT, INT8_WEIGHT, IntQuantizer, type QuantizerOptions, UINT8_ACT } from './quantizer.js';
import { roundSte } from './ste.js';
import { type AccumulatorRounding, roundAccumulator } from './accumulator-rounding.js';

export type QuantOverride = Partial<QuantizerOptions>;

function merge(base: QuantizerOptions, override?: QuantOverride, bitWidth?: number): QuantizerOptions {
  const opts = { ...base, ...override };
  if (bitWidth !== undefined) opts.bitWidth = bitWidth;
  return opts;
}

export interface ActQuantOptions {
  bitWidth?: number;
  actQuant?: QuantOverride;
}

export class QuantIdentity extends Module {
  readonly actQuant: IntQuantizer;

  constructor(opts: ActQuantOptions = {}) {
    super();
    this.actQuant = this.addModule('act_quant', new IntQuantizer(merge(INT8_ACT, opts.actQuant, opts.bitWidth)));
  }

  forward(x: Activation): QuantTensor {
    return this.actQuant.call(valueOf(x)) as QuantTensor;
  }
}

export class QuantReLU extends Module {
  readonly actQuant: IntQuantizer;

  constructor(opts: ActQuantOptions = {}) {
    super();
    this.actQuant = this.addModule('act_quant', new IntQuantizer(merge(UINT8_ACT, opts.actQuant, opts.bitWidth)));
  }

  forward(x: Activation): QuantTensor {
    return this.actQuant.call(tf.relu(valueOf(x))) as QuantTensor;
  }
}

export interface QuantWeightOptions {
  weightBitWidth?: number;
  weightQuant?: QuantOverride;
  /** Quantize the bias to this many bits at scale s_in·s_w (Brevitas Int32Bias when 32). Float bias if absent. */
  biasBitWidth?: number;
  inputQuant?: QuantOverride;
  outputQuant?: QuantOverride;
}

/** The quantization machinery shared by QuantLinear and QuantConv2d. */
class WeightQuantParts {
  readonly weightQuant: IntQuantizer;
  readonly inputQuant: IntQuantizer | undefined;
  readonly outputQuant: IntQuantizer | undefined;
  readonly biasBitWidth: number | undefined;

  constructor(owner: { add: (name: string, m: Module) => Module }, opts: QuantWeightOptions) {
    this.weightQuant = owner.add('weight_quant', new IntQuantizer(merge(INT8_WEIGHT, opts.weightQuant, opts.weightBitWidth))) as IntQuantizer;
    this.inputQuant = opts.inputQuant ? (owner.add('input_quant', new IntQuantizer(merge(INT8_ACT, opts.inputQuant))) as IntQuantizer) : undefined;
    this.outputQuant = opts.outputQuant ? (owner.add('output_quant', new IntQuantizer(merge(INT8_ACT, opts.outputQuant))) as IntQuantizer) : undefined;
    if (opts.biasBitWidth !== undefined) checkBitWidth(opts.biasBitWidth === 32 ? 16 : opts.biasBitWidth, 'bias quantizer');
    this.biasBitWidth = opts.biasBitWidth;
  }

  input(x: Activation): Activation {
    return this.inputQuant ? this.inputQuant.call(valueOf(x)) : x;
  }

  output(y: tf.Tensor): Activation {
    return this.outputQuant ? this.outputQuant.call(y) : y;
  }

  /** The accumulator as the circuit's rounded table index sees it (rounding-aware fine-tuning), or y unchanged. */
  roundAccumulator(who: string, y: tf.Tensor, x: Activation, weightScale: tf.Tensor, r: AccumulatorRounding | undefined, training: boolean): tf.Tensor {
    if (!r || !(training || r.inEval)) return y;
    if (!isQuantTensor(x)) throw new ConfigError(`${who}: accumulator rounding needs a quantized input (add a QuantIdentity or inputQuant before it)`);
    if (weightScale.size !== 1 || x.scale.size !== 1) throw new ConfigError(`${who}: accumulator rounding needs per-tensor input and weight scales`);
    return roundAccumulator(y, tf.mul(tf.reshape(x.scale, []), tf.reshape(weightScale, [])), r);
  }

  bias(who: string, bias: tf.Tensor | undefined, x: Activation, weightScale: tf.Tensor): tf.Tensor | undefined {
    if (!bias || this.biasBitWidth === undefined) return bias;
    if (!isQuantTensor(x)) {
      throw new ConfigError(`${who}: a quantized bias needs a quantized input (add a QuantIdentity or inputQuant before it)`);
    }
    // Bias scale s_in·s_w per output channel; flatten a per-channel weight scale [out,1,…] to [out].
    const s = tf.mul(tf.reshape(x.scale, [-1]), tf.reshape(weightScale, [-1]));
    const half = 2 ** (this.biasBitWidth - 1);
    return tf.mul(tf.clipByValue(roundSte(tf.div(bias, s)), -half, half - 1), s);
  }
}

// Mixin constructors must accept any arguments (TypeScript's mixin rule).
type WeightedLayerClass = abstract new (...args: any[]) => WeightedLayer;

/** What the mixin adds to a float layer (spelled out so declarations can name it: see withWeightQuant). */
export interface WeightQuantAccessors {
  /** @internal The layer's quantizers and bias rule (not part of the API). */
  q: WeightQuantParts;
  readonly weightQuant: IntQuantizer;
  readonly inputQuant: IntQuantizer | undefined;
  readonly outputQuant: IntQuantizer | undefined;
  readonly biasBitWidth: number | undefined;
  /** Simulated accumulator rounding (src/quant/accumulator-rounding.ts); off when undefined. */
  accumulatorRounding: AccumulatorRounding | undefined;
  quantWeight(): QuantTensor;
}

/**
 * The accessors QuantLinear and QuantConv2d share, added once to either float base class. The return type is
 * written out: an inferred class-expression type would drag Module's protected members into the declarations, which
 * TypeScript cannot emit (TS4094), and the notebooks' typed imports read those declarations.
 */
function withWeightQuant<B extends WeightedLayerClass>(Base: B): B & (abstract new (...args: any[]) => WeightQuantAccessors) {
  abstract class WeightQuantized extends Base implements WeightQuantAccessors {
    q!: WeightQuantParts;
    accumulatorRounding: AccumulatorRounding | undefined = undefined;

    get weightQuant(): IntQuantizer {
      return this.q.weightQuant;
    }

    get inputQuant(): IntQuantizer | undefined {
      return this.q.inputQuant;
    }

    get outputQuant(): IntQuantizer | undefined {
      return this.q.outputQuant;
    }

    /** Bias bit width when the bias is quantized (scale s_in·s_w), else undefined (float bias). */
    get biasBitWidth(): number | undefined {
      return this.q.biasBitWidth;
    }

    /** The quantized weight (masked first when pruned), with its integer metadata. */
    quantWeight(): QuantTensor {
      return this.q.weightQuant.call(this.effectiveWeight()) as QuantTensor;
    }
  }
  return WeightQuantized;
}

export class QuantLinear extends withWeightQuant(Linear) {
  constructor(inFeatures: number, outFeatures: number, opts: QuantWeightOptions & { bias?: boolean; rng?: Rng } = {}) {
    super(inFeatures, outFeatures, opts);
    this.q = new WeightQuantParts({ add: (n, m) => this.addModule(n, m) }, opts);
  }


  override forward(x: Activation): Activation {
    const xin = this.q.input(x);
    const v = valueOf(xin);
    expectShape(this.label(), v, 2, { index: -1, size: this.inFeatures, what: 'input features' });
    const w = this.quantWeight();
    const y = linear(v, w.value, this.q.bias(this.label(), this.bias, xin, w.scale));
    return this.q.output(this.q.roundAccumulator(this.label(), y, xin, w.scale, this.accumulatorRounding, this.training));
  }
}

export class QuantConv2d extends withWeightQuant(Conv2d) {
  constructor(inChannels: number, outChannels: number, kernelSize: number, opts: QuantWeightOptions & Conv2dOptions = {}) {
    super(inChannels, outChannels, kernelSize, opts);
    this.q = new WeightQuantParts({ add: (n, m) => this.addModule(n, m) }, opts);
  }


  override forward(x: Activation): Activation {
    const xin = this.q.input(x);
    const v = valueOf(xin);
    expectShape(this.label(), v, 4, { index: 3, size: this.inChannels, what: 'input channels (NHWC)' });
    const w = this.quantWeight();
    const y = conv2d(v, w.value, this.q.bias(this.label(), this.bias, xin, w.scale), this.stride, this.padding);
    return this.q.output(this.q.roundAccumulator(this.label(), y, xin, w.scale, this.accumulatorRounding, this.training));
  }
}
