/**
 * Chooses the per-channel rounding headroom (`roundingThresholdBits.headroom`, src/compiler/rounding.ts) of a CNV
 * checkpoint on held-out *training* images, so that the test set is measured once, afterwards:
 *
 *   npx tsx experiments/cifar/choose-headroom.ts experiments/cifar/cnv.packed.safetensors --headrooms 0.05,0.1,0.25
 *
 * The compiler is calibrated on the same evenly spaced training images as fhe-rows.ts (--calib-n); the validation
 * images are other training images, evenly spaced and disjoint from those. For each headroom: accuracy, agreement
 * with the unrounded circuit (the rounding's fidelity, the figure to choose by; ties go to the larger headroom) and
 * the table inputs that wrapped.
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as fs from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { loadPackedModule } from '../../src/quant/packed-checkpoint.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { dequantizeOutput, quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { intOption } from '../../src/cli/options.js';
import { argmaxRows } from '../../src/train/trainer.js';
import { sampleSize, size } from '../../src/train/dataset.js';
import { buildModel, loadData, nhwcToNchw, spread } from './lib.js';

const o = new Command('choose-headroom.ts')
  .description('per-channel rounding headroom of a CNV checkpoint, chosen on held-out training images')
  .argument('<checkpoint>', 'a packed CNV checkpoint (savePackedModule)')
  .option('--bits <n>', 'rounding width', intOption('--bits', 2, 16), 6)
  .option('--headrooms <list>', 'comma-separated fractions of each channel\'s span', (v: string) => {
    const xs = v.split(',').map(Number);
    if (!xs.length || !xs.every((x) => Number.isFinite(x) && x >= 0 && x <= 4)) throw new InvalidArgumentError(`--headrooms: numbers in [0, 4], got '${v}'`);
    return xs;
  }, [0, 0.05, 0.1, 0.25])
  .option('--calib-n <n>', 'calibration images (evenly spaced training images, as fhe-rows.ts)', intOption('--calib-n', 1, 50000), 300)
  .option('--val-n <n>', 'validation images (other training images, evenly spaced)', intOption('--val-n', 1, 40000), 5000)
  .option('--json <file>', 'also write the rows as JSON')
  .parse();
const [checkpoint] = o.args as [string];
const opts = o.opts<{ bits: number; headrooms: number[]; calibN: number; valN: number; json?: string }>();
if (!fs.existsSync(checkpoint)) o.error(`checkpoint ${checkpoint} does not exist`);

console.log(`backend: ${describeBackend(await initBackend())}`);
const t0 = performance.now();
const { train } = await loadData('full', {});
const model = buildModel('full');
loadPackedModule(checkpoint, model);
model.eval();
const total = size(train);
const calib = spread(train, opts.calibN);
// spread() takes floor(i·total/n); validation images are offset by 7 from their own even grid and skip those.
const calibIdx = new Set(Array.from({ length: opts.calibN }, (_, i) => Math.floor((i * total) / opts.calibN)));
const idx = Array.from({ length: opts.valN }, (_, i) => 7 + Math.floor((i * (total - 10)) / opts.valN)).filter((i) => !calibIdx.has(i));
const per = sampleSize(train);
const vx = new Float32Array(idx.length * per);
idx.forEach((j, i) => vx.set(train.x.subarray(j * per, (j + 1) * per), i * per));
const n = idx.length;

const graph = moduleToGraph(model, train.sampleShape);
const calibration = { data: nhwcToNchw(calib.x, opts.calibN, calib.sampleShape), n: opts.calibN };
const exact = FheModel.compile(graph, calibration, {}).circuit;
const xi = quantizeInput(exact, nhwcToNchw(vx, n, train.sampleShape));
const classes = (c: typeof exact) => {
  const r = simulate(c, xi, n);
  return { pred: argmaxRows(dequantizeOutput(c, r.output), train.numClasses), wraps: Object.values(r.overflows).reduce((a, b) => a + b, 0) };
};
const reference = classes(exact).pred;
const rows: { headroom: number; accuracy: number; agreement: number; wraps: number }[] = [];
for (const headroom of opts.headrooms) {
  const c = FheModel.compile(graph, calibration, { roundingThresholdBits: { bits: opts.bits, perChannel: true, align: true, headroom } }).circuit;
  const { pred, wraps } = classes(c);
  let ok = 0;
  let agree = 0;
  for (let i = 0; i < n; i++) {
    if (pred[i] === train.y[idx[i]!]) ok++;
    if (pred[i] === reference[i]) agree++;
  }
  rows.push({ headroom, accuracy: ok / n, agreement: agree / n, wraps });
  console.log(`headroom ${headroom}: ${(100 * ok / n).toFixed(2)} % on ${n} held-out training images, agreement with the unrounded circuit ${(100 * agree / n).toFixed(2)} %, ${wraps} table inputs wrapped`);
}
// Ties go to the larger headroom: the same fidelity with fewer values wrapping around the tables.
const best = rows.reduce((a, b) => (b.agreement > a.agreement || (b.agreement === a.agreement && b.headroom > a.headroom) ? b : a));
console.log(`best agreement: headroom ${best.headroom}; wall ${((performance.now() - t0) / 1000).toFixed(0)} s`);
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ checkpoint, argv: process.argv.slice(2), bits: opts.bits, calibN: opts.calibN, validation: n, rows }, null, 2));
