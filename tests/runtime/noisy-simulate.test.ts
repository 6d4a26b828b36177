/**
 * Simulation with TFHE's lookup errors (src/runtime/noisy-simulate.ts): noise-free it is the exact simulator; with
 * exact rounding the plan's margins make it equal to the exact simulator; with approximate rounding it flips
 * boundary lookups by one entry at the rate the plan's σ gives, and never more.
 */
import { describe, expect, it } from 'vitest';
import { type Circuit, type TluOp, tluIndex } from '../../src/compiler/circuit.js';
import { simulate } from '../../src/compiler/simulate.js';
import { planCircuit } from '../../src/runtime/executor.js';
import { noisyIndex, simulateWithNoise } from '../../src/runtime/noisy-simulate.js';
import { bitSumCircuit } from '../tfhe/helpers.js';

const n = 64;
const identity16 = Int32Array.from({ length: 16 }, (_, i) => i);
/** 64 bits → 8-bit accumulator in [64, 128] → a 4-bit identity table after rounding 4 bits (approximate or not). */
const wideSum = (approximate: boolean): Circuit =>
  bitSumCircuit(n, 1, Int32Array.of(1, 2), { roundBits: 4, inputBits: 4, tables: identity16, ...(approximate ? { approximate: true } : {}) });

function inputsWithOnes(ones: number[]): Float64Array {
  const x = new Float64Array(n * ones.length);
  ones.forEach((k, s) => x.fill(1, s * n, s * n + k));
  return x;
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 through erf). */
function phi(z: number): number {
  const t = 1 / (1 + 0.3275911 * (Math.abs(z) / Math.SQRT2));
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-(z * z) / 2);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

describe('noisy simulation', () => {
  it('without error, the PBS index rule is the simulator\'s rounding (per channel, offsets, k = 0)', () => {
    for (const roundBits of [0, 1, 3, 5]) {
      for (let k = 0; k <= roundBits; k++) {
        for (const offset of [0, 1, -3, 7]) {
          const op = { roundBits, channelRoundBits: Int32Array.of(k), roundOffsets: Int32Array.of(offset) } as unknown as TluOp;
          for (let x = -300; x <= 300; x++) expect(noisyIndex(x, offset, k, roundBits, 0)).toBe(tluIndex(op, x, 0));
        }
      }
    }
  });

  it('exact rounding: the plan\'s half-unit margin makes every draw equal the exact simulation', () => {
    // Narrow enough for exact rounding to fit: 16 bits summed into a 5-bit accumulator, no rounding.
    const c = bitSumCircuit(16, 1, Int32Array.of(0, 1), { roundBits: 0, inputBits: 5, tables: Int32Array.from({ length: 32 }, (_, i) => 31 - i) });
    const plan = planCircuit(c);
    const batch = 17;
    const x = new Float64Array(16 * batch);
    for (let s = 0; s < batch; s++) x.fill(1, s * 16, s * 16 + s);
    const want = simulate(c, x, batch).output;
    for (let seed = 0; seed < 50; seed++) {
      const r = simulateWithNoise(c, plan, x, batch, { seed });
      expect(Array.from(r.output)).toEqual(Array.from(want));
      expect(r.flips).toEqual({});
      expect(r.lookups).toBe(batch * 17); // 16 input bits + 1 accumulator per sample
    }
  });

  it('approximate rounding: box centres stay, ties flip by one at the rate the plan\'s σ predicts', () => {
    const c = wideSum(true);
    const plan = planCircuit(c);
    const step = plan.steps.find((s) => s.kind === 'tlu' && s.op === 't1')!;
    if (step.kind !== 'tlu') throw new Error('unreachable');
    const sigma = step.sigma[0]!;
    expect(sigma).toBeGreaterThan(0.1); // in accumulator units: large against the half unit exact rounding keeps
    // acc = 64 + ones; centres acc = 16m (ones 0, 16, …), ties acc = 16m + 8 (ones 8, 24, …).
    const centres = [0, 16, 32, 48, 64];
    const ties = [8, 24, 40, 56];
    const x = inputsWithOnes([...centres, ...ties]);
    const batch = centres.length + ties.length;
    const want = simulate(c, x, batch).output;
    const draws = 2000;
    let tieFlips = 0;
    for (let seed = 0; seed < draws; seed++) {
      const got = simulateWithNoise(c, plan, x, batch, { seed }).output;
      for (let s = 0; s < batch; s++) {
        const d = got[s]! - want[s]!;
        expect(Math.abs(d)).toBeLessThanOrEqual(1);
        if (s < centres.length) expect(d).toBe(0);
        else if (d !== 0) {
          expect(d).toBe(-1); // a tie rounds up exactly; noise can only take it back down
          tieFlips++;
        }
      }
    }
    // A tie sits half a unit above its box boundary (the plan's half-unit shift): it flips when e < −½.
    const p = phi(-0.5 / sigma);
    const trials = draws * ties.length;
    const sd = Math.sqrt(trials * p * (1 - p));
    expect(Math.abs(tieFlips - trials * p)).toBeLessThan(5 * sd + 1);
  });
});
