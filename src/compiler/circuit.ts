/**
 * The circuit: what runs on encrypted data. Values are integer tensors (per sample; the batch axis is implicit).
 * The client quantizes its float input to the integers of the input quantizer and encrypts them; the circuit applies
 * clear-integer linear operations (leveled: additions and multiplications by clear integers) and table lookups
 * (each element of a TLU's input becomes one programmable bootstrap); the client decrypts the outputs and
 * dequantizes them with the affine map recorded here.
 *
 * This file is the format, independent of TensorFlow.js and of the compiler that produced it, so a server or an
 * evaluator loads it alone. Serialization: a safetensors container (see src/util/safetensors.ts) whose
 * `__metadata__.circuit` holds the JSON description and whose tensors hold weights and tables — versioned by
 * `format: "fhenet-circuit/1"`.
 */
import { type SafeTensor, decodeSafetensors, encodeSafetensors } from '../util/safetensors.js';
import { FhenetError } from '../util/errors.js';

export const CIRCUIT_FORMAT = 'fhenet-circuit/1';

export class CircuitError extends FhenetError {
  override name = 'CircuitError';
}

/** Signed/unsigned integer range of a value, and the bits needed to hold it. */
export interface IntRange {
  min: number;
  max: number;
}

/** Bits needed for [min, max]: unsigned when min ≥ 0, else two's complement signed. At least 1. */
export function bitsFor(r: IntRange): number {
  if (r.min >= 0) return Math.max(1, Math.ceil(Math.log2(r.max + 1)));
  const mag = Math.max(-r.min, r.max + 1);
  return Math.ceil(Math.log2(mag)) + 1;
}

export type CircuitOp =
  /** y[o] = Σ_i W[o, i]·x[i] (x flattened per sample), W clear integers [out, in]. */
  | { kind: 'gemm'; name: string; input: string; output: string; weight: Int32Array; outFeatures: number; inFeatures: number }
  /** 2-D convolution on [C, H, W] with clear integer weights [O, C, kh, kw]. */
  | {
      kind: 'conv';
      name: string;
      input: string;
      output: string;
      weight: Int32Array;
      weightDims: [number, number, number, number];
      strides: [number, number];
      pads: [number, number, number, number];
    }
  /** Sum over k×k windows (average pooling with the 1/k² folded into the next table). */
  | { kind: 'sumpool'; name: string; input: string; output: string; kernel: [number, number]; strides: [number, number] }
  /** Zero padding of the spatial axes of [C, H, W] ([top, left, bottom, right]). */
  | { kind: 'pad'; name: string; input: string; output: string; pads: [number, number, number, number] }
  /** Reshape (no data movement). */
  | { kind: 'reshape'; name: string; input: string; output: string }
  /** Transpose of the per-sample axes. */
  | { kind: 'transpose'; name: string; input: string; output: string; perm: number[] }
  /** Elementwise sum of two encrypted values of the same shape. */
  | { kind: 'add'; name: string; inputs: [string, string]; output: string }
  /** Elementwise multiplication by a clear integer. */
  | { kind: 'mulconst'; name: string; input: string; output: string; factor: number }
  /**
   * Table lookup. Index = (x + o + 2^(k−1)) >> k when k > 0 (round to nearest, ties up, as Concrete's
   * round_bit_pattern), else x + o; then `table[channel][index − domainMin]`. k is the channel's entry of
   * `channelRoundBits` when present, else `roundBits`; o is the channel's entry of `roundOffsets` when present, else 0
   * (both per channel, see `tluIndex`). The domain is the full range of `inputBits` (signed or unsigned); values
   * outside it wrap modulo 2^inputBits as they would in TFHE.
   */
  | {
      kind: 'tlu';
      name: string;
      input: string;
      output: string;
      /** Low accumulator bits rounded away (the largest over channels: the input's encoding has inputBits + roundBits bits). */
      roundBits: number;
      /**
       * Per-channel rounding (each ≤ roundBits): a channel whose calibrated accumulator range is narrower than the
       * widest keeps more of its own bits. In TFHE the accumulator is multiplied by 2^(roundBits − k) first.
       */
      channelRoundBits?: Int32Array;
      /** Per-channel clear offsets added to the accumulator before rounding (boundaries placed on the table's steps). */
      roundOffsets?: Int32Array;
      /**
       * Concrete's approximate rounding (roundBits ≥ 1): under TFHE an accumulator near a rounding boundary may read
       * the neighbouring table entry (index ± 1); in exchange the lookup needs the noise margin of an `inputBits`-bit
       * table instead of the whole accumulator's. The table keeps a spare entry past each end of its calibrated
       * range for those off-by-one reads. The clear simulator rounds exactly.
       */
      approximate?: boolean;
      inputBits: number;
      inputSigned: boolean;
      /** Per-sample element → table row: element index / channelStride % channels. */
      channels: number;
      channelStride: number;
      tables: Int32Array; // channels × 2^inputBits
    };

