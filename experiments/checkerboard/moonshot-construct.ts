/**
 * Moonshot, existence check: a 3-bit net (notebook quantizers, unsigned 1/3-grid input) whose accumulator is at most
 * 5 bits for EVERY input (worst case, not observed) and whose accuracy is the data's ceiling — built by hand, not
 * trained. It shows the moonshot target is representable, so what the trained rows miss is optimisation.
 *
 * With c = round(3x) ∈ {0..3} (the input integers) and the 1/3 scales of weights and activations, a neuron with
 * integer weights q and float bias b outputs h = clamp(round(Σ q·x_int / 3 + 3b), 0, 3). So:
 * - fc1: [c ≥ t] for t = 1, 2, 3 with q = 1 and 3b = 0.35, 0.05, −0.25 (for x and y: 6 neurons);
 * - parity(c) = [c≥1] − [c≥2] + [c≥3], and the label is parity(cx) XOR parity(cy) = [S = 1] with S = px + py ∈ {0,1,2};
 * - fc2: u = [S ≥ 1] (3b = 0.4) and v = [S ≥ 2] (3b = 0.1), weights (1, −1, 1, 1, −1, 1): P⁺ = 4, N = 2;
 * - fc3: logit₁ − logit₀ = (u − v)/9 − 1/18.
 * Accumulators: fc1 ∈ [0, 3], fc2 ∈ [−6, 12] (5 bits), fc3 ∈ [−3, 3]. All other neurons have zero weights and bias.
 *
 *   npx tsx experiments/checkerboard/moonshot-construct.ts
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { generateCheckerboard, loadPeerCheckerboard, quantizedInputCeiling } from '../../datasets/checkerboard/index.js';
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import type { QuantLinear } from '../../src/quant/layers.js';
import { notebookNetUnsignedInput } from '../../src/sweep/models.js';
import { evaluate } from '../../src/train/trainer.js';

export function constructedNet(hidden = 100) {
  const net = notebookNetUnsignedInput(hidden, 3);
  const fc = (name: string) => net.namedModules().find(([n]) => n === name)![1] as QuantLinear;
  const set = (layer: QuantLinear, w: number[][], b: number[]) => {
    const [out, inp] = layer.weight.shape as [number, number];
    const W = new Float32Array(out * inp);
    const B = new Float32Array(out);
    w.forEach((row, o) => row.forEach((q, i) => (W[o * inp + i] = q / 3)));
    b.forEach((v, o) => (B[o] = v));
    layer.weight.assign(tf.tensor2d(W, [out, inp]));
    layer.bias!.assign(tf.tensor1d(B));
  };
  const t3 = [0.35, 0.05, -0.25].map((v) => v / 3);
  set(fc('fc1'), [[1, 0], [1, 0], [1, 0], [0, 1], [0, 1], [0, 1]], [...t3, ...t3]);
  set(fc('fc2'), [[1, -1, 1, 1, -1, 1], [1, -1, 1, 1, -1, 1]], [0.4 / 3, 0.1 / 3]);
  set(fc('fc3'), [[], [1, -1]], [1 / 18, 0]);
  return net;
}

if (process.argv[1]?.endsWith('moonshot-construct.ts')) {
  const { Command } = await import('commander');
  new Command('experiments/checkerboard/moonshot-construct.ts')
    .description('existence check: a hand-built 3-bit net at the data ceiling with ≤ 5-bit worst-case accumulators; prints its accuracy and accumulator bits (no options)')
    .parse();
  await initBackend();
  const net = constructedNet();
  net.eval();
  for (const [name, d] of [['generated (seed 42)', generateCheckerboard({ seed: 42 })], ['peer arrays', loadPeerCheckerboard()]] as const) {
    const rep = analyzeAccumulators(net, d.train);
    const layers = rep.layers.map((l) => `${l.layer} ${l.observed.bits}/${l.worstCase.bits}`).join(', ');
    console.log(
      `${name}: test ${(100 * evaluate(net, d.test).accuracy).toFixed(2)} % (ceiling ${(100 * quantizedInputCeiling(d.test)).toFixed(2)} %), ` +
        `train ${(100 * evaluate(net, d.train).accuracy).toFixed(2)} % (ceiling ${(100 * quantizedInputCeiling(d.train)).toFixed(2)} %); ` +
        `accumulator ${rep.bits} bits observed, ${rep.worstCaseBits} worst case (per layer observed/worst: ${layers})`,
    );
  }
}
