import { GLWE_PARAMS_2048 } from '../../src/glwe/params.js';
import { generateKeys, prepareEvaluationKey, type ClientKey, type EvaluationKey, type PreparedEvaluationKey } from '../../src/glwe/keys.js';
import { cryptoRng } from '../../src/glwe/random.js';
import { Rng } from '../../src/util/rng.js';

export const P = GLWE_PARAMS_2048;

let keys: { clientKey: ClientKey; evaluationKey: EvaluationKey; prepared: PreparedEvaluationKey } | undefined;

/** One reproducible key set per test file (key generation takes seconds in TypeScript). */
export function testKeys(): { clientKey: ClientKey; evaluationKey: EvaluationKey; prepared: PreparedEvaluationKey } {
  if (!keys) {
    const { clientKey, evaluationKey } = generateKeys(P, cryptoRng(new Uint8Array(16).fill(11)));
    keys = { clientKey, evaluationKey, prepared: prepareEvaluationKey(evaluationKey) };
  }
  return keys;
}

export function randomInts(seed: number, n: number, lo: number, hi: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => lo + Math.floor(rng.next() * (hi - lo + 1)));
}

/** Exact W·x (+ bias) in float64 (exact: |y| < 2^53). */
export function exactMatVec(w: ArrayLike<number>, x: ArrayLike<number>, dOut: number, dIn: number, bias?: ArrayLike<number>): Float64Array {
  const y = new Float64Array(dOut);
  for (let o = 0; o < dOut; o++) {
    let s = bias ? bias[o]! : 0;
    for (let i = 0; i < dIn; i++) s += w[o * dIn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}
