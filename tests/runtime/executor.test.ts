/**
 * `fhe: 'execute'` end to end: compiled circuits run on TFHE ciphertexts (node-tfhe client, fhenet server) must give
 * exactly the integers of the clear simulator. FHENET_LONG_TESTS=1 adds a wider checkerboard net and more samples.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor } from '../../src/onnx/graph.js';
import { FheModel } from '../../src/compiler/fhe-model.js';
import { type Circuit, type CircuitOp, CIRCUIT_FORMAT } from '../../src/compiler/circuit.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { manualSeed } from '../../src/nn/init.js';
import { loadModule } from '../../src/nn/checkpoint.js';
import { QuantSimpleNet } from '../../src/models/checkerboard.js';
import { generateCheckerboard } from '../../datasets/checkerboard/index.js';
import { fit, evaluate } from '../../src/train/trainer.js';
import { pruneKNonZero, removePruning } from '../../src/prune/index.js';
import { accumulatorAware } from '../../src/quant/a2q.js';
import { EXECUTOR_SETS, TfheCircuitClient, TfheCircuitExecutor, TfheCircuitServer, buildScaledLut, planCircuit, refusedSets } from '../../src/runtime/executor.js';
import { TfheNoiseError } from '../../src/tfhe/errors.js';
import { bitSumCircuit } from '../tfhe/helpers.js';

const LONG = process.env.FHENET_LONG_TESTS === '1';
const SET_2_2 = 'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128';

/** x(2) → Quant(2-bit unsigned) → Gemm(W1) → [Relu] → Quant(3-bit) → Gemm(W2): every table input ≤ 4 bits. */
function smallNet(opts: { relu: boolean; w1?: number[]; b1?: number[] }) {
  const b = new GraphBuilder('small');
  let x = b.input('x', ['batch', 2]);
  x = b.quant(x, { scale: 1, bitWidth: 2, signed: false, narrow: false });
  const w1 = b.quant(b.addInitializer('w1', floatTensor([2, 2], opts.w1 ?? [1, -1, 1, 1])), { scale: 1, bitWidth: 3, signed: true, narrow: true });
  let h = b.gemm(x, w1, b.addInitializer('b1', floatTensor([2], opts.b1 ?? [0.5, -1])), 'fc1');
  if (opts.relu) h = b.relu(h);
  h = b.quant(h, { scale: 1, bitWidth: 3, signed: !opts.relu, narrow: false, name: 'q1' });
  const w2 = b.quant(b.addInitializer('w2', floatTensor([2, 2], [1, -1, 2, 1])), { scale: 1, bitWidth: 3, signed: true, narrow: true });
  b.output(b.gemm(h, w2, undefined, 'fc2'));
  return b.build();
}

/** All 16 inputs of the 2-bit quantizer. */
const ALL = Float32Array.from({ length: 32 }, (_, i) => (i % 2 === 0 ? Math.floor(i / 2) % 4 : Math.floor(i / 8)));

let executor: TfheCircuitExecutor;

beforeAll(async () => {
  await initBackend();
  executor = new TfheCircuitExecutor({ threads: 2 });
});

afterAll(async () => {
  await executor?.close();
});

