/**
 * FheModel: a compiled network with the reference's execution modes, all on plain typed arrays (no tfjs):
 * - 'disable': the quantized graph in clear (float interpreter; equals the QAT model);
 * - 'simulate': the integer circuit executed exactly in clear;
 * - 'execute': the circuit on encrypted data, through a `CircuitExecutor` (the TFHE runtime plugs in here).
 * Inputs are float arrays laid out [n, ...graph input shape] (NCHW for images).
 */
import type { Graph } from '../onnx/graph.js';
import { runGraph } from '../onnx/interpret.js';
import { type Circuit, size } from './circuit.js';
import { type Calibration, type CompileOptions, type CompiledCircuit, compileGraph } from './compile.js';
import { type CircuitReport, circuitReport } from './report.js';
import { type CostModel } from './cost.js';
import { dequantizeOutput, quantizeInput, simulate } from './simulate.js';
import { FhenetError } from '../util/errors.js';

export type FheMode = 'disable' | 'simulate' | 'execute';

/** Runs a circuit on encrypted data: quantized input integers in, output integers out (decrypted). */
export interface CircuitExecutor {
  run(circuit: Circuit, inputInts: Float64Array, n: number): Promise<Float64Array>;
}

export interface ForwardResult {
  /** Float outputs [n, ...output shape]. */
  output: Float32Array;
  /** Output integers before dequantization (simulate / execute). */
  outputInts?: Float64Array;
  /** Table inputs that wrapped around (simulate): a sign the calibration set missed part of the range. */
  overflows?: Record<string, number>;
}

export class FheModel {
  constructor(
    readonly graph: Graph,
    readonly compiled: CompiledCircuit,
    public executor?: CircuitExecutor,
  ) {}

  static compile(graph: Graph, calib: Calibration, opts: CompileOptions = {}): FheModel {
    return new FheModel(graph, compileGraph(graph, calib, opts));
  }

  get circuit(): Circuit {
    return this.compiled.circuit;
  }

  get inputShape(): number[] {
    return this.compiled.circuit.input.shape;
  }

  report(cost?: CostModel): CircuitReport {
    return circuitReport(this.compiled, cost);
  }

  async forward(x: ArrayLike<number>, n: number, opts: { fhe: FheMode } = { fhe: 'simulate' }): Promise<ForwardResult> {
    const per = size(this.inputShape);
    if (x.length !== n * per) throw new FhenetError(`forward: ${x.length} values do not make ${n} inputs of shape [${this.inputShape}]`);
    switch (opts.fhe) {
      case 'disable': {
        const name = this.graph.inputs[0]!.name;
        const outName = this.graph.outputs[0]!.name;
        const output = this.chunked(x, n, (part, b) => {
          const data = part instanceof Float32Array ? part : Float32Array.from(part);
          const out = runGraph(this.graph, { [name]: { dims: [b, ...this.inputShape], data } }).outputs.get(outName)!;
          return out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>);
        });
        return { output };
      }
      case 'simulate': {
        const overflows: Record<string, number> = {};
        const outputInts = this.chunked(x, n, (part, b) => {
          const r = simulate(this.circuit, quantizeInput(this.circuit, part), b);
          for (const [k, v] of Object.entries(r.overflows)) overflows[k] = (overflows[k] ?? 0) + v;
          return r.output;
        });
        return { output: dequantizeOutput(this.circuit, outputInts), outputInts, overflows };
      }
      case 'execute': {
        if (!this.executor) throw new FhenetError("forward: fhe 'execute' needs a CircuitExecutor (the TFHE runtime); none is attached");
        const ints = await this.executor.run(this.circuit, quantizeInput(this.circuit, x), n);
        return { output: dequantizeOutput(this.circuit, ints), outputInts: ints };
      }
      default:
        throw new FhenetError(`forward: unknown fhe mode '${String(opts.fhe)}' (disable, simulate or execute)`);
    }
  }

  /**
   * Runs `f` on chunks of at most FORWARD_CHUNK inputs and concatenates the results: clear evaluation keeps every
   * intermediate value of a chunk, so one call on 10,000 CIFAR images would need tens of GB (conv 1 of the CNV alone:
   * 10,000 × 57,600 float64 values). Chunks give the same values: every input is evaluated independently.
   */
  private chunked<T extends Float32Array | Float64Array>(x: ArrayLike<number>, n: number, f: (part: ArrayLike<number>, b: number) => T): T {
    const per = size(this.inputShape);
    if (n <= FORWARD_CHUNK) return f(x, n);
    const parts: T[] = [];
    for (let s = 0; s < n; s += FORWARD_CHUNK) {
      const b = Math.min(FORWARD_CHUNK, n - s);
      const part = ArrayBuffer.isView(x) ? (x as unknown as Float32Array).subarray(s * per, (s + b) * per) : Array.prototype.slice.call(x, s * per, (s + b) * per);
      parts.push(f(part, b));
    }
    const out = new (parts[0]!.constructor as { new (n: number): T })(parts.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** Inputs per clear-evaluation chunk (the compiler's calibration uses the same batch). */
const FORWARD_CHUNK = 256;
