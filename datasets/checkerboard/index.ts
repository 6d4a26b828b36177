/**
 * The checkerboard data of Concrete ML's QAT guide and notebook (facts: shared/reference/concrete-ml.md §1):
 * a 100 × 100 grid on [0, 1]², label (rint(3x) mod 2) XOR (rint(3y) mod 2) computed on the clean grid, then
 * Gaussian noise of std 0.01 added to the coordinates; 9,500 train / 500 test points, shuffled with a seed.
 * fhenet draws its own noise and split from `seed` (numpy's generator is not reproduced), and can also load the
 * exact arrays the reference runs used (`peer` data) so results compare on identical points.
 */
import * as fs from 'node:fs';
import type { Dataset, Split } from '../../src/train/dataset.js';
import { FhenetError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import * as path from 'node:path';
import { packageRoot } from '../../src/util/package-root.js';

export interface CheckerboardOptions {
  nSide?: number;
  clusters?: number;
  noise?: number;
  testSize?: number;
  seed?: number;
}

/** Label of a clean grid point: (rint(c·x) mod 2) XOR (rint(c·y) mod 2), rint = round half to even like numpy. */
export function checkerLabel(x: number, y: number, clusters = 3): number {
  return (mod2(rintEven(clusters * x)) ^ mod2(rintEven(clusters * y))) as number;
}

function rintEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function mod2(v: number): number {
  return ((v % 2) + 2) % 2;
}

export function generateCheckerboard(opts: CheckerboardOptions = {}): Split {
  const { nSide = 100, clusters = 3, noise = 0.01, testSize = 0.05, seed = 42 } = opts;
  const rng = new Rng(`checkerboard:${seed}`);
  const n = nSide * nSide;
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < nSide; i++) {
    for (let j = 0; j < nSide; j++) {
      const k = i * nSide + j; // meshgrid + ravel: x varies fastest
      const gx = j / (nSide - 1);
      const gy = i / (nSide - 1);
      y[k] = checkerLabel(gx, gy, clusters);
      x[2 * k] = gx + noise * rng.normal();
      x[2 * k + 1] = gy + noise * rng.normal();
    }
  }
  const nTest = Math.ceil(testSize * n);
  const perm = rng.permutation(n);
  const pick = (idx: Int32Array): Dataset => {
    const xs = new Float32Array(idx.length * 2);
    const ys = new Int32Array(idx.length);
    idx.forEach((k, i) => {
      xs[2 * i] = x[2 * k]!;
      xs[2 * i + 1] = x[2 * k + 1]!;
      ys[i] = y[k]!;
    });
    return { x: xs, y: ys, sampleShape: [2], numClasses: 2 };
  };
  return { test: pick(perm.subarray(0, nTest)), train: pick(perm.subarray(nTest)) };
}

/**
 * The exact arrays the reference (Brevitas) runs used, carried by the repository and the package with the Brevitas
 * fixtures (tests/fixtures/brevitas/checkerboard.json; provenance in its README).
 */
export function peerCheckerboardPath(): string {
  return path.join(packageRoot(), 'tests', 'fixtures', 'brevitas', 'checkerboard.json');
}

/** The exact arrays the reference (Brevitas) runs used (see `peerCheckerboardPath`). */
export function loadPeerCheckerboard(file = peerCheckerboardPath()): Split {
  if (!fs.existsSync(file)) throw new FhenetError(`peer checkerboard arrays not found at ${file}`);
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  const part = (xKey: string, yKey: string): Dataset => {
    const xs = raw[xKey] as number[][] | undefined;
    const ys = raw[yKey] as number[] | undefined;
    if (!Array.isArray(xs) || !Array.isArray(ys) || xs.length !== ys.length || xs.some((r) => !Array.isArray(r) || r.length !== 2)) {
      throw new FhenetError(`${file}: '${xKey}'/'${yKey}' are not matching n×2 and n arrays`);
    }
    return { x: Float32Array.from(xs.flat()), y: Int32Array.from(ys), sampleShape: [2], numClasses: 2 };
  };
  return { train: part('X_train', 'y_train'), test: part('X_test', 'y_test') };
}

/**
 * Accuracy of the best possible classifier that only sees the input quantized to the grid of `scale`
 * (the notebook's 3-bit input quantizer, scale 1/3): the label of the cell round(x/scale) — an upper bound for
 * QAT nets with that input quantizer, since noise pushes some points across cell borders.
 */
export function quantizedInputCeiling(d: Dataset, scale = 1 / 3, clusters = 3): number {
  let ok = 0;
  for (let i = 0; i < d.y.length; i++) {
    const cx = rintEven(d.x[2 * i]! / scale) * scale;
    const cy = rintEven(d.x[2 * i + 1]! / scale) * scale;
    if (checkerLabel(cx, cy, clusters) === d.y[i]) ok++;
  }
  return ok / d.y.length;
}
