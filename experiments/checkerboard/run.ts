/**
 * Reproduces the checkerboard tables of the reference guide (shared/reference/concrete-ml.md §1) with fhenet and
 * writes experiments/checkerboard/RESULTS.md (plus results/: the resumable run log, CSV, JSON, markdown, SVG).
 *
 *   npx tsx experiments/checkerboard/run.ts [--seeds 10] [--peer-seeds 10] [--concurrency 2] [--out <dir>]
 *                                            [--only ptq,range,penalty,sweep] [--report-only]
 *
 * Interrupted runs resume: finished runs are read back from results/runs.jsonl.
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { intOption } from '../../src/cli/options.js';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { generateCheckerboard, loadPeerCheckerboard, quantizedInputCeiling } from '../../datasets/checkerboard/index.js';
import { type ConfigSummary, type RunConfig, type RunRecord, type Stat, RUNS_FILE, configHash, expandSweep, fmtStat, parseSweepSpec, readRunLog, recordFor, runSweep, summarize, toCsv, toMarkdown, toSvg } from '../../src/sweep/index.js';
import { readLog } from './pruned-float.js';
import { type CalibConfig, PTQ_VARIANTS, calibLabel, calibRecord, runPtqVariants } from './ptq-calib.js';
import { constructedNet } from './moonshot-construct.js';
import { type RangeConfig, rangeLabel, rangeRecord, runRangeConfig } from './a2q-ranges.js';
import { type PenaltyConfig, type PenaltyResult, penaltyLabel, penaltyRecord, runPenaltyConfig } from './domain-penalty.js';
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import { evaluate } from '../../src/train/trainer.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const GROUPS = ['ptq', 'range', 'penalty', 'sweep'];
const opts = new Command('experiments/checkerboard/run.ts')
  .description("reproduce the reference guide's checkerboard tables (resumable runs) and write experiments/checkerboard/RESULTS.md")
  .option('--seeds <n>', 'seeds per configuration on generated data', intOption('--seeds', 1), 10)
  .option('--peer-seeds <n>', 'seeds per configuration on the peer arrays', intOption('--peer-seeds', 1), 10)
  .option('--concurrency <n>', 'child processes training in parallel (one thread each)', intOption('--concurrency', 1), 2)
  .option('--out <dir>', 'results folder: resumable run logs, CSV, JSON, markdown, SVG (default: experiments/checkerboard/results)')
  .option('--only <groups>', `train only these groups, comma-separated (${GROUPS.join(', ')}); the report still covers everything in the logs`, (v: string) => {
    const gs = v.split(',');
    const bad = gs.filter((g) => !GROUPS.includes(g));
    if (bad.length) throw new InvalidArgumentError(`--only: unknown group(s) ${bad.join(', ')}; known: ${GROUPS.join(', ')}`);
    return gs;
  })
  .option('--report-only', 'no training: regenerate the report from what the logs hold')
  // Internal: the parent re-runs this file with its own flags plus `--child w/n` for each of its child processes.
  .addOption(
    new Option('--child <w/n>', 'internal: run the share of the seeds with seed ≡ w (mod n)').hideHelp().argParser((v: string) => {
      const [w, n, ...rest] = v.split('/').map(Number);
      if (rest.length || !Number.isInteger(w) || !Number.isInteger(n) || n! < 1 || w! < 0 || w! >= n!) throw new InvalidArgumentError(`--child must be w/n with 0 ≤ w < n, got '${v}'`);
      return [w, n] as [number, number];
    }),
  )
  .parse()
  .opts<{ seeds: number; peerSeeds: number; concurrency: number; out?: string; only?: string[]; reportOnly?: boolean; child?: [number, number] }>();
const seeds = opts.seeds;
const peerSeeds = opts.peerSeeds;
const concurrency = opts.concurrency;
const outDir = opts.out ?? path.join(here, 'results');
const reportOnly = opts.reportOnly === true;

// Training recipes (AdamW, weight decay 0.01, cross-entropy, constant lr; the same recipe for every seed of a row).
// The reference trains at batch 1, lr 1e-3, 7 epochs (66,500 steps). QAT: batch 8 at lr 5e-3 for 7 epochs (8,316
// steps) brings every probed seed to the data's ceiling, where batch 32 (2,079 steps) left 1–2 seeds per row in a
// local optimum (one 4×4 cell mislabelled); measured with experiments/checkerboard/probe-seeds.ts.
const QAT = { epochs: 7, batchSize: 8, lr: 0.005 };
// Float nets (SimpleNet before PTQ, pruned or not): batch 32, lr 5e-3, 7 epochs (2,079 steps). Batch 8 did not help
// them: at lr 5e-3 some seeds stay on the initial plateau (48.8 %) and at lr 1e-3 h=10 reached 60.0 % on seeds 0–3
// against 60.2 % at batch 32 (experiments/checkerboard/probes/).
const FLOAT = { epochs: 7, batchSize: 32, lr: 0.005 };
// The float SimpleNet rows (and their PTQ) on generated data: Adam without weight decay, batch 32, lr 5e-3, 25 epochs
// (7,425 steps). Probes (seeds 0–2, probes/f10_adam_e25.jsonl, probes/f100_adam_e25.jsonl): h=10 68.2 % and h=100
// 92.3 % fp32 mean, against 58.4 % and 86.4 % for the same seeds with FLOAT; batch 4 at lr 1e-3 (Adam, 7 epochs)
// gave h=10 60.3 % (probes/f10_adam_b4lr1.jsonl). The peer-array PTQ row and the pruned float nets keep FLOAT.
const FLOAT_ADAM = { epochs: 25, batchSize: 32, lr: 0.005, optimizer: 'adam', weightDecay: 0 };
// The reference's own recipe (AdamW, weight decay 0.01 — PyTorch's default —, batch 1, lr 1e-3, 7 epochs: 66,500
// steps), for the guide's k = 30 row: about 2 minutes per seed here.
const REFERENCE_QAT = { epochs: 7, batchSize: 1, lr: 0.001 };
const train = QAT;
const peer = { source: 'peer' };
// Each configuration has exactly one recipe (tables group runs by configuration). The batch-32 rows of the earlier
// session (results/runs.jsonl) are reused where this session had no CPU time left to re-run them with batch 8: the
// tables' "recipe" column says which rows those are.
const BATCH32 = { epochs: 7, batchSize: 32, lr: 0.005 };
const rawSpec = {
  name: 'checkerboard',
  concurrency,
  data: { source: 'generated', seed: 42 },
  train,
  grids: [
    { family: 'qat', hidden: [100], bits: [3], k: [30, 20], seeds },
    // The guide's k = 30 row again, trained with the reference's recipe (a tag keeps its runs in their own row).
    { family: 'qat', hidden: [100], bits: [3], k: [30], seeds, train: REFERENCE_QAT, tag: 'reference recipe' },
    { family: 'qat', hidden: [100], bits: [3], k: [20], seeds: peerSeeds, data: peer },
    // The guide's k = 30 row with strict per-neuron pruning (every neuron ≤ 30 non-zero inputs).
    { family: 'qat', hidden: [100], bits: [3], k: [30], strict: [true], seeds },
    // The guide's k = 30 pruning with the accumulator-aware projection at its 7 bits on top.
    { family: 'a2q', hidden: [100], bits: [3], k: [30], targetBits: [7], seeds },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [7], seeds },
    { family: 'qat-brevitas', hidden: [100], bits: [3], k: [30], seeds },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [5], input: ['unsigned'], seeds },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [6], seeds, train: BATCH32 },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [5], input: ['unsigned'], k: [10], strict: [true], seeds },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [5], seeds, train: BATCH32 },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [6], seeds: peerSeeds, data: peer, train: BATCH32 },
    { family: 'a2q', hidden: [100], bits: [3], targetBits: [5], input: ['unsigned'], seeds: peerSeeds, data: peer, train: BATCH32 },
  ],
};
// The PTQ rows (ptq-calib.ts): one float training per seed, then every PTQ variant of src/ptq/module-ptq.ts on that same
// float net — the reference-faithful default and fhenet's own calibrations. The float SimpleNet rows on generated data
// (FLOAT_ADAM), the peer-array row (FLOAT), and the guide's pruned float nets (k = 10 with FLOAT_ADAM, k = 30 with
// FLOAT). These replace the earlier sweep `ptq` rows and pruned-float.ts rows, which used the former calibration (on
// the float net's values, input scale max/7); those stay in results/runs.jsonl and results/pruned-float.jsonl.
const ptqBase = (hidden: number, seed: number, trainSpec: Omit<RunConfig['train'], 'optimizer'> & { optimizer?: RunConfig['train']['optimizer'] }, data: RunConfig['data'] = { source: 'generated', seed: 42 }, k: number | null = null): RunConfig => ({
  family: 'ptq', hidden, bits: 3, k, strict: false, targetBits: null, input: 'signed', seed, data, train: { ...trainSpec, optimizer: trainSpec.optimizer ?? 'adamw' },
});
const PTQ_VARIANT_NAMES = Object.keys(PTQ_VARIANTS);
const ptqBases: RunConfig[] = [
  ...[10, 30, 100].flatMap((h) => Array.from({ length: seeds }, (_, s) => ptqBase(h, s, FLOAT_ADAM as RunConfig['train']))),
  ...Array.from({ length: peerSeeds }, (_, s) => ptqBase(100, s, FLOAT as RunConfig['train'], { source: 'peer' } as RunConfig['data'])),
  ...Array.from({ length: seeds }, (_, s) => ptqBase(100, s, FLOAT_ADAM as RunConfig['train'], undefined, 10)),
  ...Array.from({ length: seeds }, (_, s) => ptqBase(100, s, FLOAT as RunConfig['train'], undefined, 30)),
];
const calibConfigs = (b: RunConfig): CalibConfig[] => PTQ_VARIANT_NAMES.map((v) => ({ ...b, ptqVariant: v }));
const calibLog = path.join(outDir, 'ptq-calib.jsonl');

// The optional native kernels (src/backend/native) are off for this experiment: with two sweep worker threads in one
// process, runs failed at random with them on (this session, 2026-11-22), and the earlier rows of results/runs.jsonl
// were measured on the plain WASM backend. Worker threads and child processes inherit the setting.
process.env.FHENET_NATIVE_KERNELS ??= '0';

// The moonshot rows with fc1's budget on its real 0…3 input range (a2q-ranges.ts): a constant 5-bit target, and a
// target tightening 8 → 7 → 6 → 5 over the first four epochs (5 bits for the last four), at h = 100 and h = 32, and
// 7 → 6 → 5 (5 bits for the last five epochs) at h = 100.
// Every layer constrained.
const rangeBase = (seed: number): RangeConfig => ({
  family: 'a2q', hidden: 100, bits: 3, k: null, strict: false, targetBits: 5, input: 'signed', seed, data: { source: 'generated', seed: 42 },
  train: { ...QAT, optimizer: 'adamw' }, fc1Range: [0, 3],
});
const rangeConfigs: RangeConfig[] = [
  ...Array.from({ length: seeds }, (_, s) => rangeBase(s)),
  ...Array.from({ length: seeds }, (_, s) => ({ ...rangeBase(s), targetSchedule: [8, 7, 6, 5] })),
  ...Array.from({ length: seeds }, (_, s) => ({ ...rangeBase(s), hidden: 32, targetSchedule: [8, 7, 6, 5] })),
  ...Array.from({ length: seeds }, (_, s) => ({ ...rangeBase(s), targetSchedule: [7, 6, 5] })),
  // A gentler schedule (two epochs per step), more epochs at 5 bits and a lower learning rate at the end: 8, 8, 7,
  // 7, 6, 6, then 5 for six epochs, lr 5e-3 then 1e-3 for the last two (12 epochs).
  ...Array.from({ length: seeds }, (_, s): RangeConfig => ({
    ...rangeBase(s), targetSchedule: [8, 8, 7, 7, 6, 6, 5], train: { ...QAT, optimizer: 'adamw' as const, epochs: 12 }, lrSchedule: { kind: 'step' as const, stepSize: 10, gamma: 0.2 },
  })),
  // The best schedule on generated data (8 → 7 → 6 → 5, 7 epochs: the highest mean and the most seeds at the
  // ceiling) on the peer arrays.
  ...Array.from({ length: peerSeeds }, (_, s): RangeConfig => ({ ...rangeBase(s), data: { source: 'peer', seed: 42 }, targetSchedule: [8, 7, 6, 5] })),
  // A smaller initialisation (the notebook's U(−1, 1) × 0.25), the 8 → 7 → 6 → 5 schedule.
  ...Array.from({ length: seeds }, (_, s): RangeConfig => ({ ...rangeBase(s), targetSchedule: [8, 7, 6, 5], initScale: 0.25 })),
];
const rangeLog = path.join(outDir, 'a2q-ranges.jsonl');
// The moonshot by an accumulator penalty on the 16 quantized inputs the data can produce (domain-penalty.ts): the
// notebook's QAT recipe, then fine-tune epochs at lr 1e-3 with the penalty (hinge 0.5 below the 5-bit limit), keeping
// the best-training-accuracy state within 5 bits. First recipe: λ = 3, 6 fine-tune epochs, chosen on seeds 0–3 of the
// generated data with the native kernels on (4 / 4 at the ceiling). Run here on the WASM kernels, seeds 1 and 2 kept
// 92.2 / 93.0 %; a gentler, longer fine-tune (λ = 1, 12 epochs), tried on those two seeds only (both reached the
// ceiling), is the second recipe, run on every seed and on the peer arrays.
const penaltyBase = (seed: number, data: RunConfig['data'] = { source: 'generated', seed: 42 }, weight = 1, finetuneEpochs = 12, targetBits = 5): PenaltyConfig => ({
  family: 'qat', hidden: 100, bits: 3, k: null, strict: false, targetBits: null, input: 'signed', seed, data,
  train: { ...QAT, optimizer: 'adamw' },
  penalty: { targetBits, weight, margin: 0.5, domain: [0, 3], finetuneEpochs, finetuneLr: 1e-3 },
});
const PEER = { source: 'peer', seed: 42 } as const;
const penaltyConfigs: PenaltyConfig[] = [
  ...Array.from({ length: seeds }, (_, s) => penaltyBase(s, undefined, 3, 6)),
  ...Array.from({ length: seeds }, (_, s) => penaltyBase(s)),
  ...Array.from({ length: peerSeeds }, (_, s) => penaltyBase(s, PEER)),
];
const penaltyLog = path.join(outDir, 'domain-penalty.jsonl');
const title = 'checkerboard: test accuracy vs accumulator bits (3-bit nets)';
/** The spec, or the part of it with seed ≡ w (mod n). */
const specFor = (part?: [number, number]) =>
  parseSweepSpec({
    ...rawSpec,
    grids: rawSpec.grids.map((g) => ({ ...g, seeds: part ? Array.from({ length: g.seeds }, (_, i) => i).filter((i) => i % part[1] === part[0]) : g.seeds })),
  });

