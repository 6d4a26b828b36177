/**
 * The guide's pruned float net ("PrunedSimpleNet" in the older guide, "PrunedQuantNet(SimpleNet)" in the newer one:
 * a float SimpleNet whose nn.Linear layers get the k-non-zero pruning during training), then 3-bit PTQ of it, as in
 * the guide's table (fp32 82.50 / 88.06 %, 3-bit 57.74 / 57.82 %, 6.6 / 6.8 mean accumulator bits for k = 10 / 30).
 *
 * `fhenet sweep` has no pruned-float family (its `ptq` family takes no `k`), so this file runs those configurations
 * with the same library calls as src/sweep/run.ts plus the pruning, and writes the same RunRecord lines to their own
 * resumable log (results/pruned-float.jsonl). run.ts spawns it as `concurrency` child processes:
 *   npx tsx experiments/checkerboard/pruned-float.ts <configs.json> <log.jsonl>
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as fs from 'node:fs';
import { Command } from 'commander';
import { initBackend } from '../../src/backend/index.js';
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import { SimpleNet } from '../../src/models/checkerboard.js';
import { manualSeed } from '../../src/nn/init.js';
import { pruneKNonZero, removePruning } from '../../src/prune/index.js';
import { quantizePostTraining } from '../../src/ptq/module-ptq.js';
import { type RunConfig, type RunRecord, type RunResult, configHash, recordFor } from '../../src/sweep/index.js';
import { accumulatorFields, loadData } from '../../src/sweep/run.js';
import { evaluate, fit } from '../../src/train/trainer.js';

export async function runPrunedFloatPtq(c: RunConfig): Promise<RunResult> {
  if (c.family !== 'ptq' || c.k === null || c.bits === null) throw new Error('pruned-float: a ptq config with k and bits');
  const t0 = Date.now();
  const data = loadData(c.data);
  manualSeed(c.seed);
  const net = new SimpleNet(c.hidden);
  pruneKNonZero(net, c.k, { strict: c.strict });
  await fit(net, { train: data.train }, { ...c.train, seed: c.seed, progress: 'silent' });
  removePruning(net);
  const floatAccuracy = evaluate(net, data.test).accuracy;
  const q = quantizePostTraining(net, data.train, { bits: c.bits });
  net.dispose();
  const report = analyzeAccumulators(q, data.train);
  const result: RunResult = {
    testAccuracy: evaluate(q, data.test).accuracy,
    trainAccuracy: evaluate(q, data.train).accuracy,
    floatAccuracy,
    ...accumulatorFields(report),
    ceiling: null,
    seconds: (Date.now() - t0) / 1000,
  };
  q.dispose();
  return result;
}

export function readLog(file: string): Map<string, RunRecord> {
  const out = new Map<string, RunRecord>();
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    try {
      const r = JSON.parse(line) as RunRecord;
      if (r?.hash && r.result && !out.has(r.hash)) out.set(r.hash, r);
    } catch {
      // empty or torn line
    }
  }
  return out;
}

if (process.argv[1]?.endsWith('pruned-float.ts')) {
  const program: Command = new Command('experiments/checkerboard/pruned-float.ts')
    .description("the guide's pruned float nets, then 3-bit PTQ: run the configurations of a JSON file, appending RunRecord lines to a log")
    .argument('<configs.json>', 'JSON file holding an array of ptq RunConfigs (each with k and bits)')
    .argument('<log.jsonl>', 'resumable run log to append one RunRecord line per configuration to')
    .parse();
  const [configsFile, log] = program.args as [string, string];
  let configs: RunConfig[];
  try {
    configs = JSON.parse(fs.readFileSync(configsFile, 'utf8')) as RunConfig[];
  } catch (e) {
    program.error(`error: <configs.json> '${configsFile}': ${(e as Error).message}`);
  }
  if (!Array.isArray(configs)) program.error(`error: <configs.json> '${configsFile}' must hold a JSON array of RunConfigs`);
  const info = await initBackend();
  for (const c of configs) {
    const r = await runPrunedFloatPtq(c);
    fs.appendFileSync(log, `${JSON.stringify(recordFor(configHash(c), c, { ...r, backend: info.choice } as RunRecord['result']))}\n`);
    process.stdout.write(`pruned-float k=${c.k} seed ${c.seed}${c.data.source === 'peer' ? ' peer' : ''}: ${(100 * r.floatAccuracy!).toFixed(1)}% float, ${(100 * r.testAccuracy).toFixed(1)}% 3-bit, ${r.accumulatorBits} bits\n`);
  }
}
