/** In-memory labelled data: samples stored flat (row-major), labels as integers. */
import { ShapeError } from '../util/errors.js';

export interface Dataset {
  /** Flat sample values, `n × prod(sampleShape)`. */
  x: Float32Array;
  /** Integer class labels, length n. */
  y: Int32Array;
  /** Shape of one sample, e.g. [2] or [32, 32, 3] (NHWC images). */
  sampleShape: number[];
  numClasses: number;
}

export interface Split {
  train: Dataset;
  test: Dataset;
}

export function size(d: Dataset): number {
  return d.y.length;
}

export function sampleSize(d: Dataset): number {
  return d.sampleShape.reduce((a, b) => a * b, 1);
}

export function checkDataset(d: Dataset, who = 'dataset'): void {
  const per = sampleSize(d);
  if (d.y.length === 0) throw new ShapeError(`${who} is empty`);
  if (d.x.length !== d.y.length * per) {
    throw new ShapeError(`${who}: ${d.x.length} values do not make ${d.y.length} samples of shape [${d.sampleShape}]`);
  }
}

/** Copies the samples at `indices` into a contiguous batch. */
export function gather(d: Dataset, indices: ArrayLike<number>): { x: Float32Array; y: Int32Array } {
  const per = sampleSize(d);
  const x = new Float32Array(indices.length * per);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i]!;
    x.set(d.x.subarray(j * per, (j + 1) * per), i * per);
    y[i] = d.y[j]!;
  }
  return { x, y };
}

/** The first `n` samples (or all when fewer). */
export function head(d: Dataset, n: number): Dataset {
  const m = Math.min(n, size(d));
  const per = sampleSize(d);
  return { ...d, x: d.x.slice(0, m * per), y: d.y.slice(0, m) };
}
