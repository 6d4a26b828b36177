/**
 * Encrypted images (issue 9): a small Fashion-MNIST CNN whose every table lookup reads a ≤ 5-bit accumulator by
 * construction (accumulator-aware QAT, 2-bit input pixels, strided convolutions), compiled to an integer circuit,
 * simulated on the test set, and run on real TFHE ciphertexts image by image.
 *
 *   npx tsx experiments/encrypted-images/run.ts                         # committed checkpoint, 10 images encrypted, 1 and 2 threads
 *   npx tsx experiments/encrypted-images/run.ts --samples 10 --threads 1,2 --write   # also writes RESULTS-run.md
 *   npx tsx experiments/encrypted-images/run.ts --retrain --samples 0   # retrain from the seed (≈ 1–2 min), compare with the checkpoint
 *   npx tsx experiments/encrypted-images/run.ts --sim 10000 --calib 60000
 *   npx tsx experiments/encrypted-images/run.ts --ckpt experiments/encrypted-images/model-cifar.safetensors --samples 3 --threads 1 --write
 *                                                                     # the tiny CIFAR-10 net; writes RESULTS-run-cifar.md
 *
 * Steps: QAT accuracy on all 10,000 test images (tfjs); compile (calibration: --calib training images: the first ones for Fashion-MNIST, evenly spaced for CIFAR-10);
 * table-input widths, the TFHE plan (parameter set, PBS per image); simulate on --sim test images (accuracy,
 * agreement with the QAT model: argmax and logits); then --samples test images encrypted one per forward call
 * (client: node-tfhe keys and encryption; server: fhenet's evaluator), every output integer compared with
 * simulate, wall time per image, once per entry of --threads.
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import { mean as meanOf, median } from '../../src/util/stats.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { intListOption, intOption } from '../../src/cli/options.js';
import { ReportLog } from '../../src/util/report-log.js';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { type Dataset, head, sampleSize, size } from '../../src/train/dataset.js';
import { argmaxRows, evaluate, predict } from '../../src/train/trainer.js';
import { TfheCircuitExecutor, planCircuit, refusedSets } from '../../src/runtime/executor.js';
import { nativeKernelError } from '../../src/tfhe/native.js';
import { type NetConfig, buildNet, compileNet, loadImages, loadNet, nhwcToNchw, pick, saveNet, trainNet } from './lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const o = new Command()
  .option('--ckpt <file>', 'checkpoint to load (or write with --retrain)', path.join(here, 'model.safetensors'))
  .option('--samples <n>', 'images run encrypted', intOption('--samples', 0), 10)
  .option('--threads <list>', 'KS-PBS thread counts to run, comma-separated', intListOption('--threads', 1), [1, 2])
  .option('--sim <n>', 'test images simulated', intOption('--sim', 1), 10000)
  .option('--calib <n>', 'calibration images', intOption('--calib', 1), 10000)
  .option('--save <file>', 'write the (re)trained weights here', '')
  .option('--retrain', 'train instead of loading the checkpoint')
  .option('--write', 'write the RESULTS markdown file')
  .parse()
  .opts<{ ckpt: string; samples: number; threads: number[]; sim: number; calib: number; save: string; retrain?: boolean; write?: boolean }>();
const CKPT = path.resolve(o.ckpt);
const samples = o.samples;
const threadList = o.threads;
const simN = o.sim;
const calibN = o.calib;
const retrain = Boolean(o.retrain);
const saveTo = o.save;
const write = Boolean(o.write);

const report = new ReportLog();
const log = report.log;
const t00 = performance.now();
const load0 = loadavg();
const backendInfo = await initBackend();

// ─── the net ──────────────────────────────────────────────────────────────────────────────────────────────────
const loaded = loadNet(CKPT);
let net = loaded.net;
const cfg: NetConfig = loaded.cfg;
const data = await loadImages(cfg.dataset);
const test = data.test;
const dsName = cfg.dataset === 'cifar' ? 'CIFAR-10' : 'Fashion-MNIST';
const which = cfg.dataset === 'cifar' ? 'evenly spaced' : 'first';
// --write target: RESULTS-run.md (Fashion-MNIST) or RESULTS-run-cifar.md.
const resultsFile = path.join(here, cfg.dataset === 'cifar' ? 'RESULTS-run-cifar.md' : 'RESULTS-run.md');
let trainNote = `loaded from \`${path.relative(process.cwd(), CKPT)}\``;
if (retrain) {
  const fresh = buildNet(cfg);
  const r = await trainNet(fresh, cfg, { train: data.train });
  const a = fresh.stateDict();
  const b = net.stateDict();
  let same = true;
  for (const [k, t] of a) {
    const u = b.get(k);
    if (!u || Buffer.compare(Buffer.from((t.dataSync() as Float32Array).buffer), Buffer.from((u.dataSync() as Float32Array).buffer)) !== 0) same = false;
  }
  trainNote = `retrained now from seed ${cfg.seed} in ${r.seconds.toFixed(0)} s; the retrained weights ${same ? 'are bit-identical to' : 'DIFFER from'} the committed checkpoint`;
  net.dispose();
  net = fresh;
  if (saveTo) saveNet(saveTo, net, cfg);
}
net.eval();

const qat = evaluate(net, test);
const tC = performance.now();
const calib = pick(data.train, calibN, cfg.dataset);
const fhe = compileNet(net, calib);
const compileSeconds = (performance.now() - tC) / 1000;
const c = fhe.circuit;
const plan = planCircuit(c);
const short = (name: string) => name.replace(/.*MESSAGE_(\d+)_CARRY_(\d+).*/, '$1_$2');

