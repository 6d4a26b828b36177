/**
 * One remote module on the side that holds it: its original weights (model owner only), its compiled circuits per
 * per-sample input shape, and how activations of the client's model map to circuit inputs and back.
 *
 * Layouts: modules see NHWC images, circuits CHW ones (the ONNX/PyTorch layout), so a rank-4 activation is
 * transposed on the way in and its output on the way out. Shape keys (`shapeKey`) are of the circuit input shape.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module.js';
import type { FheModel } from '../compiler/fhe-model.js';
import { dequantizeOutput, quantizeInput, simulate } from '../compiler/simulate.js';
import { runGraph } from '../onnx/interpret.js';
import { type FHEModelDev, shapeKey } from './deployment.js';
import { HybridError } from './errors.js';
import type { RemoteModule } from './remote-module.js';
import { type BiasPlan, type QuantizedLinear, addBias, biasInAccumulatorUnits, biasPlan, dequantizeOutput as dequantizeLinear, integerMatVec, quantizeTokens } from './dynamic-quant.js';
import { idsAsOneHot, isEmbeddingModule } from './remote-embedding.js';

export const toChw = (s: readonly number[]): number[] => (s.length === 3 ? [s[2]!, s[0]!, s[1]!] : [...s]);
export const toHwc = (s: readonly number[]): number[] => (s.length === 3 ? [s[1]!, s[2]!, s[0]!] : [...s]);

/** A remote module compiled for one per-sample input shape. */
export interface CompiledShape {
  /** Per-sample shape the module sees (NHWC for images). */
  moduleShape: number[];
  /** Per-sample shape of the circuit input (CHW for images). */
  graphShape: number[];
  /** Per-sample output shape the module returns (NHWC for images). */
  outShape: number[];
  /** Dev side only (cleared by saveAndClearPrivateInfo, absent on a loaded client). */
  fhe?: FheModel;
  dev?: FHEModelDev;
}

/** One call's input in circuit layout, and how to turn the circuit's output back into the module's activation. */
export interface CircuitCall {
  key: string;
  compiled: CompiledShape;
  n: number;
  input: Float32Array;
  toActivation(out: Float32Array): tf.Tensor;
}

/** Each quantized layer's bias plan, computed once (it reads every weight). */
const PLANS = new WeakMap<QuantizedLinear, BiasPlan>();

export class RemoteLayer {
  /** The module's weights; undefined once cleared (saveAndClearPrivateInfo) or on a loaded client. */
  original: Module | undefined;
  readonly compiled = new Map<string, CompiledShape>();
  /**
   * Set instead of `compiled` when compiled with dynamic quantization (the LLM path): the integer layer. On a loaded
   * client `weights` is empty (only the per-channel scales and the bias are known there).
   */
  linear: (QuantizedLinear & { info?: Record<string, unknown> }) | undefined;
  /** For a remote Embedding (remote-embedding.ts): its number of embeddings; its inputs are ids, sent as one-hot rows. */
  readonly lookup: number | undefined;

  constructor(
    readonly name: string,
    readonly stub: RemoteModule,
    original: Module | undefined,
  ) {
    this.original = original;
    this.lookup = original && isEmbeddingModule(original) ? original.numEmbeddings : undefined;
  }

  /** The module's input in circuit layout, checked against the shapes it was compiled for. */
  prepare(v: tf.Tensor): CircuitCall {
    const n = v.shape[0]!;
    const moduleShape = v.shape.slice(1);
    const key = shapeKey(toChw(moduleShape));
    const compiled = this.compiled.get(key);
    if (!compiled) {
      throw new HybridError(`remote module '${this.name}' was not compiled for input shape [${moduleShape}] (compiled: ${[...this.compiled.keys()].join(', ') || 'none'})`);
    }
    const input = Float32Array.from((v.rank === 4 ? tf.tidy(() => tf.transpose(v, [0, 3, 1, 2])) : v).dataSync() as Float32Array);
    const toActivation = (out: Float32Array): tf.Tensor => {
      const outChw = toChw(compiled.outShape);
      return tf.tidy(() => {
        const t = tf.tensor(out, [n, ...outChw]);
        return outChw.length === 3 ? tf.transpose(t, [0, 2, 3, 1]) : t;
      });
    };
    return { key, compiled, n, input, toActivation };
  }

