/**
 * Cost model: which TFHE parameter set a table lookup of a given input width needs, and what one programmable
 * bootstrap with it costs. The defaults are fhenet's own KS-PBS latencies, single-threaded with the native kernel,
 * measured by `bench/tfhe.ts` on the project machine (2-core AMD EPYC; bench/results/tfhe.md). The 4_4 set was not
 * measured: its figure is TFHE-rs's published CPU latency (shared/reference/tfhe-rs.md) times fhenet's measured
 * ratio to the published figures on the smaller sets (≈ 3.1×), and says so. `withMeasured` replaces any figure.
 */
export interface ParamCost {
  /** Parameter set name (message_carry bits). */
  set: string;
  /** Message + carry bits of the set: the widest table input it can index. */
  precision: number;
  /** Milliseconds per KS-PBS, single-threaded. */
  msPerPbs: number | undefined;
  source: string;
}

const MEASURED = 'fhenet bench/tfhe.ts, 1 thread, native kernel';

export const DEFAULT_COSTS: ParamCost[] = [
  { set: 'PARAM_MESSAGE_1_CARRY_1', precision: 2, msPerPbs: 15.3, source: MEASURED },
  { set: 'PARAM_MESSAGE_2_CARRY_2', precision: 4, msPerPbs: 22.4, source: MEASURED },
  // 5 bits: node-tfhe names these sets V1_6 only; 5_0 (N = 4096, one-level PBS) is the fastest split measured. A
  // circuit whose outputs need less PBS noise gets 2_3 from the executor (73 ms); the report assumes 5_0.
  { set: 'PARAM_MESSAGE_5_CARRY_0', precision: 5, msPerPbs: 43.3, source: MEASURED },
  { set: 'PARAM_MESSAGE_3_CARRY_3', precision: 6, msPerPbs: 200, source: MEASURED },
  { set: 'PARAM_MESSAGE_4_CARRY_4', precision: 8, msPerPbs: 870 * 3.1, source: 'extrapolated: TFHE-rs published 870 ms × 3.1 (not measured)' },
];

export class CostModel {
  constructor(readonly table: ParamCost[] = DEFAULT_COSTS) {}

  /** The cheapest set whose precision covers `bits`; beyond the table, a custom set with no cost estimate. */
  forWidth(bits: number): ParamCost {
    const fit = this.table.filter((p) => p.precision >= bits).sort((a, b) => a.precision - b.precision)[0];
    return fit ?? { set: `custom ${bits}-bit (Shortint.new_parameters)`, precision: bits, msPerPbs: undefined, source: 'not measured' };
  }

  withMeasured(measured: Partial<Record<string, number>>, source: string): CostModel {
    return new CostModel(this.table.map((p) => (measured[p.set] !== undefined ? { ...p, msPerPbs: measured[p.set], source } : p)));
  }
}
