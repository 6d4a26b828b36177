/**
 * The bit-width convention of fhenet's accumulator reports (docs/accumulators.md): the number of bits of the
 * smallest signed two's-complement integer type that holds every value of [min, max], i.e. the smallest n ≥ 1 with
 * −2^(n−1) ≤ min and max ≤ 2^(n−1) − 1. This is the "accumulator size" the reference reports: 18 → 6 bits,
 * 102 → 8 bits, 36 → 7 bits (the notebook's trained net), and [−16, 15] → 5 bits.
 */
export function signedBits(min: number, max: number): number {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) {
    throw new RangeError(`signedBits: [${min}, ${max}] is not a finite range`);
  }
  let n = 1;
  while (min < -(2 ** (n - 1)) || max > 2 ** (n - 1) - 1) n++;
  return n;
}

/** The integer range of a signed P-bit accumulator. */
export function accumulatorRange(bits: number): { min: number; max: number } {
  return { min: -(2 ** (bits - 1)), max: 2 ** (bits - 1) - 1 };
}
