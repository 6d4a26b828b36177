/**
 * Sweep specifications: a JSON document naming grids of checkerboard runs. Every key is checked — an unknown key
 * (a typo such as "hiden") is an error naming the allowed keys, never silently ignored.
 *
 * {
 *   "name": "k-sweep",                       optional label
 *   "concurrency": 2,                        worker threads (default 2)
 *   "data":  { "source": "generated" | "peer", "seed": 42, "trainSamples": 9500, "testSamples": 500 },
 *   "train": { "epochs": 7, "batchSize": 32, "lr": 0.001, "optimizer": "adamw", "weightDecay": 0.01 },
 *   "grids": [
 *     { "family": "qat", "hidden": [100], "bits": [3], "k": [10, 20, null], "seeds": 10 },
 *     { "family": "a2q", "hidden": [100], "bits": [3], "targetBits": [5, 6], "seeds": [0, 1, 2],
 *       "data": { "source": "peer" } }
 *   ]
 * }
 *
 * Families: `float` (SimpleNet), `ptq` (SimpleNet, then post-training quantization to `bits`), `qat` (the notebook's
 * QuantSimpleNet: constant scales), `qat-brevitas` (QuantSimpleNet with Brevitas-default learned scales — the
 * guide's QuantSimpleNet/PrunedQuantNet), `a2q` (notebook QuantSimpleNet trained with an accumulator target).
 * `input` ('signed' default, or 'unsigned') picks the input quantizer of the notebook-scale families.
 * `k` (non-zero inputs per neuron; null = no pruning) applies to the quantized families, `strict` selects the
 * per-neuron pruning variant, `targetBits` applies to `a2q` only. `seeds` is a list or a count n (0..n−1).
 * A grid's own `data` / `train` objects override the top-level ones key by key.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../util/errors.js';

export const FAMILIES = ['float', 'ptq', 'qat', 'qat-brevitas', 'a2q'] as const;
export type Family = (typeof FAMILIES)[number];

export interface DataSpec {
  source: 'generated' | 'peer';
  /** Generated data: the noise/split seed (the same for every run unless changed). */
  seed: number;
  /** Use only the first n training / test samples (small test sweeps). */
  trainSamples?: number;
  testSamples?: number;
}

export interface TrainSpec {
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'adamw' | 'adam' | 'sgd';
  weightDecay?: number;
}

/** One fully specified run; its hash identifies it in the results log. */
export interface RunConfig {
  family: Family;
  hidden: number;
  bits: number | null;
  k: number | null;
  strict: boolean;
  targetBits: number | null;
  /** The network's input quantizer: the notebook's signed [−3, 3] or unsigned [0, 3] on the same 1/3 grid. */
  input: 'signed' | 'unsigned';
  seed: number;
  data: DataSpec;
  train: TrainSpec;
  /**
   * A name appended to the label, for rows that differ only in what the label does not show (e.g. the training
   * recipe). Absent: the label and the run's hash are what they were before tags existed.
   */
  tag?: string;
}

export interface GridSpec {
  family: Family;
  hidden: number[];
  bits: (number | null)[];
  k: (number | null)[];
  strict: boolean[];
  targetBits: (number | null)[];
  input: ('signed' | 'unsigned')[];
  seeds: number[];
  data: DataSpec;
  train: TrainSpec;
  tag?: string;
}

export interface SweepSpec {
  name: string;
  concurrency: number;
  grids: GridSpec[];
}

export const DEFAULT_DATA: DataSpec = { source: 'generated', seed: 42 };
export const DEFAULT_TRAIN: TrainSpec = { epochs: 7, batchSize: 32, lr: 1e-3, optimizer: 'adamw' };

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(where: string, obj: Json, allowed: string[]): void {
  const unknown = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (unknown.length) {
    throw new ConfigError(`sweep spec: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} in ${where}; allowed: ${allowed.join(', ')}`);
  }
}

