/**
 * `fhenet analyze <model.safetensors>`: the accumulator report of a checkerboard model saved by `fhenet train`
 * (QAT nets directly; float SimpleNets after post-training quantization to --bits).
 */
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import type { Module } from '../nn/module.js';
import { ConfigError } from '../util/errors.js';
import { intOption } from './options.js';

interface AnalyzeCliOptions {
  data: 'generated' | 'peer';
  split: 'train' | 'test';
  samples?: number;
  bits: number;
  json?: boolean;
}

/** Rebuilds the model `fhenet train` saved (its metadata names it), installing pruning masks it carries. */
async function loadTrained(file: string): Promise<{ model: Module; meta: Record<string, string> }> {
  if (!fs.existsSync(file)) throw new ConfigError(`model file ${file} not found`);
  if (!file.endsWith('.safetensors')) {
    throw new ConfigError(
      `${file}: analyze takes a checkpoint written by fhenet train --out (model.safetensors); ` +
        `for an ONNX file, fhenet compile ${file} prints every value's integer range and bit width, and fhenet inspect ${file} its quantizers`,
    );
  }
  const [tf, { decodeTensors }, { QuantSimpleNet, SimpleNet }, { WeightedLayer }] = await Promise.all([
    import('@tensorflow/tfjs-core'),
    import('../nn/checkpoint.js'),
    import('../models/checkerboard.js'),
    import('../nn/layers.js'),
  ]);
  const { tensors, metadata } = decodeTensors(new Uint8Array(fs.readFileSync(file)));
  const hidden = Number(metadata.hidden ?? 100);
  const model: Module =
    metadata.model === 'simple-net'
      ? new SimpleNet(hidden)
      : metadata.model === 'quant-simple-net'
        ? new QuantSimpleNet({ hidden, bits: Number(metadata.bits ?? 3), scales: metadata.scales === 'brevitas' ? 'brevitas' : 'notebook' })
        : (() => {
            throw new ConfigError(`${file}: metadata 'model' is ${JSON.stringify(metadata.model)}; analyze knows simple-net and quant-simple-net (files written by fhenet train)`);
          })();
  for (const [k, t] of tensors) {
    if (!k.endsWith('.weight_mask')) continue;
    const layer = model.getModule(k.slice(0, -'.weight_mask'.length));
    if (layer instanceof WeightedLayer) layer.setWeightMask(t);
  }
  model.loadStateDict(tensors);
  tf.dispose([...tensors.values()]);
  return { model, meta: metadata };
}

export function analyzeCommand(): Command {
  return new Command('analyze')
    .description('accumulator report (integer ranges and bit widths per layer, worst-case bounds) of a trained checkerboard model')
    .argument('<model>', 'model.safetensors written by fhenet train --out')
    .addOption(new Option('--data <source>', 'data set the ranges are measured on').choices(['generated', 'peer']).default('generated'))
    .addOption(new Option('--split <part>', 'which part of it').choices(['train', 'test']).default('train'))
    .option('--samples <n>', 'use only the first n samples', intOption('--samples', 0))
    .option('--bits <n>', 'post-training quantization width for float models', intOption('--bits', 2, 16), 3)
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: AnalyzeCliOptions) => {
      // Loaded here, not at the top: `fhenet --help` and the server commands must not load TensorFlow.js (src/cli/main.ts).
      const [{ initBackend }, { generateCheckerboard, loadPeerCheckerboard }, { analyzeAccumulators, formatAccumulatorReport }, { formatSparsity, sparsityReport }, { quantizePostTraining }, { head }, { evaluate }] =
        await Promise.all([
          import('../backend/index.js'),
          import('../../datasets/checkerboard/index.js'),
          import('../analysis/accumulator.js'),
          import('../prune/index.js'),
          import('../ptq/module-ptq.js'),
          import('../train/dataset.js'),
          import('../train/trainer.js'),
        ]);
      await initBackend();
      const data = o.data === 'peer' ? loadPeerCheckerboard() : generateCheckerboard({ seed: 42 });
      const set = o.samples !== undefined ? head(data[o.split], o.samples) : data[o.split];
      const { model: loaded, meta } = await loadTrained(file);
      const model = meta.model === 'simple-net' ? quantizePostTraining(loaded, data.train, { bits: o.bits }) : loaded;
      const report = analyzeAccumulators(model, set);
      const accuracy = evaluate(model, data.test).accuracy;
      const sparsity = sparsityReport(model);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ model: file, ptqBits: meta.model === 'simple-net' ? o.bits : undefined, testAccuracy: accuracy, report, sparsity }, null, 2)}\n`);
        return;
      }
      const what = meta.model === 'simple-net' ? `float SimpleNet h=${meta.hidden}, post-training quantized to ${o.bits} bits` : `${meta.model} h=${meta.hidden}`;
      process.stdout.write(`${what}; ranges over the ${o.data} ${o.split} set; test accuracy ${(100 * accuracy).toFixed(2)}%\n\n`);
      process.stdout.write(`${formatAccumulatorReport(report)}\n\n${formatSparsity(sparsity)}\n`);
    });
}
