/**
 * GraphBuilder: build fhenet graphs (QONNX form) without any protobuf knowledge.
 *
 * ```ts
 * const b = new GraphBuilder('mlp');
 * let x = b.input('x', ['batch', 2]);
 * x = b.quant(x, { scale: 1 / 3, bitWidth: 3, signed: true, narrow: true });
 * const w = b.quant(b.addInitializer('fc1.weight', floatTensor([100, 2], w1)), { scale: 1 / 3, bitWidth: 3, signed: true, narrow: true });
 * x = b.gemm(x, w, b.addInitializer('fc1.bias', floatTensor([100], b1)));
 * x = b.quant(b.relu(x), { scale: 0.224, bitWidth: 3, signed: false, narrow: false });
 * ...
 * b.output(x);
 * const graph = b.build();
 * ```
 * Scalar constants (scale, zero point, bit width) are shared when equal, like Brevitas/torch exports.
 */
import {
  Attr,
  type Attribute,
  BREVITAS_DOMAIN,
  type Dim,
  type DType,
  emptyGraph,
  floatTensor,
  type Graph,
  type Node,
  type TensorData,
} from './graph.js';
import { OnnxFormatError } from './errors.js';
import { validateGraph } from './import.js';

/** Parameters of a QONNX Quant node. Numbers become float32 constants; strings name existing values. */
export interface QuantSpec {
  /** Scalar, per-channel values (with `scaleDims`, e.g. [out, 1]), a tensor, or the name of a value. */
  scale: number | number[] | TensorData | string;
  /** Shape of a per-channel scale given as number[] (default [length]). */
  scaleDims?: number[];
  /** Default 0. */
  zeroPoint?: number | TensorData | string;
  bitWidth: number;
  signed: boolean;
  narrow: boolean;
  /** Only 'ROUND' is supported by fhenet and Concrete ML. */
  roundingMode?: 'ROUND';
  /** Node name (default: generated). */
  name?: string;
}

export interface NodeOptions {
  name?: string;
  domain?: string;
  /** Output names, or a number of outputs to generate names for (default 1). */
  outputs?: string[] | number;
}

export class GraphBuilder {
  private readonly graph: Graph;
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private counter = 0;

  /**
   * @param name graph name
   * @param opts.quantDomain domain of Quant nodes (default 'onnx.brevitas'; the exporter can rewrite it)
   * @param opts.opset default-domain opset (default 14)
   */
  constructor(name = 'fhenet', private readonly opts: { quantDomain?: string; opset?: number } = {}) {
    this.graph = emptyGraph(name);
    this.graph.opsetImports = [{ domain: '', version: opts.opset ?? 14 }];
  }

