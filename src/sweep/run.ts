/**
 * One sweep run: build the checkerboard data and network of a `RunConfig`, prune / constrain / train / quantize it,
 * and measure test accuracy and accumulator bits. Runs in a worker thread or in the calling thread.
 *
 * Accumulator bits are measured on the training set (the reference's compile input set) with the analysis of
 * src/analysis; the worst-case and L1 bounds come with them.
 */
import { generateCheckerboard, loadPeerCheckerboard, quantizedInputCeiling } from '../../datasets/checkerboard/index.js';
import { type AccumulatorReport, analyzeAccumulators } from '../analysis/accumulator.js';
import { QuantSimpleNet, SimpleNet } from '../models/checkerboard.js';
import { manualSeed } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import { pruneKNonZero, removePruning, sparsityReport } from '../prune/index.js';
import { accumulatorAware } from '../quant/a2q.js';
import { quantizePostTraining } from '../ptq/module-ptq.js';
import { type Split, head } from '../train/dataset.js';
import { evaluate, fit } from '../train/trainer.js';
import { ConfigError } from '../util/errors.js';
import type { DataSpec, RunConfig } from './config.js';
import { notebookNetUnsignedInput } from './models.js';

export interface RunResult {
  testAccuracy: number;
  trainAccuracy: number;
  /** `ptq`: accuracy of the float net before quantization. */
  floatAccuracy: number | null;
  /** Model accumulator bits observed on the training set (null for float nets). */
  accumulatorBits: number | null;
  worstCaseBits: number | null;
  l1Bits: number | null;
  layerBits: { layer: string; observed: number; worstCase: number; max: number }[];
  /** Non-zero inputs per neuron, max over layers with fan-in > 2. */
  maxNonZeroPerNeuron: number;
  /** Accuracy ceiling of the notebook's input grid on the test set (quantized families with constant scales). */
  ceiling: number | null;
  seconds: number;
}

/** The accumulator columns of a run result, from the analysis of a quantized net. */
export function accumulatorFields(report: AccumulatorReport): Pick<RunResult, 'accumulatorBits' | 'worstCaseBits' | 'l1Bits' | 'layerBits' | 'maxNonZeroPerNeuron'> {
  return {
    accumulatorBits: report.bits,
    worstCaseBits: report.worstCaseBits,
    l1Bits: report.l1Bits,
    layerBits: report.layers.map((l) => ({ layer: l.layer, observed: l.observed.bits, worstCase: l.worstCase.bits, max: l.observed.max })),
    maxNonZeroPerNeuron: Math.max(0, ...report.layers.filter((l) => l.fanIn > 2).map((l) => l.nonZeroPerNeuron.max)),
  };
}

/**
 * The result of a trained notebook-scale quantized checkerboard net (constant 1/(2^(b−1)−1) input grid): accuracies,
 * accumulators on the training set, the data's ceiling on that grid. `t0`: when the run started (ms).
 */
export function quantizedNetResult(net: Module, data: Split, bits: number, t0: number): RunResult {
  return {
    testAccuracy: evaluate(net, data.test).accuracy,
    trainAccuracy: evaluate(net, data.train).accuracy,
    floatAccuracy: null,
    ...accumulatorFields(analyzeAccumulators(net, data.train)),
    ceiling: quantizedInputCeiling(data.test, 1 / (2 ** (bits - 1) - 1)),
    seconds: (Date.now() - t0) / 1000,
  };
}

const cache = new Map<string, Split>();

export function loadData(d: DataSpec): Split {
  const key = JSON.stringify(d);
  let s = cache.get(key);
  if (!s) {
    const full = d.source === 'peer' ? loadPeerCheckerboard() : generateCheckerboard({ seed: d.seed });
    s = {
      train: d.trainSamples ? head(full.train, d.trainSamples) : full.train,
      test: d.testSamples ? head(full.test, d.testSamples) : full.test,
    };
    cache.set(key, s);
  }
  return s;
}

export async function runConfig(c: RunConfig): Promise<RunResult> {
  const t0 = Date.now();
  const data = loadData(c.data);
  manualSeed(c.seed);
  const fitOpts = { ...c.train, seed: c.seed, progress: 'silent' as const };
  let model: Module;
  let floatAccuracy: number | null = null;
  if (c.family === 'float' || c.family === 'ptq') {
    const net = new SimpleNet(c.hidden);
    if (c.input !== 'signed') throw new ConfigError(`family ${c.family}: 'input' applies to the QAT families`);
    await fit(net, { train: data.train }, fitOpts);
    model = net;
    if (c.family === 'ptq') {
      floatAccuracy = evaluate(net, data.test).accuracy;
      model = quantizePostTraining(net, data.train, { bits: c.bits! });
      net.dispose();
    }
  } else {
    const net =
      c.input === 'unsigned'
        ? notebookNetUnsignedInput(c.hidden, c.bits!)
        : new QuantSimpleNet({ hidden: c.hidden, bits: c.bits!, scales: c.family === 'qat-brevitas' ? 'brevitas' : 'notebook' });
    if (c.k !== null) pruneKNonZero(net, c.k, { strict: c.strict });
    const constraint = c.family === 'a2q' ? accumulatorAware(net, { targetBits: c.targetBits!, sampleShape: [2] }) : undefined;
    await fit(net, { train: data.train }, { ...fitOpts, afterStep: constraint?.afterStep });
    removePruning(net);
    model = net;
  }
  const testAccuracy = evaluate(model, data.test).accuracy;
  const trainAccuracy = evaluate(model, data.train).accuracy;
  const quantized = c.family !== 'float';
  const report = quantized ? analyzeAccumulators(model, data.train) : undefined;
  const result: RunResult = {
    testAccuracy,
    trainAccuracy,
    floatAccuracy,
    ...(report
      ? accumulatorFields(report)
      : // float nets: no accumulator; non-zero inputs per neuron of the float weights
        { accumulatorBits: null, worstCaseBits: null, l1Bits: null, layerBits: [], maxNonZeroPerNeuron: Math.max(0, ...sparsityReport(model).filter((r) => r.fanIn > 2).map((r) => r.nonZeroPerNeuron.max)) }),
    ceiling: c.family === 'qat' || c.family === 'a2q' ? quantizedInputCeiling(data.test, 1 / (2 ** (c.bits! - 1) - 1)) : null,
    seconds: (Date.now() - t0) / 1000,
  };
  model.dispose();
  return result;
}