export interface CircuitValue {
  name: string;
  /** Per-sample shape. */
  shape: number[];
}

/** Float input → integers: q = clamp(round_half_even(x / scale), min, max). */
export interface InputQuantizer {
  name: string;
  shape: number[];
  scale: number;
  bitWidth: number;
  signed: boolean;
  narrow: boolean;
}

/** Integers → float output: y = a[ch]·q + c[ch], ch = element / channelStride % channels. */
export interface OutputDequantizer {
  value: string;
  name: string;
  shape: number[];
  channels: number;
  channelStride: number;
  a: Float64Array;
  c: Float64Array;
}

export interface Circuit {
  format: typeof CIRCUIT_FORMAT;
  input: InputQuantizer;
  values: CircuitValue[];
  ops: CircuitOp[];
  output: OutputDequantizer;
  /** Calibrated integer range per value (for reports and parameter choice). */
  ranges: Record<string, IntRange>;
  metadata: Record<string, string>;
}

export function tluCount(c: Circuit): number {
  const shapes = new Map(c.values.map((v) => [v.name, v.shape]));
  return c.ops.filter((o) => o.kind === 'tlu').reduce((n, o) => n + size(shapes.get(o.output)!), 0);
}

export type TluOp = Extract<CircuitOp, { kind: 'tlu' }>;

/** The rounding of a TLU's channel: bits rounded away and the offset added first. */
export function tluRounding(op: TluOp, ch: number): { k: number; offset: number } {
  return { k: op.channelRoundBits ? op.channelRoundBits[ch]! : op.roundBits, offset: op.roundOffsets ? op.roundOffsets[ch]! : 0 };
}

