/**
 * A plain QAT checkerboard net (no accumulator-aware training: 7-bit accumulators) run encrypted through approximate
 * rounding (docs/tfhe.md, "Approximate rounding"): its exactly rounded circuit fits no named TFHE set here, the
 * approximately rounded one runs on the set of its rounded width.
 *
 *   npx tsx experiments/checkerboard-encrypted/approximate.ts --samples 40 --write   # writes RESULTS-approximate.md
 *
 * The net: the notebook's 3-bit QuantSimpleNet (constant scales), trained with experiments/checkerboard's batch-8
 * QAT recipe (7 epochs, AdamW, lr 5e-3). For each rounding width: accuracy of the clear circuit (simulate rounds
 * exactly), the set the executor picks with exact and with approximate rounding, and PBS per sample. Then one width
 * runs encrypted on test samples (one batched call), compared output by output with simulate, and the noisy
 * simulation's prediction of that agreement (`--noise-draws`; `--no-encrypt` gives the prediction alone).
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import { mean, quantile } from 'simple-statistics';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { intListOption, intOption } from '../../src/cli/options.js';
import { ReportLog } from '../../src/util/report-log.js';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import type { Circuit } from '../../src/compiler/circuit.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { manualSeed } from '../../src/nn/init.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { generateCheckerboard, quantizedInputCeiling } from '../../datasets/checkerboard/index.js';
import { fit } from '../../src/train/trainer.js';
import { TfheCircuitExecutor, planCircuit } from '../../src/runtime/executor.js';
import { simulateWithNoise } from '../../src/runtime/noisy-simulate.js';
import { nativeKernelError } from '../../src/tfhe/native.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const o = new Command('approximate.ts')
  .description('a plain QAT checkerboard net, encrypted through approximate rounding')
  .option('--hidden <n>', 'hidden width', intOption('--hidden', 1), 100)
  .option('--seed <n>', 'training seed', intOption('--seed', 0), 0)
  .option('--bits <list>', 'rounding widths to compare', intListOption('--bits', 2), [6, 5, 4])
  .option('--run-bits <n>', 'the width run encrypted (default: the narrowest of --bits that keeps the unrounded accuracy within 1 point)', intOption('--run-bits', 2))
  .option('--samples <n>', 'test samples run encrypted', intOption('--samples', 0), 40)
  .option('--threads <n>', 'KS-PBS threads', intOption('--threads', 1), 2)
  .option('--noise-draws <n>', 'noisy simulations (src/runtime/noisy-simulate.ts) of the same samples, predicting the encrypted agreement', intOption('--noise-draws', 0), 400)
  .option('--no-encrypt', 'skip the encrypted run (the noisy-simulation prediction only)')
  .option('--write', 'write RESULTS-approximate.md')
  .parse()
  .opts<{ hidden: number; seed: number; bits: number[]; runBits?: number; samples: number; threads: number; noiseDraws: number; encrypt: boolean; write?: boolean }>();

const report = new ReportLog();
const log = report.log;
const t00 = performance.now();
const backend = await initBackend();
const data = generateCheckerboard({ seed: 42 });
manualSeed(o.seed);
const net = new QuantSimpleNet({ hidden: o.hidden, bits: 3, scales: 'notebook' });
const t0 = performance.now();
await fit(net, { train: data.train }, { epochs: 7, batchSize: 8, lr: 5e-3, optimizer: 'adamw', seed: o.seed, progress: 'silent' });
const trainSeconds = (performance.now() - t0) / 1000;
net.eval();
const graph = moduleToGraph(net, [2]);
const calib = { data: data.train.x, n: data.train.y.length };
const xTest = data.test.x;
const short = (name: string) => name.replace(/.*MESSAGE_(\d+)_CARRY_(\d+).*/, '$1_$2');
function accuracy(c: Circuit): number {
  const out = simulate(c, quantizeInput(c, xTest), data.test.y.length).output;
  let ok = 0;
  for (let i = 0; i < data.test.y.length; i++) if ((out[2 * i + 1]! > out[2 * i]! ? 1 : 0) === data.test.y[i]) ok++;
  return ok / data.test.y.length;
}
function setFor(c: Circuit): string {
  try {
    const p = planCircuit(c);
    return `${short(p.params.name)}, ${p.pbsPerSample} PBS`;
  } catch {
    return 'none fits';
  }
}

