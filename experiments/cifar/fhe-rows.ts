/**
 * FHE simulation rows of a saved CNV checkpoint (packed or float32), for any list of roundings: the same evaluation
 * as `train.ts --eval-only` (calibration on evenly spaced training images, simulate on evenly spaced test images,
 * agreement with the QAT model), without a training run folder.
 *
 *   npx tsx experiments/cifar/fhe-rows.ts experiments/cifar/cnv.packed.safetensors --rows '[6, {"bits": 6, "perChannel": true, "align": true}]'
 *
 * A row is "none", a number (Concrete ML's rounding to that many bits) or { bits, perChannel?, align? } (fhenet's
 * refined rounding, src/compiler/rounding.ts), or { bits, method: "approximate" } (approximate rounding). Every row reports
 * the TFHE parameter set fhenet's executor would run it on; `--noise` adds the noisy simulation on that plan (each
 * bootstrapped lookup reads its accumulator plus the plan's Gaussian error): the accuracy an encrypted run predicts.
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as fs from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { loadModule } from '../../src/nn/checkpoint.js';
import { loadPackedModule } from '../../src/quant/packed-checkpoint.js';
import { intOption } from '../../src/cli/options.js';
import { type FheRounding, buildModel, fheEvaluate, loadData, spread } from './lib.js';

function parseRows(v: string): FheRounding[] {
  let rows: unknown;
  try {
    rows = JSON.parse(v);
  } catch {
    throw new InvalidArgumentError(`--rows must be a JSON array, got '${v}'`);
  }
  const ok = (r: unknown) => r === 'none' || (typeof r === 'number' && Number.isInteger(r)) || (typeof r === 'object' && r !== null && Number.isInteger((r as { bits?: unknown }).bits));
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every(ok)) throw new InvalidArgumentError(`--rows: a non-empty array of "none", integers or { bits, method?, perChannel?, align? }`);
  return rows as FheRounding[];
}

const o = new Command('fhe-rows.ts')
  .description('FHE simulation accuracy of a CNV checkpoint for a list of roundings')
  .argument('<checkpoint>', 'a packed (savePackedModule) or float32 (saveModule) checkpoint of the full CNV')
  .option('--rows <json>', 'roundings to evaluate', parseRows, ['none', 8, 7, 6] as FheRounding[])
  .option('--fhe-n <n>', 'test images simulated (evenly spaced)', intOption('--fhe-n', 1, 10000), 10000)
  .option('--calib-n <n>', 'training images (evenly spaced) used to calibrate the compiler', intOption('--calib-n', 1, 50000), 300)
  .option('--noise', "also run the noisy simulation (src/runtime/noisy-simulate.ts) on each row's TFHE plan: the predicted encrypted accuracy")
  .option('--json <file>', 'also write the rows as JSON')
  .parse();
const [checkpoint] = o.args as [string];
const opts = o.opts<{ rows: FheRounding[]; fheN: number; calibN: number; noise?: boolean; json?: string }>();
if (!fs.existsSync(checkpoint)) o.error(`checkpoint ${checkpoint} does not exist`);

const info = await initBackend();
console.log(`backend: ${describeBackend(info)}`);
const data = await loadData('full', {});
const model = buildModel('full');
// A packed checkpoint carries its own format tag; anything else is read as a float32 state dict.
try {
  loadPackedModule(checkpoint, model);
} catch (e) {
  if (!/not a packed checkpoint/.test((e as Error).message)) throw e;
  loadModule(checkpoint, model, { strict: true });
}
const t0 = performance.now();
const fhe = await fheEvaluate(model, spread(data.train, opts.calibN), data.test, { n: opts.fheN, roundings: opts.rows, noise: opts.noise === true });
for (const r of fhe.rows) {
  console.log(
    `rounding ${r.label}: ${(100 * r.accuracy).toFixed(2)}% on ${fhe.n} (QAT on the same ${(100 * fhe.qatAccuracy).toFixed(2)}%, agreement ${(100 * r.agreement).toFixed(2)}%); ` +
      `max bit width ${r.maxBitWidth}, max TLU input ${r.maxTluInputBits}; compile ${r.compileSeconds.toFixed(1)} s, simulate ${r.simulateSeconds.toFixed(1)} s; ` +
      (r.tfhe ? `TFHE: ${r.tfhe.set}, ${r.tfhe.pbsPerSample} PBS per image` : `TFHE: no set fits (${(r.tfheRefusal ?? '').slice(0, 300)})`) +
      (r.noisy
        ? `; noisy simulation ${(100 * r.noisy.accuracy).toFixed(2)}% (agreement with simulate ${(100 * r.noisy.agreementWithSimulate).toFixed(2)}%, ${r.noisy.flipsPerImage.toFixed(1)} lookups off by one per image, ${r.noisy.seconds.toFixed(0)} s)`
        : ''),
  );
}
console.log(`wall ${((performance.now() - t0) / 1000).toFixed(0)} s`);
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ checkpoint, argv: process.argv.slice(2), ...fhe }, null, 2));
