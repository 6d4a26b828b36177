/**
 * CIFAR-10 for fhenet: 32×32 RGB images in 10 classes, delivered NHWC.
 *
 * Two sources, one label order (0 airplane … 9 truck, the official one):
 * - the official binary release (`cifar-10-batches-bin/` or `cifar-10-binary.tar.gz`): each record is 1 label byte
 *   then 3,072 pixel bytes, channel-planar (all R, then G, then B), rows top to bottom;
 * - the JPEG class-folder copy (`cifar10-jpg.tar.gz`: train|test/<class>/NNNN.jpg), decoded with jpeg-js. Decoding
 *   60,000 files takes a while, so the decoded images are cached on disk in the official binary layout
 *   (`<data folder>/cifar10/decoded/{train,test}.bin`); later loads read the cache.
 *
 * Either form is stored in the data folder by `fhenet data fetch cifar10` (src/data), where `loadCifar10` finds it.
 *
 * Images stay as bytes (`CifarImages`) until `toDataset` turns them into a float `Dataset` with a chosen
 * normalisation; `augmentBatch` is the reference augmentation (random 32×32 crop of the image padded by 4, and a
 * horizontal flip with probability ½), drawn from an `Rng` so a seed fixes it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import jpeg from 'jpeg-js';
import * as tar from 'tar';
import type { Dataset } from '../../src/train/dataset.js';
import { FhenetError } from '../../src/util/errors.js';
import type { Rng } from '../../src/util/rng.js';
import { datasetDir } from '../../src/data/data-dir.js';
import { DataMissingError } from '../../src/data/errors.js';
import { CIFAR10 } from '../../src/data/registry.js';
import { storedForm } from '../../src/data/store.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;
export const CIFAR_SIDE = 32;
export const CIFAR_PIXELS = CIFAR_SIDE * CIFAR_SIDE * 3;
/** Bytes per record of the official binary format. */
export const CIFAR_RECORD = 1 + CIFAR_PIXELS;
export const TRAIN_BATCHES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const TEST_BATCH = 'test_batch.bin';

/** Decoded images: `pixels` is n × 32 × 32 × 3 bytes (NHWC), `labels` n class indices. */
export interface CifarImages {
  pixels: Uint8Array;
  labels: Int32Array;
}

export interface CifarSplit {
  train: CifarImages;
  test: CifarImages;
  /** Where the images came from (for reports). */
  source: string;
}

export { DataMissingError };

const HOW_TO_GET =
  'Run `fhenet data fetch cifar10` (downloads the official binary release into the data folder, FHENET_DATA), or ' +
  '`fhenet data fetch cifar10 --from FILE` with cifar-10-binary.tar.gz or the JPEG copy cifar10-jpg.tar.gz; or pass a path ' +
  '(the .tar.gz or the extracted cifar-10-batches-bin folder) with --data, or set FHENET_CIFAR10.';

// ─── the official binary format ───────────────────────────────────────────────────────────────────────────────────

/** Parses records of the official binary format (planar RGB) into NHWC bytes. */
export function parseCifarBinary(bytes: Uint8Array, file = 'CIFAR-10 batch'): CifarImages {
  if (bytes.length === 0 || bytes.length % CIFAR_RECORD !== 0) {
    throw new FhenetError(`${file}: ${bytes.length} bytes is not a whole number of ${CIFAR_RECORD}-byte CIFAR-10 records`);
  }
  const n = bytes.length / CIFAR_RECORD;
  const pixels = new Uint8Array(n * CIFAR_PIXELS);
  const labels = new Int32Array(n);
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  for (let i = 0; i < n; i++) {
    const r = i * CIFAR_RECORD;
    const label = bytes[r]!;
    if (label > 9) throw new FhenetError(`${file}: record ${i} has label ${label} (CIFAR-10 labels are 0–9)`);
    labels[i] = label;
    const src = r + 1;
    const dst = i * CIFAR_PIXELS;
    for (let p = 0; p < plane; p++) {
      pixels[dst + 3 * p] = bytes[src + p]!;
      pixels[dst + 3 * p + 1] = bytes[src + plane + p]!;
      pixels[dst + 3 * p + 2] = bytes[src + 2 * plane + p]!;
    }
  }
  return { pixels, labels };
}

/** NHWC bytes → records of the official binary format (the on-disk cache and test fixtures use it). */
export function encodeCifarBinary(images: CifarImages): Uint8Array {
  const n = images.labels.length;
  const out = new Uint8Array(n * CIFAR_RECORD);
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  for (let i = 0; i < n; i++) {
    const r = i * CIFAR_RECORD;
    out[r] = images.labels[i]!;
    const src = i * CIFAR_PIXELS;
    for (let p = 0; p < plane; p++) {
      out[r + 1 + p] = images.pixels[src + 3 * p]!;
      out[r + 1 + plane + p] = images.pixels[src + 3 * p + 1]!;
      out[r + 1 + 2 * plane + p] = images.pixels[src + 3 * p + 2]!;
    }
  }
  return out;
}

