/**
 * Cost model: which TFHE parameter set a table lookup of a given input width needs, and what one programmable
 * bootstrap with it costs. The default figures are TFHE-rs 1.7's published CPU KS-PBS latencies
 * (shared/reference/tfhe-rs.md: AWS hpc8a.96xlarge, AVX-512, p_fail 2^-128) — an anchor, not this machine.
 * `withMeasured` replaces them with figures measured by fhenet's own TFHE runtime (bench/tfhe.ts) when known.
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

const PUBLISHED = 'TFHE-rs 1.7 published CPU KS-PBS (AVX-512 server)';

export const DEFAULT_COSTS: ParamCost[] = [
  { set: 'PARAM_MESSAGE_1_CARRY_1', precision: 2, msPerPbs: 5.72, source: PUBLISHED },
  { set: 'PARAM_MESSAGE_2_CARRY_2', precision: 4, msPerPbs: 7.28, source: PUBLISHED },
  { set: 'PARAM_MESSAGE_3_CARRY_3', precision: 6, msPerPbs: 60.8, source: PUBLISHED },
  { set: 'PARAM_MESSAGE_4_CARRY_4', precision: 8, msPerPbs: 870, source: PUBLISHED },
];

export class CostModel {
  constructor(readonly table: ParamCost[] = DEFAULT_COSTS) {}

  /** The cheapest set whose precision covers `bits`; beyond the table, a custom set with no cost estimate. */
  forWidth(bits: number): ParamCost {
    const fit = this.table.filter((p) => p.precision >= bits).sort((a, b) => a.precision - b.precision)[0];
    return fit ?? { set: `custom ${bits}-bit (Shortint.new_parameters)`, precision: bits, msPerPbs: undefined, source: 'no published figure' };
  }

  withMeasured(measured: Partial<Record<string, number>>, source: string): CostModel {
    return new CostModel(this.table.map((p) => (measured[p.set] !== undefined ? { ...p, msPerPbs: measured[p.set], source } : p)));
  }
}
