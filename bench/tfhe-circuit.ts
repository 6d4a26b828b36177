/**
 * Encrypted checkerboard inference (`fhe: 'execute'`): per-sample latency single-thread and on all cores, key
 * generation, evaluation-key and ciphertext bytes, PBS count — every encrypted output compared with simulate.
 *
 *   npx tsx bench/tfhe-circuit.ts                     # all configurations
 *   npx tsx bench/tfhe-circuit.ts --configs a2q4-h100 --samples 10
 *   npx tsx bench/tfhe-circuit.ts --write             # also writes bench/results/tfhe-circuit.md
 *
 * Configurations: 3-bit notebook QuantSimpleNet trained with accumulator-aware QAT (src/quant/a2q.ts) to a target
 * accumulator width — 4 bits fits the 2_2 set, 6 bits needs 3_3 (planCircuit picks the set).
 */
import '../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import { cpus, loadavg, totalmem } from 'node:os';
import { Command } from 'commander';
import { intOption } from '../src/cli/options.js';
import { writeFileSync } from 'node:fs';
import { initBackend } from '../src/backend/index.js';
import { FheModel } from '../src/compiler/fhe-model.js';
import { quantizeInput, simulate } from '../src/compiler/simulate.js';
import { moduleToGraph } from '../src/export/to-graph.js';
import { manualSeed } from '../src/nn/init.js';
import { QuantSimpleNet } from '../src/models/checkerboard.js';
import { generateCheckerboard } from '../datasets/checkerboard/index.js';
import { fit } from '../src/train/trainer.js';
import { accumulatorAware } from '../src/quant/a2q.js';
import { TfheCircuitClient, TfheCircuitServer, planCircuit } from '../src/runtime/executor.js';
import { nativeKernelError } from '../src/tfhe/native.js';
import { ReportLog } from '../src/util/report-log.js';

const CONFIGS: Record<string, { hidden: number; target: number; seed: number }> = {
  'a2q4-h100': { hidden: 100, target: 4, seed: 0 },
  'a2q6-h30': { hidden: 30, target: 6, seed: 0 },
  'a2q6-h100': { hidden: 100, target: 6, seed: 0 },
};
const opts = new Command('bench/tfhe-circuit.ts')
  .description('encrypted checkerboard inference: latency, keys, bytes; every encrypted output compared with simulate')
  .option('--configs <list>', `comma-separated configurations (${Object.keys(CONFIGS).join(', ')})`, Object.keys(CONFIGS).join(','))
  .option('--samples <n>', 'test samples encrypted per configuration', intOption('--samples', 1), 4)
  .option('--epochs <n>', 'training epochs per configuration', intOption('--epochs', 1), 7)
  .option('--write', 'also write bench/results/tfhe-circuit.md')
  .parse()
  .opts<{ configs: string; samples: number; epochs: number; write?: boolean }>();
const configs = opts.configs.split(',');
const unknownConfigs = configs.filter((c) => !(c in CONFIGS));
if (unknownConfigs.length) {
  console.error(`unknown configuration(s) ${unknownConfigs.join(', ')}; known: ${Object.keys(CONFIGS).join(', ')}`);
  process.exit(2);
}
const { samples, epochs } = opts;
const write = opts.write === true;
const threadsAll = cpus().length;

await initBackend();
const data = generateCheckerboard({ seed: 42 });
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
const report = new ReportLog();
const log = report.log;

interface Row {
  config: string;
  accuracy: number;
  set: string;
  maxAcc: number;
  pbs: number;
  keygen: number;
  keyMB: number;
  expand1: number;
  lat1: number;
  msPbs1: number;
  latAll: number;
  msPbsAll: number;
  up: number;
  down: number;
  agree: string;
  profile: string;
}
const rows: Row[] = [];