function concat(parts: CifarImages[]): CifarImages {
  const n = parts.reduce((a, p) => a + p.labels.length, 0);
  const pixels = new Uint8Array(n * CIFAR_PIXELS);
  const labels = new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    pixels.set(p.pixels, o * CIFAR_PIXELS);
    labels.set(p.labels, o);
    o += p.labels.length;
  }
  return { pixels, labels };
}

/** Reads every member of a tar(.gz) whose base name passes `want`; returns base name → bytes. */
async function readTarMembers(file: string, want: (name: string) => boolean): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  await tar.t({
    file,
    onReadEntry: (entry) => {
      const base = path.posix.basename(entry.path);
      if (entry.type !== 'File' || !want(base)) {
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => found.set(base, Buffer.concat(chunks)));
    },
  });
  return found;
}

/**
 * Loads the official binary release from a `cifar-10-batches-bin` folder (or its parent) or from
 * `cifar-10-binary.tar.gz`.
 */
export async function loadCifar10Binary(location: string): Promise<CifarSplit> {
  if (!fs.existsSync(location)) throw new DataMissingError(`CIFAR-10 binary release not found at ${location}. ${HOW_TO_GET}`);
  const names = [...TRAIN_BATCHES, TEST_BATCH];
  let files: Map<string, Uint8Array>;
  if (fs.statSync(location).isDirectory()) {
    const dir = fs.existsSync(path.join(location, 'cifar-10-batches-bin')) ? path.join(location, 'cifar-10-batches-bin') : location;
    const missing = names.filter((n) => !fs.existsSync(path.join(dir, n)));
    if (missing.length) throw new DataMissingError(`${dir} lacks ${missing.join(', ')} — not a cifar-10-batches-bin folder. ${HOW_TO_GET}`);
    files = new Map(names.map((n) => [n, new Uint8Array(fs.readFileSync(path.join(dir, n)))]));
  } else {
    files = await readTarMembers(location, (b) => names.includes(b));
    const missing = names.filter((n) => !files.has(n));
    if (missing.length) throw new DataMissingError(`${location} lacks ${missing.join(', ')} — not cifar-10-binary.tar.gz. ${HOW_TO_GET}`);
  }
  return {
    train: concat(TRAIN_BATCHES.map((n) => parseCifarBinary(files.get(n)!, n))),
    test: parseCifarBinary(files.get(TEST_BATCH)!, TEST_BATCH),
    source: `binary release ${location}`,
  };
}

// ─── the JPEG class-folder copy ───────────────────────────────────────────────────────────────────────────────────

/** Decodes one 32×32 JPEG to 3,072 RGB bytes (HWC). */
export function decodeCifarJpeg(bytes: Uint8Array, name = 'image'): Uint8Array {
  const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
  if (img.width !== CIFAR_SIDE || img.height !== CIFAR_SIDE) {
    throw new FhenetError(`${name}: ${img.width}×${img.height}, expected 32×32`);
  }
  const out = new Uint8Array(CIFAR_PIXELS);
  for (let p = 0; p < CIFAR_SIDE * CIFAR_SIDE; p++) {
    out[3 * p] = img.data[4 * p]!;
    out[3 * p + 1] = img.data[4 * p + 1]!;
    out[3 * p + 2] = img.data[4 * p + 2]!;
  }
  return out;
}

/** Splits a member path `…/train/<class>/NNNN.jpg` into split, label and file number. */
function parseJpegPath(p: string): { split: 'train' | 'test'; label: number; key: string } | undefined {
  const parts = p.split('/').filter((s) => s && s !== '.');
  if (parts.length < 3) return undefined;
  const [split, cls, file] = parts.slice(-3) as [string, string, string];
  if ((split !== 'train' && split !== 'test') || !/\.jpe?g$/i.test(file)) return undefined;
  const label = (CIFAR10_CLASSES as readonly string[]).indexOf(cls);
  if (label < 0) return undefined;
  return { split, label, key: `${String(label).padStart(2, '0')}/${file.padStart(12, '0')}` };
}

/** Orders decoded entries by class then file name, so every load gives the same sample order. */
function assemble(entries: { key: string; label: number; pixels: Uint8Array }[]): CifarImages {
  entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const pixels = new Uint8Array(entries.length * CIFAR_PIXELS);
  const labels = new Int32Array(entries.length);
  entries.forEach((e, i) => {
    pixels.set(e.pixels, i * CIFAR_PIXELS);
    labels[i] = e.label;
  });
  return { pixels, labels };
}

