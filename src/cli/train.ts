/** `fhenet train`: trains a checkerboard network and prints its report. */
import * as path from 'node:path';
import { Command, Option } from 'commander';
import type { Module } from '../nn/module.js';
import type { FitResult } from '../train/trainer.js';
import type { OptimizerName } from '../train/optim.js';
import type { Schedule } from '../train/schedule.js';
import { ConfigError } from '../util/errors.js';
import { intOption, numberOption } from './options.js';

interface TrainOptions {
  model: 'quant-simple-net' | 'simple-net';
  hidden: number;
  bits: number;
  scales: 'notebook' | 'brevitas';
  data: 'generated' | 'peer';
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: OptimizerName;
  weightDecay?: number;
  schedule: 'constant' | 'step' | 'cosine';
  seed: number;
  out?: string;
  resume?: boolean;
  backend?: string;
  json?: boolean;
  fheReady?: number | true;
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a checkerboard network (3-bit QAT QuantSimpleNet by default) and print its report')
    .addOption(new Option('--model <name>', 'network').choices(['quant-simple-net', 'simple-net']).default('quant-simple-net'))
    .option('--hidden <n>', 'hidden width', intOption('--hidden', 1), 100)
    .option('--bits <n>', 'bit width of weights and activations', intOption('--bits', 1, 16), 3)
    .addOption(new Option('--scales <kind>', 'quantizer scales: the notebook\'s constants or Brevitas defaults').choices(['notebook', 'brevitas']).default('notebook'))
    .addOption(new Option('--data <source>', 'generated (seeded) or the reference runs\' exact arrays').choices(['generated', 'peer']).default('generated'))
    .option('--epochs <n>', 'epochs', intOption('--epochs', 1), 5)
    .option('--batch-size <n>', 'batch size (the reference uses 1)', intOption('--batch-size', 1), 32)
    .option('--lr <x>', 'learning rate', numberOption('--lr'), 1e-3)
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adamw', 'adam', 'sgd']).default('adamw'))
    .option('--weight-decay <x>', 'weight decay', numberOption('--weight-decay'))
    .addOption(new Option('--schedule <kind>', 'learning-rate schedule').choices(['constant', 'step', 'cosine']).default('constant'))
    .option('--seed <n>', 'seed for initialisation and shuffling', intOption('--seed', 0), 0)
    .option('--out <dir>', 'write checkpoints (every epoch), model.safetensors and report.json here')
    .option('--resume', 'continue from <out>/last.safetensors')
    .option('--backend <name>', 'force a tensor backend (node-gpu, node, wasm, cpu)')
    .option('--json', 'print the report as JSON')
    .option(
      '--fhe-ready [bits]',
      'train fc1 and fc2 accumulator-aware (A2Q) so every table input fits this many bits (default 5) for any input: `fhenet compile` then finds a TFHE parameter set for the whole net',
      intOption('--fhe-ready', 3, 12),
    )
    .action(async (o: TrainOptions) => {
      await runTrain(o);
    });
}

