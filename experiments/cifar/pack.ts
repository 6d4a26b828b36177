/**
 * Converts a float checkpoint of one of the experiment's nets into an integer-packed one (src/quant/packed-checkpoint.ts)
 * and checks the packed file reproduces the model's outputs exactly on random inputs.
 *
 *   npx tsx experiments/cifar/pack.ts --variant full --in runs/cifar-cnv/last.safetensors --out experiments/cifar/cnv.packed.safetensors
 *
 * `--in` may be a state dict (--save-model) or a training checkpoint (last.safetensors, whose model tensors carry
 * a `model.` prefix next to the optimizer state).
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as fs from 'node:fs';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { decodeTensors } from '../../src/nn/checkpoint.js';
import { valueOf } from '../../src/nn/quant-tensor.js';
import { loadPackedModule, savePackedModule } from '../../src/quant/packed-checkpoint.js';
import { VARIANTS, type Variant, buildModel } from './lib.js';

const o = new Command()
  .requiredOption('--variant <v>', `model: ${VARIANTS.join(', ')}`)
  .requiredOption('--in <file>', 'float checkpoint (state dict or training checkpoint)')
  .requiredOption('--out <file>', 'packed checkpoint to write')
  .option('--bits <n>', 'fashion variant: weight/activation bits', (v) => parseInt(v, 10), 3)
  .parse()
  .opts<{ variant: Variant; in: string; out: string; bits: number }>();

await initBackend();
const { tensors, metadata } = decodeTensors(new Uint8Array(fs.readFileSync(o.in)));
const training = [...tensors.keys()].some((k) => k.startsWith('model.'));
const state = training ? new Map([...tensors].filter(([k]) => k.startsWith('model.')).map(([k, t]) => [k.slice(6), t])) : tensors;
const model = buildModel(o.variant, { bits: o.bits }).eval();
model.loadStateDict(state);
tf.dispose([...tensors.values()]);
const meta: Record<string, string> = { variant: o.variant, source: o.in };
if (metadata.history) {
  const h = JSON.parse(metadata.history) as { epoch: number; testAccuracy?: number }[];
  meta.epochs = String(h.length);
  const last = h.at(-1);
  if (last?.testAccuracy !== undefined) meta.testAccuracy = String(last.testAccuracy);
}
savePackedModule(o.out, model, meta);

const copy = buildModel(o.variant, { bits: o.bits }).eval();
loadPackedModule(o.out, copy);
const side = o.variant === 'fashion' ? [28, 28, 1] : [32, 32, 3];
const x = tf.randomUniform([8, ...side], 0, 1, 'float32', 1);
const same = tf.tidy(() => tf.all(tf.equal(valueOf(model.call(x)), valueOf(copy.call(x)))).dataSync()[0] === 1);
if (!same) throw new Error('the packed checkpoint does not reproduce the model outputs');
console.log(`${o.in} (${fs.statSync(o.in).size} bytes) → ${o.out} (${fs.statSync(o.out).size} bytes); outputs identical on 8 random inputs`);