// Parallelism: `concurrency` child processes, each running its share of the seeds in its own thread (the sweep's
// inline mode) and appending to the same resumable logs. (The sweep's piscina worker threads lost runs at random in
// this session — an error inside a worker, reported only at the end — while one-thread-per-process runs never failed.)
// --only ptq,range,sweep: train only those groups (the report still covers everything in the logs).
const only = opts.only;
if (opts.child) {
  const [w, n] = opts.child;
  await initBackend();
  let failed = false;
  const want = (g: string) => !only || only.includes(g);
  for (const b of want('ptq') ? ptqBases.filter((b) => b.seed % n === w) : []) {
    const todo = calibConfigs(b).filter((c) => !readLog(calibLog).has(configHash(c)));
    if (todo.length === 0) continue;
    try {
      const res = await runPtqVariants(b, todo.map((c) => c.ptqVariant));
      const backend = (await initBackend()).choice;
      for (const c of todo) fs.appendFileSync(calibLog, `${JSON.stringify(calibRecord(c, { ...res.get(c.ptqVariant)!, backend } as RunRecord['result']))}\n`);
      process.stdout.write(`${calibLabel(todo[0]!).replace(/ ptq .*$/, '')} seed ${b.seed}: float ${(100 * res.values().next().value!.floatAccuracy!).toFixed(1)}%; ${todo.map((c) => `${c.ptqVariant} ${(100 * res.get(c.ptqVariant)!.testAccuracy).toFixed(1)}% ${res.get(c.ptqVariant)!.accumulatorBits}b`).join(', ')}\n`);
    } catch (e) {
      failed = true;
      fs.appendFileSync(path.join(outDir, 'failures.log'), `${new Date().toISOString()} child ${w}/${n} ptq-calib seed ${b.seed}: ${(e as Error).stack}\n`);
    }
  }
  for (const c of rangeConfigs.filter((c) => want('range') && c.seed % n === w && !readLog(rangeLog).has(configHash(c)))) {
    try {
      const r = await runRangeConfig(c);
      fs.appendFileSync(rangeLog, `${JSON.stringify(rangeRecord(c, { ...r, backend: (await initBackend()).choice }))}\n`);
      process.stdout.write(`${rangeLabel(c)} seed ${c.seed}: ${(100 * r.testAccuracy).toFixed(1)}%, ${r.accumulatorBits} bits (${r.layerBits.map((l) => `${l.layer} ${l.observed}`).join(', ')})\n`);
    } catch (e) {
      failed = true;
      fs.appendFileSync(path.join(outDir, 'failures.log'), `${new Date().toISOString()} child ${w}/${n} a2q-ranges seed ${c.seed}: ${(e as Error).stack}\n`);
    }
  }
  for (const c of penaltyConfigs.filter((c) => want('penalty') && c.seed % n === w && !readLog(penaltyLog).has(configHash(c)))) {
    try {
      const r = await runPenaltyConfig(c);
      fs.appendFileSync(penaltyLog, `${JSON.stringify(penaltyRecord(c, { ...r, backend: (await initBackend()).choice }))}\n`);
      process.stdout.write(`${penaltyLabel(c)} seed ${c.seed}: ${(100 * r.testAccuracy).toFixed(1)}% (before the penalty ${(100 * r.before.testAccuracy).toFixed(1)}% at ${r.before.domainBits} bits), ${r.domainBits.map((l) => `${l.layer} ${l.bits}`).join(', ')} bits on the domain, kept epoch ${r.keptEpoch}\n`);
    } catch (e) {
      failed = true;
      fs.appendFileSync(path.join(outDir, 'failures.log'), `${new Date().toISOString()} child ${w}/${n} domain-penalty seed ${c.seed}: ${(e as Error).stack}\n`);
    }
  }
  try {
    if (want('sweep')) await runSweep(specFor([w, n]), { outDir, inline: true, progress: 'lines', title });
  } catch (e) {
    failed = true;
    fs.appendFileSync(path.join(outDir, 'failures.log'), `${new Date().toISOString()} child ${w}/${n}: ${(e as Error).message}\n`);
  }
  process.exit(failed ? 1 : 0);
}

