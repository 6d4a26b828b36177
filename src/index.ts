/**
 * fhenet's public API (the training side, which loads TensorFlow.js). The tfjs-free parts have their own entry
 * points so a server never loads tfjs: `fhenet/onnx`, `fhenet/compiler`.
 */
export { initBackend, describeBackend, type BackendChoice, type BackendInfo } from './backend/index.js';
export { Module } from './nn/module.js';
export * from './nn/layers.js';
export { QuantTensor, type Activation, valueOf } from './nn/quant-tensor.js';
export { manualSeed } from './nn/init.js';
export { saveModule, loadModule } from './nn/checkpoint.js';
export { savePackedModule, loadPackedModule, encodePackedModule, decodePackedModule } from './quant/packed-checkpoint.js';
export { summarize, formatSummary } from './nn/summary.js';
export { IntQuantizer, type QuantizerOptions } from './quant/quantizer.js';
export { QuantIdentity, QuantReLU, QuantLinear, QuantConv2d } from './quant/layers.js';
export { fit, evaluate, predict, type FitOptions, type EpochMetrics } from './train/trainer.js';
export { SGD, Adam, AdamW } from './train/optim.js';
export { crossEntropy } from './train/loss.js';
export {
  fitCausalLM, evaluatePerplexity, type CausalLMFitOptions, type LMLogEntry, type PerplexityOptions, type PerplexityResult, type TokenIds,
} from './train/causal-lm.js';
export type { Dataset, Split } from './train/dataset.js';
export { SimpleNet, QuantSimpleNet } from './models/checkerboard.js';
export { CNV, createCnv, FashionCnn, type CnvVariant, type CnvOptions, type FashionCnnOptions } from './models/cnv.js';
export {
  pruneL1Unstructured, pruneKNonZero, removePruning, sparsityReport, formatSparsity,
  type PruneAmount, type KNonZeroOptions, type LayerSparsity,
} from './prune/index.js';
export {
  analyzeAccumulators, formatAccumulatorReport, type AccumulatorReport, type LayerAccumulator, type AnalyzeOptions,
} from './analysis/accumulator.js';
export { accumulatorAware, neuronBudget, AccumulatorConstraint, type AccumulatorTarget } from './quant/a2q.js';
export { accumulatorPenalty, quantizerGrid, type AccumulatorPenalty, type AccumulatorPenaltyOptions } from './quant/accumulator-penalty.js';
export { quantizePostTraining, QuantChain, type PtqOptions } from './quant/ptq.js';
export { runSweep, parseSweepSpec, type SweepSpec, type SweepOptions, type SweepOutcome } from './sweep/index.js';
export { moduleToGraph } from './export/to-graph.js';
export * from './compiler/index.js';
export { FhenetError, ShapeError, ConfigError, StateDictError } from './util/errors.js';
export { Embedding } from './nn/embedding.js';
export { LayerNorm } from './nn/layer-norm.js';
export { GELU, activationFromName } from './nn/activations.js';
export { Conv1D } from './nn/conv1d.js';
export { Dropout } from './nn/dropout.js';
export { ModuleList } from './nn/module-list.js';
export * from './transformers/index.js';
