/**
 * Accumulator analysis: for every QuantLinear / QuantConv2d of a QAT or post-training-quantized model,
 * - `observed`: the exact range of the integer accumulator Σ w_int·x_int (bias excluded — the float bias is fused
 *   into the next table lookup, as in the encrypted circuit) over a data set, captured with forward hooks;
 * - `worstCase`: the range any input in the layer's provable input interval [a, b] can reach, per neuron
 *   [Σ_{w>0} w·a + Σ_{w<0} w·b, Σ_{w>0} w·b + Σ_{w<0} w·a] (exact for a dense layer with independent inputs);
 * - `l1Bound`: the weights-only bound max_neuron ‖w_int‖₁ · max|x_int|, symmetric around 0.
 * Each with its signed bit width (`signedBits`, docs/accumulators.md). The model's accumulator bit width is the
 * maximum over layers (the reference's definition). observed ⊆ worstCase ⊆ [−l1Bound, l1Bound] always.
 *
 * Integers are held in float32, exact below 2^24; the analysis refuses layers whose L1 bound reaches that.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv2d, linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { QuantConv2d } from '../quant/layers.js';
import { type Dataset, sampleSize, size } from '../train/dataset.js';
import { ConfigError, ShapeError } from '../util/errors.js';
import { signedBits } from '../quant/bits.js';
import { type InputIntRange, type LayerCall, forEachQuantLayerCall, intWeight } from '../quant/layer-calls.js';

export interface IntInterval {
  min: number;
  max: number;
  bits: number;
}

export interface LayerAccumulator {
  layer: string;
  type: string;
  fanIn: number;
  fanOut: number;
  weightBits: number;
  /** The provable integer range of the layer's input. */
  input: InputIntRange;
  /** Integer input values actually seen. */
  observedInput: { min: number; max: number };
  observed: IntInterval;
  worstCase: IntInterval;
  l1Bound: { value: number; bits: number; maxL1: number };
  /** Non-zero integer weights per output neuron. */
  nonZeroPerNeuron: { min: number; max: number };
}

export interface AccumulatorReport {
  samples: number;
  layers: LayerAccumulator[];
  /** Model accumulator bit width: max over layers of the observed width (the reference's "accumulator size"). */
  bits: number;
  worstCaseBits: number;
  l1Bits: number;
}

export interface AnalyzeOptions {
  batchSize?: number;
  /** Analyse only the first n samples. */
  maxSamples?: number;
}

const EXACT_LIMIT = 2 ** 24;

interface Acc {
  name: string;
  type: string;
  range: InputIntRange;
  min: number;
  max: number;
  inMin: number;
  inMax: number;
  static: Omit<LayerAccumulator, 'layer' | 'type' | 'input' | 'observed' | 'observedInput'>;
}

/** Worst-case intervals of a layer from its integer weights and input interval [a, b]. */
export function weightBounds(
  w: ArrayLike<number>,
  fanIn: number,
  fanOut: number,
  a: number,
  b: number,
): { worstCase: IntInterval; l1Bound: { value: number; bits: number; maxL1: number }; nonZero: { min: number; max: number } } {
  let lo = 0;
  let hi = 0;
  let maxL1 = 0;
  let nzMin = Infinity;
  let nzMax = 0;
  for (let o = 0; o < fanOut; o++) {
    let nLo = 0;
    let nHi = 0;
    let l1 = 0;
    let nz = 0;
    for (let i = o * fanIn; i < (o + 1) * fanIn; i++) {
      const v = w[i]!;
      if (v > 0) {
        nLo += v * a;
        nHi += v * b;
      } else if (v < 0) {
        nLo += v * b;
        nHi += v * a;
      }
      if (v !== 0) nz++;
      l1 += Math.abs(v);
    }
    // Zero padding (convolutions) feeds 0, which every fhenet integer range contains.
    lo = Math.min(lo, nLo);
    hi = Math.max(hi, nHi);
    maxL1 = Math.max(maxL1, l1);
    nzMin = Math.min(nzMin, nz);
    nzMax = Math.max(nzMax, nz);
  }
  const value = maxL1 * Math.max(Math.abs(a), Math.abs(b));
  return {
    worstCase: { min: lo, max: hi, bits: signedBits(lo, hi) },
    l1Bound: { value, bits: signedBits(-value, value), maxL1 },
    nonZero: { min: nzMin, max: nzMax },
  };
}

