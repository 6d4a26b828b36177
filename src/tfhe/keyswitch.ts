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
 * of a_i rounded to its top B·L bits. Rows are held as their top 32 bits (each value rounded to the nearest
 * multiple of 2^32, stored as a signed 32-bit integer): that halves the 60 MB (2_2) the keyswitch streams per PBS,
 * and the sums Σ d·row (|d| ≤ 2^(B−1), |row| ≤ 2^31, k·N·L terms) stay below 2^53, so they are exact in float64 —
 * every backend computes the same integers whatever its operation order. The rounding adds
 * k·N·L·E[d²]·2^64/12·(1 + n/2) to the keyswitch variance (≈ 2^43.4 rms for 2_2, next to the keyswitch's own 2^53;
 * noise.ts, docs/tfhe.md). The output is reduced to 32 bits, scaled back by 2^32 and the input body added.
 */
import { AesCtrStream } from './csprng.js';
import type { CompressedServerKeyFields } from './layouts.js';
import { TfheParameterError } from './errors.js';
import { ROUND_MAGIC, TWO_64, wordsToSigned } from './torus.js';

const TWO_32 = 4294967296;

export interface KeyswitchKey {
  /** Rows (i·level + j), each `outputSize` values (n masks, then the body): the top 32 bits, rounded, signed. */
  readonly rows: Int32Array;
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
  // Σ |d·row| ≤ count · 2^(B−1) · 2^31 must stay below 2^53 for the float64 sums to be exact (every named set: ≤ 2^49).
  if (Math.log2(count) + baseLog - 1 + 31 >= 53) throw new TfheParameterError(`keyswitching key too large for exact 32-bit rows (${count} rows, base log ${baseLog})`);
  const bytes = count * outputSize * 4;
  const rows = new Int32Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  // Top 32 bits of a (lo, hi) u64, rounded to nearest: hi + carry of lo's top bit, wrapped to int32 (2^31·2^32 ≡ −2^63).
  const top = (lo: number, hi: number) => (hi + (lo >>> 31)) | 0;
  const stream = new AesCtrStream(f.seed);
  const mask = new Uint32Array(2 * n);
  for (let c = 0; c < count; c++) {
    stream.fillU64(mask, 0, n);
    const base = c * outputSize;
    for (let t = 0; t < n; t++) rows[base + t] = top(mask[2 * t]!, mask[2 * t + 1]!);
    rows[base + n] = top(f.bodies[2 * c]!, f.bodies[2 * c + 1]!);
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
      for (let t = 0; t <= n; t++, r++) out[t] -= d * rows[r]!; // exact: integers below 2^53
    }
  }
  // Back to 2^64-torus units: the sum mod 2^32 (exact), times 2^32; the body adds the input's body.
  for (let t = 0; t <= n; t++) {
    const v = out[t]!;
    out[t] = (v - TWO_32 * ((v / TWO_32 + ROUND_MAGIC) - ROUND_MAGIC)) * TWO_32;
  }
  const b = out[n]! + wordsToSigned(input[2 * inputDimension]!, input[2 * inputDimension + 1]!);
  out[n] = b - TWO_64 * ((b / TWO_64 + ROUND_MAGIC) - ROUND_MAGIC);
}
