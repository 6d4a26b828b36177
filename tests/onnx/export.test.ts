/** QONNX and QCDQ export: round trips, Brevitas graph shape, onnxruntime, onnx.checker. */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeModel,
  exportQcdq,
  exportQonnx,
  fhenetVersion,
  importModel,
  isQuantNode,
  QONNX_DOMAIN,
  type Graph,
} from '../../src/onnx/index.js';
import { FIXTURES, ORT_MISSING, fixtureBytes, fixtureIO, itOrt, maxAbsDiff, rng, runOrt, runSingle, findPythonOnnx } from './helpers.js';
import { checkerboardMlp, cnnWithBatchNorm, mlpInt32Bias, mlpWideActivations } from './models.js';

const TOL = 1e-5;
const opSequence = (g: Graph) => g.nodes.map((n) => `${n.domain ? n.domain + '::' : ''}${n.opType}`);
const tmp = mkdtempSync(join(tmpdir(), 'fhenet-onnx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const checkerFiles: string[] = [];

function randomInput(graph: Graph, batch: number, seed: number): { dims: number[]; data: Float32Array } {
  const r = rng(seed);
  const dims = graph.inputs[0]!.shape!.map((d, i) => (i === 0 ? batch : (d as number)));
  const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1);
  return { dims, data };
}

describe('QONNX export of the Brevitas fixtures', () => {
  for (const name of FIXTURES) {
    for (const fmt of ['qonnx', 'qcdq'] as const) {
      it(`${name}.${fmt}: import → QONNX → import reproduces y and the Brevitas node sequence`, () => {
        const io = fixtureIO(name);
        const graph = importModel(fixtureBytes(name, fmt));
        const bytes = exportQonnx(graph);
        const back = importModel(bytes);
        const y = runSingle(back, io.input_shape, io.x);
        const d = maxAbsDiff(y.data, io.y);
        console.log(`[onnx] ${name}.${fmt} → QONNX → import: max |Δ| vs Brevitas = ${d.toExponential(2)}`);
        expect(d).toBeLessThan(TOL);
        const brevitas = decodeModel(fixtureBytes(name, 'qonnx')).graph;
        expect(opSequence(back)).toEqual(opSequence(brevitas));
        // The written model: opsets, attributes, symbolic batch, producer.
        const raw = decodeModel(bytes);
        expect(raw.graph.opsetImports).toEqual([{ domain: '', version: 14 }, { domain: 'onnx.brevitas', version: 1 }]);
        expect(raw.initializersAsInputs).toEqual([]);
        for (const n of raw.graph.nodes.filter(isQuantNode)) {
          expect(Object.keys(n.attributes).sort()).toEqual(['narrow', 'rounding_mode', 'signed']);
          expect(raw.graph.initializers.get(n.inputs[2]!)!.data[0]).toBe(0);
        }
        for (const n of raw.graph.nodes.filter((n) => n.opType === 'Gemm')) {
          expect(n.attributes.transB).toEqual({ type: 'int', value: 1 });
          expect(raw.graph.initializers.get(n.inputs[2]!)!.dtype).toBe('float32');
        }
        expect(raw.graph.inputs[0]!.shape![0]).toBe('batch');
        expect(raw.graph.outputs[0]!.shape).toEqual(['batch', io.output_shape[1]]);
        expect(raw.graph.producerName).toBe('fhenet');
        expect(raw.graph.producerVersion).toBe(fhenetVersion());
        expect(fhenetVersion()).toMatch(/^\d+\.\d+\.\d+/);
        const file = join(tmp, `${name}.${fmt}.qonnx.onnx`);
        writeFileSync(file, bytes);
        checkerFiles.push(file);
      });
    }
  }

  it('writes the qonnx.custom_op.general domain (opset 2) on request, and the batch may change', () => {
    const io = fixtureIO('mlp_4bit');
    const graph = importModel(fixtureBytes('mlp_4bit', 'qonnx'));
    const bytes = exportQonnx(graph, { domain: QONNX_DOMAIN, keepInitializersAsInputs: true });
    const raw = decodeModel(bytes);
    expect(raw.graph.opsetImports).toEqual([{ domain: '', version: 14 }, { domain: QONNX_DOMAIN, version: 2 }]);
    expect(raw.initializersAsInputs.length).toBe(graph.initializers.size);
    const back = importModel(bytes);
    // Twice the batch: rows repeat.
    const y = runSingle(back, [8, 4], [...io.x, ...io.x]);
    expect(maxAbsDiff(y.data, [...io.y, ...io.y])).toBeLessThan(TOL);
    const file = join(tmp, 'mlp_4bit.qonnx-domain.onnx');
    writeFileSync(file, bytes);
    checkerFiles.push(file);
  });
});

describe('QCDQ export', () => {
  for (const name of FIXTURES) {
    itOrt(`${name}: QONNX → QCDQ runs in onnxruntime and matches the interpreter and Brevitas`, async () => {
      const io = fixtureIO(name);
      const graph = importModel(fixtureBytes(name, 'qonnx'));
      const bytes = exportQcdq(graph);
      const raw = decodeModel(bytes).graph;
      expect(raw.opsetImports).toEqual([{ domain: '', version: 13 }]);
      // Same node pattern as Brevitas's own QCDQ export of the same network.
      expect(opSequence(raw)).toEqual(opSequence(decodeModel(fixtureBytes(name, 'qcdq')).graph));
      for (const n of raw.nodes.filter((n) => n.opType === 'DequantizeLinear')) {
        const src = raw.initializers.get(n.inputs[0]!);
        if (src) expect(src.dtype).toBe('int8');
      }
      const x = { dims: io.input_shape, data: Float32Array.from(io.x) };
      const ort = [...(await runOrt(bytes, { [raw.inputs[0]!.name]: x })).values()][0]!;
      const mine = runSingle(graph, io.input_shape, io.x);
      const dOrt = maxAbsDiff(ort.data, mine.data);
      const dBrev = maxAbsDiff(ort.data, io.y);
      console.log(`[onnx] ${name}: QCDQ in onnxruntime vs interpreter ${dOrt.toExponential(2)}, vs Brevitas ${dBrev.toExponential(2)}`);
      expect(dOrt).toBeLessThan(TOL);
      expect(dBrev).toBeLessThan(TOL);
      // The exported QCDQ file imports back into the same Quant graph.
      const again = importModel(bytes);
      expect(opSequence(again)).toEqual(opSequence(graph));
      expect(maxAbsDiff(runSingle(again, io.input_shape, io.x).data, io.y)).toBeLessThan(TOL);
      const file = join(tmp, `${name}.qcdq-export.onnx`);
      writeFileSync(file, bytes);
      checkerFiles.push(file);
    });
  }
});

describe('fhenet-built networks (GraphBuilder)', () => {
  // The QCDQ opset without and with int4 storage: 21 wherever a quantizer is stored as int4 or int16.
  for (const [label, make, opsets] of [
    ['checkerboard MLP', checkerboardMlp, [13, 21]],
    ['CNN with BatchNorm and per-channel weights', cnnWithBatchNorm, [13, 21]],
    ['MLP with per-channel weights and an int32 bias quantizer', mlpInt32Bias, [13, 13]],
    ['MLP with 10–16-bit activations narrower than int16', mlpWideActivations, [21, 21]],
  ] as const) {
    itOrt(`${label}: QONNX round trip and QCDQ in onnxruntime within ${TOL}`, async () => {
      const graph = make();
      const x = randomInput(graph, 16, 7);
      const ref = runSingle(graph, x.dims, x.data);
      const qonnx = exportQonnx(graph);
      const back = importModel(qonnx);
      expect(opSequence(back)).toEqual(opSequence(graph));
      expect(maxAbsDiff(runSingle(back, x.dims, x.data).data, ref.data)).toBeLessThan(TOL);
      for (const int4 of [false, true]) {
        const qcdq = exportQcdq(graph, { int4 });
        const raw = decodeModel(qcdq).graph;
        expect(raw.opsetImports[0]!.version).toBe(opsets[int4 ? 1 : 0]);
        const ort = [...(await runOrt(qcdq, { x })).values()][0]!;
        const d = maxAbsDiff(ort.data, ref.data);
        console.log(`[onnx] ${label}: QCDQ${int4 ? ' (int4)' : ''} in onnxruntime vs interpreter ${d.toExponential(2)}`);
        expect(d).toBeLessThan(TOL);
        expect(maxAbsDiff(runSingle(importModel(qcdq), x.dims, x.data).data, ref.data)).toBeLessThan(TOL);
        // Debian's onnx 1.12 checker stops at IR 8 / opset 17, before int4 and int16 storage (opset 21).
        if (raw.opsetImports[0]!.version === 13) {
          const file = join(tmp, `${label.replace(/\W+/g, '_')}.qcdq.onnx`);
          writeFileSync(file, qcdq);
          checkerFiles.push(file);
        }
      }
      if (make === mlpWideActivations) {
        // Each activation: Clip (float bounds on its grid) → QuantizeLinear (int16/uint16) → DequantizeLinear; no
        // Clip on integers; and the import folds the pattern back into the same Quant nodes.
        const raw = decodeModel(exportQcdq(graph)).graph;
        const qls = raw.nodes.filter((n) => n.opType === 'QuantizeLinear');
        expect(qls.map((n) => raw.initializers.get(n.inputs[2]!)!.dtype)).toEqual(['int16', 'uint16', 'int16']);
        const clips = raw.nodes.filter((n) => n.opType === 'Clip' && !raw.initializers.has(n.inputs[0]!));
        expect(clips.map((c) => [c.inputs[1]!, c.inputs[2]!].map((v) => Number(raw.initializers.get(v)!.data[0])))).toEqual([
          [-2048 / 4096, 2047 / 4096],
          [-3 / 2048, 1020 / 2048],
          [-32767 / 65536, 32767 / 65536],
        ]);
        expect(qls.map((q) => q.inputs[0])).toEqual(clips.map((c) => c.outputs[0]));
        const back = importModel(exportQcdq(graph));
        expect(opSequence(back)).toEqual(opSequence(graph));
        const quants = (g: Graph) => g.nodes.filter(isQuantNode).map((n) => [n.attributes.signed, n.attributes.narrow, Number(g.initializers.get(n.inputs[3]!)!.data[0])]);
        expect(quants(back)).toEqual(quants(graph));
      }
      if (make === mlpInt32Bias) {
        const raw = decodeModel(exportQcdq(graph)).graph;
        const biasDq = raw.nodes.find((n) => n.opType === 'DequantizeLinear' && raw.initializers.get(n.inputs[0]!)?.dtype === 'int32')!;
        expect(biasDq.attributes.axis).toEqual({ type: 'int', value: 0 });
        expect(raw.nodes.find((n) => n.opType === 'Gemm')!.inputs[2]).toBe(biasDq.outputs[0]);
      }
      if (make === cnnWithBatchNorm) {
        const raw = decodeModel(exportQcdq(graph)).graph;
        // conv.weight (int8) → Clip(−7, 7) → DequantizeLinear(scale [4], axis 0).
        const clip = raw.nodes.find((n) => n.opType === 'Clip' && raw.initializers.get(n.inputs[0]!)?.dims.length === 4)!;
        expect(raw.initializers.get(clip.inputs[0]!)!.dtype).toBe('int8');
        expect([clip.inputs[1]!, clip.inputs[2]!].map((c) => Number(raw.initializers.get(c)!.data[0]))).toEqual([-7, 7]);
        const convDq = raw.nodes.find((n) => n.opType === 'DequantizeLinear' && n.inputs[0] === clip.outputs[0])!;
        expect(convDq.attributes.axis).toEqual({ type: 'int', value: 0 });
        expect(raw.initializers.get(convDq.inputs[1]!)!.dims).toEqual([4]);
      }
      const file = join(tmp, `${label.replace(/\W+/g, '_')}.qonnx.onnx`);
      writeFileSync(file, qonnx);
      checkerFiles.push(file);
    });
  }
});

describe('onnx.checker (python3-onnx)', () => {
  it('accepts every exported file', () => {
    const py = findPythonOnnx();
    if (!py) {
      if (process.env.FHENET_REQUIRE_ONNX_CHECKER === '1') throw new Error('python onnx is required (FHENET_REQUIRE_ONNX_CHECKER=1) but not found');
      console.warn('[onnx] SKIPPED onnx.checker test: no python3 with the onnx package (apt-get install python3-onnx)');
      return;
    }
    // The QCDQ files come from the onnxruntime tests; without onnxruntime (not in CI) only the QONNX ones exist.
    expect(checkerFiles.length).toBeGreaterThanOrEqual(ORT_MISSING ? FIXTURES.length * 2 + 1 : FIXTURES.length * 3 + 4);
    const script = [
      'import sys, onnx, onnx.checker',
      'for p in sys.argv[1:]:',
      '    m = onnx.load(p)',
      '    onnx.checker.check_model(m, full_check=True)',
      'print("checked", len(sys.argv) - 1)',
    ].join('\n');
    const r = spawnSync(py, ['-c', script, ...checkerFiles], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`checked ${checkerFiles.length}`);
  });
});
