/**
 * Module → QONNX graph: the first step of fhenet's one road (module → graph → circuit → evaluator).
 *
 * The exporter traces one eval-mode forward pass: forward hooks record, in execution order, every call of a module
 * kind it knows (QuantIdentity, QuantReLU, QuantLinear, QuantConv2d, Linear, Conv2d, ReLU, BatchNorm, AvgPool2d,
 * Flatten, Identity), and each call becomes the nodes Brevitas writes for it: weights as float initializers (the
 * already fake-quantized values, like Brevitas 0.11) followed by a Quant node, Gemm with transB = 1 and a float
 * bias, Relu then Quant for QuantReLU, Conv with explicit attributes, BatchNormalization, AveragePool, Flatten.
 * Values are matched by tensor identity, so any composition of these modules exports; an operation done outside a
 * module (e.g. `tf.add` inside a forward) is reported as unsupported instead of being silently dropped.
 *
 * Layout: fhenet images are NHWC, ONNX graphs are NCHW. The graph input of an image model is [batch, C, H, W], and
 * convolution weights are already stored OIHW. fhenet's Flatten of an NHWC tensor orders features H, W, C while
 * ONNX Flatten of NCHW orders them C, H, W; instead of inserting a Transpose, the exporter permutes the columns of
 * the Linear that consumes the flattened features (through any elementwise modules in between), which is exactly
 * the graph PyTorch/Brevitas would write for the same network.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GraphBuilder } from '../onnx/builder.js';
import { type Graph, floatTensor } from '../onnx/graph.js';
import { AvgPool2d, BatchNorm, Conv2d, Flatten, Identity, Linear, ReLU, WeightedLayer } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { type Activation, QuantTensor, valueOf } from '../nn/quant-tensor.js';
import { QuantConv2d, QuantIdentity, QuantLinear, QuantReLU } from '../quant/layers.js';
import { ConfigError } from '../util/errors.js';

export interface ToGraphOptions {
  /** Name of the graph input (default 'x'). */
  inputName?: string;
  /** Name of the graph output (default 'y'). */
  outputName?: string;
  graphName?: string;
  /** Quant node domain (default onnx.brevitas). */
  quantDomain?: string;
}

/** Module kinds the exporter translates; their children (quantizers) are part of the translation. */
const KNOWN = [QuantIdentity, QuantReLU, QuantLinear, QuantConv2d, Linear, Conv2d, ReLU, BatchNorm, AvgPool2d, Flatten, Identity];

interface Call {
  module: Module;
  input: Activation;
  output: Activation;
}

/** Where a traced value lives in the graph, plus the feature permutation a pending Flatten introduced. */
interface GraphValue {
  name: string;
  /** fhenet feature index → ONNX feature index, when this value is a flattened NHWC image. */
  hwcToChw?: Int32Array;
}

function isKnown(m: Module): boolean {
  return KNOWN.some((K) => m instanceof K);
}

/** Traces `model` on `sampleShape` (one sample, no batch axis; NHWC for images) and returns its QONNX graph. */
export function moduleToGraph(model: Module, sampleShape: number[], opts: ToGraphOptions = {}): Graph {
  // The graph holds plain arrays only: every tensor the trace creates is released when it is built.
  tf.engine().startScope();
  try {
    return buildGraph(model, sampleShape, opts);
  } finally {
    tf.engine().endScope();
  }
}

