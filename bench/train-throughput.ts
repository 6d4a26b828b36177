/**
 * Training throughput (samples/s) per tensor backend.
 *
 *   npx tsx bench/train-throughput.ts [--quick] [--profile] [--cpu-steps N] [--only cnn|mlp|cnv] [--torch]
 *                                     [--webgpu] [--variants LIST] [--out FILE]
 *
 * (b) CIFAR-shaped CNN: 3×32×32 input, conv3×3(16)-ReLU, conv3×3(32)-ReLU, maxpool 2, conv3×3(64)-ReLU, avgpool 2,
 *     conv3×3(64)-ReLU, maxpool 2, dense 1024→10; softmax cross-entropy; Adam (lr 1e-3). Backends:
 *       wasm+fhenet     WASM with fhenet's Conv2DBackpropFilter/Input kernels (src/backend/wasm-kernels)
 *       wasm+native     the same plus fhenet's optional native kernels (src/backend/native: Conv2D, both
 *                       convolution gradients and BatchMatMul as im2col + OpenBLAS sgemm on the WASM heap)
 *       wasm+tfjs-dx    WASM with tfjs's own Conv2DBackpropInput (fhenet's filter kernel only: tfjs has none)
 *       wasm (tfjs)     WASM with tfjs's kernels only — cannot train a CNN (no Conv2DBackpropFilter); reported as such
 *       cpu             tfjs CPU backend (plain JS; very slow for convolutions — few steps)
 *       webgpu          tfjs's WebGPU backend on Dawn (`--webgpu`; optional packages, src/backend/webgpu.ts): a GPU
 *                       when Dawn finds one, else Mesa's software OpenGL (llvmpipe) — the adapter is printed
 * (a) checkerboard QAT net at batch 1 and 32: fhenet's QuantSimpleNet (3-bit) with fhenet's AdamW.
 * (c) CNV 2W2A (src/models/cnv.ts; the reference CIFAR-10 net) and its CPU-budget variant at batch 100 (the
 *     reference batch), fhenet layers + fhenet Adam, on WASM with fhenet's kernels; `--profile` adds a per-kernel
 *     profile of one CNV step (per variant). `--only cnn|mlp|cnv` runs one section. `--torch` runs
 *     bench/cnv-torch.py (Debian python3-torch, /usr/bin/python3) in the same run, after the CNV rows, and reports
 *     the PyTorch / fhenet ratios.
 *
 * Each figure is the median over timed steps after warm-up steps; a step is forward + backward + Adam update, ended
 * by reading the loss asynchronously (so queued GPU or worker work is included; WebGPU in Node has no synchronous
 * read). `--variants` keeps only the listed backend variants (e.g. `webgpu`); `--out` writes the Markdown elsewhere
 * than bench/results/train-throughput.md (for partial runs).
 */
import '../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import os from 'node:os';
import { Command, Option } from 'commander';
import { intOption } from '../src/cli/options.js';
import { median } from '../src/util/stats.js';
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
// Importing the backend module registers tfjs's gradient functions (via the @tensorflow/tfjs union package).
import '../src/backend/index.js';
import { registerWasmKernels, unregisterWasmKernels } from '../src/backend/wasm-kernels/index.js';
import { describeNative, nativeStatus, registerNativeKernels, unregisterNativeKernels } from '../src/backend/native/index.js';
import { loadWebGpu } from '../src/backend/webgpu.js';
import { QuantSimpleNet } from '../src/models/checkerboard.js';
import { type CnvVariant, FloatCnv, createCnv } from '../src/models/cnv.js';
import { manualSeed } from '../src/nn/init.js';
import type { Module } from '../src/nn/module.js';
import { valueOf } from '../src/nn/quant-tensor.js';
import { crossEntropy } from '../src/train/loss.js';
import { type OptimizerName, createOptimizer } from '../src/train/optim.js';