const exact = FheModel.compile(graph, calib);
const accExact = accuracy(exact.circuit);
log('# A plain QAT checkerboard net, encrypted through approximate rounding');
log();
log(`Command: \`npx tsx experiments/checkerboard-encrypted/approximate.ts ${process.argv.slice(2).join(' ')}\``);
log(`Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; load average at start ${loadavg().map((v) => v.toFixed(1)).join(' / ')} (shared). Training backend: ${describeBackend(backend)}. TFHE kernel: ${nativeKernelError() ? `TypeScript (${nativeKernelError()})` : 'native C'}.`);
log();
log(`Net: 3-bit notebook QuantSimpleNet h=${o.hidden}, seed ${o.seed}, plain QAT (batch 8, 7 epochs, AdamW lr 5e-3; no accumulator-aware training), trained in ${trainSeconds.toFixed(0)} s. ` +
  `Unrounded circuit: ${(100 * accExact).toFixed(2)} % on the 500 test points (data ceiling ${(100 * quantizedInputCeiling(data.test, 1 / 3)).toFixed(2)} %), tables ${exact.compiled.tables.map((t) => `${t.name} ${t.accBits}-bit`).join(', ')}; TFHE: ${setFor(exact.circuit)}.`);
log();
log('| rounding | table widths (k rounded away) | simulate accuracy (500 test points) | TFHE set, exact rounding | TFHE set, approximate rounding |');
log('|---|---|---|---|---|');
const approx = new Map<number, FheModel>();
for (const bits of o.bits) {
  const ex = FheModel.compile(graph, calib, { roundingThresholdBits: bits });
  const ap = FheModel.compile(graph, calib, { roundingThresholdBits: { bits, method: 'approximate' } });
  approx.set(bits, ap);
  const widths = ap.compiled.tables.map((t) => `${t.inputBits} (${t.roundBits})`).join(', ');
  log(`| ${bits} bits | ${widths} | ${(100 * accuracy(ap.circuit)).toFixed(2)} % (exact rounding's tables: ${(100 * accuracy(ex.circuit)).toFixed(2)} %) | ${setFor(ex.circuit)} | ${setFor(ap.circuit)} |`);
}
log();
log('"simulate accuracy" is the clear circuit, which rounds exactly; approximate tables may round one more bit away than exact ones (a spare entry at each end of the table, within the width).');
log();