function int(where: string, v: unknown, min: number, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`sweep spec: ${where} must be an integer ${max === Infinity ? `≥ ${min}` : `in [${min}, ${max}]`}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function list<T>(where: string, v: unknown, item: (w: string, x: unknown) => T, dflt: T[]): T[] {
  if (v === undefined) return dflt;
  const arr = Array.isArray(v) ? v : [v];
  if (arr.length === 0) throw new ConfigError(`sweep spec: ${where} must not be empty`);
  return arr.map((x, i) => item(`${where}[${i}]`, x));
}

const nullable = (min: number, max = Infinity) => (w: string, x: unknown) => (x === null ? null : int(w, x, min, max));

function parseData(where: string, v: unknown, base: DataSpec): DataSpec {
  if (v === undefined) return base;
  if (!isObject(v)) throw new ConfigError(`sweep spec: ${where} must be an object`);
  checkKeys(where, v, ['source', 'seed', 'trainSamples', 'testSamples']);
  const out: DataSpec = { ...base };
  if (v.source !== undefined) {
    if (v.source !== 'generated' && v.source !== 'peer') throw new ConfigError(`sweep spec: ${where}.source must be 'generated' or 'peer', got ${JSON.stringify(v.source)}`);
    out.source = v.source;
  }
  if (v.seed !== undefined) out.seed = int(`${where}.seed`, v.seed, 0);
  if (v.trainSamples !== undefined) out.trainSamples = int(`${where}.trainSamples`, v.trainSamples, 1);
  if (v.testSamples !== undefined) out.testSamples = int(`${where}.testSamples`, v.testSamples, 1);
  return out;
}

function parseTrain(where: string, v: unknown, base: TrainSpec): TrainSpec {
  if (v === undefined) return base;
  if (!isObject(v)) throw new ConfigError(`sweep spec: ${where} must be an object`);
  checkKeys(where, v, ['epochs', 'batchSize', 'lr', 'optimizer', 'weightDecay']);
  const out: TrainSpec = { ...base };
  if (v.epochs !== undefined) out.epochs = int(`${where}.epochs`, v.epochs, 1);
  if (v.batchSize !== undefined) out.batchSize = int(`${where}.batchSize`, v.batchSize, 1);
  if (v.lr !== undefined) {
    if (typeof v.lr !== 'number' || !(v.lr > 0)) throw new ConfigError(`sweep spec: ${where}.lr must be a positive number, got ${JSON.stringify(v.lr)}`);
    out.lr = v.lr;
  }
  if (v.optimizer !== undefined) {
    if (!['adamw', 'adam', 'sgd'].includes(v.optimizer as string)) throw new ConfigError(`sweep spec: ${where}.optimizer must be adamw, adam or sgd`);
    out.optimizer = v.optimizer as TrainSpec['optimizer'];
  }
  if (v.weightDecay !== undefined) {
    if (typeof v.weightDecay !== 'number' || v.weightDecay < 0) throw new ConfigError(`sweep spec: ${where}.weightDecay must be a non-negative number`);
    out.weightDecay = v.weightDecay;
  }
  return out;
}

/** Validates a parsed JSON spec and fills defaults. */
export function parseSweepSpec(raw: unknown): SweepSpec {
  if (!isObject(raw)) throw new ConfigError('sweep spec must be a JSON object');
  checkKeys('the spec', raw, ['name', 'concurrency', 'data', 'train', 'grids']);
  const data = parseData('data', raw.data, DEFAULT_DATA);
  const train = parseTrain('train', raw.train, DEFAULT_TRAIN);
  if (!Array.isArray(raw.grids) || raw.grids.length === 0) throw new ConfigError("sweep spec: 'grids' must be a non-empty list");
  const grids = raw.grids.map((g, i): GridSpec => {
    const w = `grids[${i}]`;
    if (!isObject(g)) throw new ConfigError(`sweep spec: ${w} must be an object`);
    checkKeys(w, g, ['family', 'hidden', 'bits', 'k', 'strict', 'targetBits', 'input', 'seeds', 'data', 'train', 'tag']);
    if (g.tag !== undefined && (typeof g.tag !== 'string' || !/^[\w .,=+-]{1,60}$/.test(g.tag))) {
      throw new ConfigError(`sweep spec: ${w}.tag must be a short name (1–60 letters, digits, spaces or . , = + -), got ${JSON.stringify(g.tag)}`);
    }
    if (!FAMILIES.includes(g.family as Family)) throw new ConfigError(`sweep spec: ${w}.family must be one of ${FAMILIES.join(', ')}, got ${JSON.stringify(g.family)}`);
    const family = g.family as Family;
    const quantized = family !== 'float';
    if (!quantized && g.bits !== undefined) throw new ConfigError(`sweep spec: ${w}: 'bits' does not apply to family float`);
    if ((family === 'float' || family === 'ptq') && (g.k !== undefined || g.strict !== undefined)) {
      throw new ConfigError(`sweep spec: ${w}: 'k'/'strict' (pruning during training) apply to the QAT families qat, qat-brevitas, a2q`);
    }
    if ((family === 'float' || family === 'ptq' || family === 'qat-brevitas') && g.input !== undefined) {
      throw new ConfigError(`sweep spec: ${w}: 'input' applies to the notebook-scale families qat and a2q`);
    }
    if (family !== 'a2q' && g.targetBits !== undefined) throw new ConfigError(`sweep spec: ${w}: 'targetBits' applies to family a2q only`);
    if (family === 'a2q' && g.targetBits === undefined) throw new ConfigError(`sweep spec: ${w}: family a2q needs 'targetBits'`);
    const seeds =
      typeof g.seeds === 'number' ? Array.from({ length: int(`${w}.seeds`, g.seeds, 1) }, (_, s) => s) : list(`${w}.seeds`, g.seeds, (ww, x) => int(ww, x, 0), [0]);
    if (g.strict !== undefined && !(Array.isArray(g.strict) ? g.strict : [g.strict]).every((x) => typeof x === 'boolean')) {
      throw new ConfigError(`sweep spec: ${w}.strict must be true/false or a list of them`);
    }
    return {
      family,
      hidden: list(`${w}.hidden`, g.hidden, (ww, x) => int(ww, x, 1), [100]),
      bits: quantized ? list(`${w}.bits`, g.bits, (ww, x) => int(ww, x, 2, 16), [3]) : [null],
      k: list(`${w}.k`, g.k, nullable(1), [null]),
      strict: list(`${w}.strict`, g.strict, (_ww, x) => x as boolean, [false]),
      targetBits: family === 'a2q' ? list(`${w}.targetBits`, g.targetBits, (ww, x) => int(ww, x, 2, 24), []) : [null],
      input: list(`${w}.input`, g.input, (ww, x) => {
        if (x !== 'signed' && x !== 'unsigned') throw new ConfigError(`sweep spec: ${ww} must be 'signed' or 'unsigned', got ${JSON.stringify(x)}`);
        return x;
      }, ['signed']),
      seeds,
      data: parseData(`${w}.data`, g.data, data),
      train: parseTrain(`${w}.train`, g.train, train),
      ...(g.tag !== undefined ? { tag: g.tag as string } : {}),
    };
  });
  const concurrency = raw.concurrency === undefined ? 2 : int('concurrency', raw.concurrency, 1, 64);
  const name = raw.name === undefined ? 'sweep' : String(raw.name);
  return { name, concurrency, grids };
}

/** Every run of the spec, in grid order; duplicates (same hash) appear once. */
export function expandSweep(spec: SweepSpec): RunConfig[] {
  const out: RunConfig[] = [];
  const seen = new Set<string>();
  for (const g of spec.grids) {
    for (const hidden of g.hidden)
      for (const bits of g.bits)
        for (const k of g.k)
          for (const strict of g.strict)
            for (const targetBits of g.targetBits)
              for (const input of g.input)
              for (const seed of g.seeds) {
                const c: RunConfig = { family: g.family, hidden, bits, k, strict: k === null ? false : strict, targetBits, input, seed, data: g.data, train: g.train, ...(g.tag ? { tag: g.tag } : {}) };
                const h = configHash(c);
                if (!seen.has(h)) {
                  seen.add(h);
                  out.push(c);
                }
              }
  }
  return out;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A stable identifier of a run: SHA-256 of its canonical JSON (sorted keys), 16 hex digits. */
export function configHash(c: RunConfig): string {
  return createHash('sha256').update(canonical(c)).digest('hex').slice(0, 16);
}

/** The series a run belongs to in tables and plots: everything but the seed. */
export function configLabel(c: RunConfig): string {
  const parts = [c.family, `h=${c.hidden}`];
  if (c.bits !== null) parts.push(`${c.bits}-bit`);
  if (c.k !== null) parts.push(`k=${c.k}${c.strict ? ' strict' : ''}`);
  if (c.targetBits !== null) parts.push(`target ${c.targetBits}`);
  if (c.input === 'unsigned') parts.push('unsigned input');
  if (c.data.source === 'peer') parts.push('peer data');
  if (c.tag) parts.push(`(${c.tag})`);
  return parts.join(' ');
}
