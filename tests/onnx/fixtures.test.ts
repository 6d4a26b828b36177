/** Every real Brevitas export imports and reproduces Brevitas's output. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Interpreter, importModelWithInfo, isQuantNode, loadOnnxFile, runGraph, toNumbers } from '../../src/onnx/index.js';
import { FIXTURE_DIR, FIXTURES, argmaxRows, fixtureBytes, fixtureIO, itOrt, maxAbsDiff, runOrt, runSingle } from './helpers.js';

const TOL = 1e-5;

describe('Brevitas fixtures', () => {
  for (const name of FIXTURES) {
    for (const fmt of ['qonnx', 'qcdq'] as const) {
      it(`${name}.${fmt}.onnx reproduces y within ${TOL} with the same argmax`, () => {
        const io = fixtureIO(name);
        const { graph, info } = importModelWithInfo(fixtureBytes(name, fmt));
        expect(info.format).toBe(fmt);
        expect(info.initializersAsInputs.length).toBeGreaterThan(0); // keep_initializers_as_inputs handled
        expect(graph.inputs.map((v) => v.name)).toEqual([fmt === 'qonnx' ? 'inp.1' : 'x.1']);
        const y = runSingle(graph, io.input_shape, io.x);
        expect(y.dims).toEqual(io.output_shape);
        const d = maxAbsDiff(y.data, io.y);
        console.log(`[onnx] ${name}.${fmt}: max |Δ| vs Brevitas = ${d.toExponential(2)}`);
        expect(d).toBeLessThan(TOL);
        const cols = io.output_shape[1]!;
        expect(argmaxRows(y.data, cols)).toEqual(argmaxRows(io.y, cols));
      });
    }
    it(`${name}.qcdq.onnx is normalised to the same Quant nodes as ${name}.qonnx.onnx`, () => {
      const a = loadOnnxFile(`${FIXTURE_DIR}${name}.qonnx.onnx`);
      const b = loadOnnxFile(`${FIXTURE_DIR}${name}.qcdq.onnx`);
      expect(b.nodes.map((n) => n.opType)).toEqual(a.nodes.map((n) => n.opType));
      const qa = a.nodes.filter(isQuantNode);
      const qb = b.nodes.filter(isQuantNode);
      for (let i = 0; i < qa.length; i++) {
        expect(qb[i]!.attributes).toEqual(qa[i]!.attributes);
        for (const k of [1, 2, 3]) {
          expect(toNumbers(b.initializers.get(qb[i]!.inputs[k]!)!)).toEqual(toNumbers(a.initializers.get(qa[i]!.inputs[k]!)!));
        }
      }
    });
    itOrt(`${name}.qcdq.onnx without normalisation runs its Q/Clip/DQ nodes and still matches`, async () => {
      const io = fixtureIO(name);
      const graph = importModelWithInfo(fixtureBytes(name, 'qcdq'), { normalizeQcdq: false }).graph;
      expect(graph.nodes.some((n) => n.opType === 'QuantizeLinear')).toBe(true);
      const y = runSingle(graph, io.input_shape, io.x);
      expect(maxAbsDiff(y.data, io.y)).toBeLessThan(TOL);
      // And onnxruntime agrees with the interpreter on the original file.
      const ort = await runOrt(fixtureBytes(name, 'qcdq'), { 'x.1': { dims: io.input_shape, data: Float32Array.from(io.x) } });
      expect(maxAbsDiff([...ort.values()][0]!.data, y.data)).toBeLessThan(TOL);
    });
  }

  it('runs any batch size and exposes intermediate values (cb3 on the 500-point test set)', () => {
    const data = JSON.parse(readFileSync(`${FIXTURE_DIR}checkerboard.json`, 'utf8')) as { X_test: number[][]; y_test: number[] };
    const graph = loadOnnxFile(`${FIXTURE_DIR}cb3.qonnx.onnx`);
    const interp = new Interpreter(graph);
    const n = data.X_test.length;
    const seen: string[] = [];
    const res = interp.run(
      { 'inp.1': { dims: [n, 2], data: Float32Array.from(data.X_test.flat()) } },
      { keep: ['/relu1/act_quant/export_handler/Quant_output_0'], onValue: (name) => seen.push(name) },
    );
    const logits = [...res.outputs.values()][0]!;
    expect(logits.dims).toEqual([n, 2]);
    const pred = argmaxRows(logits.data, 2);
    const acc = pred.filter((p, i) => p === data.y_test[i]).length / n;
    expect(acc).toBeCloseTo(0.922, 3); // Brevitas eval accuracy from the fixture notes
    // The relu1 quantizer output takes the 3-bit unsigned grid values 0..7 × scale.
    const relu1 = res.values.get('/relu1/act_quant/export_handler/Quant_output_0')!;
    expect(relu1.dims).toEqual([n, 100]);
    const scale = graph.initializers.get('/relu1/act_quant/export_handler/Constant_output_0')!.data[0] as number;
    for (let i = 0; i < relu1.data.length; i += 97) {
      const k = Number(relu1.data[i]) / scale;
      expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-4);
      expect(Math.round(k)).toBeGreaterThanOrEqual(0);
      expect(Math.round(k)).toBeLessThanOrEqual(7);
    }
    expect(seen).toContain('/fc2/Gemm_output_0');
    // keep: true keeps every value.
    const all = runGraph(graph, { 'inp.1': { dims: [1, 2], data: Float32Array.of(0.1, 0.9) } }, { keep: true });
    expect(all.values.size).toBe(1 + graph.nodes.length);
  });
});