// ─── simulate vs QAT ────────────────────────────────────────────────────────────────────────────────────────────
const sim: Dataset = pick(test, simN, cfg.dataset);
const nSim = size(sim);
const qatLogits = predict(net, sim);
const xSim = nhwcToNchw(sim.x, nSim, sim.sampleShape);
const tS = performance.now();
const simOut = await fhe.forward(xSim, nSim, { fhe: 'simulate' });
const simSeconds = (performance.now() - tS) / 1000;
const simPred = argmaxRows(simOut.output, 10);
const qatPred = argmaxRows(qatLogits, 10);
let simOk = 0;
let agree = 0;
let maxDiff = 0;
for (let i = 0; i < nSim; i++) {
  if (simPred[i] === sim.y[i]) simOk++;
  if (simPred[i] === qatPred[i]) agree++;
}
for (let i = 0; i < simOut.output.length; i++) maxDiff = Math.max(maxDiff, Math.abs(simOut.output[i]! - qatLogits[i]!));
const overflowCount = Object.values(simOut.overflows ?? {}).reduce((a, b) => a + b, 0);

log(`# Encrypted images: a ${dsName} CNN with ≤ 5-bit table inputs on TFHE`);
log();
log(`Command: \`npx tsx experiments/encrypted-images/run.ts ${args.join(' ')}\``);
log(`Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; load average at start ${load0.map((v) => v.toFixed(1)).join(' / ')} (shared with other jobs). Training backend: ${describeBackend(backendInfo).split(';')[0]}. TFHE kernel: ${nativeKernelError() ? `TypeScript (${nativeKernelError()})` : 'native C'}.`);
log();
log('## Net');
log();
log(`- EncryptedCnn: ${cfg.inputBits}-bit unsigned input on [0, 1] → ${cfg.channels.map((ch) => `conv ${cfg.kernel}×${cfg.kernel}/${cfg.stride} → ${ch} ch → BN → ${cfg.actBits}-bit signed act`).join(' → ')} → FC → 10 (${dsName}); ${cfg.weightBits}-bit constant-scale weights; ${fhe.report().tluCount ?? '?'} table lookups per image in the circuit.`);
log(`- Accumulator-aware QAT (src/quant/a2q.ts) on every convolution, target schedule ${cfg.schedule.join(' → ')} bits per epoch, the output layer at ${cfg.fcTarget} bits; Adam lr ${cfg.lr} cosine, batch ${cfg.batchSize}, ${cfg.epochs} epochs, seed ${cfg.seed}, ${size(data.train)} training images; ${trainNote}.`);
log(`- QAT accuracy on the 10,000 test images: **${(100 * qat.accuracy).toFixed(2)} %**.`);
log(`- Compiled (calibration: the ${which} ${size(calib)} training images, ${compileSeconds.toFixed(1)} s). Table lookups: ${fhe.compiled.tables.map((t) => `${t.name}: accumulator range [${t.accRange.min}, ${t.accRange.max}] → ${t.inputBits}-bit ${t.accRange.min < 0 ? 'signed' : 'unsigned'} table input`).join('; ')}. Max table-input width **${fhe.report().maxTluInputBits} bits**.`);
log(`- TFHE plan: set **${plan.params.name}** (${short(plan.params.name)}: n=${plan.params.lweDimension}, N=${plan.params.polynomialSize}, PBS ${plan.params.pbsBaseLog}/${plan.params.pbsLevel}, KS ${plan.params.ksBaseLog}/${plan.params.ksLevel}), **${plan.pbsPerSample} PBS per image**, p_error 2^${plan.log2PError} per lookup, output encoding ${plan.outputE} bits.`);
log('- Sets tried before it (cheapest first) and why they were refused:');
for (const r of refusedSets(c)) log(`  - ${short(r.name)}: ${r.reason.split(';')[0]!.slice(0, 300)}`);
log();
log(`## Simulate (exact integer circuit) on the ${which} ${nSim} test images`);
log();
log(`- accuracy ${(100 * simOk / nSim).toFixed(2)} %; argmax agreement with the QAT model ${agree}/${nSim} (${(100 * agree / nSim).toFixed(2)} %); largest |logit(simulate) − logit(QAT)| ${maxDiff.toExponential(2)}; table inputs outside the compiled domain: ${overflowCount}; ${simSeconds.toFixed(1)} s.`);
log();