  private unique(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Declares a graph input (the first dimension is normally a symbolic batch, e.g. 'batch'). */
  input(name: string, shape: Dim[], elemType: DType = 'float32'): string {
    if (this.names.has(name)) throw new OnnxFormatError('duplicate', 'name already used', { tensor: name });
    this.names.add(name);
    this.graph.inputs.push({ name, elemType, shape: [...shape] });
    return name;
  }

  /** Declares a graph output (shape optional; the exporter infers it). */
  output(name: string, shape: Dim[] | null = null, elemType: DType = 'float32'): void {
    this.graph.outputs.push({ name, elemType, shape: shape ? [...shape] : null });
  }

  /** Adds a named constant tensor (weight, bias, statistics); returns its name. */
  addInitializer(name: string, tensor: TensorData): string {
    if (this.names.has(name)) throw new OnnxFormatError('duplicate', 'name already used', { tensor: name });
    this.names.add(name);
    this.graph.initializers.set(name, tensor);
    return name;
  }

  /** A constant shared with any equal constant added the same way; returns its name. */
  constant(tensor: TensorData, hint = 'Constant'): string {
    const key = `${tensor.dtype}|${tensor.dims.join(',')}|${Array.from(tensor.data as ArrayLike<number>, Number).join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.unique(`/${hint}_output_0`);
    this.graph.initializers.set(name, tensor);
    this.constCache.set(key, name);
    return name;
  }

  /** Adds a node; returns its output names. */
  addNode(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}, opts: NodeOptions = {}): string[] {
    const name = this.unique(opts.name ?? `/${opType}`);
    let outputs: string[];
    if (Array.isArray(opts.outputs)) {
      outputs = opts.outputs.map((o) => {
        if (this.names.has(o)) throw new OnnxFormatError('duplicate', 'name already used', { node: name, tensor: o });
        this.names.add(o);
        return o;
      });
    } else {
      outputs = Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.unique(`${name}_output_${i}`));
    }
    const node: Node = { name, opType, domain: opts.domain ?? '', inputs: [...inputs], outputs, attributes: { ...attributes } };
    if (node.domain !== '' && !this.graph.opsetImports.some((o) => o.domain === node.domain)) {
      this.graph.opsetImports.push({ domain: node.domain, version: node.domain === BREVITAS_DOMAIN ? 1 : 2 });
    }
    this.graph.nodes.push(node);
    return outputs;
  }

  /** Adds a single-output node; returns the output name. */
  node(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}, opts: NodeOptions = {}): string {
    return this.addNode(opType, inputs, attributes, opts)[0]!;
  }

  private valueOf(v: number | number[] | TensorData | string, dims: number[] | undefined, hint: string): string {
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return this.constant(floatTensor([], [v]), hint);
    if (Array.isArray(v)) return this.constant(floatTensor(dims ?? [v.length], v), hint);
    return this.constant(v, hint);
  }

  /** QONNX Quant(x, scale, zero_point, bit_width) with all three attributes; returns the output name. */
  quant(x: string, spec: QuantSpec): string {
    if (!Number.isInteger(spec.bitWidth) || spec.bitWidth < 1) {
      throw new OnnxFormatError('quant', `bit width must be a positive integer, got ${spec.bitWidth}`, { tensor: x });
    }
    const scale = this.valueOf(spec.scale, spec.scaleDims, 'Constant');
    const zp = this.valueOf(spec.zeroPoint ?? 0, undefined, 'Constant');
    const bw = this.valueOf(spec.bitWidth, undefined, 'Constant');
    return this.node(
      'Quant',
      [x, scale, zp, bw],
      {
        narrow: Attr.int(spec.narrow ? 1 : 0),
        rounding_mode: Attr.string(spec.roundingMode ?? 'ROUND'),
        signed: Attr.int(spec.signed ? 1 : 0),
      },
      { domain: this.opts.quantDomain ?? BREVITAS_DOMAIN, ...(spec.name !== undefined ? { name: spec.name } : {}) },
    );
  }

  /** QONNX BipolarQuant(x, scale): ±scale. */
  bipolarQuant(x: string, scale: number | string, name?: string): string {
    return this.node('BipolarQuant', [x, this.valueOf(scale, undefined, 'Constant')], {}, {
      domain: this.opts.quantDomain ?? BREVITAS_DOMAIN,
      ...(name !== undefined ? { name } : {}),
    });
  }

  /** Gemm(x, w, bias) with w as [out, in] (transB = 1), alpha = beta = 1 — the layout Brevitas writes. */
  gemm(x: string, w: string, bias?: string, name?: string): string {
    return this.node('Gemm', bias ? [x, w, bias] : [x, w], { alpha: Attr.float(1), beta: Attr.float(1), transB: Attr.int(1) }, name ? { name } : {});
  }

  /** Conv(x, w[, bias]) with explicit attributes (2-D by default). */
  conv(
    x: string,
    w: string,
    bias: string | undefined,
    a: { kernelShape: number[]; strides?: number[]; pads?: number[]; dilations?: number[]; group?: number },
    name?: string,
  ): string {
    const r = a.kernelShape.length;
    return this.node(
      'Conv',
      bias ? [x, w, bias] : [x, w],
      {
        dilations: Attr.ints(a.dilations ?? new Array(r).fill(1)),
        group: Attr.int(a.group ?? 1),
        kernel_shape: Attr.ints(a.kernelShape),
        pads: Attr.ints(a.pads ?? new Array(2 * r).fill(0)),
        strides: Attr.ints(a.strides ?? new Array(r).fill(1)),
      },
      name ? { name } : {},
    );
  }

  /** Inference BatchNormalization with named parameter tensors. */
  batchNorm(x: string, scale: string, bias: string, mean: string, variance: string, epsilon = 1e-5, name?: string): string {
    return this.node(
      'BatchNormalization',
      [x, scale, bias, mean, variance],
      { epsilon: Attr.float(epsilon), momentum: Attr.float(0.9), training_mode: Attr.int(0) },
      name ? { name } : {},
    );
  }

  relu(x: string, name?: string): string {
    return this.node('Relu', [x], {}, name ? { name } : {});
  }

  flatten(x: string, axis = 1, name?: string): string {
    return this.node('Flatten', [x], { axis: Attr.int(axis) }, name ? { name } : {});
  }

  /** AveragePool with pads 0, ceil_mode 0 (what torch writes for AvgPool2d). */
  averagePool(x: string, kernelShape: number[], strides: number[] = kernelShape, name?: string): string {
    return this.node(
      'AveragePool',
      [x],
      {
        ceil_mode: Attr.int(0),
        kernel_shape: Attr.ints(kernelShape),
        pads: Attr.ints(new Array(2 * kernelShape.length).fill(0)),
        strides: Attr.ints(strides),
      },
      name ? { name } : {},
    );
  }

  maxPool(x: string, kernelShape: number[], strides: number[] = kernelShape, name?: string): string {
    return this.node(
      'MaxPool',
      [x],
      {
        ceil_mode: Attr.int(0),
        kernel_shape: Attr.ints(kernelShape),
        pads: Attr.ints(new Array(2 * kernelShape.length).fill(0)),
        strides: Attr.ints(strides),
      },
      name ? { name } : {},
    );
  }

  /** Sets a metadata_props entry. */
  setMetadata(key: string, value: string): void {
    this.graph.metadata[key] = value;
  }

  /** Validates (operators, attributes, Quant parameters, defined values, no cycle) and returns the graph. */
  build(): Graph {
    if (this.graph.outputs.length === 0) throw new OnnxFormatError('missing', 'the graph has no output (call output())');
    return validateGraph(this.graph);
  }
}
