/**
 * The 3-bit PTQ rows with one float training per seed and several post-training quantizations of the same float net
 * (src/ptq/module-ptq.ts): the reference-faithful default (Concrete ML's min/max calibration on the quantized network's
 * values, per-tensor symmetric weights, the input's asymmetric scale), the same with the reference's 5-bit output
 * quantizer applied to the logits (`quantizeOutputs`), the former fhenet calibration on the float network's values,
 * and fhenet's own calibrations (MSE-optimal clipping of activations and weights, per-channel weights, percentile).
 * Same library calls and RunRecord lines as src/sweep/run.ts; own resumable log (results/ptq-calib.jsonl), one line
 * per (configuration, variant). run.ts runs these in its child processes. With a `k`, the float net is the guide's
 * pruned float net (k non-zero per neuron on average, pruned during training), as pruned-float.ts did before.
 */
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import { SimpleNet } from '../../src/models/checkerboard.js';
import { pruneKNonZero, removePruning } from '../../src/prune/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { type PtqOptions, quantizeOutputs, quantizePostTrainingWithReport } from '../../src/ptq/module-ptq.js';
import { type RunConfig, type RunRecord, type RunResult, configHash, configLabel, recordFor } from '../../src/sweep/index.js';
import { accumulatorFields, loadData } from '../../src/sweep/run.js';
import { argmaxRows, evaluate, fit, predict } from '../../src/train/trainer.js';

export const PTQ_VARIANTS: Record<string, { opts: Omit<PtqOptions, 'bits'>; outputs?: boolean; name: string }> = {
  reference: { opts: {}, name: 'reference-faithful (min/max on the quantized net, per-tensor weights)' },
  'reference+out5': { opts: {}, outputs: true, name: 'reference-faithful + the 5-bit output quantizer on the logits' },
  'float-calib': { opts: { sequential: false }, name: 'min/max on the float net (the former fhenet calibration)' },
  mse: { opts: { calibration: 'mse', weightCalibration: 'mse' }, name: 'fhenet: MSE-optimal clipping (activations and weights)' },
  'mse-pc': { opts: { calibration: 'mse', weightCalibration: 'mse', perChannelWeights: true }, name: 'fhenet: MSE-optimal clipping, per-channel weights' },
  search: { opts: { search: {} }, name: 'fhenet: reference calibration, then accuracy-driven search of the clipping ranges' },
  'mse-search': { opts: { calibration: 'mse', weightCalibration: 'mse', search: {} }, name: 'fhenet: MSE-optimal clipping, then accuracy-driven search' },
  'search-bits': { opts: { search: { maxAccumulatorBits: 'initial' } }, name: 'fhenet: reference calibration, then the accuracy-driven search kept within the reference calibration\'s accumulator width' },
  'mse-pc-search': { opts: { calibration: 'mse', weightCalibration: 'mse', perChannelWeights: true, search: {} }, name: 'fhenet: MSE-optimal clipping, per-channel weights, then accuracy-driven search of the activation ranges' },
  'p99.9-pc': { opts: { calibration: { percentile: 99.9 }, weightCalibration: 'mse', perChannelWeights: true }, name: 'fhenet: 99.9th-percentile activations, MSE weights, per-channel' },
};

export type CalibConfig = RunConfig & { ptqVariant: string };
export const calibLabel = (c: CalibConfig) => `${configLabel(c)} ptq ${c.ptqVariant}`;
export const calibRecord = (c: CalibConfig, result: RunRecord['result']): RunRecord => recordFor(configHash(c), c, result, calibLabel(c));

