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
        const data = x instanceof Float32Array ? x : Float32Array.from(x);
        const out = runGraph(this.graph, { [name]: { dims: [n, ...this.inputShape], data } }).outputs.get(this.graph.outputs[0]!.name)!;
        return { output: out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>) };
      }
      case 'simulate': {
        const q = quantizeInput(this.circuit, x);
        const r = simulate(this.circuit, q, n);
        return { output: dequantizeOutput(this.circuit, r.output), outputInts: r.output, overflows: r.overflows };
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
}
