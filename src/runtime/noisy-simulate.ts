/**
 * Simulation with TFHE's lookup errors: the clear simulator (src/compiler/simulate.ts), except that every table
 * lookup the executor would bootstrap reads its index from the accumulator plus a Gaussian error of the standard
 * deviation the executor plan predicts for that element (linear-op noise through the weights, keyswitch, modulus
 * switch: `PlanStep.sigma`).
 *
 * Why: with exact rounding the plan keeps every error under half an accumulator unit at p_error, so encrypted results
 * equal the clear simulation and this returns the same integers (up to events of probability ~p_error). With
 * approximate rounding the plan only keeps errors under half a *box*: an accumulator near a rounding boundary may
 * land in the neighbouring box. The exact simulator cannot show that; this one draws it, so its accuracy predicts
 * what an encrypted run gives (the role of Concrete's simulation with p_error). Linear-op and output decoding errors
 * are not drawn: the plan keeps them under half a unit at p_error.
 */
import { type Circuit, type TluOp, size, tluRounding } from '../compiler/circuit.js';
import { type IntBatch, type SimulateResult, simulate } from '../compiler/simulate.js';
import { Rng } from '../util/rng.js';
import type { CircuitPlan, PlanStep } from './executor-plan.js';

export interface NoisySimulateResult extends SimulateResult {
  /** Per TLU op: lookups whose index differs from the exact simulation's. */
  flips: Record<string, number>;
  /** Bootstrapped lookups drawn (elements evaluated in clear excluded). */
  lookups: number;
}

type TluStep = Extract<PlanStep, { kind: 'tlu' }>;

/**
 * The lookup index the PBS reads for accumulator x with error e (both in accumulator units): the plan encodes
 * x·2^(roundBits − k) + ½ (the half unit only when rounding) and the boxes are 2^roundBits units wide, centred on
 * multiples of 2^roundBits. With e = 0 this is the simulator's tluIndex.
 */
export function noisyIndex(x: number, offset: number, k: number, roundBits: number, e: number): number {
  const phase = (x + offset) * 2 ** (roundBits - k) + (roundBits > 0 ? 0.5 : 0) + e;
  return Math.floor(phase / 2 ** roundBits + 0.5);
}

export function simulateWithNoise(c: Circuit, plan: CircuitPlan, xInt: IntBatch, batch: number, opts: { seed?: number; rng?: Rng } = {}): NoisySimulateResult {
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const stepOf = new Map<string, TluStep>();
  for (const s of plan.steps) if (s.kind === 'tlu') stepOf.set(s.op, s);
  const flips: Record<string, number> = {};
  let lookups = 0;
  const shapes = new Map(c.values.map((v) => [v.name, v.shape]));
  const tlu = (op: TluOp, x: IntBatch): IntBatch => {
    const step = stepOf.get(op.name);
    const per = size(shapes.get(op.output)!);
    const width = 2 ** op.inputBits;
    const lo = op.inputSigned ? -(width / 2) : 0;
    const y = new Float64Array(x.length);
    let flipped = 0;
    for (let i = 0; i < x.length; i++) {
      const j = i % per;
      const ch = Math.floor(j / op.channelStride) % op.channels;
      const { k, offset } = tluRounding(op, ch);
      const exact = noisyIndex(x[i]!, offset, k, op.roundBits, 0);
      const sigma = step ? step.sigma[j]! : 0; // no step: a dead table (nothing reads it)
      let idx = exact;
      if (sigma > 0) {
        lookups++;
        idx = noisyIndex(x[i]!, offset, k, op.roundBits, sigma * rng.normal());
        if (idx !== exact) flipped++;
      }
      const w = (((idx - lo) % width) + width) % width;
      y[i] = op.tables[ch * width + w]!;
    }
    if (flipped > 0) flips[op.name] = (flips[op.name] ?? 0) + flipped;
    return y;
  };
  const r = simulate(c, xInt, batch, { tlu });
  return { ...r, flips, lookups };
}
