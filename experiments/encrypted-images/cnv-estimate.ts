/**
 * How many table lookups (PBS) the full CNV circuit needs per image, counted from the compiled circuit, and whether
 * the TFHE executor can plan it. The weights are random (U(−1, 1), as CNV initialises them) and the calibration is
 * a few random images in [−1, 1]: the PBS count does not depend on the weights (one lookup per quantized
 * activation element; only constant table rows would be skipped), the accumulator widths do — for those, see the
 * trained CNV in experiments/cifar/RESULTS.md (12–13 bits).
 *
 *   npx tsx experiments/encrypted-images/cnv-estimate.ts [--variant full|small] [--calib 2]
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import { Command, Option } from 'commander';
import { initBackend } from '../../src/backend/index.js';
import { intOption } from '../../src/cli/options.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { manualSeed } from '../../src/nn/init.js';
import { createCnv } from '../../src/models/cnv.js';
import { planCircuit } from '../../src/runtime/executor-plan.js';
import { Rng } from '../../src/util/rng.js';

const opts = new Command('cnv-estimate.ts')
  .description('PBS per image of the CNV circuit (random weights), and whether the TFHE executor can plan it')
  .addOption(new Option('--variant <v>', 'CNV variant').choices(['full', 'small']).default('full'))
  .option('--calib <n>', 'random calibration images', intOption('--calib', 1), 2)
  .parse()
  .opts<{ variant: 'full' | 'small'; calib: number }>();
const variant = opts.variant;
const n = opts.calib;
await initBackend();
manualSeed(0);
const net = createCnv(variant);
net.eval();
const graph = moduleToGraph(net, [32, 32, 3]);
const rng = new Rng(1);
const x = Float32Array.from({ length: n * 3 * 32 * 32 }, () => rng.uniform(-1, 1));
const t0 = performance.now();
const fhe = FheModel.compile(graph, { data: x, n });
const rep = fhe.report();
console.log(`CNV ${variant}: compiled in ${((performance.now() - t0) / 1000).toFixed(1)} s (random weights, ${n} random calibration images)`);
console.log(`table lookups per image (circuit): ${rep.tluCount}`);
for (const t of fhe.compiled.tables) {
  const v = fhe.circuit.values.find((u) => u.name === fhe.circuit.ops.find((o) => o.name === t.name && 'output' in o)?.output);
  const elems = v ? v.shape.reduce((a, b) => a * b, 1) : NaN;
  console.log(`  ${t.name}: ${elems} lookups, accumulator [${t.accRange.min}, ${t.accRange.max}] → ${t.inputBits} bits (random weights)`);
}
try {
  const p = planCircuit(fhe.circuit);
  console.log(`plan: ${p.params.name}, ${p.pbsPerSample} PBS per image`);
} catch (e) {
  console.log(`plan refused: ${(e as Error).message.slice(0, 400)}`);
}
console.log(JSON.stringify({ variant, tluCount: rep.tluCount, maxTluInputBits: rep.maxTluInputBits, tables: fhe.compiled.tables.map((t) => ({ name: t.name, inputBits: t.inputBits })) }));