const info = await initBackend();
const t0 = Date.now();
const before = readRunLog(path.join(outDir, RUNS_FILE)).size + readLog(calibLog).size + readLog(rangeLog).size + readLog(penaltyLog).size;
// --report-only: no training, the report from what the logs hold (rows with fewer runs say so in their run count).
for (let attempt = 1; attempt <= 3 && !reportOnly; attempt++) {
  const codes = await Promise.all(
    Array.from({ length: concurrency }, (_, w) =>
      new Promise<number>((resolve) => {
        const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), '--child', `${w}/${concurrency}`], { stdio: ['ignore', 'inherit', 'inherit'] });
        child.on('exit', (code) => resolve(code ?? 1));
      }),
    ),
  );
  if (codes.every((c) => c === 0)) break;
  process.stderr.write(`attempt ${attempt}: some runs failed (results/failures.log); retrying the missing ones\n`);
}
const fullSpec = specFor();
const runLog = readRunLog(path.join(outDir, RUNS_FILE));
const res = { records: expandSweep(fullSpec).map((c) => runLog.get(configHash(c))).filter((r): r is RunRecord => r !== undefined) };
const ranNow = runLog.size + readLog(calibLog).size + readLog(rangeLog).size + readLog(penaltyLog).size - before;
const calibDone = readLog(calibLog);
const rangeDone = readLog(rangeLog);
const penaltyDone = readLog(penaltyLog);
const extraRecords = [
  ...ptqBases.flatMap((b) => calibConfigs(b)).map((c) => calibDone.get(configHash(c))),
  ...rangeConfigs.map((c) => rangeDone.get(configHash(c))),
  ...penaltyConfigs.map((c) => penaltyDone.get(configHash(c))),
].filter((r): r is RunRecord => r !== undefined);
const wall = (Date.now() - t0) / 1000;