const argv = process.argv.slice(2);
const opts = new Command('bench/train-throughput.ts')
  .description('training throughput (samples/s) per tensor backend: CIFAR-shaped CNN, checkerboard QAT net, CNV 2W2A')
  .option('--quick', 'fewer batch sizes and timed steps (a smoke run)')
  .option('--profile', 'add a per-kernel profile of one step (CNV per variant, and the CNN)')
  .option('--cpu-steps <n>', 'timed steps on the tfjs CPU backend for the CNN (default 3, 1 with --quick)', intOption('--cpu-steps', 1))
  .addOption(new Option('--only <section>', 'run one section only').choices(['cnn', 'mlp', 'cnv']))
  .option('--torch', 'also run bench/cnv-torch.py (PyTorch, /usr/bin/python3) after the CNV rows and report the ratios')
  .option('--webgpu', "add rows on tfjs's WebGPU backend (Dawn; a GPU, or Mesa's llvmpipe without one)")
  .option('--variants <list>', 'only these backend variants, comma-separated (wasm+fhenet, wasm+native, wasm+tfjs-dx, wasm (tfjs), cpu, webgpu)')
  .option('--out <file>', 'Markdown results file', 'bench/results/train-throughput.md')
  .parse()
  .opts<{ quick?: boolean; profile?: boolean; cpuSteps?: number; only?: 'cnn' | 'mlp' | 'cnv'; torch?: boolean; webgpu?: boolean; variants?: string; out: string }>();
const QUICK = opts.quick === true;
const PROFILE = opts.profile === true;
const TORCH = opts.torch === true;
/** The native accelerator's state, as registered at the start of the run. */
let nativeLine = '';
const ONLY = opts.only;

/** A training workload: `step()` runs one optimisation step and resolves to the loss. */
interface Workload {
  step(): Promise<number>;
  dispose(): void;
}

/** Seeded uniform noise. */
function noise(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}

function heUniform(shape: number[], fanIn: number, seed: number): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.variable(tf.tensor(noise(n, seed, Math.sqrt(6 / fanIn)), shape));
}

function oneHot(n: number, classes: number, seed: number): tf.Tensor2D {
  const labels = Array.from(noise(n, seed), (v) => Math.floor(((v + 1) / 2) * classes) % classes);
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), 'float32')) as tf.Tensor2D;
}

/** (b) The CIFAR-shaped CNN. */
function cifarCnn(batch: number): Workload {
  const convs: [number, number][] = [
    [3, 16],
    [16, 32],
    [32, 64],
    [64, 64],
  ];
  const vars: tf.Variable[] = [];
  const conv = convs.map(([cin, cout], i) => {
    const w = heUniform([3, 3, cin, cout], 9 * cin, 11 + i);
    const b = tf.variable(tf.zeros([cout]));
    vars.push(w, b);
    return { w, b };
  });
  const dw = heUniform([4 * 4 * 64, 10], 1024, 99);
  const db = tf.variable(tf.zeros([10]));
  vars.push(dw, db);
  const x = tf.tensor4d(noise(batch * 32 * 32 * 3, 5), [batch, 32, 32, 3]);
  const y = oneHot(batch, 10, 6);
  const opt = tf.train.adam(1e-3);
  const layer = (h: tf.Tensor4D, i: number) => tf.relu(tf.add(tf.conv2d(h, conv[i]!.w as tf.Tensor4D, 1, 'same'), conv[i]!.b)) as tf.Tensor4D;
  const loss = () =>
    tf.tidy(() => {
      let h = layer(x, 0);
      h = tf.maxPool(layer(h, 1), 2, 2, 'valid');
      h = tf.avgPool(layer(h, 2), 2, 2, 'valid');
      h = tf.maxPool(layer(h, 3), 2, 2, 'valid');
      const logits = tf.add(tf.matMul(tf.reshape(h, [batch, -1]), dw), db);
      return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
    });
  return {
    async step() {
      const l = opt.minimize(loss, true, vars)!;
      const v = (await l.data())[0]!;
      l.dispose();
      return v;
    },
    dispose() {
      tf.dispose([...vars, x, y]);
      opt.dispose();
    },
  };
}

