/**
 * Rounding-aware fine-tuning: the accumulator rounding a compiled circuit applies before its table lookups
 * (`roundingThresholdBits`, src/compiler/rounding.ts), simulated in the training graph so that QAT learns weights and
 * BatchNorm thresholds that survive it.
 *
 * A QuantConv2d / QuantLinear with `accumulatorRounding` set replaces its integer accumulator a = y / (s_in·s_w) by
 * the value its table entry stands for, 2^k·round((a + o)/2^k) − o, per output channel (k and o as the circuit's
 * `channelRoundBits` / `roundOffsets`); the backward pass is the identity (straight-through, like Brevitas's round).
 * It acts in training mode only unless `inEval` is set, so the model's ordinary evaluation stays the QAT row. Values
 * past a table's domain, which the circuit wraps around, are not wrapped here (training should not learn from them).
 *
 * The rounding comes from a compiled circuit of the model itself (`attachAccumulatorRounding`): the table input of
 * each rounded lookup is the output of the conv/gemm op named after the layer. Recompile as the weights move (the
 * CIFAR script does it every epoch) so that ranges, k and offsets follow.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Circuit, TluOp } from '../compiler/circuit.js';
import type { Module } from '../nn/module.js';
import { ConfigError } from '../util/errors.js';
import { straightThrough } from './ste.js';

export interface AccumulatorRounding {
  /** Bits rounded away, per output channel. */
  k: Int32Array;
  /** Offset added before rounding, per output channel. */
  offsets: Int32Array;
  /** Also round in eval mode (to compare the model with the circuit); training mode always rounds. */
  inEval?: boolean;
}

/**
 * y (channels on the last axis) at accumulator scale `scale` (s_in·s_w, a scalar tensor), rounded as the circuit's
 * table index rounds it; identity gradient.
 */
export function roundAccumulator(y: tf.Tensor, scale: tf.Tensor, r: AccumulatorRounding): tf.Tensor {
  const c = y.shape[y.rank - 1]!;
  if (r.k.length !== c || r.offsets.length !== c) throw new ConfigError(`accumulator rounding for ${r.k.length} channels applied to ${c} channels`);
  return straightThrough((x) => {
    const step = tf.tensor1d(Float32Array.from(r.k, (k) => 2 ** k));
    const o = tf.tensor1d(Float32Array.from(r.offsets));
    // The accumulator is an integer up to float error; floor(v + 1/2) is the circuit's round-half-up.
    const acc = tf.round(tf.div(x, scale));
    const index = tf.floor(tf.add(tf.div(tf.add(acc, o), step), 0.5));
    return tf.mul(tf.sub(tf.mul(index, step), o), scale);
  })(y);
}

/** A layer that can simulate accumulator rounding (QuantConv2d, QuantLinear). */
interface RoundableLayer {
  accumulatorRounding: AccumulatorRounding | undefined;
  readonly bias: tf.Variable | undefined;
  readonly biasBitWidth: number | undefined;
}

function isRoundable(m: Module): m is Module & RoundableLayer {
  return 'accumulatorRounding' in m;
}

/**
 * Sets every rounded lookup's accumulator rounding on the layer that feeds it. Returns the layers set, by name.
 * The circuit must be compiled from this model (same names, same channel counts).
 */
export function attachAccumulatorRounding(model: Module, circuit: Circuit, opts: { inEval?: boolean } = {}): string[] {
  detachAccumulatorRounding(model);
  const producer = new Map(circuit.ops.map((op) => [op.output, op]));
  const set: string[] = [];
  for (const op of circuit.ops) {
    if (op.kind !== 'tlu' || op.roundBits === 0) continue;
    const tlu = op as TluOp;
    const src = producer.get(tlu.input);
    if (!src || (src.kind !== 'conv' && src.kind !== 'gemm')) {
      throw new ConfigError(`table '${tlu.name}' rounds the output of ${src ? `a ${src.kind} op '${src.name}'` : `'${tlu.input}'`}: only a QuantConv2d/QuantLinear accumulator can be rounded in training`);
    }
    const layer = model.getModule(src.name);
    if (!isRoundable(layer)) throw new ConfigError(`'${src.name}' is not a QuantConv2d or QuantLinear`);
    if (layer.bias && layer.biasBitWidth === undefined) throw new ConfigError(`'${src.name}' has a float bias: its accumulator is not the circuit's integer sum`);
    const channels = src.kind === 'conv' ? src.weightDims[0] : src.outFeatures;
    if (tlu.channels !== channels) {
      throw new ConfigError(`table '${tlu.name}' has ${tlu.channels} channels, '${src.name}' ${channels}: per-output-channel rounding expected`);
    }
    const k = tlu.channelRoundBits ? Int32Array.from(tlu.channelRoundBits) : new Int32Array(channels).fill(tlu.roundBits);
    const offsets = tlu.roundOffsets ? Int32Array.from(tlu.roundOffsets) : new Int32Array(channels);
    layer.accumulatorRounding = { k, offsets, ...(opts.inEval ? { inEval: true } : {}) };
    set.push(src.name);
  }
  return set;
}

export function detachAccumulatorRounding(model: Module): void {
  for (const [, m] of model.namedModules()) if (isRoundable(m)) m.accumulatorRounding = undefined;
}
