import { GLWE_PARAMS_2048 } from '../../src/glwe/params.js';
import { generateKeys, prepareEvaluationKey, type ClientKey, type EvaluationKey, type PreparedEvaluationKey } from '../../src/glwe/keys.js';
import { cryptoRng } from '../../src/glwe/random.js';
import { loadGlweKernel } from '../../src/glwe/native.js';
import { Rng } from '../../src/util/rng.js';

export const P = GLWE_PARAMS_2048;

interface TestKeys {
  clientKey: ClientKey;
  evaluationKey: EvaluationKey;
  /** Prepared for the TypeScript oracle. */
  prepared: PreparedEvaluationKey;
  /** Prepared for the native kernel on first use (null when it cannot be built). */
  readonly preparedNative: PreparedEvaluationKey | null;
}
let keys: TestKeys | undefined;

/** One reproducible key set per test file (key generation takes seconds in TypeScript). */
export function testKeys(): TestKeys {
  if (!keys) {
    const { clientKey, evaluationKey } = generateKeys(P, cryptoRng(new Uint8Array(16).fill(11)));
    const prepared = prepareEvaluationKey(evaluationKey, { kernel: 'typescript' });
    let native: PreparedEvaluationKey | null | undefined;
    keys = {
      clientKey,
      evaluationKey,
      prepared,
      get preparedNative() {
        if (native === undefined) native = loadGlweKernel() ? prepareEvaluationKey(evaluationKey, { kernel: 'native' }) : null;
        return native;
      },
    };
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