describe('plan', () => {
  it('encodings, set choice and tables', () => {
    const m = FheModel.compile(smallNet({ relu: true }), { data: ALL, n: 16 });
    const plan = planCircuit(m.circuit);
    expect(plan.params.name).toBe(SET_2_2);
    const tlu = m.circuit.ops.find((o) => o.kind === 'tlu') as Extract<CircuitOp, { kind: 'tlu' }>;
    expect(plan.E.get(tlu.input)).toBe(4); // the accumulator's own width
    expect(plan.E.get(m.circuit.input.name)).toBe(4); // the linear region feeding the table
    expect(plan.pbsPerSample).toBe(2);
    // 4 boxes of 4 coefficients, value 3 at scale 2^(63−2), −1 as a negative torus value; half-box negacyclic shift
    const lut = buildScaledLut(16, 4, 2, [0, 1, -1, 3]);
    expect(Array.from(lut.poly.slice(0, 4)).map((v) => v / 2 ** 61)).toEqual([0, 0, 1, 1]);
    expect(lut.poly[15]! / 2 ** 61).toBe(-0);
    expect(lut.poly[9]! / 2 ** 61).toBe(-1);
    expect(lut.poly[10]! / 2 ** 61).toBe(3);
    expect(lut.values).toEqual([0, 1, -1, 3]);
  });

  it('refuses a dot product beyond the noise budget, naming the op, its weight norm and the fix', () => {
    // one 4-bit table fed by a dot product of 64 bootstrapped values with weight 7 each (‖w‖₂ = 56)
    const circuit = bitSumCircuit(64, 7, Int32Array.of(0, 1), { roundBits: 0, inputBits: 4, tables: Int32Array.from({ length: 16 }, (_, i) => i % 4) }, 'wide');
    expect(() => planCircuit(circuit, { params: SET_2_2 })).toThrow(TfheNoiseError);
    expect(() => planCircuit(circuit, { params: SET_2_2 })).toThrow(/op 't1'.*'dense'.*weight 2-norm of 56\.0.*fewer non-zero weights/);
    // the automatic choice moves to a set with a larger budget: 5_0's one-level PBS is as noisy as 2_2's; 2_3's
    // two-level PBS output is 2^7 quieter
    expect(planCircuit(circuit).params.name).toBe('V1_6_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128');
    // and says why it passed over the cheaper ones
    const refused = refusedSets(circuit);
    expect(refused.map((r) => r.name)).toEqual(EXECUTOR_SETS.slice(0, EXECUTOR_SETS.indexOf('V1_6_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128')));
    expect(refused.find((r) => r.name === SET_2_2)?.reason).toMatch(/weight 2-norm of 56\.0/);
  });

  it('skips the PBS of constant table rows and of elements no output depends on', () => {
    // x (2 values) → table t0 (channel 0: identity, channel 1: constant 5) → gemm reading only h[0] and h[2]
    const circuit: Circuit = {
      format: CIRCUIT_FORMAT,
      input: { name: 'x', shape: [4], scale: 1, bitWidth: 2, signed: false, narrow: false },
      values: [
        { name: 'x', shape: [4] },
        { name: 'h', shape: [4] },
        { name: 'y', shape: [1] },
      ],
      ops: [
        { kind: 'tlu', name: 't0', input: 'x', output: 'h', roundBits: 0, inputBits: 2, inputSigned: false, channels: 2, channelStride: 1, tables: Int32Array.of(0, 1, 2, 3, 5, 5, 5, 5) },
        { kind: 'gemm', name: 'dense', input: 'h', output: 'y', weight: Int32Array.of(1, 2, 0, 0), outFeatures: 1, inFeatures: 4 },
      ],
      output: { value: 'y', name: 'y', shape: [1], channels: 1, channelStride: 1, a: Float64Array.of(1), c: Float64Array.of(0) },
      ranges: {},
      metadata: { graph: 'sparse' },
    };
    const plan = planCircuit(circuit);
    // channel = element mod 2. h[0]: PBS; h[1], h[3]: constant row (5); h[2]: read with weight 0 only (dead)
    expect(plan.pbsPerSample).toBe(1);
    expect(Array.from(plan.constants.get('h')!)).toEqual([NaN, 5, 0, 5]);
    const sim = simulate(circuit, Float64Array.of(3, 2, 1, 0), 1).output;
    expect(sim[0]).toBe(3 + 2 * 5);
  });
});