  /** 'disable' (the quantized graph, float interpreter) or 'simulate' (the integer circuit, exact), in clear. */
  runClear(mode: 'disable' | 'simulate', call: CircuitCall): Float32Array {
    const fhe = call.compiled.fhe;
    if (!fhe) throw new HybridError(`mode '${mode}' needs the circuit of '${this.name}', which was cleared on this side; use 'remote'`);
    if (mode === 'disable') {
      const g = fhe.graph;
      const r = runGraph(g, { [g.inputs[0]!.name]: { dims: [call.n, ...call.compiled.graphShape], data: call.input } }).outputs.get(g.outputs[0]!.name)!;
      return r.data instanceof Float32Array ? r.data : Float32Array.from(r.data as ArrayLike<number>);
    }
    const circuit = fhe.circuit;
    return dequantizeOutput(circuit, simulate(circuit, quantizeInput(circuit, call.input), call.n).output);
  }

  /** A linear layer's input [..., in] (a remote embedding's: ids [...]) as [tokens, in], and how to give its output back in the input's leading shape. */
  prepareLinear(v: tf.Tensor): { tokens: number; input: Float32Array; toActivation(out: Float32Array): tf.Tensor } {
    const lin = this.linear!;
    if (this.lookup !== undefined) {
      const { tokens, input, lead } = idsAsOneHot(v, this.lookup, this.name);
      return { tokens, input, toActivation: (out) => tf.tensor(out, [...lead, lin.outFeatures]) };
    }
    if (v.shape[v.rank - 1] !== lin.inFeatures) {
      throw new HybridError(`remote linear layer '${this.name}' takes ${lin.inFeatures} features, got an input of shape [${v.shape}]`);
    }
    const tokens = v.size / lin.inFeatures;
    const lead = v.shape.slice(0, -1);
    return { tokens, input: Float32Array.from(v.dataSync() as Float32Array), toActivation: (out) => tf.tensor(out, [...lead, lin.outFeatures]) };
  }

  /**
   * A dynamically quantized linear layer in clear: 'simulate' computes the exact integer accumulators (what the
   * server computes on ciphertexts, bias in accumulator units included) and dequantizes; 'disable' computes the
   * same quantized layer in float32 (dequantized inputs times dequantized weights, plus the bias as the server
   * rounds it), as the reference's disable mode does.
   */
  runLinearClear(mode: 'disable' | 'simulate', x: Float32Array, tokens: number): Float32Array {
    const lin = this.linear!;
    if (!lin.weights.length) throw new HybridError(`mode '${mode}' needs the weights of '${this.name}', which were cleared on this side; use 'remote'`);
    let plan = PLANS.get(lin);
    if (!plan) PLANS.set(lin, (plan = biasPlan(lin)));
    const q = quantizeTokens(x, tokens, lin.inFeatures, plan.tokenScaleFloor);
    const bias = biasInAccumulatorUnits(lin, plan, q.scales);
    if (mode === 'simulate') return dequantizeLinear(addBias(integerMatVec(lin, q.values, tokens), bias), q.scales, lin.scales);
    return tf.tidy(() => {
      const xs = tf.mul(tf.tensor(Float32Array.from(q.values), [tokens, lin.inFeatures]), tf.tensor(q.scales, [tokens, 1]));
      const ws = tf.mul(tf.tensor(Float32Array.from(lin.weights), [lin.outFeatures, lin.inFeatures]), tf.tensor(lin.scales, [lin.outFeatures, 1]));
      const b = tf.mul(tf.mul(tf.tensor(Float32Array.from(bias), [tokens, lin.outFeatures]), tf.tensor(q.scales, [tokens, 1])), tf.tensor(lin.scales, [1, lin.outFeatures]));
      return tf.add(tf.matMul(xs, ws, false, true), b).dataSync() as Float32Array;
    });
  }
}
