import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  DataMissingError,
  FASHION_MNIST_FILES,
  encodeIdx,
  loadFashionMnist,
  parseIdx,
} from '../../datasets/fashion-mnist/index.js';
import { debianFashionMnistSkipReason } from '../data-availability.js';

function writeSynthetic(dir: string, gzip: boolean): void {
  fs.mkdirSync(dir, { recursive: true });
  const put = (base: string, bytes: Uint8Array) => fs.writeFileSync(path.join(dir, gzip ? `${base}.gz` : base), gzip ? zlib.gzipSync(bytes) : bytes);
  const imgs = (n: number) => Uint8Array.from({ length: n * 28 * 28 }, (_, i) => (i * 3) % 256);
  put(FASHION_MNIST_FILES.trainImages, encodeIdx([6, 28, 28], imgs(6)));
  put(FASHION_MNIST_FILES.trainLabels, encodeIdx([6], Uint8Array.from([0, 1, 2, 3, 4, 9])));
  put(FASHION_MNIST_FILES.testImages, encodeIdx([2, 28, 28], imgs(2)));
  put(FASHION_MNIST_FILES.testLabels, encodeIdx([2], Uint8Array.from([7, 8])));
}

describe('Fashion-MNIST IDX loader', () => {
  it('parses IDX (plain and gzipped) and rejects malformed files', () => {
    const idx = encodeIdx([2, 3], Uint8Array.from([1, 2, 3, 4, 5, 6]));
    expect(parseIdx(idx)).toEqual({ dims: [2, 3], data: Uint8Array.from([1, 2, 3, 4, 5, 6]) });
    expect(parseIdx(new Uint8Array(zlib.gzipSync(idx))).dims).toEqual([2, 3]);
    expect(() => parseIdx(idx.subarray(0, idx.length - 1), 'f')).toThrow(/f: header says 2×3 = 6 values but the file holds 5/);
    expect(() => parseIdx(Uint8Array.from([1, 2, 3, 4]), 'g')).toThrow(/bad magic/);
  });

  it('loads a user folder of synthetic .gz or plain files as NHWC [28, 28, 1] in [0, 1]', () => {
    for (const gz of [true, false]) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-fmnist-'));
      writeSynthetic(dir, gz);
      const d = loadFashionMnist({ dir });
      expect(d.train.sampleShape).toEqual([28, 28, 1]);
      expect(Array.from(d.train.y)).toEqual([0, 1, 2, 3, 4, 9]);
      expect(Array.from(d.test.y)).toEqual([7, 8]);
      expect(d.train.x[1]).toBeCloseTo(3 / 255, 6);
      expect(loadFashionMnist({ dir, normalization: 'signed', limitTrain: 2 }).train.x.length).toBe(2 * 784);
    }
  });

  it('names the folders searched and how to get the data when files are missing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-fmnist-empty-'));
    expect(() => loadFashionMnist({ dir })).toThrow(DataMissingError);
    expect(() => loadFashionMnist({ dir })).toThrow(new RegExp(`looked in ${dir}.*apt-get install dataset-fashion-mnist`, 's'));
  });

  it.skipIf(debianFashionMnistSkipReason("the Debian Fashion-MNIST test") !== undefined)("reads Debian's dataset-fashion-mnist package (60,000 + 10,000)", () => {
    const d = loadFashionMnist();
    expect(d.train.y.length).toBe(60000);
    expect(d.test.y.length).toBe(10000);
    const counts = new Array(10).fill(0);
    for (const l of d.test.y) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(1000));
    // the real files, not any IDX pair of the right size: first labels (ankle boots) and the mean pixel of the
    // training set (72.94 / 255, the published normalization constant)
    expect([d.train.y[0], d.test.y[0]]).toEqual([9, 9]);
    let sum = 0;
    for (let i = 0; i < d.train.x.length; i++) sum += d.train.x[i]!;
    expect(sum / d.train.x.length).toBeCloseTo(0.286, 3);
  });
});
