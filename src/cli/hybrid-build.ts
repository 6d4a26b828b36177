/**
 * `fhenet hybrid build`: a trained checkpoint → the `--models` folder `fhenet serve` reads. The named modules are
 * compiled to circuits (calibrated on the given data) and written as server artefacts, the rest of the network as the
 * client's (HybridFHEModel.saveAndClearPrivateInfo: client files carry none of the remote weights; docs/hybrid.md).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { ConfigError } from '../util/errors.js';
import { intOption } from './options.js';

interface HybridBuildOptions {
  modules: string;
  calib: string;
  calibSamples: number;
  backend: 'tfhe' | 'simulate';
  name?: string;
  nBits: number;
  outputBits?: number;
  rounding?: number;
  out: string;
}

export function hybridCommand(): Command {
  const cmd = new Command('hybrid').description('hybrid deployment: build the model folder that fhenet serve reads').showHelpAfterError();
  cmd
    .command('build')
    .description('compile chosen modules of a checkpoint for remote (server-side) FHE and write <out>/<name>/ for fhenet serve --models <out>')
    .argument('<checkpoint>', 'model.safetensors written by fhenet train --out (or any checkpoint of the model registry)')
    .requiredOption('--modules <names>', 'comma-separated module names to run on the server (e.g. fc2; see the model summary of fhenet train)')
    .requiredOption('-o, --out <dir>', 'models folder to write (pass it to fhenet serve --models)')
    .option('--calib <data>', "calibration inputs: 'checkerboard', 'peer' or a JSON file {x, n} (x flat in the model's input layout, NHWC for images)", 'checkerboard')
    .option('--calib-samples <n>', 'calibration samples used', intOption('--calib-samples', 1), 2000)
    .addOption(new Option('--backend <kind>', 'crypto backend of the artefacts: tfhe (encrypted) or simulate (clear integers, for development)').choices(['tfhe', 'simulate']).default('tfhe'))
    .option('--name <model>', 'model name in the folder and in client requests (default: the checkpoint file name)')
    .option('--n-bits <n>', 'post-training quantization bits for float modules and their inputs', intOption('--n-bits', 2, 16), 8)
    .option('--output-bits <n>', 'bits of the output quantizer added to a remote module that does not end with one (default --n-bits)', intOption('--output-bits', 2, 16))
    .option('--rounding <bits>', 'round table inputs to this many bits (roundingThresholdBits)', intOption('--rounding', 1, 16))
    .action(async (file: string, o: HybridBuildOptions) => {
      if (!fs.existsSync(file)) throw new ConfigError(`${file} does not exist`);
      if (!file.endsWith('.safetensors')) {
        throw new ConfigError(
          `${file}: hybrid build takes an fhenet checkpoint (.safetensors) — the client half of a hybrid model runs the local modules in ` +
            'TensorFlow.js, and an ONNX file has no module tree to split; build from the checkpoint the ONNX file was exported from',
        );
      }
      const modules = o.modules.split(',').map((s) => s.trim()).filter(Boolean);
      // runs/cb/model.safetensors → 'cb' (fhenet train names every checkpoint model.safetensors)
      const base = path.basename(file, '.safetensors');
      const name = o.name ?? (base === 'model' ? path.basename(path.dirname(path.resolve(file))) : base);
      if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new ConfigError(`--name '${name}': use letters, digits, '.', '_' and '-' only (it is a folder and a URL part)`);
      const tf = await import('@tensorflow/tfjs-core');
      const { initBackend } = await import('../backend/index.js');
      const { loadCheckpointModel } = await import('../models/registry.js');
      const { HybridFHEModel } = await import('../hybrid/hybrid-model.js');
      const { loadData } = await import('./load.js');
      await initBackend();
      const { model, sampleShape } = loadCheckpointModel(file);
      const calib = loadData(o.calib, 'train');
      const per = sampleShape.reduce((a, b) => a * b, 1);
      if (calib.x.length !== calib.n * per) throw new ConfigError(`--calib ${o.calib}: ${calib.x.length / calib.n} values per sample; the model takes [${sampleShape}] = ${per}`);
      const n = Math.min(o.calibSamples, calib.n);
      const hybrid = new HybridFHEModel(model, modules, { modelName: name });
      const x = tf.tensor(calib.x.subarray(0, n * per), [n, ...sampleShape]);
      hybrid.compileModel(x, {
        backend: o.backend,
        nBits: o.nBits,
        ...(o.outputBits !== undefined ? { outputBits: o.outputBits } : {}),
        ...(o.rounding !== undefined ? { roundingThresholdBits: o.rounding } : {}),
      });
      x.dispose();
      const dir = path.join(o.out, name);
      hybrid.saveAndClearPrivateInfo(dir);
      const files: string[] = [];
      const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk : (f: string) => files.push(f))(path.join(d, e.name));
      };
      walk(dir);
      process.stdout.write(
        `wrote ${dir}: ${modules.join(', ')} remote (${o.backend}), calibrated on ${n} samples of ${o.calib}; ${files.length} files\n` +
          `serve it:  fhenet serve --models ${o.out} --keys <keys dir>\n`,
      );
    });
  return cmd;
}
