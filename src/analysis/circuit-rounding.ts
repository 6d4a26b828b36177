/**
 * Rounding-aware fine-tuning, the circuit side: reads a compiled circuit of a model and sets, on every QuantConv2d /
 * QuantLinear whose accumulator feeds a rounded table lookup, the rounding that lookup applies
 * (src/quant/accumulator-rounding.ts simulates it in training). The table input of each rounded lookup is the output
 * of the conv/gemm op named after the layer. Recompile as the weights move (the CIFAR script does it every epoch) so
 * that ranges, k and offsets follow.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Circuit, TluOp } from '../compiler/circuit.js';
import type { Module } from '../nn/module.js';
import type { AccumulatorRounding } from '../quant/accumulator-rounding.js';
import { ConfigError } from '../util/errors.js';

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
