/**
 * Shared pieces of the encrypted-images experiment: the net's configuration, building it from a checkpoint's
 * metadata, training with an accumulator-aware schedule, and compiling it.
 */
import * as fs from 'node:fs';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { loadModule, saveModule } from '../../src/nn/checkpoint.js';
import { manualSeed } from '../../src/nn/init.js';
import { EncryptedCnn } from '../../src/models/encrypted-cnn.js';
import { accumulatorAware } from '../../src/quant/a2q.js';
import { type Dataset, head, sampleSize, size } from '../../src/train/dataset.js';
import { loadFashionMnist } from '../../datasets/fashion-mnist/index.js';
import { loadCifar10, toDataset } from '../../datasets/cifar10/index.js';
import { type EpochMetrics, fit } from '../../src/train/trainer.js';
import { decodeSafetensors } from '../../src/util/safetensors.js';
import { nhwcToNchw } from '../../src/util/layout.js';

export interface NetConfig {
  dataset: 'fashion' | 'cifar';
  channels: number[];
  kernel: number;
  stride: number;
  inputBits: number;
  weightBits: number;
  actBits: number;
  seed: number;
  epochs: number;
  batchSize: number;
  lr: number;
  /** Accumulator targets per epoch (the last one holds for the remaining epochs); [] = no constraint. */
  schedule: number[];
  /** Accumulator target of the output layer `fc` (no table: it bounds the output encoding and its noise); 0 = none. */
  fcTarget: number;
}

export const DEFAULT_CONFIG: NetConfig = {
  dataset: 'fashion',
  channels: [8, 16],
  kernel: 3,
  stride: 2,
  inputBits: 2,
  weightBits: 3,
  actBits: 2,
  seed: 0,
  epochs: 10,
  batchSize: 64,
  lr: 0.005,
  schedule: [8, 7, 6, 5],
  fcTarget: 8,
};

export function shapeOf(cfg: NetConfig): { inChannels: number; inputSize: number } {
  return cfg.dataset === 'cifar' ? { inChannels: 3, inputSize: 32 } : { inChannels: 1, inputSize: 28 };
}

export function buildNet(cfg: NetConfig): EncryptedCnn {
  manualSeed(cfg.seed);
  return new EncryptedCnn({ channels: cfg.channels, kernel: cfg.kernel, stride: cfg.stride, inputBits: cfg.inputBits, weightBits: cfg.weightBits, actBits: cfg.actBits, ...shapeOf(cfg) });
}

/** Rebuilds the net a checkpoint of this experiment describes (its metadata holds the config) and loads it. */
export function loadNet(file: string): { net: EncryptedCnn; cfg: NetConfig } {
  const meta = loadMeta(file);
  const cfg = JSON.parse(meta.config!) as NetConfig;
  const net = buildNet(cfg);
  loadModule(file, net);
  net.eval();
  return { net, cfg };
}

function loadMeta(file: string): Record<string, string> {
  return decodeSafetensors(new Uint8Array(fs.readFileSync(file))).metadata;
}

export function saveNet(file: string, net: EncryptedCnn, cfg: NetConfig, extra: Record<string, string> = {}): void {
  saveModule(file, net, { model: 'encrypted-cnn', config: JSON.stringify(cfg), ...extra });
}

/** Trains `net` with accumulator-aware QAT on every convolution (schedule tightening at epoch ends). */
export async function trainNet(
  net: EncryptedCnn,
  cfg: NetConfig,
  data: { train: Dataset; test?: Dataset },
  onEpoch?: (m: EpochMetrics, target: number | undefined) => void,
): Promise<{ history: EpochMetrics[]; seconds: number; worstCaseBits: { layer: string; bits: number }[] }> {
  const sampleShape = data.train.sampleShape as number[];
  const sched = cfg.schedule;
  const cons = sched.length > 0 ? accumulatorAware(net, { targetBits: sched[0]!, sampleShape, layers: net.convNames() }) : undefined;
  const fcCons = cfg.fcTarget > 0 ? accumulatorAware(net, { targetBits: cfg.fcTarget, sampleShape, layers: ['fc'] }) : undefined;
  const afterStep = cons || fcCons ? () => { cons?.project(); fcCons?.project(); } : undefined;
  const at = (epoch: number) => sched[Math.min(epoch, sched.length - 1)]!;
  let epoch = 0;
  const r = await fit(net, data, {
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    seed: cfg.seed,
    optimizer: 'adam',
    schedule: { kind: 'cosine', tMax: cfg.epochs },
    progress: 'silent',
    afterStep,
    onEpoch: (m) => {
      const target = cons?.targetBits;
      epoch++;
      if (cons && epoch < cfg.epochs && at(epoch) !== cons.targetBits) cons.retarget(at(epoch));
      onEpoch?.(m, target);
    },
  });
  if (cons && cons.targetBits !== sched.at(-1)) cons.retarget(sched.at(-1)!);
  net.eval();
  return { history: r.history, seconds: r.seconds, worstCaseBits: [...(cons?.worstCaseBits() ?? []), ...(fcCons?.worstCaseBits() ?? [])] };
}

/** Train and test splits, pixels in [0, 1] (the net's unsigned input quantizer; no mean/std normalization). */
export async function loadImages(which: NetConfig['dataset'], limitTrain?: number): Promise<{ train: Dataset; test: Dataset }> {
  if (which === 'fashion') {
    const d = loadFashionMnist({ limitTrain });
    return { train: d.train, test: d.test };
  }
  const d = await loadCifar10({});
  return { train: toDataset(d.train, { normalization: 'unit', limit: limitTrain }), test: toDataset(d.test, { normalization: 'unit' }) };
}

/**
 * `n` test images to evaluate: the first n for Fashion-MNIST (its test set is shuffled), n evenly spaced ones
 * (index ⌊i·N/n⌋) for CIFAR-10, whose JPEG copy is sorted by class.
 */
export function pick(d: Dataset, n: number, which: NetConfig['dataset']): Dataset {
  const total = size(d);
  if (which === 'fashion' || n >= total) return head(d, n);
  const per = sampleSize(d);
  const x = new Float32Array(n * per);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = Math.floor((i * total) / n);
    x.set(d.x.subarray(j * per, (j + 1) * per), i * per);
    y[i] = d.y[j]!;
  }
  return { ...d, x, y };
}

export { nhwcToNchw }; // one definition: src/util/layout.ts

/** Compiles the net, calibrated on `calib` (NHWC data), to an FheModel. */
export function compileNet(net: EncryptedCnn, calib: Dataset): FheModel {
  net.eval();
  const graph = moduleToGraph(net, calib.sampleShape as number[]);
  return FheModel.compile(graph, { data: nhwcToNchw(calib.x, size(calib), calib.sampleShape), n: size(calib) });
}
