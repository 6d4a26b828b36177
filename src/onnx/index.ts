/**
 * fhenet's ONNX layer: graph IR, builder, import (QONNX, QCDQ, float ONNX), clear interpreter, QONNX/QCDQ export,
 * inspection. Pure TypeScript over typed arrays (no TensorFlow.js). See docs/onnx.md.
 */
export * from './errors.js';
export * from './graph.js';
export { GraphBuilder, type QuantSpec, type NodeOptions } from './builder.js';
export { decodeModel, encodeModel, estimateDecodedBytes, DEFAULT_LIMITS, type DecodeLimits, type DecodedModel, type EncodeOptions } from './proto.js';
export {
  importModel,
  importModelWithInfo,
  loadOnnxFile,
  validateGraph,
  qcdqToQonnx,
  quantizerForRange,
  IMPORTABLE_OPS,
  type ImportOptions,
  type ImportInfo,
} from './import.js';
export {
  Interpreter,
  runGraph,
  inferShapes,
  roundHalfEven,
  quantBounds,
  SUPPORTED_OPS,
  SUPPORTED_QONNX_OPS,
  type Feed,
  type RunOptions,
  type RunResult,
  type InterpreterOptions,
} from './interpret.js';
export {
  exportQonnx,
  exportQcdq,
  toQonnxGraph,
  toQcdqGraph,
  fhenetVersion,
  type QonnxExportOptions,
  type QcdqExportOptions,
  type CommonExportOptions,
} from './export.js';
export { inspectGraph, type InspectReport, type QuantizerReport } from './inspect.js';