// Reports over both: the sweep's CSV / JSON / markdown / plot, rewritten with the pruned-float runs included.
const allRecords = [...res.records, ...extraRecords];
const summaries = summarize(allRecords);
// The plot and the "every configuration" table show three PTQ variants (reference-faithful, fhenet's two); the
// PTQ section has them all, results.csv / results.json every run.
const shownVariant = (r: RunRecord) => !('ptqVariant' in r.config) || ['reference+out5', 'mse-search', 'search-bits'].includes((r.config as CalibConfig).ptqVariant);
const shownRecords = allRecords.filter(shownVariant);
const shownSummaries = summarize(shownRecords);
fs.writeFileSync(path.join(outDir, 'results.csv'), toCsv(allRecords));
fs.writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify({ summaries, runs: allRecords }, null, 2)}\n`);
fs.writeFileSync(path.join(outDir, 'results.md'), toMarkdown(shownSummaries));
fs.writeFileSync(path.join(outDir, 'plot.svg'), await toSvg(shownRecords, 'checkerboard: test accuracy vs accumulator bits (3-bit nets)'));

const gen = generateCheckerboard({ seed: 42 });
const pd = loadPeerCheckerboard();
const ceil = {
  genTrain: quantizedInputCeiling(gen.train),
  genTest: quantizedInputCeiling(gen.test),
  peerTrain: quantizedInputCeiling(pd.train),
  peerTest: quantizedInputCeiling(pd.test),
};

/** Best accuracy of any classifier of the input quantized to round(x/scale) clamped to [min, max]: cell majority. */
const gridCeiling = (d: { x: Float32Array; y: Int32Array }, scale: number, min: number, max: number) => {
  const cells = new Map<string, [number, number]>();
  const q = (v: number) => Math.min(max, Math.max(min, Math.round(v / scale)));
  for (let i = 0; i < d.y.length; i++) {
    const key = `${q(d.x[2 * i]!)},${q(d.x[2 * i + 1]!)}`;
    const c = cells.get(key) ?? [0, 0];
    c[d.y[i]!]! += 1;
    cells.set(key, c);
  }
  return [...cells.values()].reduce((s, c) => s + Math.max(c[0], c[1]), 0) / d.y.length;
};
const by = new Map(summaries.map((s) => [s.label, s]));
const get = (label: string): ConfigSummary | undefined => by.get(label);
const recs = (label: string) => allRecords.filter((r) => r.label === label);
const pct = (s: Stat | null | undefined) => (s ? fmtStat(s) : 'n/a');
const bits = (s: Stat | null | undefined) => (s ? fmtStat(s, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1))) : 'n/a');
const median = (v: number[]) => {
  const a = [...v].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2;
};
/** Seeds at the data's ceiling (test accuracy = the notebook input grid's ceiling on that data). */
const atCeiling = (label: string) => {
  const rs = recs(label);
  const c = label.includes('peer') ? ceil.peerTest : ceil.genTest;
  const hit = rs.filter((r) => r.result.testAccuracy >= c - 1e-9).length;
  const others = rs.filter((r) => r.result.testAccuracy < c - 1e-9).map((r) => (100 * r.result.testAccuracy).toFixed(1));
  return `${hit} / ${rs.length}${others.length ? ` (others: ${others.join(', ')})` : ''}`;
};
const recipe = (label: string) => {
  const t = recs(label)[0]?.config.train;
  return t ? `${t.optimizer === 'adam' ? `Adam${t.weightDecay ? ` wd ${t.weightDecay}` : ' (no weight decay)'}, ` : ''}batch ${t.batchSize}, lr ${t.lr}, ${t.epochs} ep.` : 'n/a';
};
const verdict = (s: ConfigSummary | undefined, refAcc: number, refBits: number | null, acc: 'test' | 'float' = 'test') => {
  if (!s) return 'n/a';
  if (refAcc === 0) return '— (no reference)';
  const a = acc === 'test' ? s.testAccuracy : s.floatAccuracy;
  const accOk = a !== null && 100 * a.mean >= refAcc;
  const bitsOk = refBits === null || (s.accumulatorBits !== null && s.accumulatorBits.mean <= refBits);
  return accOk && bitsOk ? 'meets' : `misses (${accOk ? '' : 'accuracy'}${!accOk && !bitsOk ? ', ' : ''}${bitsOk ? '' : 'bits'})`;
};

const rows: string[] = [];
// PTQ rows: the reference-faithful quantization evaluated as the reference does (5-bit output quantizer, argmax of the
// de-quantized outputs) and fhenet's own calibration (MSE-optimal clipping, then the accuracy-driven search).
const REF = 'reference+out5';
const OWN = 'mse-search';
const OWN_BITS = 'search-bits';
const ptqL = (base: string, v: string) => `${base} ptq ${v}`;
for (const h of [10, 30, 100]) {
  const base = `ptq h=${h} 3-bit`;
  const s = get(ptqL(base, REF));
  const own = get(ptqL(base, OWN));
  const ref = { 10: [68.7, 56.44, 6.6], 30: [83.32, 55.54, 6.9], 100: [88.06, 56.5, 7.4] }[h]!;
  rows.push(`| float SimpleNet h=${h} (${recipe(ptqL(base, REF))}) | ${ref[0]!.toFixed(2)} % | ${pct(s?.floatAccuracy)} | — | — | ${verdict(s, ref[0]!, null, 'float')} |`);
  rows.push(`| 3-bit PTQ of it, reference-faithful (Concrete ML's calibration) | ${ref[1]!.toFixed(2)} % at ${ref[2]} bits | ${pct(s?.testAccuracy)} | ${bits(s?.accumulatorBits)} | ${bits(s?.worstCaseBits)} | ${verdict(s, ref[1]!, ref[2]!)} |`);
  rows.push(`| 3-bit PTQ of it, fhenet's calibration (MSE clipping + accuracy search) | ${ref[1]!.toFixed(2)} % at ${ref[2]} bits | ${pct(own?.testAccuracy)} | ${bits(own?.accumulatorBits)} | ${bits(own?.worstCaseBits)} | ${verdict(own, ref[1]!, ref[2]!)} |`);
  const ownB = get(ptqL(base, OWN_BITS));
  rows.push(`| 3-bit PTQ of it, fhenet's calibration kept within the reference calibration's accumulator width (accuracy search with a bit budget) | ${ref[1]!.toFixed(2)} % at ${ref[2]} bits | ${pct(ownB?.testAccuracy)} | ${bits(ownB?.accumulatorBits)} | ${bits(ownB?.worstCaseBits)} | ${verdict(ownB, ref[1]!, ref[2]!)} |`);
}
for (const [k, ref] of [[10, [82.5, 57.74, 6.6]], [30, [88.06, 57.82, 6.8]]] as const) {
  const base = `ptq h=100 3-bit k=${k}`;
  const s = get(ptqL(base, REF));
  const own = get(ptqL(base, OWN));
  rows.push(`| pruned float SimpleNet h=100, k=${k} (the guide's PrunedSimpleNet / "PrunedQuantNet"; ${recipe(ptqL(base, REF))}) | ${ref[0].toFixed(2)} % | ${pct(s?.floatAccuracy)} | — | — | ${verdict(s, ref[0], null, 'float')} |`);
  rows.push(`| 3-bit PTQ of it, reference-faithful | ${ref[1].toFixed(2)} % at ${ref[2]} bits | ${pct(s?.testAccuracy)} | ${bits(s?.accumulatorBits)} | ${bits(s?.worstCaseBits)} | ${verdict(s, ref[1], ref[2])} |`);
  rows.push(`| 3-bit PTQ of it, fhenet's calibration (MSE clipping + accuracy search) | ${ref[1].toFixed(2)} % at ${ref[2]} bits | ${pct(own?.testAccuracy)} | ${bits(own?.accumulatorBits)} | ${bits(own?.worstCaseBits)} | ${verdict(own, ref[1], ref[2])} |`);
  const ownB = get(ptqL(base, OWN_BITS));
  rows.push(`| 3-bit PTQ of it, fhenet's calibration within the reference calibration's accumulator width | ${ref[1].toFixed(2)} % at ${ref[2]} bits | ${pct(ownB?.testAccuracy)} | ${bits(ownB?.accumulatorBits)} | ${bits(ownB?.worstCaseBits)} | ${verdict(ownB, ref[1], ref[2])} |`);
}
// Every PTQ variant on the same float nets.
const ptqBasesTable: [string, string][] = [
  ['h=10', 'ptq h=10 3-bit'],
  ['h=30', 'ptq h=30 3-bit'],
  ['h=100', 'ptq h=100 3-bit'],
  ['h=100 k=10', 'ptq h=100 3-bit k=10'],
  ['h=100 k=30', 'ptq h=100 3-bit k=30'],
  ['h=100 peer', 'ptq h=100 3-bit peer data'],
];
const cell = (label: string) => {
  const s = get(label);
  if (!s) return 'n/a';
  return `${pct(s.testAccuracy)} @ ${bits(s.accumulatorBits)}`;
};
const ptqVariantRows = Object.entries(PTQ_VARIANTS).map(([v, spec]) => `| \`${v}\`: ${spec.name} | ${ptqBasesTable.map(([, b]) => cell(ptqL(b, v))).join(' | ')} |`);
const ptqRuns = ptqBasesTable.map(([, b]) => get(ptqL(b, REF))?.runs ?? 0);
const qatRows: string[] = [];
const qatRow = (name: string, label: string, ref: string, refAcc: number, refBits: number | null) => {
  const s = get(label);
  qatRows.push(`| ${name} | ${recipe(label)} | ${s?.runs ?? 0} | ${ref} | ${pct(s?.testAccuracy)} | ${s ? (100 * median(recs(label).map((r) => r.result.testAccuracy))).toFixed(2) : 'n/a'} | ${s ? atCeiling(label) : 'n/a'} | ${bits(s?.accumulatorBits)} | ${bits(s?.worstCaseBits)} | ${verdict(s, refAcc, refBits)} |`);
};
qatRow('3-bit QAT + pruning h=100, k=30 (guide)', 'qat h=100 3-bit k=30', '95.4 % at 7 bits', 95.4, 7);
qatRow("3-bit QAT + pruning h=100, k=30 (guide), the reference's recipe", 'qat h=100 3-bit k=30 (reference recipe)', '95.4 % at 7 bits', 95.4, 7);
qatRow('3-bit QAT + strict per-neuron pruning h=100, k=30 (every neuron ≤ 30 non-zero inputs)', 'qat h=100 3-bit k=30 strict', '95.4 % at 7 bits', 95.4, 7);
qatRow('3-bit QAT + pruning h=100, k=30 + accumulator-aware projection at 7 bits', 'a2q h=100 3-bit k=30 target 7', '95.4 % at 7 bits', 95.4, 7);
qatRow('3-bit QAT + pruning h=100, k=20 (notebook)', 'qat h=100 3-bit k=20', '95.6 % (its exported run: 8 bits)', 95.6, 8);
qatRow('accumulator-aware QAT h=100, target 7 bits (no pruning)', 'a2q h=100 3-bit target 7', '95.4 % at 7 bits (guide, k=30)', 95.4, 7);
qatRow('accumulator-aware QAT h=100, target 6 bits', 'a2q h=100 3-bit target 6', 'none (fhenet)', 0, 6);
qatRow('accumulator-aware QAT h=100, target 5 bits, unsigned input quantizer (moonshot)', 'a2q h=100 3-bit target 5 unsigned input', 'moonshot: the ceiling at ≤ 5 bits', 100 * ceil.genTest, 5);
qatRow('accumulator-aware QAT h=100, target 5 bits, unsigned input + strict pruning k=10 (moonshot)', 'a2q h=100 3-bit k=10 strict target 5 unsigned input', 'moonshot: the ceiling at ≤ 5 bits', 100 * ceil.genTest, 5);
qatRow('accumulator-aware QAT h=100, target 5 bits, notebook (signed) input', 'a2q h=100 3-bit target 5', 'none (fhenet)', 0, 5);
// fc1 budgeted on its real 0…3 input range (a2q-ranges.ts): the worst-case column is the analysis's, over the
// quantizer's full −3…3; the bound the constraint guarantees over 0…3 (every layer) is in the row's name.
const guaranteed = (label: string) => {
  const g = recs(label).map((r) => (r.result as { guaranteedBits?: number }).guaranteedBits).filter((v): v is number => v !== undefined);
  return g.length ? `guaranteed ≤ ${Math.max(...g)} bits for inputs on 0…3` : 'n/a';
};
for (const [h, name, sched] of [
  [100, '', ''],
  [100, ', target tightened 8 → 7 → 6 → 5 over the first 4 epochs', ' schedule 8→7→6→5'],
  [32, ', target tightened 8 → 7 → 6 → 5 over the first 4 epochs', ' schedule 8→7→6→5'],
  [100, ', target tightened 7 → 6 → 5 over the first 3 epochs', ' schedule 7→6→5'],
  [100, ', target 8, 8, 7, 7, 6, 6, then 5 (two epochs per step, six at 5 bits), 12 epochs, lr 5e-3 then 1e-3 for the last two', ' schedule 8→8→7→7→6→6→5 12 ep. lr ×0.2 from epoch 11'],
  [100, ', target tightened 8 → 7 → 6 → 5 over the first 4 epochs, initial weights U(−1, 1) × 0.25', ' schedule 8→7→6→5 init ×0.25'],
] as const) {
  const label = `a2q h=${h} 3-bit target 5 fc1 range 0…3${sched}`;
  qatRow(`accumulator-aware QAT h=${h}, target 5 bits, notebook (signed) input, fc1 budget on the 0…3 input range${name} (moonshot; ${guaranteed(label)})`, label, 'moonshot: the ceiling at ≤ 5 bits', 100 * ceil.genTest, 5);
}
// The accumulator penalty on the input domain (domain-penalty.ts): the bits over the 16 enumerated inputs are exact.
const domainBits = (label: string) => {
  const b = recs(label).map((r) => Math.max(...(r.result as PenaltyResult).domainBits.map((l) => l.bits)));
  const kept = recs(label).map((r) => (r.result as PenaltyResult).keptEpoch);
  return b.length ? `≤ ${Math.max(...b)} bits for every input on 0…3, exact (all 16 enumerated)${kept.some((e) => e === 0) ? `; ${kept.filter((e) => e === 0).length} run(s) never met it` : ''}` : 'n/a';
};
for (const [w, ft, tb] of [[3, 6, 5], [1, 12, 5]] as const) {
  const label = penaltyLabel(penaltyBase(0, undefined, w, ft, tb));
  qatRow(`3-bit QAT h=100, notebook quantizers, then ${ft} epochs with an accumulator penalty (λ = ${w}) on the 16 quantized inputs, target ${tb} bits (${tb === 5 ? 'moonshot' : 'beyond the moonshot'}; ${domainBits(label)})`, label, `moonshot: the ceiling at ≤ 5 bits`, 100 * ceil.genTest, 5);
}
qatRow('QuantSimpleNet with Brevitas default quantizers + pruning h=100, k=30 (newer guide)', 'qat-brevitas h=100 3-bit k=30', '95.4 % at 7 bits', 95.4, 7);
// The moonshot's existence check: a hand-built 3-bit net (moonshot-construct.ts), evaluated here on both data sets.
const built = constructedNet();
built.eval();
const builtOn = (d: { train: typeof gen.train; test: typeof gen.test }) => {
  const rep = analyzeAccumulators(built, d.train);
  return { acc: evaluate(built, d.test).accuracy, bits: rep.bits, worst: rep.worstCaseBits };
};
const bGen = builtOn(gen);
const bPeer = builtOn(pd);
qatRows.push(`| hand-built 3-bit net, unsigned input, not trained (moonshot-construct.ts) | — | 1 | none (fhenet) | ${(100 * bGen.acc).toFixed(2)} | — | ${bGen.acc >= ceil.genTest - 1e-9 ? '1 / 1' : '0 / 1'} | ${bGen.bits} | ${bGen.worst} | ${bGen.worst <= 5 && bGen.acc >= ceil.genTest - 1e-9 ? 'moonshot target met by construction' : 'misses'} |`);
const peerRows: string[] = [];
// The best moonshot schedule on the peer arrays (rangeConfigs' peer entries), if run.
const moonshotPeer = [...new Set(rangeConfigs.filter((c) => c.data.source === 'peer').map(rangeLabel))].map((l) => [`accumulator-aware QAT, ${l.replace(/^a2q /, '')} (moonshot)`, l] as const);
for (const [name, label] of [
  ['float SimpleNet h=100 → 3-bit PTQ, reference-faithful', ptqL('ptq h=100 3-bit peer data', REF)],
  ['float SimpleNet h=100 → 3-bit PTQ, fhenet\'s calibration (MSE clipping + accuracy search)', ptqL('ptq h=100 3-bit peer data', OWN)],
  ['float SimpleNet h=100 → 3-bit PTQ, fhenet\'s calibration within the reference calibration\'s accumulator width', ptqL('ptq h=100 3-bit peer data', OWN_BITS)],
  ['3-bit QAT + pruning h=100, k=20', 'qat h=100 3-bit k=20 peer data'],
  ['accumulator-aware QAT h=100, target 6', 'a2q h=100 3-bit target 6 peer data'],
  ['accumulator-aware QAT h=100, target 5, unsigned input', 'a2q h=100 3-bit target 5 unsigned input peer data'],
  ...moonshotPeer,
  ['3-bit QAT h=100 + 12 epochs of accumulator penalty (λ = 1) on the 16 quantized inputs, target 5 (moonshot)', penaltyLabel(penaltyBase(0, PEER))],
] as const) {
  const s = get(label);
  const ceilCol = label.startsWith('ptq') ? '—' : s ? atCeiling(label) : 'n/a';
  peerRows.push(`| ${name} | ${recipe(label)} | ${s?.runs ?? 0} | ${pct(s?.floatAccuracy)} | ${pct(s?.testAccuracy)} | ${ceilCol} | ${bits(s?.accumulatorBits)} | ${bits(s?.worstCaseBits)} |`);
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
- Backend: ${describeBackend(info)}; ${concurrency} child processes (one thread each), each with its own backend.
- Wall time of this invocation: ${reportOnly ? 'report only, regenerated from the logs (the training invocations are listed under "Runs and wall time" below)' : `${wall.toFixed(0)} s (${ranNow} runs now, the rest reused from the logs)`}; ${allRecords.length} records in all (each PTQ variant of a float net is one record; the ${PTQ_VARIANT_NAMES.length} variants of a net share its training), ${allRecords.filter((r) => !('ptqVariant' in r.config) || (r.config as CalibConfig).ptqVariant === 'reference').reduce((s, r) => s + r.result.seconds, 0).toFixed(0)} s of run time summed (one training per float net).
- Data: the reference definition (100 × 100 grid, XOR of rint(3x), rint(3y) cells, N(0, 0.01²) noise, 9,500 / 500 split); "generated" = fhenet's own draw with data seed 42 for every run, "peer" = the exact arrays of the Brevitas reference runs (shared/fixtures/brevitas/checkerboard.json). Seeds vary initialisation and shuffling.
- Training: cross-entropy, constant learning rate, AdamW (weight decay 0.01) unless stated, the same recipe for every seed of a row. QAT rows (qat, a2q, qat-brevitas) unless their recipe column says batch 32: ${QAT.epochs} epochs, batch ${QAT.batchSize}, lr ${QAT.lr} (${(QAT.epochs * Math.ceil(9500 / QAT.batchSize)).toLocaleString('en')} steps). Float SimpleNet rows on generated data (before PTQ): Adam without weight decay, ${FLOAT_ADAM.epochs} epochs, batch ${FLOAT_ADAM.batchSize}, lr ${FLOAT_ADAM.lr} (${(FLOAT_ADAM.epochs * Math.ceil(9500 / FLOAT_ADAM.batchSize)).toLocaleString('en')} steps). The pruned float net k = 10 the same (Adam, ${FLOAT_ADAM.epochs} epochs). The peer-array PTQ row and the pruned float net k = 30: AdamW, ${FLOAT.epochs} epochs, batch ${FLOAT.batchSize}, lr ${FLOAT.lr} (${(FLOAT.epochs * Math.ceil(9500 / FLOAT.batchSize)).toLocaleString('en')} steps). The reference trains at batch 1, lr 1e-3, 7 epochs (66,500 steps).
- Accumulator bits: the signed bit width of Σ w_int·x_int (bias excluded) over the training set, max over layers (docs/accumulators.md); "worst case" is the bound over every input the input quantizers can produce. Seeds: ${seeds} per configuration on generated data, ${peerSeeds} on the peer arrays, except where a table's runs column says otherwise. Every cell: mean (min–max).

## Accuracy ceiling of the data

The notebook's input quantizer (3-bit, scale 1/3) maps each point to a cell of a 4 × 4 grid; the best any classifier of the quantized input can do is the cell's majority label:

| data | train | test |
|---|---|---|
| generated (seed 42) | ${(100 * ceil.genTrain).toFixed(2)} % | ${(100 * ceil.genTest).toFixed(2)} % |
| peer arrays | ${(100 * ceil.peerTrain).toFixed(3)} % | ${(100 * ceil.peerTest).toFixed(2)} % |

(The PTQ rows and the Brevitas-default QAT rows use calibrated / learned input scales, not the 1/3 grid, so this ceiling does not bind them.)

The Brevitas-default net's input quantizer (Int8ActPerTensorFloat at 3 bits: signed, integers [−4, 3], scale = statistic / 4) starts from the statistic max|x| ≈ 1, i.e. scale ≈ 0.25, whose grid does not line up with the cells. The same majority-vote ceiling on that grid: generated ${(100 * gridCeiling(gen.train, 0.25, -4, 3)).toFixed(2)} % train / ${(100 * gridCeiling(gen.test, 0.25, -4, 3)).toFixed(2)} % test, peer arrays ${(100 * gridCeiling(pd.train, 0.25, -4, 3)).toFixed(2)} % / ${(100 * gridCeiling(pd.test, 0.25, -4, 3)).toFixed(2)} % (at scale 1/3 on the same integers: ${(100 * gridCeiling(gen.test, 1 / 3, -4, 3)).toFixed(2)} % / ${(100 * gridCeiling(pd.test, 1 / 3, -4, 3)).toFixed(2)} % test); at scale 1/6, where a batch-1 statistic (the mean of max(x, y) ≈ 2/3) would start it: ${(100 * gridCeiling(pd.train, 1 / 6, -4, 3)).toFixed(2)} % train / ${(100 * gridCeiling(pd.test, 1 / 6, -4, 3)).toFixed(2)} % test on the peer arrays).

## The reference table, reproduced (generated data, ${seeds} seeds)

| row | reference | fhenet accuracy % (float rows: fp32; PTQ rows: 3-bit) | accumulator bits | worst-case bits | target (≥ accuracy at ≤ bits) |
|---|---|---|---|---|---|
${rows.join('\n')}

| QAT row | recipe | runs | reference | fhenet test accuracy % | median % | seeds at the ceiling | accumulator bits | worst-case bits | target (mean ≥ accuracy at ≤ mean bits) |
|---|---|---|---|---|---|---|---|---|---|
${qatRows.join('\n')}

## Post-training quantization: every calibration on the same float nets

One float training per seed (the recipes above), then each PTQ variant of \`src/ptq/module-ptq.ts\` on that same net
(\`experiments/checkerboard/ptq-calib.ts\`); runs per column: ${ptqRuns.join(' / ')}. Cells: 3-bit test accuracy % mean (min–max) @ accumulator bits mean (min–max).

| PTQ variant | ${ptqBasesTable.map(([n]) => n).join(' | ')} |
|---|${ptqBasesTable.map(() => '---|').join('')}
${ptqVariantRows.join('\n')}

## Main configurations on the peer arrays (${peerSeeds} seeds)

| configuration | recipe | runs | float % | test accuracy % | seeds at the ceiling | accumulator bits | worst-case bits |
|---|---|---|---|---|---|---|---|
${peerRows.join('\n')}
| hand-built 3-bit net, unsigned input, not trained | — | 1 | — | ${(100 * bPeer.acc).toFixed(2)} | ${bPeer.acc >= ceil.peerTest - 1e-9 ? '1 / 1' : '0 / 1'} | ${bPeer.bits} | ${bPeer.worst} |

## Plot

![test accuracy against accumulator bits](${relOut}/plot.svg)

## Every configuration

${toMarkdown(shownSummaries)}
Per-run numbers: \`${relOut}/results.csv\` / \`${relOut}/results.json\`.

${discussion}`;
fs.writeFileSync(path.join(here, 'RESULTS.md'), md);
process.stdout.write(`${md}\n`);