/** Decodes the JPEG class-folder copy from its .tar.gz or an extracted folder (holding train/ and test/). */
export async function decodeCifar10Jpeg(location: string): Promise<{ train: CifarImages; test: CifarImages }> {
  if (!fs.existsSync(location)) throw new DataMissingError(`CIFAR-10 JPEG copy not found at ${location}. ${HOW_TO_GET}`);
  const bins: Record<'train' | 'test', { key: string; label: number; pixels: Uint8Array }[]> = { train: [], test: [] };
  const add = (p: string, bytes: Uint8Array) => {
    const info = parseJpegPath(p);
    if (info) bins[info.split].push({ key: info.key, label: info.label, pixels: decodeCifarJpeg(bytes, p) });
  };
  if (fs.statSync(location).isDirectory()) {
    for (const split of ['train', 'test']) {
      for (const cls of CIFAR10_CLASSES) {
        const dir = path.join(location, split, cls);
        if (!fs.existsSync(dir)) continue;
        for (const f of fs.readdirSync(dir)) add(`${split}/${cls}/${f}`, new Uint8Array(fs.readFileSync(path.join(dir, f))));
      }
    }
  } else {
    await tar.t({
      file: location,
      onReadEntry: (entry) => {
        if (entry.type !== 'File' || !parseJpegPath(entry.path)) {
          entry.resume();
          return;
        }
        const chunks: Buffer[] = [];
        const p = entry.path;
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => add(p, new Uint8Array(Buffer.concat(chunks))));
      },
    });
  }
  if (!bins.train.length || !bins.test.length) {
    throw new DataMissingError(`${location} holds no train/<class>/*.jpg and test/<class>/*.jpg images. ${HOW_TO_GET}`);
  }
  return { train: assemble(bins.train), test: assemble(bins.test) };
}

export function defaultCacheDir(): string {
  return path.join(datasetDir(CIFAR10.name), 'decoded');
}

/**
 * The JPEG copy, decoded once and cached (official binary layout, `train.bin` / `test.bin` in `cacheDir`).
 * `cacheDir: false` disables the cache.
 */
export async function loadCifar10Jpeg(location: string, opts: { cacheDir?: string | false } = {}): Promise<CifarSplit & { fromCache: boolean }> {
  const cacheDir = opts.cacheDir === undefined ? defaultCacheDir() : opts.cacheDir;
  const stamp = fs.existsSync(location) ? `${path.resolve(location)} ${fs.statSync(location).size}` : '';
  if (cacheDir) {
    const [tr, te, st] = ['train.bin', 'test.bin', 'source.txt'].map((f) => path.join(cacheDir, f)) as [string, string, string];
    if (fs.existsSync(tr) && fs.existsSync(te) && fs.existsSync(st) && fs.readFileSync(st, 'utf8') === stamp) {
      return {
        train: parseCifarBinary(new Uint8Array(fs.readFileSync(tr)), tr),
        test: parseCifarBinary(new Uint8Array(fs.readFileSync(te)), te),
        source: `JPEG copy ${location} (decoded cache ${cacheDir})`,
        fromCache: true,
      };
    }
  }
  const { train, test } = await decodeCifar10Jpeg(location);
  if (cacheDir) {
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(path.join(cacheDir, 'train.bin'), encodeCifarBinary(train));
    fs.writeFileSync(path.join(cacheDir, 'test.bin'), encodeCifarBinary(test));
    fs.writeFileSync(path.join(cacheDir, 'source.txt'), stamp);
  }
  return { train, test, source: `JPEG copy ${location}`, fromCache: false };
}

export interface LoadCifarOptions {
  /** A binary release (.tar.gz or folder) or a JPEG copy (.tar.gz or folder). Default: FHENET_CIFAR10, then the copy `fhenet data fetch cifar10` stored. */
  path?: string;
  cacheDir?: string | false;
}

function looksBinary(p: string): boolean {
  if (/cifar-10-binary\.tar\.gz$/.test(p) || /cifar-10-batches-bin\/?$/.test(p)) return true;
  if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
    return fs.existsSync(path.join(p, TEST_BATCH)) || fs.existsSync(path.join(p, 'cifar-10-batches-bin'));
  }
  return false;
}

/** Where CIFAR-10 is: `given`, FHENET_CIFAR10, or the copy stored in the data folder; undefined when absent. */
export function findCifar10(given?: string): string | undefined {
  const explicit = given ?? process.env.FHENET_CIFAR10;
  if (explicit) return fs.existsSync(explicit) ? explicit : undefined;
  return storedForm(CIFAR10)?.paths[0];
}

