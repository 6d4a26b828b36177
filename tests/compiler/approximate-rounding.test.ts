/**
 * `roundingThresholdBits: { bits, method: 'approximate' }`: tables keep a spare entry past each end of their rounded
 * calibrated range (overflow protection for an encrypted index that comes out one step off), stay within `bits`, and
 * are marked for the TFHE executor; the clear simulation rounds exactly, as with 'exact'.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { FIXTURE_DIR } from '../fixture-dir.js';
import type { circuitReport } from '../../src/compiler/report.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor } from '../../src/onnx/graph.js';
import { compileGraph } from '../../src/compiler/compile.js';
import { planTableRounding, roundingSpec } from '../../src/compiler/rounding.js';
import { type TluOp, deserializeCircuit, serializeCircuit, tluIndex } from '../../src/compiler/circuit.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { CompileError } from '../../src/compiler/errors.js';

/** x(8) → 4-bit input → Gemm(6×8, 4-bit weights) → Relu → 3-bit quant → Gemm(2×6): a ~9-bit first accumulator. */
function net() {
  const b = new GraphBuilder('approx');
  let x = b.quant(b.input('x', ['batch', 8]), { scale: 1 / 8, bitWidth: 4, signed: true, narrow: false });
  const w1 = Array.from({ length: 48 }, (_, i) => ((i * 5) % 15) - 7);
  x = b.gemm(x, b.quant(b.addInitializer('w1', floatTensor([6, 8], w1)), { scale: 1, bitWidth: 4, signed: true, narrow: true }), b.addInitializer('b1', floatTensor([6], [1, -2, 3, 0, -1, 2])), 'fc1');
  x = b.quant(b.relu(x), { scale: 4, bitWidth: 3, signed: false, narrow: false, name: 'q1' });
  const w2 = Array.from({ length: 12 }, (_, i) => ((i * 3) % 7) - 3);
  b.output(b.gemm(x, b.quant(b.addInitializer('w2', floatTensor([2, 6], w2)), { scale: 1, bitWidth: 3, signed: true, narrow: true }), undefined, 'fc2'));
  return b.build();
}

const calib = { data: Float32Array.from({ length: 8 * 300 }, (_, i) => Math.sin(i * 0.37) * 0.95), n: 300 };

describe('approximate rounding in the compiler', () => {
  it('a spare table entry past each end of the rounded range, within the requested width', () => {
    const spec = roundingSpec({ bits: 4, method: 'approximate' })!;
    // [−100, 100]: 8 bits; 4 bits away → indices −6…6, with spares −7…7: still 4 bits signed
    expect(planTableRounding(spec, { min: -100, max: 100 }, undefined, () => 0, 1)).toMatchObject({ k: 4, indexRange: { min: -7, max: 7 } });
    // [0, 127]: 4 bits away → 0…8 (the top rounds up); spares −1…9 need 5 signed bits, so one more bit goes: 0…4 → −1…5
    expect(planTableRounding(spec, { min: 0, max: 127 }, undefined, () => 0, 1)).toMatchObject({ k: 5, indexRange: { min: -1, max: 5 } });
    expect(planTableRounding(roundingSpec({ bits: 4 })!, { min: 0, max: 127 }, undefined, () => 0, 1)).toMatchObject({ k: 3, indexRange: { min: 0, max: 16 } });
  });

  it('marks the rounded tables, keeps them within bits, and simulates like exact rounding of the same k', () => {
    const approx = compileGraph(net(), calib, { roundingThresholdBits: { bits: 4, method: 'approximate' } });
    const tlus = approx.circuit.ops.filter((o): o is TluOp => o.kind === 'tlu');
    const rounded = tlus.filter((t) => t.roundBits > 0);
    expect(rounded.length).toBeGreaterThan(0);
    for (const t of tlus) {
      expect(t.approximate === true).toBe(t.roundBits > 0);
      expect(t.inputBits).toBeLessThanOrEqual(4);
      if (!t.approximate) continue;
      // the calibrated accumulators round strictly inside the table's domain
      const r = approx.circuit.ranges[t.input]!;
      const lo = t.inputSigned ? -(2 ** (t.inputBits - 1)) : 0;
      const idx = (x: number) => Math.floor((x + 2 ** (t.roundBits - 1)) / 2 ** t.roundBits);
      expect(idx(r.min)).toBeGreaterThan(lo);
      expect(idx(r.max)).toBeLessThan(lo + 2 ** t.inputBits - 1);
    }
    expect(approx.circuit.metadata.rounding).toBe('4 bits (approximate)');
    const back = deserializeCircuit(serializeCircuit(approx.circuit));
    expect(back.ops.filter((o): o is TluOp => o.kind === 'tlu').map((t) => t.approximate)).toEqual(tlus.map((t) => t.approximate));
    // The clear circuit rounds exactly: the same outputs as an exact compile whose tables round the same k.
    const x = quantizeInput(approx.circuit, calib.data);
    const a = simulate(approx.circuit, x, calib.n).output;
    const exact = compileGraph(net(), calib, { roundingThresholdBits: 4 });
    expect(exact.tables.map((t) => t.roundBits)).toEqual(approx.tables.map((t) => t.roundBits)); // 4 bits of 8 either way here
    expect(Array.from(simulate(exact.circuit, quantizeInput(exact.circuit, calib.data), calib.n).output)).toEqual(Array.from(a));
  });

  it('with the refinements: every channel keeps its spares inside the table, which stays within bits', () => {
    for (const refine of [{ perChannel: true }, { align: true }, { perChannel: true, align: true }]) {
      const c = compileGraph(net(), calib, { roundingThresholdBits: { bits: 4, method: 'approximate', ...refine } });
      const t = c.circuit.ops.find((o): o is TluOp => o.kind === 'tlu' && o.roundBits > 0)!;
      expect(t.approximate).toBe(true);
      expect(t.inputBits).toBeLessThanOrEqual(4);
      const lo = t.inputSigned ? -(2 ** (t.inputBits - 1)) : 0;
      // every calibration accumulator of every channel rounds strictly inside the domain
      const x = quantizeInput(c.circuit, calib.data);
      simulate(c.circuit, x, calib.n, {
        onValue: (v, d) => {
          if (v !== t.input) return;
          const per = d.length / calib.n;
          for (let i = 0; i < d.length; i++) {
            const ch = Math.floor((i % per) / t.channelStride) % t.channels;
            const idx = tluIndex(t, d[i]!, ch);
            expect(idx).toBeGreaterThan(lo);
            expect(idx).toBeLessThan(lo + 2 ** t.inputBits - 1);
          }
        },
      });
    }
    expect(() => roundingSpec({ bits: 4, method: 'approximately' as 'approximate' })).toThrow(CompileError);
  });
});

