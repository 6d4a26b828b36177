/**
 * The moonshot by an accumulator penalty on the input domain (src/quant/accumulator-penalty.ts): the notebook's
 * QuantSimpleNet (constant scales, signed 3-bit input on the 1/3 grid, no pruning) is trained with the QAT recipe,
 * then fine-tuned with λ · Σ_layers mean relu(|acc| − T)² over the 16 quantized inputs the data can produce (0…3 on
 * each axis: the input quantizer maps [−1/6, 7/6) there, and the data lie in [−0.04, 1.04]), λ ramped from 0 over the
 * first fine-tune epoch. At the end of every fine-tune epoch the exact accumulator width over those 16 inputs is
 * measured; the state kept is the one with the best *training* accuracy among those within the target (the test set
 * plays no part). Because the 16 inputs are every input the deployed net can receive from data in that box, the
 * width is exact for it, not an estimate. Same RunRecord lines as src/sweep/run.ts; own resumable log
 * (results/domain-penalty.jsonl). run.ts runs these in its child processes.
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as tf from '@tensorflow/tfjs-core';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { accumulatorPenalty, quantizerGrid } from '../../src/quant/accumulator-penalty.js';
import { type RunConfig, type RunRecord, type RunResult, configHash, recordFor } from '../../src/sweep/index.js';
import { loadData, quantizedNetResult } from '../../src/sweep/run.js';
import { evaluate, fit } from '../../src/train/trainer.js';

export interface PenaltySpec {
  targetBits: number;
  weight: number;
  margin: number;
  /** Integer range of each input feature after the input quantizer (the enumerated domain). */
  domain: [number, number];
  finetuneEpochs: number;
  finetuneLr: number;
}

/** A `qat` RunConfig (notebook scales, no pruning) plus the penalty fine-tune. */
export type PenaltyConfig = RunConfig & { penalty: PenaltySpec };

export type PenaltyResult = RunResult & {
  /** Exact accumulator bits over the domain, per layer, of the kept state. */
  domainBits: { layer: string; min: number; max: number; bits: number }[];
  /** Fine-tune epoch (1-based) whose state was kept; 0 = none met the target (the last state is reported). */
  keptEpoch: number;
  /** Test accuracy and domain bits after the plain QAT phase (before the penalty). */
  before: { testAccuracy: number; domainBits: number };
};

export const penaltyLabel = (c: PenaltyConfig) =>
  `qat h=${c.hidden} ${c.bits}-bit + accumulator penalty on the ${c.penalty.domain[0]}…${c.penalty.domain[1]} input domain, target ${c.penalty.targetBits}, λ ${c.penalty.weight}, ${c.penalty.finetuneEpochs} fine-tune ep.${c.data.source === 'peer' ? ' peer data' : ''}`;

export const penaltyRecord = (c: PenaltyConfig, result: RunRecord['result']): RunRecord => recordFor(configHash(c), c, result, penaltyLabel(c));

export async function runPenaltyConfig(c: PenaltyConfig): Promise<PenaltyResult> {
  if (c.family !== 'qat' || c.bits === null || c.input !== 'signed' || c.k !== null) throw new Error('domain-penalty: an unpruned qat config with the signed input');
  const p = c.penalty;
  const t0 = Date.now();
  const data = loadData(c.data);
  manualSeed(c.seed);
  const net = new QuantSimpleNet({ hidden: c.hidden, bits: c.bits, scales: 'notebook' });
  await fit(net, { train: data.train }, { ...c.train, seed: c.seed, progress: 'silent' });

  const grid = quantizerGrid(2, p.domain[0], p.domain[1], 1 / (2 ** (c.bits - 1) - 1));
  const pen = accumulatorPenalty(net, grid, { targetBits: p.targetBits, weight: p.weight, margin: p.margin });
  grid.dispose();
  const maxBits = () => Math.max(...pen.bits().map((l) => l.bits));
  const before = { testAccuracy: evaluate(net, data.test).accuracy, domainBits: maxBits() };
  const stepsPerEpoch = Math.ceil(data.train.y.length / c.train.batchSize);
  let step = 0;
  let best: { acc: number; epoch: number; state: Map<string, tf.Tensor> } | undefined;
  let epoch = 0;
  await fit(net, { train: data.train }, {
    ...c.train,
    epochs: p.finetuneEpochs,
    lr: p.finetuneLr,
    seed: c.seed + 1000,
    progress: 'silent',
    regularizer: () => tf.mul(pen.loss(), Math.min(1, ++step / stepsPerEpoch)) as tf.Scalar,
    onEpoch: () => {
      epoch++;
      if (maxBits() > p.targetBits) return;
      const acc = evaluate(net, data.train).accuracy;
      if (best && acc <= best.acc) return;
      if (best) for (const t of best.state.values()) t.dispose();
      best = { acc, epoch, state: new Map([...net.stateDict()].map(([k, v]) => [k, tf.keep(v.clone())])) };
    },
  });
  if (best) {
    net.loadStateDict(best.state);
    for (const t of best.state.values()) t.dispose();
  }
  const domainBits = pen.bits();
  pen.dispose();
  const result: PenaltyResult = {
    ...quantizedNetResult(net, data, c.bits, t0),
    domainBits,
    keptEpoch: best?.epoch ?? 0,
    before,
  };
  net.dispose();
  return result;
}