/** Loads CIFAR-10 from `opts.path`, FHENET_CIFAR10 or the data folder (`fhenet data fetch cifar10`), whichever is set first. */
export async function loadCifar10(opts: LoadCifarOptions = {}): Promise<CifarSplit> {
  const found = findCifar10(opts.path);
  if (!found) {
    const where = opts.path ?? process.env.FHENET_CIFAR10 ?? `${datasetDir(CIFAR10.name)} (the data folder)`;
    throw new DataMissingError(`CIFAR-10 not found at ${where}. ${HOW_TO_GET}`);
  }
  return looksBinary(found) ? loadCifar10Binary(found) : loadCifar10Jpeg(found, { cacheDir: opts.cacheDir });
}

// ─── to float tensors, augmentation ───────────────────────────────────────────────────────────────────────────────

/**
 * - `cnv`: x/255 mapped to 2x − 1, i.e. [−1, 1] (the CNV input of the reference; fhenet applies it to the data
 *   because an operation outside modules cannot be exported);
 * - `unit`: x/255 in [0, 1];
 * - `meanstd`: per-channel (x/255 − mean) / std with the usual CIFAR-10 statistics.
 */
export type CifarNormalization = 'cnv' | 'unit' | 'meanstd';
export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465];
export const CIFAR10_STD = [0.247, 0.2435, 0.2616];

/** The float value a zero pixel takes under a normalisation (the padding value of the random crop). */
export function zeroPixelValue(norm: CifarNormalization, channel = 0): number {
  if (norm === 'cnv') return -1;
  if (norm === 'unit') return 0;
  return -CIFAR10_MEAN[channel]! / CIFAR10_STD[channel]!;
}

/** `n` images evenly spaced through the set (index ⌊i·N/n⌋): every class is represented even when the set is sorted by class, as the JPEG copy is. */
export function spreadSubset(images: CifarImages, n: number): CifarImages {
  const total = images.labels.length;
  if (n >= total) return images;
  const pixels = new Uint8Array(n * CIFAR_PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = Math.floor((i * total) / n);
    pixels.set(images.pixels.subarray(j * CIFAR_PIXELS, (j + 1) * CIFAR_PIXELS), i * CIFAR_PIXELS);
    labels[i] = images.labels[j]!;
  }
  return { pixels, labels };
}

/** Float NHWC samples; `limit` keeps that many images evenly spaced through the set (see `spreadSubset`). */
export function toDataset(images: CifarImages, opts: { normalization?: CifarNormalization; limit?: number } = {}): Dataset {
  const norm = opts.normalization ?? 'cnv';
  const src = opts.limit === undefined ? images : spreadSubset(images, opts.limit);
  const n = src.labels.length;
  const x = new Float32Array(n * CIFAR_PIXELS);
  for (let i = 0; i < n * CIFAR_PIXELS; i++) {
    const v = src.pixels[i]! / 255;
    const c = i % 3;
    x[i] = norm === 'cnv' ? 2 * v - 1 : norm === 'unit' ? v : (v - CIFAR10_MEAN[c]!) / CIFAR10_STD[c]!;
  }
  return { x, y: src.labels.slice(), sampleShape: [CIFAR_SIDE, CIFAR_SIDE, 3], numClasses: 10 };
}

/**
 * Random crop with zero-pixel padding and random horizontal flip, in place on an NHWC float batch.
 * Per image: offsets dy, dx uniform in [0, 2·pad] and a flip with probability ½ (three draws from `rng`).
 */
export function augmentBatch(
  x: Float32Array,
  n: number,
  shape: readonly number[],
  rng: Rng,
  opts: { pad?: number; flip?: boolean; padValue?: number | readonly number[] } = {},
): void {
  const [h, w, c] = shape as [number, number, number];
  const pad = opts.pad ?? 4;
  const flip = opts.flip ?? true;
  const fill = typeof opts.padValue === 'number' || opts.padValue === undefined ? Array(c).fill(opts.padValue ?? 0) : opts.padValue;
  const per = h * w * c;
  const src = new Float32Array(per);
  for (let i = 0; i < n; i++) {
    const dy = rng.int(2 * pad + 1) - pad;
    const dx = rng.int(2 * pad + 1) - pad;
    const mirror = flip && rng.next() < 0.5;
    if (dy === 0 && dx === 0 && !mirror) continue;
    const base = i * per;
    src.set(x.subarray(base, base + per));
    for (let yy = 0; yy < h; yy++) {
      const sy = yy + dy;
      for (let xx = 0; xx < w; xx++) {
        const cx = mirror ? w - 1 - xx : xx;
        const sx = cx + dx;
        const o = base + (yy * w + xx) * c;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          for (let k = 0; k < c; k++) x[o + k] = fill[k]!;
        } else {
          const s = (sy * w + sx) * c;
          for (let k = 0; k < c; k++) x[o + k] = src[s + k]!;
        }
      }
    }
  }
}

/** gzip helper shared with the tests (synthetic .tar.gz fixtures). */
export function gunzipIfNeeded(bytes: Uint8Array): Uint8Array {
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? new Uint8Array(zlib.gunzipSync(bytes)) : bytes;
}