describe('fhenet compile --rounding-approximate', () => {
  const cli = (...args: string[]) => execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'compile', `${FIXTURE_DIR}cb3.qonnx.onnx`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  type Report = ReturnType<typeof circuitReport>;

  it('reaches the compiler; the report costs approximate lookups at their table width, exact ones at their accumulator width', () => {
    type Tfhe = { set?: string; pbsPerSample?: number; refused?: string; tables?: { approximate: boolean }[]; noisy?: { accuracy: number; simulateAccuracy: number; flipsPerSample: number } };
    const exactOut = JSON.parse(cli('--rounding', '4', '--json')) as { report: Report; tfhe: Tfhe };
    const approxOut = JSON.parse(cli('--rounding', '4', '--rounding-approximate', '--eval', 'checkerboard', '--json')) as { report: Report; tfhe: Tfhe };
    const [exact, approx] = [exactOut.report, approxOut.report];
    // the executor's own verdict: exactly rounded 8-bit accumulators fit no set; approximately rounded they do,
    // and the noisy simulation on that plan predicts the encrypted accuracy
    expect(exactOut.tfhe.set).toBeUndefined();
    expect(exactOut.tfhe.refused).toMatch(/accumulator/);
    expect(approxOut.tfhe.set).toMatch(/MESSAGE_2_CARRY_[23]/);
    expect(approxOut.tfhe.pbsPerSample).toBeGreaterThan(0);
    expect(approxOut.tfhe.tables!.every((t) => t.approximate)).toBe(true);
    const noisy = approxOut.tfhe.noisy!;
    expect(noisy.flipsPerSample).toBeGreaterThan(0);
    expect(Math.abs(noisy.accuracy - noisy.simulateAccuracy)).toBeLessThan(0.05);
    expect(approx.maxTluInputBits).toBeLessThanOrEqual(4);
    expect(Math.max(...approx.parameterSets.map((p) => p.bits))).toBeLessThanOrEqual(4);
    // the checkerboard's accumulators are wider than 4 bits: exactly rounded, they cost their full width
    expect(Math.max(...exact.parameterSets.map((p) => p.bits))).toBeGreaterThan(4);
    expect(approx.tluCount).toBe(exact.tluCount);
    expect(() => cli('--rounding-approximate')).toThrow(/refine --rounding <bits>/);
  }, 60_000);
});