function buildGraph(model: Module, sampleShape: number[], opts: ToGraphOptions): Graph {
  const calls = traceCalls(model, sampleShape);
  const b = new GraphBuilder(opts.graphName ?? model.constructor.name, { quantDomain: opts.quantDomain });
  const inputName = opts.inputName ?? 'x';
  const onnxShape = sampleShape.length === 3 ? [sampleShape[2]!, sampleShape[0]!, sampleShape[1]!] : sampleShape;
  const values = new Map<number, GraphValue>();
  const first = calls[0];
  if (!first) throw new ConfigError(`export: ${model.constructor.name} called no exportable module`);
  values.set(valueOf(first.input).id, { name: b.input(inputName, ['batch', ...onnxShape]) });
  let last: GraphValue | undefined;
  for (const call of calls) {
    const path = call.module.path() || call.module.constructor.name;
    const src = values.get(valueOf(call.input).id);
    if (!src) {
      throw new ConfigError(
        `export: module '${path}' consumes a tensor that no exported module produced — operations outside modules (e.g. tf.add in forward) cannot be exported`,
      );
    }
    const out = emit(b, call, src, path);
    values.set(valueOf(call.output).id, out);
    last = out;
  }
  if (last!.hwcToChw) throw new ConfigError('export: the model ends with a flattened image without a Linear layer');
  const outName = opts.outputName ?? 'y';
  b.addNode('Identity', [last!.name], {}, { outputs: [outName], name: 'output' });
  b.output(outName);
  return b.build();
}

function traceCalls(model: Module, sampleShape: number[]): Call[] {
  const calls: Call[] = [];
  const removers: (() => void)[] = [];
  const known = model.namedModules().filter(([, m]) => isKnown(m));
  const knownSet = new Set(known.map(([, m]) => m));
  // Modules inside a known module (its quantizers) are handled by the owner's translation.
  const inside = new Set<Module>();
  for (const [, m] of known) for (const [p, c] of m.namedModules()) if (p !== '') inside.add(c);
  for (const [path, m] of model.namedModules()) {
    if (path !== '' && !knownSet.has(m) && !inside.has(m) && m.namedChildren().length === 0) {
      throw new ConfigError(`export: module '${path}' (${m.constructor.name}) has no ONNX translation`);
    }
  }
  for (const [, m] of known) {
    if (inside.has(m)) continue;
    removers.push(m.registerForwardHook((module, input, output) => calls.push({ module, input, output })));
  }
  const wasTraining = model.training;
  model.eval();
  try {
    // The traced tensors are read while emitting, so they stay alive until the graph is built (small: batch 1).
    const x = tf.zeros([1, ...sampleShape]);
    model.call(x);
  } finally {
    for (const r of removers) r();
    model.train(wasTraining);
  }
  return calls;
}

function data(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

function quantOf(b: GraphBuilder, x: string, q: QuantTensor, name: string): string {
  const scale = data(q.scale);
  const per = scale.length > 1;
  return b.quant(x, {
    scale: per ? Array.from(scale) : scale[0]!,
    scaleDims: per ? q.scale.shape : undefined,
    bitWidth: q.bitWidth,
    signed: q.signed,
    narrow: q.narrow,
    name,
  });
}

function activationQuant(b: GraphBuilder, x: string, out: Activation, path: string): string {
  if (!(out instanceof QuantTensor)) throw new ConfigError(`export: '${path}' did not produce a quantized tensor`);
  return quantOf(b, x, out, `${path}.act_quant`);
}

/** Permutes the input columns of a [out, in] weight so that ONNX's C,H,W feature order sees the same weights. */
function permuteColumns(w: Float32Array, out: number, inF: number, hwcToChw: Int32Array): Float32Array {
  const p = new Float32Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) p[o * inF + hwcToChw[i]!] = w[o * inF + i]!;
  return p;
}