describe('encrypted execution equals simulate', () => {
  for (const variant of [
    { name: 'ReLU table, exact (roundBits 0)', relu: true },
    { name: 'signed table with negative outputs', relu: false },
    { name: 'rounded accumulator (roundBits 1, exact rounding incl. ties)', relu: false, rounding: 3 },
  ]) {
    it(`hand-built net, all 16 inputs: ${variant.name}`, async () => {
      const model = FheModel.compile(smallNet({ relu: variant.relu }), { data: ALL, n: 16 }, variant.rounding ? { roundingThresholdBits: variant.rounding } : {});
      if (variant.rounding) {
        // k = 1 low bit rounded away: every odd accumulator is a tie (rounds up in simulate); some must occur
        const tlu = model.circuit.ops.find((o) => o.kind === 'tlu') as Extract<CircuitOp, { kind: 'tlu' }>;
        expect(tlu.roundBits).toBe(1);
        let ties = 0;
        simulate(model.circuit, quantizeInput(model.circuit, ALL), 16, { onValue: (v, d) => v === tlu.input && d.forEach((a) => (ties += Math.abs(a) % 2)) });
        expect(ties).toBeGreaterThan(4);
      }
      model.executor = executor;
      const sim = await model.forward(ALL, 16, { fhe: 'simulate' });
      expect(sim.overflows).toEqual({});
      const enc = await model.forward(ALL, 16, { fhe: 'execute' });
      expect(Array.from(enc.outputInts!)).toEqual(Array.from(sim.outputInts!));
      expect(Array.from(enc.output)).toEqual(Array.from(sim.output));
    }, 60_000);
  }

  // acc = x (3-bit, 0…7) in a 4-bit encoding. Unshifted: channel 0 rounds 2 bits after adding 1, channel 1 rounds 1 bit
  // after adding −1 (in TFHE: doubled first, then 2 bits rounded). Shifted: offsets of whole steps more move both
  // channels' indices into a signed table (−2…1), as per-channel rounding's centring does. Distinct table entries
  // catch any wrong index.
  const roundingCases = [
    { label: 'aligned offsets', offsets: Int32Array.of(1, -1), signed: false, byHand: (x: number, ch: number) => (ch === 0 ? Math.floor((x + 3) / 4) : Math.floor(x / 2)) },
    { label: 'offsets that move the range into a signed table', offsets: Int32Array.of(-7, -5), signed: true, byHand: (x: number, ch: number) => (ch === 0 ? Math.floor((x - 5) / 4) : Math.floor((x - 4) / 2)) + 2 },
  ];
  for (const rc of roundingCases) it(`per-channel rounding and ${rc.label} (hand-built table): encrypted = simulate for every accumulator`, async () => {
    const circuit: Circuit = {
      format: CIRCUIT_FORMAT,
      input: { name: 'x', shape: [4], scale: 1, bitWidth: 3, signed: false, narrow: false },
      values: [
        { name: 'x', shape: [4] },
        { name: 'acc', shape: [4] },
        { name: 'h', shape: [4] },
      ],
      ops: [
        { kind: 'gemm', name: 'id', input: 'x', output: 'acc', weight: Int32Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0)), outFeatures: 4, inFeatures: 4 },
        {
          kind: 'tlu', name: 't', input: 'acc', output: 'h', roundBits: 2, channelRoundBits: Int32Array.of(2, 1), roundOffsets: rc.offsets,
          inputBits: 2, inputSigned: rc.signed, channels: 2, channelStride: 1, tables: Int32Array.of(5, -2, 7, 1, 3, 0, -4, 6),
        },
      ],
      output: { value: 'h', name: 'h', shape: [4], channels: 1, channelStride: 1, a: Float64Array.of(1), c: Float64Array.of(0) },
      ranges: {},
      metadata: { graph: 'per-channel-rounding' },
    };
    const n = 8;
    const ints = Float64Array.from({ length: 4 * n }, (_, i) => [Math.floor(i / 4), 7 - Math.floor(i / 4), (3 * Math.floor(i / 4)) % 8, (5 * Math.floor(i / 4) + 1) % 8][i % 4]!);
    const sim = simulate(circuit, ints, n);
    expect(sim.overflows).toEqual({});
    // by hand: channel 0 (even elements) reads table row 0, channel 1 (odd) row 1, at the entry rc.byHand gives
    const tables = [Int32Array.of(5, -2, 7, 1), Int32Array.of(3, 0, -4, 6)];
    for (let i = 0; i < ints.length; i++) expect(sim.output[i]).toBe(tables[i % 2]![rc.byHand(ints[i]!, i % 2)]);
    const client = TfheCircuitClient.forCircuit(circuit);
    const server = await TfheCircuitServer.create(client.serverKey(), { params: client.paramsName });
    try {
      const down = await server.runEncrypted(circuit, client.encryptInputs(circuit, ints, n), n);
      expect(Array.from(client.decryptOutputs(circuit, down, n))).toEqual(Array.from(sim.output));
    } finally {
      await server.close();
      client.dispose();
    }
  }, 60_000);

  it('split API: client encrypts, server (own parser, no node-tfhe) evaluates, client decrypts', async () => {
    const model = FheModel.compile(smallNet({ relu: true }), { data: ALL, n: 16 });
    const c = model.circuit;
    const client = TfheCircuitClient.forCircuit(c);
    const server = await TfheCircuitServer.create(client.serverKey(), { params: client.paramsName });
    try {
      const ints = quantizeInput(c, ALL.subarray(0, 8));
      const up = client.encryptInputs(c, ints, 4);
      expect(up.length).toBe(8);
      expect(up[0]!.length).toBeLessThan(200); // seeded ciphertexts
      const down = await server.runEncrypted(c, up, 4);
      expect(Array.from(client.decryptOutputs(c, down, 4))).toEqual(Array.from(simulate(c, ints, 4).output));
      expect(server.lastStats!.pbs).toBe(8);
    } finally {
      await server.close();
      client.dispose();
    }
  }, 60_000);
});

