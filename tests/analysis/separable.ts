/**
 * A two-class task small quantized nets learn in a couple of epochs: points uniform in [0, 1]², class 1 below the
 * diagonal (x₀ > x₁). The checkerboard is too hard for a 1–3-epoch test budget (its nets stay near chance, so an
 * accuracy threshold on it cannot tell a working feature from a broken one); this one is learned to ≈ 0.86–0.96,
 * so "the constrained or quantized net still classifies" is a real check.
 */
import type { Dataset } from '../../src/train/dataset.js';
import { Rng } from '../../src/util/rng.js';

export function diagonalTask(n: number, seed: number): Dataset {
  const r = new Rng(seed);
  const x = Float32Array.from({ length: 2 * n }, () => r.uniform(0, 1));
  const y = Int32Array.from({ length: n }, (_, i) => (x[2 * i]! > x[2 * i + 1]! ? 1 : 0));
  return { x, y, sampleShape: [2], numClasses: 2 };
}
