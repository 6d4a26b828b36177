/** Shared CLI loading: a model from an .onnx file or an fhenet checkpoint, and labelled data for calibration. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateCheckerboard, loadPeerCheckerboard } from '../../datasets/checkerboard/index.js';
import type { Graph } from '../onnx/graph.js';
import { loadOnnxFile } from '../onnx/import.js';
import { ConfigError } from '../util/errors.js';

export interface LabelledData {
  /** Flat float inputs in the graph's layout (NCHW for images). */
  x: Float32Array;
  y?: Int32Array;
  n: number;
}

/** An ONNX file, or a checkpoint from `fhenet train` exported through the one road (module → graph). */
export async function loadGraph(file: string): Promise<Graph> {
  if (!fs.existsSync(file)) throw new ConfigError(`${file} does not exist`);
  if (file.endsWith('.onnx')) return loadOnnxFile(file);
  if (file.endsWith('.safetensors')) {
    // Only this branch needs tensors; keep the ONNX path free of tfjs.
    const { initBackend } = await import('../backend/index.js');
    const { loadCheckpointModel } = await import('../models/registry.js');
    const { moduleToGraph } = await import('../export/to-graph.js');
    await initBackend();
    const { model, sampleShape } = loadCheckpointModel(file);
    return moduleToGraph(model, sampleShape, { graphName: path.basename(file, '.safetensors') });
  }
  throw new ConfigError(`${file}: expected an .onnx file or an fhenet .safetensors checkpoint`);
}

/**
 * Data by name: `checkerboard` (generated, seed 42), `peer` (the reference runs' arrays), or a JSON file
 * `{ "x": number[] (flat, graph layout), "n": number, "y"?: number[] }`. `part` picks train or test split.
 */
export function loadData(spec: string, part: 'train' | 'test'): LabelledData {
  if (spec === 'checkerboard' || spec === 'peer') {
    const split = spec === 'peer' ? loadPeerCheckerboard() : generateCheckerboard({ seed: 42 });
    const d = split[part];
    return { x: d.x, y: d.y, n: d.y.length };
  }
  if (!fs.existsSync(spec)) throw new ConfigError(`data '${spec}' is neither 'checkerboard', 'peer' nor an existing JSON file`);
  const raw = JSON.parse(fs.readFileSync(spec, 'utf8')) as { x?: number[]; n?: number; y?: number[] };
  if (!Array.isArray(raw.x) || typeof raw.n !== 'number' || raw.n < 1) throw new ConfigError(`${spec}: expected { "x": [...], "n": N, "y"?: [...] }`);
  if (raw.y && raw.y.length !== raw.n) throw new ConfigError(`${spec}: y has ${raw.y.length} labels for n = ${raw.n}`);
  return { x: Float32Array.from(raw.x), y: raw.y ? Int32Array.from(raw.y) : undefined, n: raw.n };
}