// ─── (a) the checkerboard QAT net ─────────────────────────────────────────────────────────────────────────────────
// fhenet's QuantSimpleNet (src/models/checkerboard.ts, the notebook's 3-bit constant-scale quantizers):
// QuantIdentity(3) → QuantLinear(2,100) → QuantReLU(3) → QuantLinear(100,100) → QuantReLU(3) → QuantLinear(100,2),
// cross-entropy, fhenet's AdamW (lr 1e-3), as in ../shared/reference/concrete-ml.md §1.
const MLP_LABEL = "checkerboard QAT net — fhenet QuantSimpleNet (3-bit, notebook quantizers), cross-entropy, fhenet AdamW lr 1e-3";
/** One fhenet training step (forward, backward, optimizer) on a fixed batch, like the trainer's inner loop. */
function fhenetStep(model: Module, x: tf.Tensor, y: tf.Tensor1D, lr: number, optimizer: OptimizerName, after?: () => void): Workload {
  const named = model.namedParameters().filter(([, v]) => v.trainable);
  const vars = named.map(([, v]) => v);
  const opt = createOptimizer(optimizer, named, { lr });
  return {
    async step() {
      const { value, grads } = tf.variableGrads(() => crossEntropy(valueOf(model.call(x)), y), vars);
      opt.step(grads);
      after?.();
      const v = (await value.data())[0]!;
      tf.dispose([value, ...Object.values(grads)]);
      return v;
    },
    dispose() {
      opt.dispose();
      model.dispose();
      tf.dispose([x, y]);
    },
  };
}

function labels(n: number, classes: number, seed: number): tf.Tensor1D {
  return tf.tensor1d(Array.from(noise(n, seed), (v) => Math.floor(((v + 1) / 2) * classes) % classes), 'int32');
}

function checkerboardMlp(batch: number): Workload {
  manualSeed(21);
  const model = new QuantSimpleNet({ bits: 3, scales: 'notebook' });
  const x = tf.tensor2d(Array.from(noise(batch * 2, 7), (v) => (v + 1) / 2), [batch, 2]);
  return fhenetStep(model, x, labels(batch, 2, 8), 1e-3, 'adamw');
}

function floatCnvStep(batch: number): Workload {
  manualSeed(32);
  const model = new FloatCnv();
  const x = tf.tensor4d(noise(batch * 32 * 32 * 3, 9), [batch, 32, 32, 3]);
  return fhenetStep(model, x, labels(batch, 10, 10), 1e-3, 'adam');
}

// ─── (c) CNV 2W2A (src/models/cnv.ts) ────────────────────────────────────────────────────────────────────────────
/** The reference CNV (or its CPU-budget variant) on random [−1, 1] images, Adam lr 0.02, weight clipping. */
function cnvStep(variant: CnvVariant): (batch: number) => Workload {
  return (batch) => {
    manualSeed(31);
    const model = createCnv(variant);
    const x = tf.tensor4d(noise(batch * 32 * 32 * 3, 9), [batch, 32, 32, 3]);
    return fhenetStep(model, x, labels(batch, 10, 10), 0.02, 'adam', () => model.clipWeights());
  };
}

type Variant = 'wasm+fhenet' | 'wasm+native' | 'wasm+tfjs-dx' | 'wasm (tfjs)' | 'cpu' | 'webgpu';
const VARIANTS: readonly Variant[] = ['wasm+fhenet', 'wasm+native', 'wasm+tfjs-dx', 'wasm (tfjs)', 'cpu', 'webgpu'];
const KEEP = opts.variants === undefined ? undefined : new Set(opts.variants.split(',').map((v) => v.trim()));
for (const v of KEEP ?? []) if (!VARIANTS.includes(v as Variant)) throw new Error(`--variants: unknown variant '${v}' (choose from ${VARIANTS.join(', ')})`);
const WEBGPU = opts.webgpu === true || KEEP?.has('webgpu') === true;
/** The WebGPU adapter, once loaded. */
let webgpuLine = '';

