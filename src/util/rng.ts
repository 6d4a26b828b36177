/**
 * Seeded randomness. Every random choice in fhenet (initialisation, shuffling, augmentation, data generation)
 * draws from an `Rng` created from an explicit seed, so the same seed gives the same numbers on the same backend.
 * The generator is seedrandom's ARC4-based PRNG, whose state can be saved and restored for an exact resume.
 */
import seedrandom from 'seedrandom';

export type RngState = object;
type StatefulPrng = seedrandom.PRNG & { state(): RngState };

export class Rng {
  private prng: StatefulPrng;

  constructor(seed: number | string, state?: RngState) {
    // seedrandom's typings omit the `state` option and method that its ARC4 generator supports.
    this.prng = seedrandom(String(seed), (state ? { state } : { state: true }) as { state: true }) as unknown as StatefulPrng;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.prng.double();
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller on two uniforms; one value per call keeps the stream simple to reason about). */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]: log stays finite
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** A 31-bit integer seed for tfjs random ops (which take a numeric seed). */
  seed(): number {
    return this.int(0x7fffffff);
  }

  /** Fisher–Yates permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }

  /** A serialisable snapshot (JSON-safe) for checkpoints. */
  state(): RngState {
    return this.prng.state();
  }
}
