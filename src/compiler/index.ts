/** The FHE compiler's public API (no TensorFlow.js). */
export { compileGraph, type CompileOptions, type Calibration, type CompiledCircuit } from './compile.js';
export { type RoundingOption, roundingSpec } from './rounding.js';
export { FheModel, type FheMode, type CircuitExecutor, type ForwardResult } from './fhe-model.js';
export { circuitReport, formatReport, type CircuitReport } from './report.js';
export { compareModes, formatCompare, type CompareResult } from './compare.js';
export { type Circuit, serializeCircuit, deserializeCircuit, CIRCUIT_FORMAT } from './circuit.js';
export { simulate, quantizeInput, dequantizeOutput } from './simulate.js';
export { CostModel } from './cost.js';
export { CompileError } from './errors.js';
export { quantizeFloatGraph, hasQuantizers, type PtqOptions } from './graph-ptq.js';