// ─── encrypted ────────────────────────────────────────────────────────────────────────────────────────────────
interface Row { threads: number; wall: number[]; cpu: number[]; agreeImages: number; agreeLogits: number; pbsCount: number; pbsSec: number; linSec: number; encSec: number; decSec: number; ioSec: number; keygen: number; keyBytes: number; firstCall: number; up: number; down: number; loadStart: number[] }
const rows: Row[] = [];
const per = sampleSize(test);
const encSet = pick(test, samples, cfg.dataset);
const xEnc = nhwcToNchw(encSet.x, samples, encSet.sampleShape);
const want = simulate(c, quantizeInput(c, xEnc), samples).output;
const labels = encSet.y;
const med = median;
function tables(): string[] {
  const out: string[] = [];
  const log = (t = '') => out.push(t);
  if (rows.length) {
    let encOk = 0;
    for (let s = 0; s < samples; s++) if (argmaxRows(Float32Array.from(want.subarray(10 * s, 10 * s + 10)), 10)[0] === labels[s]) encOk++;
    log(`## Encrypted inference: the ${which} ${samples} test images, one image per forward call`);
    log();
    log(`Their labels: ${Array.from(labels).join(', ')}; encrypted predictions (= simulate) right on ${encOk}/${samples}.`);
    log();
    log('| KS-PBS threads | wall s/image, median | mean | min–max | CPU s/image, median (all threads) | PBS per image | ms per PBS (PBS time / count) | outputs = simulate | key gen (node-tfhe) | compressed server key | key gen + expansion | load average at start |');
    log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const k = r.wall.length;
      const mean = meanOf(r.wall);
      log(`| ${r.threads} | **${med(r.wall).toFixed(1)}** | ${mean.toFixed(1)} | ${Math.min(...r.wall).toFixed(1)}–${Math.max(...r.wall).toFixed(1)} | ${med(r.cpu).toFixed(1)} | ${r.pbsCount / k} | ${((1000 * r.pbsSec) / r.pbsCount).toFixed(1)} | ${r.agreeImages}/${k} images (${r.agreeLogits}/${10 * k} logits) | ${r.keygen.toFixed(1)} s | ${(r.keyBytes / 2 ** 20).toFixed(1)} MiB | ${r.firstCall.toFixed(1)} s | ${r.loadStart.map((v) => v.toFixed(1)).join(' / ')} |`);
    }
    log();
    log('Time profile per image (means):');
    log();
    log('| threads | client encrypt | server: KS-PBS | server: linear ops | server: parse/serialize | client decrypt | bytes up / down |');
    log('|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const k = r.wall.length;
      const f = (v: number) => `${(v / k).toFixed(2)} s`;
      log(`| ${r.threads} | ${f(r.encSec)} | ${f(r.pbsSec)} | ${f(r.linSec)} | ${f(r.ioSec)} | ${f(r.decSec)} | ${(r.up / k).toFixed(0)} / ${(r.down / k).toFixed(0)} |`);
    }
    log();
  }
  return out;
}

