/**
 * Shared inputs of the GLWE benchmarks (bench/glwe.ts, bench/glwe-kernel.ts): GPT-2-small's matrix shapes and the
 * seeded random int8 weights and centred uint8 inputs both benches use, so their figures are for the same data.
 */
import { seededStream } from '../src/glwe/random.js';

/** [name, d_in, d_out, count per token] */
export const GPT2_SHAPES: [string, number, number, number][] = [
  ['attn.c_attn', 768, 2304, 12],
  ['attn.c_proj', 768, 768, 12],
  ['mlp.c_fc', 768, 3072, 12],
  ['mlp.c_proj', 3072, 768, 12],
  ['lm_head', 768, 50257, 1],
];

/** n uniform int8 values from a 16-byte seed filled with `seedByte`. */
export function randomInt8(seedByte: number, n: number): Int8Array {
  const out = new Int8Array(n);
  seededStream(new Uint8Array(16).fill(seedByte)).fill(new Uint8Array(out.buffer));
  return out;
}

/** n integers in ±255 (a centred uint8 activation) from a 16-byte seed filled with `seedByte`. */
export function randomInputs(seedByte: number, n: number): Int32Array {
  const raw = new Uint32Array(n);
  seededStream(new Uint8Array(16).fill(seedByte)).fill(new Uint8Array(raw.buffer));
  return Int32Array.from(raw, (r) => (r % 511) - 255);
}
