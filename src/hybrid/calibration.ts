/**
 * Compile time of a hybrid model: a calibration pass records every remote module's inputs (per input shape, with
 * the quantization of a QAT input), then each module becomes a quantized sub-network (subnet.ts), exported through
 * the one road (moduleToGraph) and compiled into an integer circuit per input shape.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Activation, QuantTensor, valueOf } from '../nn/quant-tensor.js';
import { moduleToGraph } from '../export/to-graph.js';
import { FheModel } from '../compiler/fhe-model.js';
import type { RoundingOption } from '../compiler/compile.js';
import { type Circuit, size } from '../compiler/circuit.js';
import { FHEModelDev, shapeKey } from './deployment.js';
import { type InputQuantMeta, buildSubnet } from './subnet.js';
import { HybridError } from './errors.js';
import { type RemoteLayer, toChw, toHwc } from './remote-layer.js';
import { linearWeights } from './linear-modules.js';
import { quantizeLinear } from './dynamic-quant.js';

export interface HybridCompileOptions {
  /** Bits of post-training quantization for float modules and of input quantizers of float inputs (default 8). */
  nBits?: number;
  /** Bits of the output quantizer appended to remote modules that do not end with one (default nBits). */
  outputBits?: number;
  roundingThresholdBits?: RoundingOption;
  maxTluBits?: number;
  /** Crypto backend of the artefacts (default 'simulate'). */
  backend?: string;
  /**
   * Allow a remote circuit whose output is a linear accumulator (not a table lookup). Such an output leaks the
   * module's weights to the client under TFHE (docs/hybrid.md); off by default. When set, no output quantizer is
   * appended.
   */
  allowLinearOutput?: boolean;
  /** Calibration batch size (default 256). */
  batchSize?: number;
  /**
   * The LLM recipe (the reference's `use_dynamic_quantization`): every remote module is a Linear/Conv1D computed as
   * an integer product on encrypted inputs that the client quantizes per token (8-bit asymmetric, centred), with
   * per-channel int8 weights (dynamic-quant.ts); no table lookup, no circuit. `backend` then names a linear backend
   * (linear-backend.ts: 'simulate', or 'glwe'). `nBits` must be 8.
   */
  dynamicQuantization?: boolean;
}

/** The inputs one remote module received during calibration, per module-layout input shape. */
export class CalibrationRecord {
  readonly byShape = new Map<string, { shape: number[]; chunks: Float32Array[]; quant?: InputQuantMeta }>();

  /** `keepData` false: only the input shapes are recorded (dynamic quantization needs no input statistics). */
  constructor(
    readonly name: string,
    private readonly keepData = true,
  ) {}

  add(x: Activation): void {
    const v = valueOf(x);
    const shape = v.shape.slice(1);
    const key = shapeKey(shape);
    if (!this.keepData) {
      if (!this.byShape.has(key)) this.byShape.set(key, { shape, chunks: [] });
      return;
    }
    let quant: InputQuantMeta | undefined;
    if (x instanceof QuantTensor) {
      if (x.scale.size !== 1) throw new HybridError(`remote module '${this.name}': its input has per-channel scales; remote inputs need one scale`);
      quant = { scale: x.scale.dataSync()[0]!, bitWidth: x.bitWidth, signed: x.signed, narrow: x.narrow };
    }
    let rec = this.byShape.get(key);
    if (!rec) this.byShape.set(key, (rec = { shape, chunks: [], quant }));
    else if (JSON.stringify(rec.quant) !== JSON.stringify(quant)) throw new HybridError(`remote module '${this.name}': its input quantization changed during calibration`);
    rec.chunks.push(Float32Array.from(v.dataSync() as Float32Array));
  }
}

/** Follows reshapes back from the circuit output: true when the output is produced by a table lookup. */
export function outputIsBootstrapped(c: Circuit): boolean {
  let v = c.output.value;
  for (;;) {
    const op = c.ops.find((o) => o.output === v);
    if (!op) return false;
    if (op.kind === 'tlu') return true;
    if (op.kind === 'reshape' || op.kind === 'transpose') v = op.input;
    else return false;
  }
}

function concat(chunks: Float32Array[]): Float32Array {
  const data = new Float32Array(chunks.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    data.set(c, off);
    off += c.length;
  }
  return data;
}

/** Compiles `layer` for every input shape `record` holds; replaces what it had compiled before. */
export function compileRemoteLayer(layer: RemoteLayer, record: CalibrationRecord, opts: HybridCompileOptions & { modelName: string; backend: string }): void {
  if (!record.byShape.size) throw new HybridError(`remote module '${layer.name}' was never called during calibration`);
  const original = layer.original;
  if (!original) throw new HybridError(`module '${layer.name}' has no weights on this side (private info was cleared); compile on the model owner's side`);
  const nBits = opts.nBits ?? 8;
  layer.compiled.clear();
  for (const cal of record.byShape.values()) {
    const data = concat(cal.chunks);
    const count = data.length / size(cal.shape);
    const subnet = buildSubnet(layer.name, original, data, count, cal.shape, cal.quant, { nBits, outputBits: opts.outputBits ?? nBits, outputQuant: !opts.allowLinearOutput });
    const graph = moduleToGraph(subnet, cal.shape, { graphName: `${opts.modelName}.${layer.name}` });
    const graphData = cal.shape.length === 3 ? tf.tidy(() => tf.transpose(tf.tensor(data, [count, ...cal.shape]), [0, 3, 1, 2]).dataSync() as Float32Array) : data;
    const fhe = FheModel.compile(graph, { data: graphData, n: count }, { roundingThresholdBits: opts.roundingThresholdBits, maxTluBits: opts.maxTluBits, batchSize: opts.batchSize });
    if (!opts.allowLinearOutput && !outputIsBootstrapped(fhe.circuit)) {
      throw new HybridError(
        `remote module '${layer.name}': the circuit output is a linear accumulator, which would let a client solve for the weights; end the module with a quantizer or pass allowLinearOutput`,
      );
    }
    const graphShape = toChw(cal.shape);
    const dev = new FHEModelDev('', fhe.circuit, { modelName: opts.modelName, moduleName: layer.name, backend: opts.backend });
    layer.compiled.set(shapeKey(graphShape), { moduleShape: cal.shape, graphShape, outShape: toHwc(fhe.circuit.output.shape), fhe, dev });
  }
}

/** The dynamic-quantization path: the layer's weights as per-channel int8 (its inputs are quantized per token at run time). */
export function compileLinearLayer(layer: RemoteLayer, record: CalibrationRecord): void {
  if (!record.byShape.size) throw new HybridError(`remote module '${layer.name}' was never called during calibration`);
  const original = layer.original;
  if (!original) throw new HybridError(`module '${layer.name}' has no weights on this side (private info was cleared); compile on the model owner's side`);
  const { weight, bias, outFeatures, inFeatures } = linearWeights(layer.name, original);
  for (const rec of record.byShape.values()) {
    if (rec.shape[rec.shape.length - 1] !== inFeatures) throw new HybridError(`remote module '${layer.name}' received inputs of shape [${rec.shape}] for ${inFeatures} features`);
  }
  layer.compiled.clear();
  layer.linear = quantizeLinear(weight, outFeatures, inFeatures, bias);
}