async function checkerboardRun(hidden: number, samples: number, targetBits: number, k: number | null) {
  manualSeed(1);
  const data = generateCheckerboard({ seed: 42 });
  const net = new QuantSimpleNet({ hidden, bits: 3, scales: 'notebook' });
  if (k !== null) pruneKNonZero(net, k, { strict: true });
  const constraint = accumulatorAware(net, { targetBits, sampleShape: [2] });
  await fit(net, { train: data.train }, { epochs: 1, batchSize: 32, lr: 5e-3, progress: 'silent', afterStep: constraint.afterStep });
  removePruning(net);
  net.eval();
  const accuracy = evaluate(net, data.test).accuracy;
  const model = FheModel.compile(moduleToGraph(net, [2]), { data: data.train.x, n: data.train.y.length });
  const maxBits = Math.max(...model.compiled.tables.map((t) => t.inputBits + t.roundBits));
  const x = data.test.x.subarray(0, samples * 2);
  const sim = await model.forward(x, samples, { fhe: 'simulate' });
  model.executor = executor;
  const t0 = performance.now();
  const enc = await model.forward(x, samples, { fhe: 'execute' });
  const seconds = (performance.now() - t0) / 1000;
  const s = executor.lastStats!;
  let same = 0;
  for (let i = 0; i < samples; i++) if (enc.outputInts![2 * i] === sim.outputInts![2 * i] && enc.outputInts![2 * i + 1] === sim.outputInts![2 * i + 1]) same++;
  console.log(
    `checkerboard h=${hidden} a2q ${targetBits} bits: accuracy ${(accuracy * 100).toFixed(1)} %, max table accumulator ${maxBits} bits, set ${s.params}; ` +
      `${same}/${samples} samples identical to simulate; ${s.pbs} PBS in ${seconds.toFixed(1)} s (${(seconds / samples).toFixed(2)} s/sample, ` +
      `${((s.pbsSeconds / s.pbs) * 1000).toFixed(1)} ms/PBS on ${2} threads); keygen ${s.keygenSeconds.toFixed(1)} s; ` +
      `${(s.bytesUp / samples).toFixed(0)} B up, ${(s.bytesDown / samples).toFixed(0)} B down per sample`,
  );
  return { same, sim, enc, maxBits, stats: s };
}

describe('checkerboard net, encrypted', () => {
  it('20 test samples through forward(x, { fhe: "execute" }) equal simulate (2_2 set, 4-bit accumulators)', async () => {
    const r = await checkerboardRun(16, 20, 4, null);
    expect(r.maxBits).toBeLessThanOrEqual(4);
    expect(r.stats.params).toBe(SET_2_2);
    expect(r.sim.overflows).toEqual({});
    expect(r.same).toBe(20);
    expect(Array.from(r.enc.outputInts!)).toEqual(Array.from(r.sim.outputInts!));
  }, 180_000);

  it.runIf(LONG)('long: h=100, 100 samples (2_2 set)', async () => {
    const r = await checkerboardRun(100, 100, 4, null);
    expect(r.same).toBe(100);
  }, 1_800_000);

  it.runIf(LONG)('long: the committed ≥ 95 % checkpoint (experiments/checkerboard-encrypted, 5-bit tables, 2_3 set), 4 samples', async () => {
    const data = generateCheckerboard({ seed: 42 });
    const net = new QuantSimpleNet({ hidden: 24, bits: 3, scales: 'notebook' });
    loadModule('experiments/checkerboard-encrypted/model-h24.safetensors', net);
    net.eval();
    const model = FheModel.compile(moduleToGraph(net, [2]), { data: data.train.x, n: data.train.y.length });
    const n = data.test.y.length;
    const all = await model.forward(data.test.x, n, { fhe: 'simulate' });
    let ok = 0;
    for (let i = 0; i < n; i++) if ((all.outputInts![2 * i + 1]! > all.outputInts![2 * i]! ? 1 : 0) === data.test.y[i]) ok++;
    expect(ok / n).toBeGreaterThanOrEqual(0.95);
    expect(Math.max(...model.compiled.tables.map((t) => t.inputBits + t.roundBits))).toBe(5);
    const x = data.test.x.subarray(0, 8);
    model.executor = executor;
    const enc = await model.forward(x, 4, { fhe: 'execute' });
    expect(executor.lastStats!.params).toBe('V1_6_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128');
    expect(executor.lastStats!.pbs).toBe(4 * 44);
    expect(Array.from(enc.outputInts!)).toEqual(Array.from(all.outputInts!.subarray(0, 8)));
    net.dispose();
  }, 1_800_000);

  it.runIf(LONG)('long: h=30 with 6-bit accumulators, 5 samples (3_3 set)', async () => {
    const r = await checkerboardRun(30, 5, 6, null);
    expect(r.stats.params).toBe('V1_7_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128');
    expect(r.same).toBe(5);
  }, 1_800_000);
});