for (const name of configs) {
  const cfg = CONFIGS[name]!;
  manualSeed(cfg.seed);
  const net = new QuantSimpleNet({ hidden: cfg.hidden, bits: 3, scales: 'notebook' });
  const constraint = accumulatorAware(net, { targetBits: cfg.target, sampleShape: [2] });
  await fit(net, { train: data.train }, { epochs, batchSize: 32, lr: 5e-3, seed: cfg.seed, progress: 'silent', afterStep: constraint.afterStep });
  net.eval();
  const model = FheModel.compile(moduleToGraph(net, [2]), { data: data.train.x, n: data.train.y.length });
  const c = model.circuit;
  const nTest = data.test.y.length;
  const sim = simulate(c, quantizeInput(c, data.test.x), nTest).output;
  let correct = 0;
  for (let i = 0; i < nTest; i++) if ((sim[2 * i + 1]! > sim[2 * i]! ? 1 : 0) === data.test.y[i]) correct++;
  const plan = planCircuit(c);
  const maxAcc = Math.max(...model.compiled.tables.map((t) => t.inputBits + t.roundBits));
  console.log(`${name}: simulate accuracy ${((100 * correct) / nTest).toFixed(2)} %, table accumulators ≤ ${maxAcc} bits, set ${plan.params.name}, ${plan.pbsPerSample} PBS/sample`);

  let t0 = performance.now();
  const client = TfheCircuitClient.forCircuit(c);
  const keyBytes = client.serverKey();
  const keygen = (performance.now() - t0) / 1000;
  const x = data.test.x.subarray(0, samples * 2);
  const ints = quantizeInput(c, x);
  const want = simulate(c, ints, samples).output;
  const result: Partial<Row> = { config: name, accuracy: correct / nTest, set: plan.params.name, maxAcc, pbs: plan.pbsPerSample, keygen, keyMB: keyBytes.length / 2 ** 20 };
  let agreeTotal = 0;
  for (const threads of [1, threadsAll]) {
    t0 = performance.now();
    const server = await TfheCircuitServer.create(keyBytes, { params: client.paramsName, threads });
    const expand = (performance.now() - t0) / 1000;
    // one sample at a time: latency per sample (all of its lookups of a layer go to the threads together)
    const lat: number[] = [];
    let pbsS = 0;
    let pbs = 0;
    let linS = 0;
    let ioS = 0;
    let up = 0;
    let down = 0;
    for (let s = 0; s < samples; s++) {
      const cts = client.encryptInputs(c, ints.subarray(2 * s, 2 * s + 2), 1);
      up += cts.reduce((a, b) => a + b.length, 0);
      t0 = performance.now();
      const out = await server.runEncrypted(c, cts, 1);
      lat.push((performance.now() - t0) / 1000);
      down += out.reduce((a, b) => a + b.length, 0);
      const st = server.lastStats!;
      pbsS += st.pbsSeconds;
      pbs += st.pbs;
      linS += st.linearSeconds;
      ioS += st.ioSeconds;
      const got = client.decryptOutputs(c, out, 1);
      if (got[0] === want[2 * s] && got[1] === want[2 * s + 1]) agreeTotal++;
    }
    await server.close();
    const mean = lat.reduce((a, b) => a + b, 0) / samples;
    if (threads === 1) {
      Object.assign(result, { expand1: expand, lat1: mean, msPbs1: (1000 * pbsS) / pbs, up: up / samples, down: down / samples });
      result.profile = `PBS ${(pbsS / samples).toFixed(2)} s, linear ${(linS / samples).toFixed(3)} s, parse/serialize ${(ioS / samples).toFixed(3)} s per sample`;
    } else Object.assign(result, { latAll: mean, msPbsAll: (1000 * pbsS) / pbs });
    console.log(`  ${threads} thread(s): ${mean.toFixed(2)} s/sample (${lat.map((v) => v.toFixed(2)).join(', ')}), ${((1000 * pbsS) / pbs).toFixed(1)} ms per PBS, key expansion ${expand.toFixed(1)} s`);
  }
  result.agree = `${agreeTotal}/${2 * samples}`;
  client.dispose();
  net.dispose();
  rows.push(result as Row);
}

log('# Encrypted checkerboard inference (`fhe: \'execute\'`)');
log('');
log(`Command: \`npx tsx bench/tfhe-circuit.ts ${process.argv.slice(2).join(' ')}\`. Machine: ${machine}; load average at the end ${loadavg().map((v) => v.toFixed(1)).join(' / ')} (shared with other jobs).`);
log(`Backend: ${!nativeKernelError() ? 'native C kernel' : `TypeScript (${nativeKernelError()})`}. Data: generated checkerboard (seed 42); nets: 3-bit notebook QuantSimpleNet, accumulator-aware QAT (${epochs} epochs, batch 32, lr 5e-3), compiled with the training set as calibration.`);
log(`Latency: one sample per call (encrypt and decrypt excluded, they take milliseconds), mean over ${samples} test samples; every encrypted output decrypted and compared with simulate.`);
log('');
log('| net | simulate accuracy (500 test) | table accumulator bits | set | PBS / sample | key gen (node-tfhe) | eval key | key expansion | 1 thread s/sample (ms/PBS) | ' + threadsAll + ' threads s/sample (ms/PBS) | bytes up / down per sample | outputs = simulate |');
log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  log(
    `| ${r.config} | ${(100 * r.accuracy).toFixed(2)} % | ≤ ${r.maxAcc} | ${r.set.replace(/.*MESSAGE_(\d+)_CARRY_(\d+).*/, '$1_$2')} | ${r.pbs} | ${r.keygen.toFixed(1)} s | ${r.keyMB.toFixed(0)} MiB | ${r.expand1.toFixed(1)} s | ` +
      `${r.lat1.toFixed(2)} (${r.msPbs1.toFixed(1)}) | ${r.latAll.toFixed(2)} (${r.msPbsAll.toFixed(1)}) | ${r.up.toFixed(0)} / ${r.down.toFixed(0)} | ${r.agree} |`,
  );
}
log('');
log('Profile (1 thread): ' + rows.map((r) => `${r.config}: ${r.profile}`).join('; ') + '.');
if (write) writeFileSync(new URL('./results/tfhe-circuit.md', import.meta.url), report.text());