/** Table index of accumulator x in channel ch, before the domain offset and wrap-around: round((x + o) / 2^k). */
export function tluIndex(op: TluOp, x: number, ch: number): number {
  const k = op.channelRoundBits ? op.channelRoundBits[ch]! : op.roundBits;
  const v = op.roundOffsets ? x + op.roundOffsets[ch]! : x;
  return k > 0 ? Math.floor((v + 2 ** (k - 1)) / 2 ** k) : v;
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---- serialization ----------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

export function serializeCircuit(c: Circuit): Uint8Array {
  const tensors = new Map<string, SafeTensor>();
  const ops = c.ops.map((op, i) => {
    const o: Json = { ...op };
    for (const key of ['weight', 'tables', 'channelRoundBits', 'roundOffsets'] as const) {
      const arr = (op as Json)[key] as Int32Array | undefined;
      if (arr) {
        const ref = `op${i}.${key}`;
        tensors.set(ref, { dtype: 'I32', shape: [arr.length], data: arr });
        o[key] = { ref };
      }
    }
    return o;
  });
  tensors.set('output.a', { dtype: 'F64', shape: [c.output.a.length], data: c.output.a });
  tensors.set('output.c', { dtype: 'F64', shape: [c.output.c.length], data: c.output.c });
  const json = { ...c, ops, output: { ...c.output, a: { ref: 'output.a' }, c: { ref: 'output.c' } } };
  return encodeSafetensors(tensors, { format: CIRCUIT_FORMAT, circuit: JSON.stringify(json) });
}

export function deserializeCircuit(bytes: Uint8Array): Circuit {
  const { tensors, metadata } = decodeSafetensors(bytes);
  if (metadata.format !== CIRCUIT_FORMAT) {
    throw new CircuitError(`not an fhenet circuit (format '${metadata.format ?? 'none'}', expected '${CIRCUIT_FORMAT}')`);
  }
  let json: Json;
  try {
    json = JSON.parse(metadata.circuit ?? '');
  } catch {
    throw new CircuitError('circuit description is not valid JSON');
  }
  const deref = (v: unknown, kind: 'I32' | 'F64'): Int32Array | Float64Array => {
    const ref = (v as { ref?: string } | undefined)?.ref;
    const t = ref ? tensors.get(ref) : undefined;
    if (!t || t.dtype !== kind) throw new CircuitError(`circuit tensor '${ref}' is missing or not ${kind}`);
    return t.data as Int32Array | Float64Array;
  };
  const ops = (json.ops as Json[]).map((o) => {
    const op: Json = { ...o };
    if (o.weight) op.weight = deref(o.weight, 'I32');
    for (const key of ['tables', 'channelRoundBits', 'roundOffsets'] as const) if (o[key]) op[key] = deref(o[key], 'I32');
    return op as unknown as CircuitOp;
  });
  const out = json.output as Json;
  const circuit = {
    ...(json as unknown as Circuit),
    ops,
    output: { ...(out as unknown as OutputDequantizer), a: deref(out.a, 'F64') as Float64Array, c: deref(out.c, 'F64') as Float64Array },
  };
  validateCircuit(circuit);
  return circuit;
}

/** Structural checks: every op reads defined values, shapes and table sizes are consistent. */
export function validateCircuit(c: Circuit): void {
  const shapes = new Map(c.values.map((v) => [v.name, v.shape]));
  const defined = new Set([c.input.name]);
  const need = (op: CircuitOp, v: string) => {
    if (!defined.has(v)) throw new CircuitError(`op '${op.name}' reads '${v}' before it is defined`);
    if (!shapes.has(v)) throw new CircuitError(`op '${op.name}': value '${v}' has no shape`);
  };
  for (const op of c.ops) {
    if (op.kind === 'add') op.inputs.forEach((v) => need(op, v));
    else need(op, op.input);
    if (!shapes.has(op.output)) throw new CircuitError(`op '${op.name}': output '${op.output}' has no shape`);
    if (op.kind === 'tlu') {
      if (op.inputBits < 1 || op.inputBits > 24) throw new CircuitError(`op '${op.name}': table input width ${op.inputBits} bits is out of range`);
      if (op.tables.length !== op.channels * 2 ** op.inputBits) throw new CircuitError(`op '${op.name}': table size ${op.tables.length} ≠ ${op.channels} × 2^${op.inputBits}`);
      if (!Number.isInteger(op.roundBits) || op.roundBits < 0 || op.roundBits > 30) throw new CircuitError(`op '${op.name}': roundBits ${op.roundBits} is out of range`);
      if (op.approximate !== undefined && typeof op.approximate !== 'boolean') throw new CircuitError(`op '${op.name}': approximate must be a boolean`);
      if (op.channelRoundBits) {
        if (op.channelRoundBits.length !== op.channels) throw new CircuitError(`op '${op.name}': ${op.channelRoundBits.length} channelRoundBits for ${op.channels} channels`);
        if (op.channelRoundBits.some((k) => k < 0 || k > op.roundBits)) throw new CircuitError(`op '${op.name}': a channel rounds away more than roundBits (${op.roundBits}) or fewer than 0 bits`);
      }
      if (op.roundOffsets) {
        if (op.roundOffsets.length !== op.channels) throw new CircuitError(`op '${op.name}': ${op.roundOffsets.length} roundOffsets for ${op.channels} channels`);
        for (let ch = 0; ch < op.channels; ch++) {
          const { k, offset } = tluRounding(op, ch);
          // Whole steps of an offset move the channel's range within the table; past the table's whole span no
          // accumulator the encoding can hold would land in it.
          if (!Number.isInteger(offset) || Math.abs(offset) >= 2 ** (op.inputBits + k)) {
            throw new CircuitError(`op '${op.name}': channel ${ch} offset ${offset} moves past the table's span (2^${op.inputBits + k} accumulator steps at k = ${k})`);
          }
        }
      }
    }
    if (op.kind === 'gemm' && op.weight.length !== op.outFeatures * op.inFeatures) throw new CircuitError(`op '${op.name}': weight size mismatch`);
    if (op.kind === 'conv' && op.weight.length !== size(op.weightDims)) throw new CircuitError(`op '${op.name}': weight size mismatch`);
    defined.add(op.output);
  }
  if (!defined.has(c.output.value)) throw new CircuitError(`output '${c.output.value}' is never computed`);
}
