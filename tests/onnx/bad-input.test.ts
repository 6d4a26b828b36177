/** Hostile and broken inputs give typed errors naming the node or tensor, quickly. */
import { describe, expect, it } from 'vitest';
import {
  Attr,
  decodeModel,
  encodeModel,
  floatTensor,
  GraphBuilder,
  importModel,
  OnnxError,
  OnnxFormatError,
  OnnxRuntimeError,
  runGraph,
  tensorFrom,
  type Graph,
} from '../../src/onnx/index.js';
import { fixtureBytes } from './helpers.js';

/** Calls fn, expects an OnnxFormatError of the given kind, returns it. */
function formatError(fn: () => unknown, kind?: string): OnnxFormatError {
  const t0 = performance.now();
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(performance.now() - t0).toBeLessThan(2000);
  expect(err).toBeInstanceOf(OnnxFormatError);
  const e = err as OnnxFormatError;
  if (kind) expect(e.kind).toBe(kind);
  return e;
}

/** The cb3 QONNX graph, decoded, to be broken and re-encoded. */
function cb3(): Graph {
  return decodeModel(fixtureBytes('cb3', 'qonnx')).graph;
}
const reencode = (g: Graph) => encodeModel(g);

describe('corrupted files', () => {
  it('empty, garbage and non-ONNX bytes', () => {
    formatError(() => importModel(new Uint8Array(0)), 'decode');
    formatError(() => importModel(new TextEncoder().encode('{"not": "onnx"}')));
    formatError(() => importModel(Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff)));
  });

  it('truncated at many points', () => {
    const bytes = fixtureBytes('cnn_small', 'qonnx');
    for (let cut = 1; cut < bytes.length; cut += 97) {
      formatError(() => importModel(bytes.subarray(0, cut)));
    }
  });

  it('a file over the size limit is refused before parsing', () => {
    const e = formatError(() => importModel(fixtureBytes('cb3', 'qonnx'), { maxBytes: 10_000 }), 'size');
    expect(e.message).toMatch(/more than the limit/);
  });
});