async function runTrain(o: TrainOptions): Promise<void> {
  if (o.resume && !o.out) throw new ConfigError('--resume needs --out (the folder holding last.safetensors)');
  // Loaded here, not at the top: `fhenet --help` and the server commands must not load TensorFlow.js (src/cli/main.ts).
  const [{ describeBackend, initBackend }, { generateCheckerboard, loadPeerCheckerboard, quantizedInputCeiling }, { manualSeed }, { saveModule, writeFileAtomic }, { formatSummary, summarize }, { QuantSimpleNet, SimpleNet }, { fit }] =
    await Promise.all([
      import('../backend/index.js'),
      import('../../datasets/checkerboard/index.js'),
      import('../nn/init.js'),
      import('../nn/checkpoint.js'),
      import('../nn/summary.js'),
      import('../models/checkerboard.js'),
      import('../train/trainer.js'),
    ]);
  const backend = await initBackend(o.backend);
  const data = o.data === 'peer' ? loadPeerCheckerboard() : generateCheckerboard({ seed: 42 });
  manualSeed(o.seed);
  const model: Module =
    o.model === 'simple-net' ? new SimpleNet(o.hidden) : new QuantSimpleNet({ hidden: o.hidden, bits: o.bits, scales: o.scales });
  const log = (s: string) => process.stderr.write(`${s}\n`);
  if (o.fheReady !== undefined && o.model !== 'quant-simple-net') throw new ConfigError('--fhe-ready needs --model quant-simple-net (a float net has no integer accumulators)');
  const fheBits = o.fheReady === true ? 5 : o.fheReady;
  // Accumulator-aware training on the two layers whose outputs feed table lookups; fc3's output is decrypted, not looked up.
  const constraint =
    fheBits === undefined ? undefined : (await import('../quant/a2q.js')).accumulatorAware(model, { targetBits: fheBits, sampleShape: [2], layers: ['fc1', 'fc2'] });
  log(
    `fhenet train: ${o.model} h=${o.hidden}${o.model === 'quant-simple-net' ? ` ${o.bits}-bit (${o.scales} scales)` : ''}, ${o.data} data, ${describeBackend(backend)}` +
      (fheBits !== undefined ? `, accumulator-aware: fc1/fc2 table inputs within ${fheBits} bits (--fhe-ready)` : ''),
  );
  const schedule: Schedule =
    o.schedule === 'step' ? { kind: 'step', stepSize: Math.max(1, Math.floor(o.epochs / 3)), gamma: 0.1 } : o.schedule === 'cosine' ? { kind: 'cosine', tMax: o.epochs } : { kind: 'constant' };
  const result: FitResult = await fit(model, data, {
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    optimizer: o.optimizer,
    weightDecay: o.weightDecay,
    schedule,
    seed: o.seed,
    checkpointDir: o.out,
    resume: o.resume,
    ...(constraint ? { afterStep: constraint.afterStep } : {}),
    onEpoch: (m) => {
      log(`epoch ${m.epoch + 1}/${o.epochs}  loss ${m.trainLoss.toFixed(4)}  train ${(100 * m.trainAccuracy).toFixed(2)}%  test ${(100 * (m.testAccuracy ?? 0)).toFixed(2)}%  ${m.seconds.toFixed(1)}s`);
    },
  });
  const last = result.history[result.history.length - 1];
  const ceiling = o.model === 'quant-simple-net' && o.scales === 'notebook' ? quantizedInputCeiling(data.test, 1 / (2 ** (o.bits - 1) - 1)) : undefined;
  const report = {
    command: `fhenet ${process.argv.slice(2).join(' ')}`,
    backend: backend.choice,
    options: o,
    testAccuracy: last?.testAccuracy,
    trainAccuracy: last?.trainAccuracy,
    quantizedInputCeiling: ceiling,
    seconds: result.seconds,
    history: result.history,
    summary: summarize(model),
  };
  if (o.out) {
    saveModule(path.join(o.out, 'model.safetensors'), model, { model: o.model, hidden: String(o.hidden), bits: String(o.bits), scales: o.scales });
    writeFileAtomic(path.join(o.out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const pct = (v: number | undefined) => (v === undefined ? 'n/a' : `${(100 * v).toFixed(2)}%`);
  const lines = [
    '',
    `model            ${o.model}, hidden ${o.hidden}${o.model === 'quant-simple-net' ? `, ${o.bits}-bit weights/activations` : ''}`,
    `backend          ${backend.choice}`,
    `test accuracy    ${pct(last?.testAccuracy)}`,
    `train accuracy   ${pct(last?.trainAccuracy)}`,
  ];
  if (ceiling !== undefined) lines.push(`input-grid ceiling ${pct(ceiling)} (best accuracy possible with the quantized input)`);
  lines.push(`wall time        ${result.seconds.toFixed(1)} s for ${result.history.length} epochs`);
  if (o.out) lines.push(`saved            ${path.join(o.out, 'model.safetensors')}, report.json`);
  lines.push(formatSummary(report.summary));
  process.stdout.write(`${lines.join('\n')}\n`);
}
