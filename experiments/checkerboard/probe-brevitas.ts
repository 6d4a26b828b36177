/**
 * Diagnostic probe for the Brevitas-default QuantSimpleNet (not part of the experiment's results): which quantizer
 * keeps it on the initial loss plateau? Variants swap the weight quantizer (abs-max vs the notebook's constant
 * scale) and the activation quantizers (learned vs constant), h=100, 3 bits, no pruning, weights U(−1, 1).
 *   npx tsx experiments/checkerboard/probe-brevitas.ts [variant] [epochs] [seed]      (defaults: brevitas 2 0)
 *   variant: brevitas | absmax-w | learned-a | learned-in | learned-relu | notebook
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import { Argument, Command } from 'commander';
import { intOption } from '../../src/cli/options.js';
import { initBackend } from '../../src/backend/index.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { manualSeed, uniform } from '../../src/nn/init.js';
import { QuantIdentity, QuantLinear, QuantReLU } from '../../src/quant/layers.js';
import { QuantChain } from '../../src/ptq/module-ptq.js';
import type { QuantizerOptions } from '../../src/quant/quantizer.js';
import { evaluate, fit } from '../../src/train/trainer.js';

const VARIANTS = ['brevitas', 'absmax-w', 'learned-a', 'learned-in', 'learned-relu', 'notebook'];
const program = new Command('experiments/checkerboard/probe-brevitas.ts')
  .description('diagnostic: train the Brevitas-default QuantSimpleNet (h=100, 3 bits) with one quantizer swapped, one JSON line per epoch')
  .addArgument(new Argument('[variant]', 'which quantizers are learned (brevitas: weights and activations; notebook: none)').choices(VARIANTS).default('brevitas'))
  .addArgument(new Argument('[epochs]', 'training epochs').argParser(intOption('epochs', 1)).default(2))
  .addArgument(new Argument('[seed]', 'seed').argParser(intOption('seed', 0)).default(0))
  .parse();
const [variant, epochs, seed] = program.processedArgs as [string, number, number];

await initBackend();
manualSeed(seed);
const bits = 3;
const constQ: Partial<QuantizerOptions> = { bitWidth: bits, signed: true, narrow: true, scaling: 'const', maxVal: 1 };
const learnedW = variant === 'brevitas' || variant === 'absmax-w';
const learnedA = variant === 'brevitas' || variant === 'learned-a';
const weightQuant = learnedW ? { bitWidth: bits } : { ...constQ, clampSte: true };
const act = learnedA ? { bitWidth: bits } : constQ;
const inAct = variant === 'learned-in' ? { bitWidth: bits } : variant === 'learned-relu' ? constQ : act;
const reluAct = variant === 'learned-relu' ? { bitWidth: bits } : variant === 'learned-in' ? constQ : act;
const fcs = [new QuantLinear(2, 100, { weightQuant }), new QuantLinear(100, 100, { weightQuant }), new QuantLinear(100, 2, { weightQuant })];
for (const fc of fcs) fc.weight.assign(uniform(fc.weight.shape, -1, 1));
const net = new QuantChain([
  ['quant_inp', new QuantIdentity({ actQuant: inAct })],
  ['fc1', fcs[0]!],
  ['relu1', new QuantReLU({ actQuant: reluAct })],
  ['fc2', fcs[1]!],
  ['relu2', new QuantReLU({ actQuant: reluAct })],
  ['fc3', fcs[2]!],
]);
const d = generateCheckerboard({ seed: 42 });
await fit(net, { train: d.train }, { epochs, batchSize: 8, lr: 0.005, seed, progress: 'silent', onEpoch: (m) => console.log(JSON.stringify({ variant, epoch: m.epoch, loss: +m.trainLoss.toFixed(4), acc: +m.trainAccuracy.toFixed(4) })) });
console.log(JSON.stringify({ variant, test: evaluate(net, d.test).accuracy }));
