/**
 * Probe (not the deliverable): train small 3-bit notebook QuantSimpleNets, compile them, and print simulate accuracy,
 * widest table accumulator and PBS count.  npx tsx experiments/checkerboard-encrypted/probe.ts h=16 seeds=0-4 k=0
 * Settings are key=value words (any order): h, seeds, k, epochs, bs, lr, P, P3, diag (`--help` describes them).
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import { Command, InvalidArgumentError } from 'commander';
import { initBackend } from '../../src/backend/index.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { manualSeed } from '../../src/nn/init.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { fit } from '../../src/train/trainer.js';
import { pruneKNonZero, removePruning } from '../../src/prune/index.js';
import { planCircuit } from '../../src/runtime/executor-plan.js';
import { accumulatorAware, neuronBudget } from '../../src/quant/a2q.js';

/** The key=value settings: description, and a check of the value (undefined when it is fine, else what it must be). */
const isInt = (v: string, min: number) => v !== '' && Number.isInteger(Number(v)) && Number(v) >= min;
const SETTINGS: Record<string, { help: string; bad: (v: string) => string | undefined }> = {
  h: { help: 'hidden widths, comma-separated (default 16)', bad: (v) => (v.split(',').every((x) => isInt(x, 1)) ? undefined : 'comma-separated integers ≥ 1') },
  seeds: { help: 'seed range a-b, inclusive (default 0-3; a single seed a means a-a)', bad: (v) => (/^\d+(-\d+)?$/.test(v) ? undefined : 'a-b or a, with integers ≥ 0') },
  k: { help: 'non-zero inputs per neuron of fc2/fc3 (strict pruning), comma-separated; 0 = no pruning (default 0)', bad: (v) => (v.split(',').every((x) => isInt(x, 0)) ? undefined : 'comma-separated integers ≥ 0') },
  epochs: { help: 'training epochs (default 7)', bad: (v) => (isInt(v, 1) ? undefined : 'an integer ≥ 1') },
  bs: { help: 'batch size (default 32)', bad: (v) => (isInt(v, 1) ? undefined : 'an integer ≥ 1') },
  lr: { help: 'learning rate, AdamW with weight decay 0.01 (default 5e-3)', bad: (v) => (v !== '' && Number.isFinite(Number(v)) ? undefined : 'a number') },
  P: { help: 'accumulator-aware target bits for fc1 and fc2; 0 = off (default 0)', bad: (v) => (isInt(v, 0) ? undefined : 'an integer ≥ 0') },
  P3: { help: 'with P: constrain fc3 too (any value, e.g. P3=1, turns it on)', bad: (v) => (v !== '' ? undefined : 'a non-empty value') },
  diag: { help: 'TFHE parameter sets to try planning each circuit with, comma-separated (prints why each fails)', bad: (v) => (v !== '' ? undefined : 'comma-separated parameter set names') },
};
const program = new Command('experiments/checkerboard-encrypted/probe.ts')
  .description('probe: train small 3-bit notebook QuantSimpleNets, compile them, print simulate accuracy, table accumulators and PBS count')
  .argument('[settings...]', 'key=value settings (see below)', (a: string, kv: Record<string, string> | undefined) => {
    const i = a.indexOf('=');
    const [key, value] = i < 0 ? [a, undefined] : [a.slice(0, i), a.slice(i + 1)];
    const spec = SETTINGS[key];
    if (!spec) throw new InvalidArgumentError(`unknown setting '${a}'; settings are key=value with key one of ${Object.keys(SETTINGS).join(', ')}`);
    if (value === undefined) throw new InvalidArgumentError(`setting '${a}' needs a value: ${key}=...`);
    const bad = spec.bad(value);
    if (bad) throw new InvalidArgumentError(`${key} must be ${bad}, got '${value}'`);
    return { ...kv, [key]: value };
  })
  .addHelpText('after', `\nSettings:\n${Object.entries(SETTINGS).map(([k, s]) => `  ${`${k}=`.padEnd(8)}${s.help}`).join('\n')}\n`)
  .parse();
// No settings: commander leaves an empty list here.
const kv = (Array.isArray(program.processedArgs[0]) ? {} : program.processedArgs[0]) as Record<string, string>;
const hs = (kv.h ?? '16').split(',').map(Number);
const [s0, s1 = s0] = (kv.seeds ?? '0-3').split('-').map(Number) as [number, number?];
const ks = (kv.k ?? '0').split(',').map(Number);
const epochs = Number(kv.epochs ?? 7);
const bs = Number(kv.bs ?? 32);
const lr = Number(kv.lr ?? 5e-3);
const P = Number(kv.P ?? 0);
await initBackend();
const data = generateCheckerboard({ seed: 42 });
for (const h of hs) for (const k of ks) for (let seed = s0; seed <= s1; seed++) {
  const t0 = performance.now();
  manualSeed(seed);
  const net = new QuantSimpleNet({ hidden: h, bits: 3, scales: 'notebook' });
  if (k > 0) pruneKNonZero(net, k, { strict: true, layers: ['fc2', 'fc3'] });
  let afterStep: (() => void) | undefined;
  if (P > 0) {
    const cons = accumulatorAware(net, { targetBits: P, sampleShape: [2], layers: kv.P3 ? ['fc1', 'fc2', 'fc3'] : ['fc1', 'fc2'] });
    // fc1 reads the data's quantized coordinates, which lie in [0, 3] on [0,1]^2: split budgets, like a ReLU input.
    const b1 = cons.budgets.find((b) => b.layer === 'fc1')!;
    Object.assign(b1, neuronBudget(P, 0, 3));
    cons.project();
    afterStep = cons.afterStep;
  }
  await fit(net, { train: data.train }, { epochs, batchSize: bs, lr, seed, progress: 'silent', optimizer: 'adamw', weightDecay: 0.01, afterStep });
  removePruning(net);
  net.eval();
  const model = FheModel.compile(moduleToGraph(net, [2]), { data: data.train.x, n: data.train.y.length });
  const c = model.circuit;
  const n = data.test.y.length;
  const sim = simulate(c, quantizeInput(c, data.test.x), n).output;
  let ok = 0;
  for (let i = 0; i < n; i++) if ((sim[2 * i + 1]! > sim[2 * i]! ? 1 : 0) === data.test.y[i]) ok++;
  const bits = model.compiled.tables.map((t) => `${t.accBits}[${t.accRange.min},${t.accRange.max}]`).join(',');
  let pbs = -1;
  let set = '-';
  try { const p = planCircuit(c); pbs = p.pbsPerSample; set = p.params.name.replace(/.*MESSAGE_(\d)_CARRY_(\d).*/, '$1_$2'); } catch (e) { set = 'none'; }
  if (kv.diag) for (const ps of kv.diag.split(',')) { try { planCircuit(c, { params: ps }); console.log(`  ${ps}: ok`); } catch (e) { console.log(`  ${ps}: ${(e as Error).message.slice(0, 400)}`); } }
  console.log(`h=${h} k=${k} seed=${seed}: acc ${(100 * ok / n).toFixed(2)} tables ${bits} set ${set} pbs ${pbs} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  net.dispose();
}
