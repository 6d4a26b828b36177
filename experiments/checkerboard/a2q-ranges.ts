/**
 * The moonshot rows that `fhenet sweep` cannot express: accumulator-aware QAT (notebook QuantSimpleNet, signed 3-bit
 * input quantizer) with fc1's budget computed on the integer range its inputs really take — the notebook's input
 * quantizer (scale 1/3) maps data in [0, 1] onto 0…3 only — via `accumulatorAware(..., { inputRanges: { fc1: [0, 3] } })`
 * (src/quant/a2q.ts), every layer constrained (fc1, fc2, fc3), optionally with a target that tightens over epochs
 * (`retarget` at the start of each epoch; the last epochs run at the final target, so the final target holds by
 * construction). Same library calls and RunRecord lines as src/sweep/run.ts; own resumable log
 * (results/a2q-ranges.jsonl). run.ts runs these in its child processes.
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as tf from '@tensorflow/tfjs-core';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { accumulatorAware } from '../../src/quant/a2q.js';
import { type RunConfig, type RunRecord, type RunResult, configHash, configLabel, recordFor } from '../../src/sweep/index.js';
import { loadData, quantizedNetResult } from '../../src/sweep/run.js';
import { fit } from '../../src/train/trainer.js';

/** An a2q RunConfig plus fc1's input range and an optional per-epoch target schedule (its last entry = targetBits). */
export type RangeConfig = RunConfig & { fc1Range: [number, number]; targetSchedule?: number[]; lrSchedule?: { kind: 'step'; stepSize: number; gamma: number }; initScale?: number };

export const rangeLabel = (c: RangeConfig) =>
  `${configLabel(c)} fc1 range ${c.fc1Range[0]}…${c.fc1Range[1]}${c.targetSchedule ? ` schedule ${c.targetSchedule.join('→')}` : ''}${c.train.epochs !== 7 ? ` ${c.train.epochs} ep.` : ''}${c.lrSchedule ? ` lr ×${c.lrSchedule.gamma} from epoch ${c.lrSchedule.stepSize + 1}` : ''}${c.initScale ? ` init ×${c.initScale}` : ''}`;

export const rangeRecord = (c: RangeConfig, result: RunRecord['result']): RunRecord => recordFor(configHash(c), c, result, rangeLabel(c));

export async function runRangeConfig(c: RangeConfig): Promise<RunResult> {
  if (c.family !== 'a2q' || c.targetBits === null || c.bits === null || c.input !== 'signed' || c.k !== null) throw new Error('a2q-ranges: an unpruned a2q config, signed input');
  const sched = c.targetSchedule ?? [c.targetBits];
  if (sched[sched.length - 1] !== c.targetBits) throw new Error('a2q-ranges: the schedule must end at targetBits');
  const t0 = Date.now();
  const data = loadData(c.data);
  manualSeed(c.seed);
  const net = new QuantSimpleNet({ hidden: c.hidden, bits: c.bits, scales: 'notebook' });
  // A smaller initialisation: the notebook's U(−1, 1) weights scaled by initScale (before the first projection).
  if (c.initScale !== undefined) for (const l of [net.fc1, net.fc2, net.fc3]) l.weight.assign(tf.mul(l.weight, c.initScale));
  const cons = accumulatorAware(net, { targetBits: sched[0]!, sampleShape: [2], inputRanges: { fc1: c.fc1Range } });
  const at = (epoch: number) => sched[Math.min(epoch, sched.length - 1)]!;
  let epoch = 0;
  await fit(net, { train: data.train }, {
    ...c.train, ...(c.lrSchedule ? { schedule: c.lrSchedule } : {}), seed: c.seed, progress: 'silent', afterStep: cons.afterStep,
    // Tighten at the end of an epoch, before the next one trains (retarget projects at once).
    onEpoch: () => {
      epoch++;
      if (at(epoch) !== cons.targetBits) cons.retarget(at(epoch));
    },
  });
  if (cons.targetBits !== c.targetBits) cons.retarget(c.targetBits); // schedules longer than the run
  // worstCaseBits: the analysis's worst case is over the input quantizer's full signed range; the guarantee is over fc1's 0…3.
  const result = quantizedNetResult(net, data, c.bits, t0);
  // The bound the constraint guarantees (fc1 on its 0…3 range, the others on their ReLU ranges), per layer.
  (result as RunResult & { guaranteedBits?: number }).guaranteedBits = Math.max(...cons.worstCaseBits().map((l) => l.bits));
  net.dispose();
  return result;
}
