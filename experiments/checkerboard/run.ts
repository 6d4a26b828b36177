/**
 * Reproduces the checkerboard tables of the reference guide (shared/reference/concrete-ml.md §1) with fhenet and
 * writes experiments/checkerboard/RESULTS.md (plus results/: the resumable run log, CSV, JSON, markdown, SVG).
 *
 *   npx tsx experiments/checkerboard/run.ts [--seeds 10] [--peer-seeds 5] [--concurrency 2] [--out <dir>]
 *
 * Interrupted runs resume: finished runs are read back from results/runs.jsonl.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { generateCheckerboard, loadPeerCheckerboard, quantizedInputCeiling } from '../../datasets/checkerboard/index.js';
import { type ConfigSummary, type Stat, fmtStat, parseSweepSpec, runSweep } from '../../src/sweep/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const seeds = arg('seeds', 10);
const peerSeeds = arg('peer-seeds', 5);
const concurrency = arg('concurrency', 2);
const outIdx = process.argv.indexOf('--out');
const outDir = outIdx > 0 ? process.argv[outIdx + 1]! : path.join(here, 'results');

// Batch 32 with lr 5e-3 (AdamW, 7 epochs): the reference trains at batch 1, lr 1e-3 (66,500 steps); at batch 32 lr
// 1e-3 (2,079 steps) under-trains, 5e-3 reaches the data's ceiling (measured with experiments/checkerboard/probe.ts).
const train = { epochs: 7, batchSize: 32, lr: 0.005 };
const peer = { source: 'peer' };
const rawSpec = {
  name: 'checkerboard',
  concurrency,
  data: { source: 'generated', seed: 42 },
  train,
  grids: [
    { family: 'ptq', hidden: [10, 30, 100], bits: [3], seeds },
    { family: 'qat', hidden: [100], bits: [3], k: [30, 20], seeds },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [6, 5], seeds },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [5], input: ['unsigned'], seeds },
    { family: 'ptq', hidden: [100], bits: [3], seeds: peerSeeds, data: peer },
    { family: 'qat', hidden: [100], bits: [3], k: [20], seeds: peerSeeds, data: peer },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [6], seeds: peerSeeds, data: peer },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [5], input: ['unsigned'], seeds: peerSeeds, data: peer },
    { family: 'qat-brevitas', hidden: [100], bits: [3], k: [10, 30], seeds },
  ],
};

const info = await initBackend();
const t0 = Date.now();
const spec = parseSweepSpec(rawSpec);
const res = await runSweep(spec, { outDir, title: 'checkerboard: test accuracy vs accumulator bits (3-bit nets)' });
const wall = (Date.now() - t0) / 1000;

const gen = generateCheckerboard({ seed: 42 });
const pd = loadPeerCheckerboard();
const ceil = {
  genTrain: quantizedInputCeiling(gen.train),
  genTest: quantizedInputCeiling(gen.test),
  peerTrain: quantizedInputCeiling(pd.train),
  peerTest: quantizedInputCeiling(pd.test),
};

const by = new Map(res.summaries.map((s) => [s.label, s]));
const get = (label: string): ConfigSummary | undefined => by.get(label);
const pct = (s: Stat | null | undefined) => (s ? fmtStat(s) : 'n/a');
const bits = (s: Stat | null | undefined) => (s ? fmtStat(s, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1))) : 'n/a');
const verdict = (s: ConfigSummary | undefined, refAcc: number, refBits: number | null) => {
  if (!s) return 'n/a';
  const accOk = 100 * s.testAccuracy.mean >= refAcc;
  const bitsOk = refBits === null || (s.accumulatorBits !== null && s.accumulatorBits.mean <= refBits);
  return accOk && bitsOk ? 'meets' : `misses (${accOk ? '' : 'accuracy'}${!accOk && !bitsOk ? ', ' : ''}${bitsOk ? '' : 'bits'})`;
};

const rows: string[] = [];
for (const h of [10, 30, 100]) {
  const s = get(`ptq h=${h} 3-bit`);
  const ref = { 10: [68.7, 56.44, 6.6], 30: [83.32, 55.54, 6.9], 100: [88.06, 56.5, 7.4] }[h]!;
  rows.push(`| float SimpleNet h=${h} | ${ref[0]!.toFixed(2)} % | ${pct(s?.floatAccuracy)} | — | — |`);
  rows.push(`| 3-bit PTQ of it | ${ref[1]!.toFixed(2)} % at ${ref[2]} bits | ${pct(s?.testAccuracy)} | ${bits(s?.accumulatorBits)} | ${bits(s?.worstCaseBits)} |`);
}
const qatRow = (name: string, label: string, ref: string, refAcc: number, refBits: number | null) => {
  const s = get(label);
  rows.push(`| ${name} | ${ref} | ${pct(s?.testAccuracy)} | ${bits(s?.accumulatorBits)} | ${bits(s?.worstCaseBits)} | ${verdict(s, refAcc, refBits)} |`);
};
const qatRows: string[] = [];
const pushQat = (...a: Parameters<typeof qatRow>) => {
  const before = rows.length;
  qatRow(...a);
  qatRows.push(rows.splice(before, 1)[0]!);
};
pushQat('3-bit QAT + pruning h=100, k=30 (guide)', 'qat h=100 3-bit k=30', '95.4 % at 7 bits', 95.4, 7);
pushQat('3-bit QAT + pruning h=100, k=20 (notebook)', 'qat h=100 3-bit k=20', '95.6 % (its exported run: 8 bits)', 95.6, 8);
pushQat('pruned QAT "PrunedQuantNet" h=100, k=10 (guide; Brevitas default quantizers)', 'qat-brevitas h=100 3-bit k=10', '82.50 % at 6.6 bits', 82.5, 6.6);
pushQat('pruned QAT "PrunedQuantNet" h=100, k=30 (guide; Brevitas default quantizers)', 'qat-brevitas h=100 3-bit k=30', '88.06 % at 6.8 bits', 88.06, 6.8);
pushQat('accumulator-aware QAT h=100, target 6 bits', 'a2q h=100 3-bit target 6', 'none (fhenet)', 0, 6);
pushQat('accumulator-aware QAT h=100, target 5 bits', 'a2q h=100 3-bit target 5', 'none (fhenet)', 0, 5);
pushQat('accumulator-aware QAT h=100, target 5 bits, unsigned input quantizer', 'a2q h=100 3-bit target 5 unsigned input', 'none (fhenet)', 0, 5);
const peerRows: string[] = [];
for (const [name, label] of [
  ['float SimpleNet h=100 → 3-bit PTQ', 'ptq h=100 3-bit peer data'],
  ['3-bit QAT + pruning h=100, k=20', 'qat h=100 3-bit k=20 peer data'],
  ['accumulator-aware QAT h=100, target 6', 'a2q h=100 3-bit target 6 peer data'],
  ['accumulator-aware QAT h=100, target 5, unsigned input', 'a2q h=100 3-bit target 5 unsigned input peer data'],
] as const) {
  const s = get(label);
  peerRows.push(`| ${name} | ${s?.runs ?? 0} | ${pct(s?.floatAccuracy)} | ${pct(s?.testAccuracy)} | ${bits(s?.accumulatorBits)} | ${bits(s?.worstCaseBits)} |`);
}

const cpu = os.cpus();
const discussionFile = path.join(here, 'discussion.md');
const discussion = fs.existsSync(discussionFile) ? fs.readFileSync(discussionFile, 'utf8') : '';
const relOut = path.relative(here, outDir) || '.';
const md = `# Checkerboard: pruning, post-training quantization and accumulator bits

Generated by \`experiments/checkerboard/run.ts\`; regenerate with

    npx tsx experiments/checkerboard/run.ts --seeds ${seeds} --peer-seeds ${peerSeeds} --concurrency ${concurrency}

(finished runs are reused from \`${relOut}/runs.jsonl\`; delete that folder to start over).

- Machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}; shared with other jobs while it ran.
- Backend: ${describeBackend(info)}; ${concurrency} piscina worker threads, each with its own backend.
- Wall time of this invocation: ${wall.toFixed(0)} s (${res.ran} runs now, ${res.resumed} reused from the log); ${res.records.length} runs in all, ${res.records.reduce((s, r) => s + r.result.seconds, 0).toFixed(0)} s of run time summed.
- Data: the reference definition (100 × 100 grid, XOR of rint(3x), rint(3y) cells, N(0, 0.01²) noise, 9,500 / 500 split); "generated" = fhenet's own draw with data seed 42 for every run, "peer" = the exact arrays of the Brevitas reference runs (shared/fixtures/brevitas/checkerboard.json). Seeds vary initialisation and shuffling.
- Training: AdamW (weight decay 0.01), cross-entropy, ${train.epochs} epochs, batch ${train.batchSize}, lr ${train.lr}. The reference uses batch 1 at lr 1e-3 for 7 epochs (66,500 steps); fhenet takes 2,079 steps of batch 32 with a 5× larger learning rate.
- Accumulator bits: the signed bit width of Σ w_int·x_int (bias excluded) over the training set, max over layers (docs/accumulators.md); "worst case" is the bound over every input the input quantizers can produce. Seeds: ${seeds} per configuration on generated data, ${peerSeeds} on the peer arrays. Every cell: mean (min–max).

## Accuracy ceiling of the data

The notebook's input quantizer (3-bit, scale 1/3) maps each point to a cell of a 4 × 4 grid; the best any classifier of the quantized input can do is the cell's majority label:

| data | train | test |
|---|---|---|
| generated (seed 42) | ${(100 * ceil.genTrain).toFixed(2)} % | ${(100 * ceil.genTest).toFixed(2)} % |
| peer arrays | ${(100 * ceil.peerTrain).toFixed(3)} % | ${(100 * ceil.peerTest).toFixed(2)} % |

(The PTQ and "PrunedQuantNet" rows use calibrated/learned input scales, not the 1/3 grid, so this ceiling does not bind them.)

## The reference table, reproduced (generated data, ${seeds} seeds)

| row | reference | fhenet test accuracy % | accumulator bits | worst-case bits |
|---|---|---|---|---|
${rows.join('\n')}

| QAT row | reference | fhenet test accuracy % | accumulator bits | worst-case bits | target (≥ accuracy at ≤ bits) |
|---|---|---|---|---|---|
${qatRows.join('\n')}

## Main configurations on the peer arrays (${peerSeeds} seeds)

| configuration | runs | float % | test accuracy % | accumulator bits | worst-case bits |
|---|---|---|---|---|---|
${peerRows.join('\n')}

## Plot

![test accuracy against accumulator bits](${relOut}/plot.svg)

## Every configuration

${fs.readFileSync(res.files.md, 'utf8')}
Per-run numbers: \`${relOut}/results.csv\` / \`${relOut}/results.json\`.

${discussion}`;
fs.writeFileSync(path.join(here, 'RESULTS.md'), md);
process.stdout.write(`${md}\n`);
