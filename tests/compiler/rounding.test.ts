/**
 * fhenet's refinements of accumulator rounding (src/compiler/rounding.ts): per-channel rounding and offsets aligned
 * with the tables' steps. Same table widths as plain rounding; less table error.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { FIXTURE_DIR } from '../fixture-dir.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor } from '../../src/onnx/graph.js';
import { compileGraph } from '../../src/compiler/compile.js';
import { ChannelStats, PER_CHANNEL_HEADROOM, alignedOffset, planTableRounding, roundingSpec } from '../../src/compiler/rounding.js';
import { type TluOp, CircuitError, deserializeCircuit, serializeCircuit, tluIndex, validateCircuit } from '../../src/compiler/circuit.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { circuitReport, formatReport } from '../../src/compiler/report.js';
import { CompileError } from '../../src/compiler/errors.js';

/** Deterministic pseudo-random numbers (no global state). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** x(4) → 4-bit input → Gemm(16×4, 3-bit weights, float bias) → Relu → 2-bit quant → Gemm(2×16) → output. */
function wideNet() {
  const r = rng(7);
  const b = new GraphBuilder('wide');
  let x = b.input('x', ['batch', 4]);
  x = b.quant(x, { scale: 1 / 8, bitWidth: 4, signed: true, narrow: false });
  // Rows scaled differently so that channels have accumulator ranges of different widths.
  const w1 = Array.from({ length: 64 }, (_, i) => Math.round((r() * 6 - 3) * (i < 32 ? 1 : 0.35)));
  const wq = b.quant(b.addInitializer('w1', floatTensor([16, 4], w1)), { scale: 1, bitWidth: 3, signed: true, narrow: true });
  const b1 = Array.from({ length: 16 }, () => r() * 4 - 2);
  let h = b.gemm(x, wq, b.addInitializer('b1', floatTensor([16], b1)), 'fc1');
  h = b.quant(b.relu(h), { scale: 3.5, bitWidth: 2, signed: false, narrow: false, name: 'q1' });
  const w2 = b.quant(b.addInitializer('w2', floatTensor([2, 16], Array.from({ length: 32 }, () => Math.round(r() * 6 - 3)))), { scale: 1, bitWidth: 3, signed: true, narrow: true });
  b.output(b.gemm(h, w2, undefined, 'fc2'));
  return b.build();
}

function calibration(n: number, seed: number) {
  const r = rng(seed);
  return { data: Float32Array.from({ length: 4 * n }, () => r() * 1.8 - 0.9), n };
}

/** Σ |table output − exact table output| of the first table over the inputs, and its input/output. */
function firstTableError(compiled: ReturnType<typeof compileGraph>, exact: ReturnType<typeof compileGraph>, x: { data: Float32Array; n: number }) {
  const grab = (c: typeof compiled) => {
    const tlu = c.circuit.ops.find((o) => o.kind === 'tlu') as TluOp;
    let out: Float64Array | undefined;
    simulate(c.circuit, quantizeInput(c.circuit, x.data), x.n, { onValue: (v, d) => v === tlu.output && (out = d.slice()) });
    return out!;
  };
  const a = grab(compiled);
  const e = grab(exact);
  return a.reduce((s, v, i) => s + Math.abs(v - e[i]!), 0);
}

