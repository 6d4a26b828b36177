/**
 * Fashion-MNIST: 28×28 grayscale images of 10 clothing classes (60,000 train, 10,000 test), from IDX files.
 *
 * Looked for (first hit wins): the `dir` option, FHENET_FASHION_MNIST, the data folder (`fhenet data fetch
 * fashion-mnist`, src/data), then Debian's `dataset-fashion-mnist` package at /usr/share/datasets/fashion-mnist. Files may be gzipped (`.gz`, as Debian ships them) or plain;
 * gzip is undone with node:zlib. Samples come out NHWC [28, 28, 1], scaled to [0, 1] (or [−1, 1] with 'signed').
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Dataset, Split } from '../../src/train/dataset.js';
import { datasetDir } from '../../src/data/data-dir.js';
import { DataMissingError } from '../../src/data/errors.js';
import { FASHION_MNIST } from '../../src/data/registry.js';
import { FhenetError } from '../../src/util/errors.js';

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

export { DataMissingError };

const HOW_TO_GET =
  'Run `fhenet data fetch fashion-mnist` (downloads the official files into the data folder, FHENET_DATA); on Debian/Ubuntu, ' +
  '`apt-get install dataset-fashion-mnist` (installs /usr/share/datasets/fashion-mnist); or download the four ' +
  '*-idx?-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist and pass their folder (dir option, --data, or FHENET_FASHION_MNIST).';

export interface IdxArray {
  /** Dimensions from the header, e.g. [60000, 28, 28]. */
  dims: number[];
  data: Uint8Array;
}

/** Parses an IDX file of unsigned bytes (type 0x08), gzipped or not. */
export function parseIdx(raw: Uint8Array, file = 'IDX file'): IdxArray {
  const bytes = raw[0] === 0x1f && raw[1] === 0x8b ? new Uint8Array(zlib.gunzipSync(raw)) : raw;
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new FhenetError(`${file}: not an IDX file (bad magic number)`);
  if (bytes[2] !== 0x08) throw new FhenetError(`${file}: IDX element type 0x${bytes[2]!.toString(16)} is not unsigned byte (0x08)`);
  const rank = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * rank) throw new FhenetError(`${file}: truncated IDX header`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.length - start !== count) {
    throw new FhenetError(`${file}: header says ${dims.join('×')} = ${count} values but the file holds ${bytes.length - start}`);
  }
  return { dims, data: bytes.subarray(start) };
}

/** Encodes unsigned bytes as an IDX file (used by tests to write synthetic fixtures). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function findFile(dir: string, base: string): string | undefined {
  return [`${base}.gz`, base].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
}

export function fashionMnistCandidates(dir?: string): string[] {
  if (dir) return [dir];
  const env = process.env.FHENET_FASHION_MNIST;
  const stored = datasetDir(FASHION_MNIST.name);
  return env ? [env, stored, DEBIAN_FASHION_MNIST_DIR] : [stored, DEBIAN_FASHION_MNIST_DIR];
}

export interface FashionMnistOptions {
  dir?: string;
  /** 'unit': [0, 1] (default); 'signed': [−1, 1]. */
  normalization?: 'unit' | 'signed';
  /** Keep only the first n training / test samples. */
  limitTrain?: number;
  limitTest?: number;
}

function toDataset(images: IdxArray, labels: IdxArray, norm: 'unit' | 'signed', limit: number | undefined, who: string): Dataset {
  const [n0, h, w] = images.dims as [number, number, number];
  if (images.dims.length !== 3 || labels.dims.length !== 1 || labels.dims[0] !== n0) {
    throw new FhenetError(`${who}: images [${images.dims}] and labels [${labels.dims}] do not match`);
  }
  const n = Math.min(n0, limit ?? Infinity);
  const x = new Float32Array(n * h * w);
  for (let i = 0; i < x.length; i++) x[i] = norm === 'signed' ? (2 * images.data[i]!) / 255 - 1 : images.data[i]! / 255;
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = labels.data[i]!;
    if (l > 9) throw new FhenetError(`${who}: label ${l} at ${i} is outside 0–9`);
    y[i] = l;
  }
  return { x, y, sampleShape: [h, w, 1], numClasses: 10 };
}

/** Loads the train and test splits. Throws `DataMissingError` naming every folder searched when absent. */
export function loadFashionMnist(opts: FashionMnistOptions = {}): Split & { dir: string } {
  const tried = fashionMnistCandidates(opts.dir);
  const dir = tried.find((d) => Object.values(FASHION_MNIST_FILES).every((f) => findFile(d, f)));
  if (!dir) {
    throw new DataMissingError(
      `Fashion-MNIST IDX files (${Object.values(FASHION_MNIST_FILES).join(', ')}, optionally .gz) not found; looked in ${tried.join(', ')}. ${HOW_TO_GET}`,
    );
  }
  const read = (base: string) => {
    const f = findFile(dir, base)!;
    return parseIdx(new Uint8Array(fs.readFileSync(f)), f);
  };
  const norm = opts.normalization ?? 'unit';
  const F = FASHION_MNIST_FILES;
  return {
    train: toDataset(read(F.trainImages), read(F.trainLabels), norm, opts.limitTrain, 'Fashion-MNIST train'),
    test: toDataset(read(F.testImages), read(F.testLabels), norm, opts.limitTest, 'Fashion-MNIST test'),
    dir,
  };
}
