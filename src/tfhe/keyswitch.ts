/**
 * LWE keyswitch from the big key (k·N coefficients, the key of fresh ciphertexts and PBS outputs)
 * to the small key (n coefficients) that the bootstrapping key encrypts.
 *
 * Key layout (reference, "Seeded keys"): one LWE ciphertext per (input coefficient i, level slot j),
 * in that order; slot j encrypts s_big[i]·2^(64 − baseLog·(L − j)), i.e. slot 0 carries the least
 * significant digit weight. Masks come from the key's AES-CTR stream, n values per ciphertext;
 * bodies are stored in the key.
 *
 * Evaluation: out = (0, …, 0, b) − Σ_i Σ_j d_ij · KSK_ij where d_ij are the balanced base-2^B digits
 * of a_i rounded to its top B·L bits. Rows are held as signed float64: the products |d| ≤ 2^(B−1)
 * times |row| < 2^63 accumulate with a relative error 2^−53, i.e. ≈ 2^27 absolute over thousands of
 * terms — negligible next to the keyswitch noise (≈ 2^53) — and it halves the work compared with
 * exact (lo, hi) accumulation.
 */
import { AesCtrStream } from './csprng.js';
import type { CompressedServerKeyFields } from './layouts.js';
import { ROUND_MAGIC, TWO_64, wordsToSigned } from './torus.js';

export interface KeyswitchKey {
  /** Rows (i·level + j), each `outputSize` signed values (n masks, then the body). */
  readonly rows: Float64Array;
  readonly inputDimension: number;
  readonly outputSize: number;
  readonly baseLog: number;
  readonly level: number;
}

/** Regenerate the masks from the seed and assemble the full keyswitching key. */
export function expandKeyswitchKey(f: CompressedServerKeyFields['ksk'], shared = false): KeyswitchKey {
  const { level, baseLog, outputSize } = { ...f, outputSize: f.outputLweSize };
  const count = f.bodies.length / 2; // inputDimension × level ciphertexts
  const n = outputSize - 1;
  const bytes = count * outputSize * 8;
  const rows = new Float64Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  const stream = new AesCtrStream(f.seed);
  const mask = new Uint32Array(2 * n);
  for (let c = 0; c < count; c++) {
    stream.fillU64(mask, 0, n);
    const base = c * outputSize;
    for (let t = 0; t < n; t++) rows[base + t] = wordsToSigned(mask[2 * t]!, mask[2 * t + 1]!);
    rows[base + n] = wordsToSigned(f.bodies[2 * c]!, f.bodies[2 * c + 1]!);
  }
  return { rows, inputDimension: count / level, outputSize, baseLog, level };
}

/**
 * Keyswitch `input` ((lo, hi) words of inputDimension+1 u64) into `out` (outputSize signed
 * float64 values reduced to [−2^63, 2^63]).
 */
export function keyswitch(ksk: KeyswitchKey, input: Uint32Array, out: Float64Array): void {
  const { rows, inputDimension, outputSize, baseLog, level } = ksk;
  const n = outputSize - 1;
  out.fill(0);
  out[n] = wordsToSigned(input[2 * inputDimension]!, input[2 * inputDimension + 1]!);
  const kept = baseLog * level;
  const scale = 2 ** (kept - 64);
  const base = 2 ** baseLog;
  const invBase = 1 / base;
  const wrap = 2 ** kept;
  for (let i = 0; i < inputDimension; i++) {
    // a_i as an unsigned float64 (the 2^-11-relative rounding only moves exact ties).
    const a = input[2 * i + 1]! * 4294967296 + input[2 * i]!;
    // Round to the top `kept` bits, then wrap to the balanced range (the carry out is ≡ 0 mod 2^64).
    let q = (a * scale + ROUND_MAGIC) - ROUND_MAGIC;
    q -= wrap * ((q / wrap + ROUND_MAGIC) - ROUND_MAGIC);
    for (let j = 0; j < level; j++) {
      // Balanced digit in [−B/2, B/2], least significant first (pairs with slot j).
      const d = q - base * ((q * invBase + ROUND_MAGIC) - ROUND_MAGIC);
      q = (q - d) * invBase;
      if (d === 0) continue;
      let r = (i * level + j) * outputSize;
      for (let t = 0; t <= n; t++, r++) out[t] -= d * rows[r]!;
    }
  }
  for (let t = 0; t <= n; t++) {
    const v = out[t]!;
    out[t] = v - TWO_64 * ((v / TWO_64 + ROUND_MAGIC) - ROUND_MAGIC);
  }
}