function startLayer(c: LayerCall): Acc {
  const w = intWeight(c.layer);
  w.scale.dispose();
  const b = weightBounds(w.data, w.fanIn, w.fanOut, c.range.min, c.range.max);
  if (b.l1Bound.value >= EXACT_LIMIT) {
    throw new ConfigError(`layer '${c.name}': its accumulator bound ${b.l1Bound.value} exceeds 2^24, beyond exact float32 integer arithmetic`);
  }
  return {
    name: c.name,
    type: c.layer.constructor.name,
    range: c.range,
    min: Infinity,
    max: -Infinity,
    inMin: Infinity,
    inMax: -Infinity,
    static: {
      fanIn: w.fanIn,
      fanOut: w.fanOut,
      weightBits: c.layer.weightQuant.bitWidth,
      worstCase: b.worstCase,
      l1Bound: b.l1Bound,
      nonZeroPerNeuron: b.nonZero,
    },
  };
}

/** The integer accumulator tensor of one call (bias excluded). */
export function integerAccumulator(c: Pick<LayerCall, 'layer' | 'input'>): tf.Tensor {
  return tf.tidy(() => {
    const xi = c.input.int();
    const wi = c.layer.quantWeight().int();
    if (c.layer instanceof QuantConv2d) return conv2d(xi, wi, undefined, c.layer.stride, c.layer.padding);
    return linear(xi, wi);
  });
}

/** Runs the analysis over a data set (eval mode; the model's mode is restored afterwards). */
export function analyzeAccumulators(model: Module, data: Dataset, opts: AnalyzeOptions = {}): AccumulatorReport {
  const n = Math.min(size(data), opts.maxSamples ?? Infinity);
  if (!(n > 0)) throw new ConfigError('accumulator analysis needs a non-empty data set (got 0 samples)');
  const per = sampleSize(data);
  if (data.x.length < n * per) throw new ShapeError(`data set: ${data.x.length} values do not make ${n} samples of shape [${data.sampleShape}]`);
  const batchSize = opts.batchSize ?? 500;
  const wasTraining = model.training;
  model.eval();
  const accs = new Map<string, Acc>();
  try {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      tf.tidy(() => {
        const x = tf.tensor(data.x.subarray(s * per, (s + m) * per), [m, ...data.sampleShape]);
        forEachQuantLayerCall(model, x, (c) => {
          let a = accs.get(c.name);
          if (!a) {
            a = startLayer(c);
            accs.set(c.name, a);
          }
          const acc = integerAccumulator(c);
          const xi = c.input.int();
          const [lo, hi, xlo, xhi] = [tf.min(acc), tf.max(acc), tf.min(xi), tf.max(xi)].map((t) => t.dataSync()[0]!);
          a.min = Math.min(a.min, lo!);
          a.max = Math.max(a.max, hi!);
          a.inMin = Math.min(a.inMin, xlo!);
          a.inMax = Math.max(a.inMax, xhi!);
        });
      });
    }
  } finally {
    model.train(wasTraining);
  }
  if (accs.size === 0) throw new ConfigError(`${model.constructor.name} has no QuantLinear/QuantConv2d layer to analyse (quantize it first, e.g. with ptq)`);
  const layers: LayerAccumulator[] = [...accs.values()].map((a) => ({
    layer: a.name,
    type: a.type,
    ...a.static,
    input: a.range,
    observedInput: { min: a.inMin, max: a.inMax },
    observed: { min: a.min, max: a.max, bits: signedBits(Math.min(a.min, 0), Math.max(a.max, 0)) },
  }));
  return {
    samples: n,
    layers,
    bits: Math.max(...layers.map((l) => l.observed.bits)),
    worstCaseBits: Math.max(...layers.map((l) => l.worstCase.bits)),
    l1Bits: Math.max(...layers.map((l) => l.l1Bound.bits)),
  };
}

const iv = (i: { min: number; max: number }) => `[${i.min}, ${i.max}]`;

/** A fixed-width text table of a report. */
export function formatAccumulatorReport(r: AccumulatorReport): string {
  const rows = [
    ['layer', 'fan-in', 'w bits', 'input ints', 'observed', 'bits', 'worst case', 'bits', 'L1 bound', 'bits'],
    ...r.layers.map((l) => [
      l.layer,
      String(l.fanIn),
      String(l.weightBits),
      `${iv(l.input)}${l.input.source === 'relu' ? ' relu' : ''}`,
      iv(l.observed),
      String(l.observed.bits),
      iv(l.worstCase),
      String(l.worstCase.bits),
      `±${l.l1Bound.value}`,
      String(l.l1Bound.bits),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const fmt = (row: string[]) => row.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ');
  return [
    fmt(rows[0]!),
    ...rows.slice(1).map(fmt),
    '',
    `model accumulator bits: ${r.bits} observed on ${r.samples} samples, ${r.worstCaseBits} worst case, ${r.l1Bits} by the L1 bound`,
  ].join('\n');
}