/** Trains the float net of `base` once and quantizes it with every variant; one result per variant. */
export async function runPtqVariants(base: RunConfig, variants: string[]): Promise<Map<string, RunResult>> {
  if (base.family !== 'ptq' || base.bits === null) throw new Error('ptq-calib: a ptq config');
  const t0 = Date.now();
  const data = loadData(base.data);
  manualSeed(base.seed);
  const net = new SimpleNet(base.hidden);
  // The guide's pruned float net (PrunedSimpleNet / "PrunedQuantNet"): k-non-zero pruning during training.
  if (base.k !== null) pruneKNonZero(net, base.k, { strict: base.strict });
  await fit(net, { train: data.train }, { ...base.train, seed: base.seed, progress: 'silent' });
  if (base.k !== null) removePruning(net);
  const floatAccuracy = evaluate(net, data.test).accuracy;
  const trainSeconds = (Date.now() - t0) / 1000;
  const out = new Map<string, RunResult>();
  for (const v of variants) {
    const spec = PTQ_VARIANTS[v];
    if (!spec) throw new Error(`ptq-calib: unknown variant '${v}'`);
    const t1 = Date.now();
    const { model: q, quantizers } = quantizePostTrainingWithReport(net, data.train, { bits: base.bits, ...spec.opts });
    let testAccuracy = evaluate(q, data.test).accuracy;
    let trainAccuracy = evaluate(q, data.train).accuracy;
    if (spec.outputs) {
      // model_outputs = max(5, n_bits), calibrated on the training set's logits.
      const ob = Math.max(5, base.bits);
      const calib = predict(q, data.train);
      const acc = (d: typeof data.test) => {
        const pred = argmaxRows(quantizeOutputs(predict(q, d), calib, ob), d.numClasses);
        let ok = 0;
        for (let i = 0; i < pred.length; i++) if (pred[i] === d.y[i]) ok++;
        return ok / pred.length;
      };
      testAccuracy = acc(data.test);
      trainAccuracy = acc(data.train);
    }
    const report = analyzeAccumulators(q, data.train);
    const r: RunResult & { inputScale?: number; inputZeroPoint?: number } = {
      testAccuracy,
      trainAccuracy,
      floatAccuracy,
      ...accumulatorFields(report),
      ceiling: null,
      seconds: trainSeconds + (Date.now() - t1) / 1000,
    };
    r.inputScale = quantizers[0]?.scale;
    r.inputZeroPoint = quantizers[0]?.referenceZeroPoint;
    out.set(v, r);
    q.dispose();
  }
  net.dispose();
  return out;
}

// Probe: npx tsx experiments/checkerboard/ptq-calib.ts [hidden] [seeds e.g. 0,1,2] [variants]   (defaults: 10, 0, all)
if (process.argv[1]?.endsWith('ptq-calib.ts')) {
  const { Argument, Command, InvalidArgumentError } = await import('commander');
  const { intListOption, intOption } = await import('../../src/cli/options.js');
  const program = new Command('experiments/checkerboard/ptq-calib.ts')
    .description('probe: train float SimpleNets (25 epochs, Adam) and print each 3-bit PTQ variant, one JSON line per (seed, variant)')
    .argument('[hidden]', 'hidden width', intOption('hidden', 1), 10)
    .addArgument(
      new Argument('[seeds]', 'comma-separated seeds')
        .argParser(intListOption('seeds', 0))
        .default([0], '0'),
    )
    .argument('[variants]', `comma-separated PTQ variants (default: all: ${Object.keys(PTQ_VARIANTS).join(', ')})`, (v: string) => {
      const vs = v.split(',');
      const bad = vs.filter((x) => !(x in PTQ_VARIANTS));
      if (bad.length) throw new InvalidArgumentError(`unknown variant(s) ${bad.join(', ')}; known: ${Object.keys(PTQ_VARIANTS).join(', ')}`);
      return vs;
    })
    .parse();
  const [hidden, seeds, variantsArg] = program.processedArgs as [number, number[], string[] | undefined];
  const variants = variantsArg ?? Object.keys(PTQ_VARIANTS);
  const { initBackend } = await import('../../src/backend/index.js');
  await initBackend();
  for (const seed of seeds) {
    const base: RunConfig = { family: 'ptq', hidden, bits: 3, k: null, strict: false, targetBits: null, input: 'signed', seed, data: { source: 'generated', seed: 42 }, train: { epochs: 25, batchSize: 32, lr: 0.005, optimizer: 'adam', weightDecay: 0 } };
    const res = await runPtqVariants(base, variants);
    for (const [v, r] of res) console.log(JSON.stringify({ hidden, seed, v, float: r.floatAccuracy, test: r.testAccuracy, bits: r.accumulatorBits, worst: r.worstCaseBits, s: +r.seconds.toFixed(1) }));
  }
}