describe('aligned offsets', () => {
  it('put a rounding step exactly on a table step (hand computation)', () => {
    // f steps from 0 to 1 at 37; k = 3 rounds to multiples of 8: plain rounding moves the step to 36 (x = 36 → 1).
    const f = (acc: number) => (acc >= 37 ? 1 : 0);
    const hist = { lo: 0, counts: new Float64Array(81).fill(1) };
    const o = alignedOffset(3, hist, f);
    expect(o).toBe(-1); // boundaries where x + o + 4 ≡ 0 (mod 8): x = 37 ⇔ o ≡ −1
    const roundAt = (x: number, off: number) => Math.floor((x + off + 4) / 8) * 8 - off;
    let plainErr = 0;
    for (let x = 0; x <= 80; x++) {
      expect(f(roundAt(x, o))).toBe(f(x));
      plainErr += Math.abs(f(roundAt(x, 0)) - f(x));
    }
    expect(plainErr).toBe(1);
  });

  it('weigh steps by how often the calibration data meets them', () => {
    // Two steps 4 apart cannot both sit on a grid of 8: the offset serves the one with more data nearby.
    const f = (acc: number) => (acc >= 20 ? 1 : 0) + (acc >= 44 + 4 ? 1 : 0);
    const counts = new Float64Array(101);
    for (let x = 40; x <= 56; x++) counts[x] = 50; // dense around the step at 48
    for (let x = 10; x <= 30; x++) counts[x] = 1;
    const o = alignedOffset(3, { lo: 0, counts }, f);
    expect(((48 + o + 4) % 8 + 8) % 8).toBe(0);
  });

  it('ties keep the offset 0, and offsets that would leave the domain are not taken', () => {
    expect(alignedOffset(3, { lo: 0, counts: new Float64Array(64).fill(1) }, () => 5)).toBe(0);
    expect(alignedOffset(3, { lo: 0, counts: new Float64Array(81).fill(1) }, (a) => (a >= 37 ? 1 : 0), (o) => o >= 0)).toBeGreaterThanOrEqual(0);
  });
});

describe('per-channel rounding', () => {
  it('rounds a narrow channel less, with headroom, and never widens the table', () => {
    const stats = new ChannelStats(2, 1, false);
    // channel 0 spans the layer's 10 bits; channel 1 only ±60 (7 bits)
    stats.add(Float64Array.of(-500, 60, 500, -60, 0, 10), 3);
    const spec = roundingSpec({ bits: 6, perChannel: true, headroom: 0.25 })!;
    const plan = planTableRounding(spec, { min: -500, max: 500 }, stats, () => 0, 2);
    expect(plan.k).toBe(4);
    expect(plan.channelK[0]).toBe(4);
    // ±60 widened by a quarter of its span (30) → ±90, 181 wide: 2 bits rounded away (46 of the 64 entries)
    expect(plan.channelK[1]).toBe(2);
    expect(plan.indexRange.min).toBeGreaterThanOrEqual(-32);
    expect(plan.indexRange.max).toBeLessThanOrEqual(31);
  });

  it('moves a channel\'s range to the middle of the table, so a channel far from 0 is not rounded for its distance', () => {
    const stats = new ChannelStats(2, 1, false);
    // channel 1 spans [100, 300]: widened by 50 at each end, 300 wide → 3 bits rounded (38 of the 64 entries);
    // left where it lies, its top (350 → index 44) would not fit the signed domain below 4 bits.
    stats.add(Float64Array.of(-500, 100, 500, 300), 2);
    const plan = planTableRounding(roundingSpec({ bits: 6, perChannel: true, headroom: 0.25 })!, { min: -500, max: 500 }, stats, () => 0, 2);
    expect(Array.from(plan.channelK)).toEqual([4, 3]);
    // a whole number of steps (multiples of 8) that centres [50, 350]: indices of 100 and 300 symmetric about −½
    const o = plan.offsets[1]!;
    expect(Math.abs(o % 8)).toBe(0);
    expect(o).toBeLessThan(-100);
    const idx = (v: number) => Math.floor((v + o + 4) / 8);
    expect(idx(100) + idx(300)).toBeGreaterThanOrEqual(-2);
    expect(idx(100) + idx(300)).toBeLessThanOrEqual(1);
    expect(idx(50)).toBeGreaterThanOrEqual(-32);
    expect(idx(350)).toBeLessThanOrEqual(31);
  });

  it('keeps the table as wide as plain rounding even when every channel is narrower', () => {
    // Both channels ±200: widened to ±300 (10 bits) each rounds 4 bits; their calibrated indices span only −12…13 (5 bits), but the
    // table keeps plain rounding's ±32 so that the headroom survives.
    const stats = new ChannelStats(2, 1, false);
    stats.add(Float64Array.of(-200, 200, 200, -200), 2);
    const plan = planTableRounding(roundingSpec({ bits: 6, perChannel: true, headroom: 0.25 })!, { min: -500, max: 500 }, stats, () => 0, 2);
    expect(Array.from(plan.channelK)).toEqual([4, 4]);
    expect(plan.indexRange).toEqual({ min: -31, max: 31 });
  });
});