for (const threads of samples > 0 ? threadList : []) {
  const exec = new TfheCircuitExecutor({ threads });
  fhe.executor = exec;
  const loadStart = loadavg();
  let t0 = performance.now();
  await exec.session(plan.params.name); // key generation (node-tfhe, client) + server key expansion
  const firstCall = (performance.now() - t0) / 1000;
  const sess = await exec.session(plan.params.name);
  const row: Row = { threads, wall: [], cpu: [], agreeImages: 0, agreeLogits: 0, pbsCount: 0, pbsSec: 0, linSec: 0, encSec: 0, decSec: 0, ioSec: 0, keygen: sess.keygenSeconds, keyBytes: sess.keyBytes, firstCall, up: 0, down: 0, loadStart };
  rows.push(row);
  for (let s = 0; s < samples; s++) {
    t0 = performance.now();
    const c0 = process.cpuUsage();
    const r = await fhe.forward(xEnc.subarray(s * per, (s + 1) * per), 1, { fhe: 'execute' });
    row.wall.push((performance.now() - t0) / 1000);
    const c1 = process.cpuUsage(c0);
    row.cpu.push((c1.user + c1.system) / 1e6);
    const st = exec.lastStats!;
    row.pbsCount += st.pbs;
    row.pbsSec += st.pbsSeconds;
    row.linSec += st.linearSeconds;
    row.encSec += st.encryptSeconds;
    row.decSec += st.decryptSeconds;
    row.ioSec += st.ioSeconds;
    row.up += st.bytesUp;
    row.down += st.bytesDown;
    let same = 0;
    for (let k = 0; k < 10; k++) if (r.outputInts![k] === want[10 * s + k]) same++;
    row.agreeLogits += same;
    if (same === 10) row.agreeImages++;
    const pred = argmaxRows(r.output, 10)[0];
    console.log(`  ${threads} thread(s) image ${s} (label ${labels[s]}, predicted ${pred}): ${row.wall.at(-1)!.toFixed(1)} s wall, ${row.cpu.at(-1)!.toFixed(1)} s CPU, ${st.pbs} PBS; outputs ${Array.from(r.outputInts!).join(',')} ${same === 10 ? '= simulate' : `≠ simulate ${Array.from(want.subarray(10 * s, 10 * s + 10)).join(',')}`}; load ${loadavg()[0]!.toFixed(1)}`);
    if (write) fs.writeFileSync(resultsFile, report.text([...tables(), `(partial: written after image ${s + 1}/${samples} of the ${threads}-thread run)`]));
  }
  await exec.close();
}
for (const l of tables()) log(l);
log(`Load average at the end: ${loadavg().map((v) => v.toFixed(1)).join(' / ')}; wall time of the script ${((performance.now() - t00) / 1000).toFixed(0)} s.`);
const allAgree = rows.every((r) => r.agreeImages === samples);
if (rows.length) log(allAgree ? `All ${rows.length * samples} encrypted runs equal simulate (every logit).` : 'MISMATCH between encrypted outputs and simulate.');
if (write) fs.writeFileSync(resultsFile, report.text());
net.dispose();
if (!allAgree) process.exitCode = 1;