function emit(b: GraphBuilder, call: Call, src: GraphValue, path: string): GraphValue {
  const m = call.module;
  const x = src.name;
  const keep = (name: string): GraphValue => ({ name, hwcToChw: src.hwcToChw });
  if (m instanceof QuantIdentity) return keep(activationQuant(b, x, call.output, path));
  if (m instanceof QuantReLU) return keep(activationQuant(b, b.relu(x, `${path}.relu`), call.output, path));
  if (m instanceof ReLU) return keep(b.relu(x, path));
  if (m instanceof Identity) return keep(x);
  if (src.hwcToChw && !(m instanceof Linear)) {
    throw new ConfigError(`export: '${path}' (${m.constructor.name}) follows a Flatten of an image; only Linear layers (and elementwise ones) may`);
  }
  if (m instanceof WeightedLayer) return { name: emitWeighted(b, m, call, x, path, src.hwcToChw) };
  if (m instanceof BatchNorm) {
    const init = (n: string, t: tf.Tensor) => b.addInitializer(`${path}.${n}`, floatTensor(t.shape, data(t)));
    return {
      name: b.batchNorm(x, init('weight', m.weight), init('bias', m.bias), init('running_mean', m.runningMean), init('running_var', m.runningVar), m.eps, path),
    };
  }
  if (m instanceof AvgPool2d) return { name: b.averagePool(x, [m.kernelSize, m.kernelSize], [m.stride, m.stride], path) };
  if (m instanceof Flatten) {
    const shape = valueOf(call.input).shape;
    const flat = b.flatten(x, 1, path);
    if (shape.length !== 4) return keep(flat);
    const [, h, w, c] = shape as [number, number, number, number];
    const perm = new Int32Array(h * w * c);
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++) perm[(y * w + xx) * c + ch] = ch * h * w + y * w + xx;
    return { name: flat, hwcToChw: perm };
  }
  throw new ConfigError(`export: no ONNX translation for '${path}' (${m.constructor.name})`);
}

function emitWeighted(b: GraphBuilder, m: WeightedLayer, call: Call, x: string, path: string, perm?: Int32Array): string {
  const quantized = m instanceof QuantLinear || m instanceof QuantConv2d;
  let xin = x;
  if (quantized && m.inputQuant) {
    const qx = m.inputQuant.call(valueOf(call.input)) as QuantTensor;
    xin = quantOf(b, x, qx, `${path}.input_quant`);
  }
  const wq = quantized ? m.quantWeight() : undefined;
  const wVals = wq ? wq.value : m.effectiveWeight();
  let wData = data(wVals);
  if (perm) wData = permuteColumns(wData, m.fanOut, m.fanIn, perm);
  let w = b.addInitializer(`${path}.weight`, floatTensor(m.weight.shape, wData));
  if (wq) w = quantOf(b, w, wq, `${path}.weight_quant`);
  let bias: string | undefined;
  if (m.bias) {
    bias = b.addInitializer(`${path}.bias`, floatTensor(m.bias.shape, data(m.bias)));
    const bits = quantized ? m.biasBitWidth : undefined;
    if (quantized && bits !== undefined && call.input instanceof QuantTensor && wq) {
      const s = tf.tidy(() => tf.mul(tf.reshape((call.input as QuantTensor).scale, [-1]), tf.reshape(wq.scale, [-1])));
      const sv = data(s);
      bias = b.quant(bias, { scale: sv.length > 1 ? Array.from(sv) : sv[0]!, bitWidth: bits, signed: true, narrow: false, name: `${path}.bias_quant` });
    }
  }
  let y: string;
  if (m instanceof Conv2d) {
    const k = m.kernelSize;
    const pad = padsFor(m, valueOf(call.input).shape);
    y = b.conv(xin, w, bias, { kernelShape: [k, k], strides: [m.stride, m.stride], pads: pad }, path);
  } else {
    y = b.gemm(xin, w, bias, path);
  }
  const outQ = quantized ? m.outputQuant : undefined;
  if (outQ && call.output instanceof QuantTensor) y = quantOf(b, y, call.output, `${path}.output_quant`);
  return y;
}

/** Explicit ONNX pads [top, left, bottom, right] for fhenet's padding (tfjs 'same' pads extra at the end). */
function padsFor(m: Conv2d, inShape: number[]): number[] {
  if (typeof m.padding === 'number') return [m.padding, m.padding, m.padding, m.padding];
  if (m.padding === 'valid') return [0, 0, 0, 0];
  const [, h, w] = inShape as [number, number, number];
  const total = (n: number) => Math.max(0, (Math.ceil(n / m.stride) - 1) * m.stride + m.kernelSize - n);
  const th = total(h);
  const tw = total(w);
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}