describe('compiling with the refinements', () => {
  const calib = calibration(400, 1);
  const test = calibration(300, 2);
  const exact = compileGraph(wideNet(), calib);
  const plain = compileGraph(wideNet(), calib, { roundingThresholdBits: 3 });
  const aligned = compileGraph(wideNet(), calib, { roundingThresholdBits: { bits: 3, align: true } });
  const perChannel = compileGraph(wideNet(), calib, { roundingThresholdBits: { bits: 3, perChannel: true } });
  const both = compileGraph(wideNet(), calib, { roundingThresholdBits: { bits: 3, perChannel: true, align: true } });

  it('keep every table at the requested width and record what they did', () => {
    const fc1 = plain.tables[0]!;
    expect(fc1.accBits).toBeGreaterThan(4);
    // Plain rounding may carry into one more bit at the top of the range; the refinements never add to that.
    const width = circuitReport(plain).maxTluInputBits;
    expect(width).toBeLessThanOrEqual(4);
    for (const c of [perChannel, aligned, both]) expect(circuitReport(c).maxTluInputBits).toBeLessThanOrEqual(width);
    expect(aligned.tables[0]!.alignedChannels).toBeGreaterThan(0);
    expect(both.tables[0]!.minRoundBits).toBeLessThan(both.tables[0]!.roundBits);
    const tlu = both.circuit.ops.find((o) => o.kind === 'tlu') as TluOp;
    expect(tlu.channelRoundBits).toBeDefined();
    expect(tlu.roundOffsets).toBeDefined();
    expect(formatReport(circuitReport(both))).toMatch(/\d–\d per channel rounded away, \d+ channels aligned/);
    expect(both.circuit.metadata.rounding).toBe('3 bits (exact; per channel, aligned)');
  });

  it('the table error shrinks on the calibration data and on new data', () => {
    const e = (c: typeof plain, x: typeof calib) => firstTableError(c, exact, x);
    // Measured: plain 757 / 542 (calibration / new data), per channel lower, aligned 24 / 14.
    for (const x of [calib, test]) {
      expect(e(perChannel, x)).toBeLessThan(e(plain, x));
      expect(e(aligned, x)).toBeLessThan(e(plain, x) / 4);
      expect(e(both, x)).toBeLessThan(e(plain, x) / 4);
    }
  });

  it('the simulator indexes each channel as tluIndex says, and tables hold f at the rounded point', () => {
    const tlu = both.circuit.ops.find((o) => o.kind === 'tlu') as TluOp;
    const xs = quantizeInput(both.circuit, test.data);
    let acc: Float64Array | undefined;
    let out: Float64Array | undefined;
    simulate(both.circuit, xs, test.n, { onValue: (v, d) => (v === tlu.input ? (acc = d.slice()) : v === tlu.output ? (out = d.slice()) : undefined) });
    const width = 2 ** tlu.inputBits;
    const lo = tlu.inputSigned ? -width / 2 : 0;
    for (let i = 0; i < acc!.length; i++) {
      const ch = i % tlu.channels;
      const idx = (((tlu.channelRoundBits![ch]! > 0 ? Math.floor((acc![i]! + tlu.roundOffsets![ch]! + 2 ** (tlu.channelRoundBits![ch]! - 1)) / 2 ** tlu.channelRoundBits![ch]!) : acc![i]! + tlu.roundOffsets![ch]!) - lo) % width + width) % width;
      expect(tluIndex(tlu, acc![i]!, ch) - lo).toBe(idx);
      expect(out![i]).toBe(tlu.tables[ch * width + idx]);
    }
  });

  it('survive serialization, and bad per-channel fields are refused', () => {
    const back = deserializeCircuit(serializeCircuit(both.circuit));
    const xs = quantizeInput(both.circuit, test.data);
    expect(Array.from(simulate(back, xs, test.n).output)).toEqual(Array.from(simulate(both.circuit, xs, test.n).output));
    const tlu = back.ops.find((o) => o.kind === 'tlu') as TluOp;
    const bad = (patch: Partial<TluOp>) => () => validateCircuit({ ...back, ops: back.ops.map((o) => (o === tlu ? { ...tlu, ...patch } : o)) });
    expect(bad({ roundOffsets: new Int32Array(tlu.channels).fill(2 ** (tlu.inputBits + tlu.roundBits)) })).toThrow(/past the table's span/);
    expect(bad({ channelRoundBits: new Int32Array(tlu.channels).fill(tlu.roundBits + 1) })).toThrow(/more than roundBits/);
    expect(bad({ channelRoundBits: new Int32Array(1) })).toThrow(/channelRoundBits for/);
  });

  it('option errors are clear', () => {
    expect(() => compileGraph(wideNet(), calib, { roundingThresholdBits: { bits: 3, perchannel: true } as never })).toThrow(/unknown key\(s\) perchannel/);
    expect(() => compileGraph(wideNet(), calib, { roundingThresholdBits: { bits: 0 } })).toThrow(CompileError);
    expect(() => roundingSpec({ bits: 4, method: 'fast' as never })).toThrow(/'exact' or 'approximate'/);
    expect(() => roundingSpec({ bits: 4, perChannel: true, headroom: -0.1 })).toThrow(/headroom must be a number in \[0, 4\]/);
    expect(() => roundingSpec({ bits: 4, headroom: 0.1 })).toThrow(/set perChannel: true/);
    expect(roundingSpec({ bits: 4, perChannel: true })!.headroom).toBe(PER_CHANNEL_HEADROOM);
  });

  it('headroom trades bits rounded away against values that wrap', () => {
    // ±60 with no headroom: 121 wide → 1 bit rounded (61 entries of the 64); with a quarter: ±90 → 2 bits.
    const stats = new ChannelStats(2, 1, false);
    stats.add(Float64Array.of(-500, 60, 500, -60), 2);
    const plan = (headroom?: number) => planTableRounding(roundingSpec({ bits: 6, perChannel: true, headroom })!, { min: -500, max: 500 }, stats, () => 0, 2);
    expect(plan(0).channelK[1]).toBe(1);
    expect(plan(0.25).channelK[1]).toBe(2);
    expect(plan(3).channelK[1]).toBe(4); // ±420: as coarse as the layer
  });
});

describe('fhenet compile flags', () => {
  const cli = (...args: string[]) => execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'compile', `${FIXTURE_DIR}cb3.qonnx.onnx`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  it('--rounding-per-channel --rounding-align reach the compiler (the Brevitas checkerboard export)', () => {
    const { report } = JSON.parse(cli('--rounding', '5', '--rounding-per-channel', '--rounding-align', '--json')) as { report: ReturnType<typeof circuitReport> };
    expect(report.maxTluInputBits).toBeLessThanOrEqual(5);
    const tables = report.nodes.filter((n) => n.tluInputBits !== undefined && n.roundBits);
    expect(tables.some((n) => n.minRoundBits! < n.roundBits!)).toBe(true);
    expect(tables.some((n) => n.alignedChannels! > 0)).toBe(true);
  }, 60_000);

  it('--rounding-headroom reaches the compiler: more headroom, more bits rounded away', () => {
    const minRounded = (h: string) =>
      (JSON.parse(cli('--rounding', '5', '--rounding-per-channel', '--rounding-headroom', h, '--json')) as { report: ReturnType<typeof circuitReport> }).report.nodes.reduce((a, n) => a + (n.minRoundBits ?? 0), 0);
    expect(minRounded('0')).toBeLessThan(minRounded('4'));
    expect(() => cli('--rounding', '5', '--rounding-headroom', '0.1')).toThrow(/set perChannel: true/);
  }, 60_000);

  it('refuse the refinements without --rounding', () => {
    expect(() => cli('--rounding-align')).toThrow(/refine --rounding <bits>/);
  }, 60_000);
});