async function useVariant(v: Variant): Promise<void> {
  if (v === 'webgpu') {
    const info = await loadWebGpu();
    webgpuLine = `${info.adapter}${info.compatibility ? ' (compatibility feature level)' : ''}${info.flags.length ? `, Dawn flags ${info.flags.join(',')}` : ''}`;
    if (!(await tf.setBackend('webgpu'))) throw new Error('the WebGPU backend failed to initialise');
    return;
  }
  // Native kernels sit on top of fhenet's WASM kernels: remove them first, register them last.
  unregisterNativeKernels();
  unregisterWasmKernels();
  if (v === 'wasm+fhenet' || v === 'wasm+native') registerWasmKernels();
  if (v === 'wasm+tfjs-dx') registerWasmKernels(['Conv2DBackpropFilter']);
  if (v === 'wasm+native') {
    const s = registerNativeKernels();
    if (!s.available) throw new Error(`native kernels unavailable: ${s.reason}`);
  }
  const name = v === 'cpu' ? 'cpu' : 'wasm';
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to initialise`);
  if (name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
}


interface Row {
  workload: string;
  variant: Variant;
  batch: number;
  stepMs?: number;
  samplesPerS?: number;
  steps?: number;
  note?: string;
}

async function measure(workload: string, variant: Variant, batch: number, make: (b: number) => Workload, warmup: number, steps: number): Promise<Row | undefined> {
  if (KEEP && !KEEP.has(variant)) return undefined;
  try {
    await useVariant(variant);
  } catch (err) {
    const note = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
    console.log(`${workload.padEnd(9)} ${variant.padEnd(13)} batch ${String(batch).padStart(3)}: skipped — ${note}`);
    return { workload, variant, batch, note };
  }
  const w = make(batch);
  try {
    for (let i = 0; i < warmup; i++) await w.step();
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await w.step();
      times.push(performance.now() - t0);
    }
    const stepMs = median(times);
    const row: Row = { workload, variant, batch, stepMs, samplesPerS: (batch * 1000) / stepMs, steps };
    console.log(`${workload.padEnd(9)} ${variant.padEnd(13)} batch ${String(batch).padStart(3)}: ${stepMs.toFixed(2).padStart(9)} ms/step  ${row.samplesPerS!.toFixed(1).padStart(8)} samples/s  (median of ${steps})`);
    return row;
  } catch (err) {
    const note = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
    console.log(`${workload.padEnd(9)} ${variant.padEnd(13)} batch ${String(batch).padStart(3)}: cannot train — ${note}`);
    return { workload, variant, batch, note };
  } finally {
    w.dispose();
  }
}

/** Per-kernel time of one training step (tf.profile), summed by kernel name. */
async function profileCnn(variant: Variant, batch: number, make: (b: number) => Workload = cifarCnn): Promise<Map<string, number>> {
  await useVariant(variant);
  const w = make(batch);
  const byKernel = new Map<string, number>();
  try {
    await w.step();
    await w.step();
    const info = await tf.profile(async () => {
      await w.step();
    });
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + ms);
    }
  } finally {
    w.dispose();
  }
  return byKernel;
}

async function main(): Promise<void> {
  const rows: (Row | undefined)[] = []; // undefined: a variant left out by --variants
  let torch: string | undefined;
  const cnnBatches = QUICK ? [32] : [32, 64];
  const wasmWarm = QUICK ? 2 : 3;
  const wasmSteps = QUICK ? 5 : 11;
  const cpuSteps = opts.cpuSteps ?? (QUICK ? 1 : 3);
  console.log(`machine: ${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length}, Node ${process.version}, tfjs-core ${tf.version_core}`);
  console.log(`load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  registerWasmKernels();
  nativeLine = describeNative(registerNativeKernels());
  console.log(nativeLine);

  if (ONLY === undefined || ONLY === 'cnn') {
    for (const batch of cnnBatches) {
      rows.push(await measure('cnn', 'wasm+fhenet', batch, cifarCnn, wasmWarm, wasmSteps));
      rows.push(await measure('cnn', 'wasm+native', batch, cifarCnn, wasmWarm, wasmSteps));
      rows.push(await measure('cnn', 'wasm+tfjs-dx', batch, cifarCnn, 1, QUICK ? 2 : 3));
      rows.push(await measure('cnn', 'wasm (tfjs)', batch, cifarCnn, 0, 1));
    }
    rows.push(await measure('cnn', 'cpu', 32, cifarCnn, 1, cpuSteps));
    if (WEBGPU) for (const batch of cnnBatches) rows.push(await measure('cnn', 'webgpu', batch, cifarCnn, wasmWarm, QUICK ? 3 : 5));
  }
  if (ONLY === undefined || ONLY === 'cnv') {
    for (const v of ['wasm+fhenet', 'wasm+native'] as Variant[]) {
      const native = v === 'wasm+native';
      rows.push(await measure('cnv', v, 100, cnvStep('full'), native ? 2 : 1, QUICK ? 2 : native ? 7 : 4));
      rows.push(await measure('cnv-small', v, 100, cnvStep('small'), 2, QUICK ? 3 : 8));
      rows.push(await measure('cnv-float', v, 100, floatCnvStep, native ? 2 : 1, QUICK ? 2 : native ? 7 : 4));
    }
    if (WEBGPU) {
      rows.push(await measure('cnv', 'webgpu', 100, cnvStep('full'), 1, QUICK ? 2 : 4));
      rows.push(await measure('cnv-small', 'webgpu', 100, cnvStep('small'), 1, QUICK ? 2 : 4));
      rows.push(await measure('cnv-float', 'webgpu', 100, floatCnvStep, 1, QUICK ? 2 : 4));
    }
    if (TORCH) torch = runTorch();
  }
  if (ONLY === undefined || ONLY === 'mlp') {
    for (const batch of [1, 32]) {
      for (const v of ['wasm+fhenet', 'cpu'] as Variant[]) rows.push(await measure('mlp', v, batch, checkerboardMlp, 20, QUICK ? 50 : 200));
      if (WEBGPU) rows.push(await measure('mlp', 'webgpu', batch, checkerboardMlp, 5, QUICK ? 10 : 30));
    }
  }

  const profiles: { variant: Variant; what: string; kernels: Map<string, number> }[] = [];
  if (PROFILE && (ONLY === undefined || ONLY === 'cnv')) {
    for (const v of ['wasm+fhenet', 'wasm+native'] as Variant[]) {
      if (v === 'wasm+native' && !nativeStatus().available) continue;
      if (KEEP && !KEEP.has(v)) continue;
      const kernels = await profileCnn(v, 100, cnvStep('full'));
      profiles.push({ variant: v, what: 'CNV 2W2A step at batch 100', kernels });
      const total = [...kernels.values()].reduce((a, b) => a + b, 0);
      console.log(`\nprofile, CNV step at batch 100, ${v} (kernel time ${total.toFixed(1)} ms):`);
      for (const [name, ms] of [...kernels].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${name.padEnd(24)} ${ms.toFixed(2).padStart(9)} ms`);
    }
  }
  if (PROFILE && (ONLY === undefined || ONLY === 'cnn')) {
    for (const v of ['wasm+fhenet', 'wasm+tfjs-dx'] as Variant[]) {
      if (KEEP && !KEEP.has(v)) continue;
      const kernels = await profileCnn(v, 32);
      profiles.push({ variant: v, what: 'CNN step at batch 32', kernels });
      const total = [...kernels.values()].reduce((a, b) => a + b, 0);
      console.log(`\nprofile, CNN step at batch 32, ${v} (kernel time ${total.toFixed(1)} ms):`);
      for (const [name, ms] of [...kernels].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
        console.log(`  ${name.padEnd(24)} ${ms.toFixed(2).padStart(9)} ms`);
      }
    }
  }

  writeResults(rows.filter((r): r is Row => r !== undefined), profiles, torch);
}

/** bench/cnv-torch.py in a child process (its Markdown table), or a note saying why it did not run. */
function runTorch(): string {
  console.log(`\nPyTorch (bench/cnv-torch.py), load average ${os.loadavg().map((l) => l.toFixed(2)).join(', ')} …`);
  try {
    const out = execFileSync('/usr/bin/python3', ['bench/cnv-torch.py'], { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'pipe'] });
    console.log(out);
    return out.trim();
  } catch (err) {
    const note = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
    console.log(`PyTorch not measured: ${note}`);
    return `PyTorch not measured: ${note}`;
  }
}

/** images/s of a `| net | threads | ms/step | images/s |` row of cnv-torch.py's table. */
function torchRate(table: string | undefined, net: string, threads: number): number | undefined {
  const line = table?.split('\n').find((l) => l.startsWith(`| ${net}`) && l.split('|')[2]?.trim() === String(threads));
  const v = line ? Number(line.split('|')[4]) : NaN;
  return Number.isFinite(v) ? v : undefined;
}

function writeResults(rows: Row[], profiles: { variant: Variant; what: string; kernels: Map<string, number> }[], torch?: string): void {
  const cmd = `npx tsx bench/train-throughput.ts ${argv.join(' ')}`.trim();
  const fmt = (r: Row) =>
    r.samplesPerS === undefined
      ? `| ${r.variant} | ${r.batch} | — | — | cannot train: ${r.note} |`
      : `| ${r.variant} | ${r.batch} | ${r.stepMs!.toFixed(2)} | ${r.samplesPerS.toFixed(1)} | median of ${r.steps} |`;
  const cnn = rows.filter((r) => r.workload === 'cnn');
  const mlp = rows.filter((r) => r.workload === 'mlp');
  const cnv = rows.filter((r) => r.workload.startsWith('cnv'));
  const fmtCnv = (r: Row) =>
    r.samplesPerS === undefined
      ? `| ${r.workload} | ${r.variant} | ${r.batch} | — | — | cannot train: ${r.note} |`
      : `| ${r.workload} | ${r.variant} | ${r.batch} | ${r.stepMs!.toFixed(1)} | ${r.samplesPerS.toFixed(1)} | median of ${r.steps} |`;
  const fast = cnn.find((r) => r.variant === 'wasm+fhenet' && r.batch === 32)?.samplesPerS;
  const cpu = cnn.find((r) => r.variant === 'cpu')?.samplesPerS;
  const tfjsDx = cnn.find((r) => r.variant === 'wasm+tfjs-dx' && r.batch === 32)?.samplesPerS;
  const lines = [
    '# Training throughput',
    '',
    `Command: \`${cmd}\``,
    '',
    `Machine: ${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, tfjs ${tf.version_core}; WASM runs single-threaded. Date: ${new Date().toISOString()}. Load average at the end (1, 5, 15 min; other jobs share the cores): ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}.`,
    '',
    `Native accelerator (the wasm+native rows): ${nativeLine}.`,
    '',
    ...(webgpuLine ? [`WebGPU adapter (the webgpu rows): ${webgpuLine}.`, ''] : []),
    '## (b) CIFAR-shaped CNN',
    '',
    '3×32×32 → conv3×3(16)-ReLU → conv3×3(32)-ReLU → maxpool2 → conv3×3(64)-ReLU → avgpool2 → conv3×3(64)-ReLU → maxpool2 → dense(1024→10); softmax cross-entropy; Adam. A step = forward + backward + update.',
    '',
    '| backend | batch | ms/step | images/s | |',
    '|---|---|---|---|---|',
    ...cnn.map(fmt),
    '',
    fast && cpu ? `WASM + fhenet kernels vs CPU backend: **${(fast / cpu).toFixed(1)}×** (target ≥ 5×).` : '',
    fast && tfjsDx ? `WASM + fhenet kernels vs WASM with tfjs's own Conv2DBackpropInput: ${(fast / tfjsDx).toFixed(1)}×.` : '',
    '',
    '## (c) CNV 2W2A (CIFAR-10 reference net)',
    '',
    'cnv: 6 QuantConv2d 64-64-128-128-256-256 (2-bit weights) + BatchNorm + 2-bit QuantIdentity, 2 AvgPool, FC 256→512→512→10, 8-bit input (src/models/cnv.ts). cnv-small: the CPU-budget variant (channels 16-16-32-32-64-64, FC 64→128→128→10). cnv-float: the same convolutions, BatchNorms and pools with ReLU and no quantizers (the figure to compare with PyTorch, bench/cnv-torch.py). Random images, fhenet Adam lr 0.02 + weight clipping; target ≥ 100 images/s for cnv.',
    '',
    '| net | backend | batch | ms/step | images/s | |',
    '|---|---|---|---|---|---|',
    ...cnv.map(fmtCnv),
    '',
    ...cnvRatios(cnv, torch),
    '',
    '## (a) checkerboard QAT net',
    '',
    `**${MLP_LABEL}**.`,
    '',
    '| backend | batch | ms/step | samples/s | |',
    '|---|---|---|---|---|',
    ...mlp.map(fmt),
    '',
  ];
  for (const p of profiles) {
    const total = [...p.kernels.values()].reduce((a, b) => a + b, 0);
    lines.push(`## Kernel profile: one ${p.what}, ${p.variant} (tf.profile; kernel time ${total.toFixed(1)} ms)`, '');
    lines.push('| kernel | ms |', '|---|---|');
    for (const [name, ms] of [...p.kernels].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`| ${name} | ${ms.toFixed(2)} |`);
    lines.push('');
  }
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, lines.join('\n'));
  console.log(`\nwrote ${opts.out}`);
}

await main();

/** native / WASM ratios per CNV net, and PyTorch / fhenet when cnv-torch.py ran in the same process. */
function cnvRatios(cnv: Row[], torch: string | undefined): string[] {
  const rate = (w: string, v: Variant) => cnv.find((r) => r.workload === w && r.variant === v)?.samplesPerS;
  const out: string[] = [];
  for (const w of ['cnv', 'cnv-small', 'cnv-float']) {
    const a = rate(w, 'wasm+fhenet');
    const b = rate(w, 'wasm+native');
    if (a && b) out.push(`- ${w}: wasm+native / wasm+fhenet = **${(b / a).toFixed(2)}×** (${b.toFixed(1)} vs ${a.toFixed(1)} images/s).`);
  }
  if (torch) {
    out.push('', 'PyTorch (`/usr/bin/python3 bench/cnv-torch.py`, run by this bench right after the CNV rows):', '', torch, '');
    const pairs: [string, string][] = [['cnv-float', 'cnv-float'], ['cnv-qat (fake-quant)', 'cnv']];
    for (const [tnet, fnet] of pairs) {
      for (const th of [1, 2]) {
        const t = torchRate(torch, tnet, th);
        for (const v of ['wasm+fhenet', 'wasm+native'] as Variant[]) {
          const f = rate(fnet, v);
          if (t && f) out.push(`- PyTorch ${tnet} (${th} thread${th > 1 ? 's' : ''}) / fhenet ${fnet} ${v}: **${(t / f).toFixed(2)}×**`);
        }
      }
    }
  }
  return out;
}
