/** Plain float ONNX import (Constant nodes, old-opset forms) and the inspect report. */
import { describe, expect, it } from 'vitest';
import {
  Attr,
  emptyGraph,
  encodeModel,
  floatTensor,
  importModel,
  inspectGraph,
  loadOnnxFile,
  runGraph,
  tensorFrom,
  topologicalOrder,
  GraphIndex,
  type Graph,
} from '../../src/onnx/index.js';
import { fixturePath, itOrt, maxAbsDiff, runOrt } from './helpers.js';

/** A float model as other tools write it: Constant nodes, nodes out of order, opset 9 Clip/Pad attributes. */
function oldFloatModel(): Graph {
  const g = emptyGraph('old');
  g.opsetImports = [{ domain: '', version: 9 }];
  g.inputs = [{ name: 'x', elemType: 'float32', shape: ['N', 3] }];
  g.outputs = [{ name: 'y', elemType: 'float32', shape: ['N', 6] }];
  g.initializers.set('w', floatTensor([3, 4], [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8, 0.9, 1.0, -1.1, 1.2]));
  g.nodes = [
    // deliberately not in topological order
    { name: 'pad', opType: 'Pad', domain: '', inputs: ['c'], outputs: ['y'], attributes: { pads: Attr.ints([0, 1, 0, 1]), value: Attr.float(-1) } },
    { name: 'clip', opType: 'Clip', domain: '', inputs: ['s'], outputs: ['c'], attributes: { min: Attr.float(-0.5), max: Attr.float(0.5) } },
    { name: 'k', opType: 'Constant', domain: '', inputs: [], outputs: ['bias'], attributes: { value: Attr.tensor(floatTensor([4], [0.1, 0.2, 0.3, 0.4])) } },
    { name: 'mm', opType: 'MatMul', domain: '', inputs: ['x', 'w'], outputs: ['m'], attributes: {} },
    { name: 'add', opType: 'Add', domain: '', inputs: ['m', 'bias'], outputs: ['s'], attributes: {} },
  ];
  return g;
}

describe('plain float ONNX', () => {
  itOrt('imports Constant nodes, old-opset Clip/Pad and unsorted nodes, and matches onnxruntime', async () => {
    const bytes = encodeModel(oldFloatModel());
    const g = importModel(bytes);
    expect(g.nodes.map((n) => n.opType)).toEqual(['MatMul', 'Add', 'Clip', 'Pad']);
    expect(g.initializers.has('bias')).toBe(true);
    const x = { dims: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => (i - 6) / 5) };
    const mine = runGraph(g, { x }).outputs.get('y')!;
    const ort = (await runOrt(bytes, { x })).get('y')!;
    expect(mine.dims).toEqual([4, 6]);
    expect(maxAbsDiff(mine.data, ort.data)).toBeLessThan(1e-6);
  });

  it('graph helpers: producers, consumers, topological order', () => {
    const g = importModel(encodeModel(oldFloatModel()));
    const idx = new GraphIndex(g);
    expect(idx.producer('s')!.name).toBe('add');
    expect(idx.consumersOf('m').map((n) => n.name)).toEqual(['add']);
    expect(idx.isInitializer('w')).toBe(true);
    expect(idx.isGraphInput('x')).toBe(true);
    expect(topologicalOrder(g).map((n) => n.name)).toEqual(['mm', 'add', 'clip', 'pad']);
  });

  it('Reshape shapes and integer tensors survive the round trip', () => {
    const g = emptyGraph('r');
    g.inputs = [{ name: 'x', elemType: 'float32', shape: ['batch', 2, 3] }];
    g.outputs = [{ name: 'y', elemType: 'float32', shape: null }];
    g.initializers.set('shape', tensorFrom('int64', [2], [0, -1]));
    g.nodes = [{ name: 'r', opType: 'Reshape', domain: '', inputs: ['x', 'shape'], outputs: ['y'], attributes: {} }];
    const back = importModel(encodeModel(g));
    expect(Array.from(back.initializers.get('shape')!.data as BigInt64Array)).toEqual([0n, -1n]);
    expect(runGraph(back, { x: { dims: [5, 2, 3], data: new Float32Array(30) } }).outputs.get('y')!.dims).toEqual([5, 6]);
  });
});

describe('inspectGraph', () => {
  it('reports ops, quantizers and shapes of cnn_small', () => {
    const { json, text } = inspectGraph(loadOnnxFile(fixturePath('cnn_small', 'qonnx')));
    expect(json.ops).toMatchObject({ 'onnx.brevitas::Quant': 5, Conv: 1, BatchNormalization: 1, Gemm: 1 });
    expect(json.quantizers.map((q) => [q.kind, q.bitWidth, q.signed, q.narrow])).toEqual([
      ['activation', 8, true, false],
      ['weight', 4, true, true],
      ['activation', 4, true, false],
      ['activation', 4, true, false],
      ['weight', 4, true, true],
    ]);
    expect(json.quantizers[1]!.intRange).toEqual([-7, 7]);
    expect(json.quantizers[2]!.scale).toBeCloseTo(0.601739, 5);
    expect(json.nodes.find((n) => n.op === 'AveragePool')!.outputShape).toEqual([1, 4, 4, 4]);
    expect(json.initializers.parameters).toBeGreaterThan(700);
    expect(text).toMatch(/4-bit signed narrow\s+scale 0\.0274249/);
    expect(text).toMatch(/Flatten\s+\/flat\/Flatten\s+→ \[1, 64\]/);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });

  it('summarises per-channel scales', () => {
    const g = importModel(encodeModel(loadOnnxFile(fixturePath('mlp_4bit', 'qonnx'))));
    const w = g.nodes.find((n) => n.name === '/fc1/weight_quant/export_handler/Quant')!;
    g.initializers.set(w.inputs[1]!, floatTensor([8, 1], [1, 2, 3, 4, 5, 6, 7, 8].map((v) => v / 100)));
    const { json } = inspectGraph(g);
    const s = json.quantizers[1]!.scale as { channels: number; min: number; max: number };
    expect(s.channels).toBe(8);
    expect(s.min).toBeCloseTo(0.01, 6);
    expect(s.max).toBeCloseTo(0.08, 6);
  });
});