describe('absurd sizes', () => {
  it('a claimed 10^12-element tensor fails fast, naming the tensor', () => {
    const g = cb3();
    g.initializers.set('fc1.bias', { dtype: 'float32', dims: [1_000_000, 1_000_000], data: new Float32Array(1) });
    const e = formatError(() => importModel(reencode(g)), 'size');
    expect(e.tensor).toBe('fc1.bias');
    expect(e.message).toMatch(/1000000×1000000/);
  });

  it('dims that disagree with the data length', () => {
    const g = cb3();
    g.initializers.set('fc2.bias', { dtype: 'float32', dims: [1000, 1000], data: new Float32Array(100) });
    const e = formatError(() => importModel(reencode(g)), 'tensor');
    expect(e.tensor).toBe('fc2.bias');
    expect(e.message).toMatch(/raw_data has 400 bytes/);
  });

  it('a dimension beyond 2^53', () => {
    const g = cb3();
    g.initializers.set('fc3.bias', { dtype: 'float32', dims: [2 ** 60], data: new Float32Array(1) });
    formatError(() => importModel(reencode(g)));
  });

  it('millions of tiny fields (memory amplification) are refused by the pre-scan before decoding', () => {
    const n = 6_000_000; // 12 MB of empty NodeProto entries: protobufjs would build 6M objects
    const graphLen = 2 * n;
    const header = [0x3a]; // ModelProto.graph (field 7, length-delimited)
    for (let v = graphLen; ; v = Math.floor(v / 128)) {
      if (v < 128) {
        header.push(v);
        break;
      }
      header.push((v & 0x7f) | 0x80);
    }
    const bytes = new Uint8Array(header.length + graphLen);
    bytes.set(header);
    for (let i = header.length; i < bytes.length; i += 2) bytes[i] = 0x0a; // GraphProto.node, length 0
    const e = formatError(() => importModel(bytes), 'size');
    expect(e.message).toMatch(/memory/);
    // The same structure, small, decodes (and is then rejected for what it is: nodes without op_type).
    formatError(() => importModel(Uint8Array.from([0x3a, 0x02, 0x0a, 0x00])), 'decode');
  });

  it('an interpreter allocation over the limit is a runtime error naming the node', () => {
    const b = new GraphBuilder('pad');
    const x = b.input('x', ['batch', 4]);
    b.output(b.node('Pad', [x, b.addInitializer('pads', tensorFrom('int64', [4], [0, 0, 0, 1e9]))], { mode: Attr.string('constant') }, { name: 'huge_pad' }));
    const g = b.build();
    let err: unknown;
    try {
      runGraph(g, { x: { dims: [1, 4], data: new Float32Array(4) } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OnnxRuntimeError);
    expect((err as OnnxRuntimeError).node).toBe('huge_pad');
    expect((err as OnnxRuntimeError).kind).toBe('size');
  });
});

describe('invalid graphs', () => {
  it('a cycle', () => {
    const g = cb3();
    // fc1's Gemm reads the output of fc3's Gemm: fc1 → relu1 → ... → fc3 → fc1.
    const fc1 = g.nodes.find((n) => n.name === '/fc1/Gemm')!;
    fc1.inputs[0] = '27';
    const e = formatError(() => importModel(reencode(g)), 'cycle');
    expect(e.message).toMatch(/cycle through/);
    expect(e.node).toBeDefined();
  });

  it('a missing initializer', () => {
    const g = cb3();
    g.initializers.delete('fc2.bias');
    const e = formatError(() => importModel(reencode(g)), 'missing');
    expect(e.node).toBe('/fc2/Gemm');
    expect(e.tensor).toBe('fc2.bias');
  });

  it('with keep_initializers_as_inputs, a removed initializer becomes a real input instead', () => {
    const g = cb3();
    g.initializers.delete('fc2.bias');
    g.inputs.push({ name: 'fc2.bias', elemType: 'float32', shape: [100] });
    const back = importModel(encodeModel(g));
    expect(back.inputs.map((v) => v.name)).toEqual(['inp.1', 'fc2.bias']);
  });

  it('an unsupported operator', () => {
    const g = cb3();
    g.nodes.find((n) => n.opType === 'Relu')!.opType = 'LSTM';
    const e = formatError(() => importModel(reencode(g)), 'unsupported');
    expect(e.node).toBe('/relu1/act_quant/activation_impl/Relu');
    expect(e.message).toMatch(/LSTM is not supported/);
  });

  it('an unknown domain, and a domain missing from opset_import', () => {
    const g = cb3();
    g.nodes[3]!.domain = 'com.example';
    formatError(() => importModel(reencode(g)), 'unsupported');
    const h = cb3();
    h.opsetImports = h.opsetImports.filter((o) => o.domain === '');
    const e = formatError(() => importModel(reencode(h)), 'unsupported');
    expect(e.message).toMatch(/opset_import/);
  });

  it('Quant with bit width 3.5', () => {
    const g = cb3();
    g.initializers.set('/quant_inp/act_quant/export_handler/Constant_output_0', floatTensor([], [3.5]));
    const e = formatError(() => importModel(reencode(g)), 'quant');
    expect(e.node).toBe('/quant_inp/act_quant/export_handler/Quant');
    expect(e.message).toMatch(/integer.*3\.5/);
  });

  it('Quant with rounding mode FLOOR', () => {
    const g = cb3();
    g.nodes.find((n) => n.name === '/relu2/act_quant/export_handler/Quant')!.attributes.rounding_mode = Attr.string('FLOOR');
    const e = formatError(() => importModel(reencode(g)), 'quant');
    expect(e.node).toBe('/relu2/act_quant/export_handler/Quant');
    expect(e.message).toMatch(/FLOOR/);
  });

  it('Quant with a non-constant bit width, a zero scale, or bad flags', () => {
    const g = cb3();
    g.nodes[0]!.inputs[3] = 'inp.1';
    formatError(() => importModel(reencode(g)), 'quant');
    const h = cb3();
    h.initializers.set('/relu1/act_quant/export_handler/Constant_output_0', floatTensor([], [0]));
    expect(formatError(() => importModel(reencode(h)), 'quant').message).toMatch(/scale/);
    const k = cb3();
    k.nodes[0]!.attributes.signed = Attr.int(2);
    formatError(() => importModel(reencode(k)), 'attribute');
  });

  it('bad attributes and arities', () => {
    const g = cb3();
    g.nodes.find((n) => n.opType === 'Gemm')!.attributes.transB = Attr.float(1);
    expect(formatError(() => importModel(reencode(g)), 'attribute').message).toMatch(/transB.*must be int/);
    const h = cb3();
    h.nodes.find((n) => n.opType === 'Relu')!.inputs.push('fc1.bias');
    expect(formatError(() => importModel(reencode(h)), 'attribute').message).toMatch(/takes 1 input/);
    const c = decodeModel(fixtureBytes('cnn_small', 'qonnx')).graph;
    c.nodes.find((n) => n.opType === 'Conv')!.attributes.auto_pad = Attr.string('WHATEVER');
    formatError(() => importModel(reencode(c)), 'attribute');
    const d = decodeModel(fixtureBytes('cnn_small', 'qonnx')).graph;
    d.nodes.find((n) => n.opType === 'BatchNormalization')!.attributes.training_mode = Attr.int(1);
    formatError(() => importModel(reencode(d)), 'unsupported');
  });

  it('an output nothing produces, and a value produced twice', () => {
    const g = cb3();
    g.outputs[0]!.name = 'nowhere';
    expect(formatError(() => importModel(reencode(g)), 'missing').tensor).toBe('nowhere');
    const h = cb3();
    h.nodes[1]!.outputs[0] = h.nodes[0]!.outputs[0]!;
    formatError(() => importModel(reencode(h)), 'duplicate');
  });

  it('the builder validates too', () => {
    const b = new GraphBuilder('bad');
    const x = b.input('x', ['batch', 2]);
    b.output(b.node('Gemm', [x, 'no_such_weight']));
    expect(() => b.build()).toThrow(OnnxError);
    expect(() => new GraphBuilder().quant('x', { scale: 1, bitWidth: 2.5, signed: true, narrow: false })).toThrow(/bit width/);
  });
});