const runBits = o.runBits ?? [...o.bits].sort((a, b) => a - b).find((b) => accuracy(approx.get(b)!.circuit) >= accExact - 0.01);
let mismatch = false;
if (runBits !== undefined && o.samples > 0) {
  const model = approx.get(runBits) ?? FheModel.compile(graph, calib, { roundingThresholdBits: { bits: runBits, method: 'approximate' } });
  const plan = planCircuit(model.circuit);
  const n = Math.min(o.samples, data.test.y.length);
  const x = data.test.x.subarray(0, 2 * n);
  const want = simulate(model.circuit, quantizeInput(model.circuit, x), n).output;
  /** Agreement of outputs `got` with simulate's, over the n samples. */
  const compare = (got: ArrayLike<number>) => {
    let equal = 0;
    let sameClass = 0;
    let okGot = 0;
    let okSim = 0;
    let maxDiff = 0;
    for (let s = 0; s < n; s++) {
      const [a, b] = [got[2 * s]!, got[2 * s + 1]!];
      const [c, d] = [want[2 * s]!, want[2 * s + 1]!];
      if (a === c && b === d) equal++;
      maxDiff = Math.max(maxDiff, Math.abs(a - c), Math.abs(b - d));
      const pe = b > a ? 1 : 0;
      const ps = d > c ? 1 : 0;
      if (pe === ps) sameClass++;
      if (pe === data.test.y[s]) okGot++;
      if (ps === data.test.y[s]) okSim++;
    }
    return { equal, sameClass, okGot, okSim, maxDiff };
  };
  log(`## ${runBits}-bit approximate rounding, ${n} test samples`);
  log();
  log(`Set **${plan.params.name}** (${short(plan.params.name)}), ${plan.pbsPerSample} PBS per sample; ${o.threads} KS-PBS thread(s).`);
  log(`Per table: ${plan.noise.map((t) => `${t.op} ${t.B}-bit accumulator${t.approximate ? ' (approximate)' : ''}: σ 2^${(Math.log2(t.variance) / 2).toFixed(1)} of 2^${(Math.log2(t.budget) / 2).toFixed(1)} allowed, P(off by more than one step) 2^${t.log2PFail.toFixed(0)}`).join('; ')}.`);
  log();
  if (o.encrypt) {
    const exec = new TfheCircuitExecutor({ threads: o.threads });
    model.executor = exec;
    const t1 = performance.now();
    const r = await model.forward(x, n, { fhe: 'execute' });
    const wall = (performance.now() - t1) / 1000;
    const st = exec.lastStats!;
    await exec.close();
    const m = compare(r.outputInts!);
    mismatch = m.sameClass < n;
    log('Encrypted, in one call:');
    log();
    log('| samples | outputs equal to simulate | same class as simulate | accuracy encrypted / simulate | largest output difference | wall s/sample (incl. key gen once) | PBS s/sample | key gen |');
    log('|---|---|---|---|---|---|---|---|');
    log(`| ${n} | ${m.equal}/${n} | ${m.sameClass}/${n} | ${(100 * m.okGot / n).toFixed(1)} % / ${(100 * m.okSim / n).toFixed(1)} % | ${m.maxDiff} | ${(wall / n).toFixed(2)} | ${(st.pbsSeconds / n).toFixed(2)} | ${st.keygenSeconds.toFixed(1)} s |`);
    log();
    log('An output that differs from simulate is expected with approximate rounding: a hidden unit whose accumulator lies near a rounding boundary reads the neighbouring table entry (one quantization step of its activation), and the output layer sums those steps with its weights.');
    log();
  }
  if (o.noiseDraws > 0) {
    const xInt = quantizeInput(model.circuit, x);
    const draws = Array.from({ length: o.noiseDraws }, (_, seed) => compare(simulateWithNoise(model.circuit, plan, xInt, n, { seed }).output));
    const q = (f: (m: ReturnType<typeof compare>) => number) => {
      const v = draws.map(f);
      return `${mean(v).toFixed(1)} (5–95 %: ${quantile(v, 0.05)}–${quantile(v, 0.95)})`;
    };
    log(`Noisy simulation (src/runtime/noisy-simulate.ts: each bootstrapped lookup reads accumulator + N(0, σ²) with the plan's per-element σ), ${o.noiseDraws} draws of the same ${n} samples — the prediction for an encrypted run:`);
    log();
    log('| outputs equal to simulate | same class as simulate | accuracy | largest output difference |');
    log('|---|---|---|---|');
    log(`| ${q((m) => m.equal)} of ${n} | ${q((m) => m.sameClass)} of ${n} | ${q((m) => m.okGot)} of ${n} correct | ${q((m) => m.maxDiff)} |`);
    log();
  }
}
log(`Wall time of the script ${((performance.now() - t00) / 1000).toFixed(0)} s; load average at the end ${loadavg().map((v) => v.toFixed(1)).join(' / ')}.`);
if (o.write) fs.writeFileSync(path.join(here, 'RESULTS-approximate.md'), report.text());
net.dispose();
if (mismatch) console.log('note: some encrypted predictions differ from simulate (approximate rounding)');
