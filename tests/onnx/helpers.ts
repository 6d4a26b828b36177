/** Shared helpers of the ONNX tests (not a test file). */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { it } from 'vitest';
import type { Graph, TensorData } from '../../src/onnx/index.js';
import { runGraph } from '../../src/onnx/index.js';
import { FIXTURE_DIR } from '../fixture-dir.js';

export { FIXTURE_DIR };
export const FIXTURES = ['cb3', 'mlp_default', 'mlp_4bit', 'cnn_small'] as const;
export type FixtureName = (typeof FIXTURES)[number];

export interface FixtureIO {
  input_shape: number[];
  x: number[];
  output_shape: number[];
  y: number[];
}

export function fixturePath(name: FixtureName, fmt: 'qonnx' | 'qcdq'): string {
  return `${FIXTURE_DIR}${name}.${fmt}.onnx`;
}
export function fixtureBytes(name: FixtureName, fmt: 'qonnx' | 'qcdq'): Uint8Array {
  return new Uint8Array(readFileSync(fixturePath(name, fmt)));
}
export function fixtureIO(name: FixtureName): FixtureIO {
  return JSON.parse(readFileSync(`${FIXTURE_DIR}${name}.io.json`, 'utf8')) as FixtureIO;
}

export function maxAbsDiff(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(Number(a[i]) - Number(b[i])));
  return d;
}

/** Row-wise argmax of a [rows, cols] flat array. */
export function argmaxRows(data: ArrayLike<number | bigint>, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * cols < data.length; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (Number(data[r * cols + c]) > Number(data[r * cols + best])) best = c;
    out.push(best);
  }
  return out;
}

/** Runs a single-input graph with the fhenet interpreter and returns its single output. */
export function runSingle(graph: Graph, dims: number[], data: ArrayLike<number>): TensorData {
  const out = runGraph(graph, { [graph.inputs[0]!.name]: { dims, data: Float32Array.from(data) } }).outputs;
  return [...out.values()][0]!;
}

/** The part of onnxruntime-node's API these tests use (typed here: the package is not a dependency). */
interface OrtTensor {
  dims: readonly number[];
  data: unknown;
}
interface OrtModule {
  InferenceSession: {
    create(bytes: Uint8Array, opts: { graphOptimizationLevel: string; logSeverityLevel: number }): Promise<{
      outputNames: readonly string[];
      run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
      release(): Promise<void>;
    }>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
}

/**
 * onnxruntime-node, the independent QCDQ runtime, is not a dependency of fhenet: its install step downloads CUDA
 * binaries, which breaks a plain `npm ci` offline. CI installs it (`npm install --no-save onnxruntime-node@1.30.0`
 * with ONNXRUNTIME_NODE_INSTALL=skip) and sets FHENET_REQUIRE_ORT=1, so there the comparisons cannot skip.
 */
const ORT_PACKAGE = 'onnxruntime-node';
const ort: OrtModule | undefined = await import(ORT_PACKAGE).then((m: OrtModule & { default?: OrtModule }) => m.default ?? m, () => undefined);
export const ORT_MISSING: string | undefined = ort
  ? undefined
  : 'onnxruntime-node is not installed (not a dependency; run `ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node@1.30.0` to run the onnxruntime comparisons)';
if (ORT_MISSING) {
  if (process.env.FHENET_REQUIRE_ORT === '1') throw new Error(`FHENET_REQUIRE_ORT=1 but ${ORT_MISSING}`);
  console.warn(`skipping the onnxruntime comparisons: ${ORT_MISSING}`);
}
/** `it` for tests that compare with onnxruntime: skipped, with the reason printed once, when it is not installed. */
export const itOrt = ORT_MISSING ? it.skip : it;

/** Runs model bytes in onnxruntime-node with graph optimizations disabled (see the reference notes). */
export async function runOrt(bytes: Uint8Array, feeds: Record<string, { dims: number[]; data: Float32Array }>): Promise<Map<string, { dims: number[]; data: Float32Array }>> {
  if (!ort) throw new Error(ORT_MISSING);
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  const ortFeeds: Record<string, OrtTensor> = {};
  for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor('float32', v.data, v.dims);
  const res = await session.run(ortFeeds);
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const name of session.outputNames) out.set(name, { dims: [...res[name]!.dims], data: res[name]!.data as Float32Array });
  await session.release();
  return out;
}

/** A Python interpreter with the `onnx` package (Debian python3-onnx), or undefined. */
export function findPythonOnnx(): string | undefined {
  const candidates = [process.env.FHENET_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import onnx, onnx.checker; print(onnx.__version__)'], { encoding: 'utf8', timeout: 20_000 });
    if (r.status === 0) return py;
  }
  return undefined;
}

/** Seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
