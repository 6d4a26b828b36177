/**
 * Byte layouts of TFHE-rs 1.7 shortint objects (plain bincode, see bincode.ts), parsed strictly.
 *
 * Layout facts come from /work/shared/reference/tfhe-rs.md (read from the TFHE-rs 1.7 source and
 * checked against node-tfhe 1.7.0 output). This file only knows bytes; the meaning of the numbers
 * (which dimensions a key must have) is checked by server-key.ts / params.ts.
 */
import { BincodeReader, BincodeWriter } from './bincode.js';
import { TfheParameterError } from './errors.js';

/** `SeedKind::Ctr(u128)` seed plus `first_index` of the AES-CTR stream. */
export interface CompressionSeed {
  /** The 16 seed bytes exactly as serialized: they are the AES-128 key. */
  readonly key: Uint8Array;
  /** First AES block index (u128). */
  readonly aesIndex: bigint;
  /** Bytes of that first block to skip (0..15). */
  readonly byteIndex: number;
}

export type PbsOrder = 'keyswitch-bootstrap' | 'bootstrap-keyswitch';

export type AtomicPattern = { readonly kind: 'standard'; readonly pbsOrder: PbsOrder } | { readonly kind: 'keyswitch32' };

export type ModulusSwitchKind = 'standard' | 'drift' | 'centered-mean';

/** Fields of a shortint `Ciphertext`. `data` holds n+1 u64 as interleaved (lo, hi) u32 words. */
export interface CiphertextFields {
  data: Uint32Array;
  degree: number;
  noiseLevel: number;
  messageModulus: number;
  carryModulus: number;
  atomicPattern: AtomicPattern;
}

/** Fields of a shortint `CompressedCiphertext` (a seeded LWE: the mask comes from `seed`). */
export interface CompressedCiphertextFields {
  /** The body as (lo, hi) words. */
  body: Uint32Array;
  lweSize: number;
  seed: CompressionSeed;
  degree: number;
  messageModulus: number;
  carryModulus: number;
  atomicPattern: AtomicPattern;
  noiseLevel: number;
}

/** Fields of a shortint `CompressedServerKey` with a classic (non multi-bit) bootstrapping key. */
export interface CompressedServerKeyFields {
  ksk: {
    /** Bodies only: inputDimension × level u64 values (lo, hi words). */
    bodies: Uint32Array;
    baseLog: number;
    level: number;
    outputLweSize: number;
    seed: CompressionSeed;
  };
  bsk: {
    /** Bodies only: n × level × (k+1) × N u64 values (lo, hi words). */
    bodies: Uint32Array;
    glweSize: number;
    polynomialSize: number;
    baseLog: number;
    level: number;
    seed: CompressionSeed;
  };
  modulusSwitch: ModulusSwitchKind;
  pbsOrder: PbsOrder;
  messageModulus: number;
  carryModulus: number;
  maxDegree: number;
  maxNoiseLevel: number;
}

/** Caller limits on what a parse may allocate or accept. */
export interface ParseLimits {
  /** Largest accepted LWE dimension of a ciphertext (default 1 << 17). */
  maxLweDimension?: number;
  /** Largest accepted polynomial size N (default 1 << 17). */
  maxPolynomialSize?: number;
  /** Largest accepted GLWE dimension k (default 8). */
  maxGlweDimension?: number;
  /** Largest accepted decomposition level count (default 64). */
  maxLevel?: number;
  /** Largest total u64 words of one key component (default 2^28 = 2 GiB). */
  maxKeyWords?: number;
}

const DEFAULT_LIMITS: Required<ParseLimits> = {
  maxLweDimension: 1 << 17,
  maxPolynomialSize: 1 << 17,
  maxGlweDimension: 8,
  maxLevel: 64,
  maxKeyWords: 1 << 28,
};

export function resolveLimits(l?: ParseLimits): Required<ParseLimits> {
  return { ...DEFAULT_LIMITS, ...(l ?? {}) };
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

/** `CiphertextModulus<u64>` = { modulus: u128, scalar_bits: u64 }. Only the native 2^64 is supported. */
function readCiphertextModulus(r: BincodeReader, field: string): void {
  const at = r.offset;
  const modulus = r.u128(`${field}.modulus`);
  const bits = r.u64(`${field}.scalar_bits`);
  if (bits !== 64n) r.fail(`${field}.scalar_bits`, `scalar bits ${bits}, expected 64`, at);
  if (modulus !== 0n) {
    throw new TfheParameterError(
      `${r.root}.${field}: ciphertext modulus ${modulus} is not the native 2^64 modulus this evaluator supports`,
    );
  }
}

function writeNativeModulus(w: BincodeWriter): void {
  w.u128(0n).u64(64n);
}

function readSeed(r: BincodeReader, field: string): CompressionSeed {
  const kind = r.variant(`${field}.seed.kind`, 2);
  if (kind !== 0) {
    // Xof seeds exist in TFHE-rs but the shortint engine never produces them.
    r.fail(`${field}.seed.kind`, 'XOF seeds are not supported (shortint keys use AES-CTR seeds)');
  }
  const key = r.bytesN(`${field}.seed.ctr`, 16);
  const aesIndex = r.u128(`${field}.first_index.aes_index`);
  const at = r.offset;
  const byteIndex = r.u64Number(`${field}.first_index.byte_index`);
  if (byteIndex > 15) r.fail(`${field}.first_index.byte_index`, `byte index ${byteIndex} > 15`, at);
  return { key, aesIndex, byteIndex };
}

function writeSeed(w: BincodeWriter, s: CompressionSeed): void {
  w.u32(0).raw(s.key).u128(s.aesIndex).u64(s.byteIndex);
}

function readAtomicPattern(r: BincodeReader, field: string): AtomicPattern {
  const kind = r.variant(field, 2);
  if (kind === 1) return { kind: 'keyswitch32' };
  const order = r.variant(`${field}.pbs_order`, 2);
  return { kind: 'standard', pbsOrder: order === 0 ? 'keyswitch-bootstrap' : 'bootstrap-keyswitch' };
}

function writeAtomicPattern(w: BincodeWriter, a: AtomicPattern): void {
  if (a.kind === 'keyswitch32') w.u32(1);
  else w.u32(0).u32(a.pbsOrder === 'keyswitch-bootstrap' ? 0 : 1);
}

/** message/carry moduli: non-zero powers of two (zero would make node-tfhe divide by zero). */
function readModulus(r: BincodeReader, field: string): number {
  const at = r.offset;
  const v = r.u64Number(field, 2 ** 32);
  if (v === 0 || (v & (v - 1)) !== 0) r.fail(field, `${v} is not a power of two ≥ 1`, at);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Ciphertext

export function parseCiphertext(bytes: Uint8Array, limits?: ParseLimits): CiphertextFields {
  const l = resolveLimits(limits);
  const r = new BincodeReader(bytes, 'ciphertext');
  const data = r.vecU64('data', l.maxLweDimension + 1);
  if (data.length < 4) r.fail('data.len', 'an LWE ciphertext needs at least one mask value and a body', 0);
  readCiphertextModulus(r, 'ciphertext_modulus');
  const degree = r.u64Number('degree');
  const noiseLevel = r.u64Number('noise_level');
  const messageModulus = readModulus(r, 'message_modulus');
  const carryModulus = readModulus(r, 'carry_modulus');
  const atomicPattern = readAtomicPattern(r, 'atomic_pattern');
  r.end();
  return { data, degree, noiseLevel, messageModulus, carryModulus, atomicPattern };
}

export function serializeCiphertextFields(c: CiphertextFields): Uint8Array {
  const w = new BincodeWriter(c.data.byteLength + 96);
  w.vecU64(c.data);
  writeNativeModulus(w);
  w.u64(c.degree).u64(c.noiseLevel).u64(c.messageModulus).u64(c.carryModulus);
  writeAtomicPattern(w, c.atomicPattern);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// CompressedCiphertext

export function parseCompressedCiphertext(bytes: Uint8Array, limits?: ParseLimits): CompressedCiphertextFields {
  const l = resolveLimits(limits);
  const r = new BincodeReader(bytes, 'compressed_ciphertext');
  const bodyAt = r.offset;
  r.u64('ct.body');
  const body = new Uint32Array(new Uint8Array(bytes.subarray(bodyAt, bodyAt + 8)).buffer);
  const at = r.offset;
  const lweSize = r.u64Number('ct.lwe_size', l.maxLweDimension + 1);
  if (lweSize < 2) r.fail('ct.lwe_size', `LWE size ${lweSize} < 2`, at);
  const seed = readSeed(r, 'ct.compression_seed');
  readCiphertextModulus(r, 'ct.ciphertext_modulus');
  const degree = r.u64Number('degree');
  const messageModulus = readModulus(r, 'message_modulus');
  const carryModulus = readModulus(r, 'carry_modulus');
  const atomicPattern = readAtomicPattern(r, 'atomic_pattern');
  const noiseLevel = r.u64Number('noise_level');
  r.end();
  return { body, lweSize, seed, degree, messageModulus, carryModulus, atomicPattern, noiseLevel };
}

export function serializeCompressedCiphertextFields(c: CompressedCiphertextFields): Uint8Array {
  const w = new BincodeWriter(160);
  w.raw(new Uint8Array(c.body.buffer, c.body.byteOffset, 8)).u64(c.lweSize);
  writeSeed(w, c.seed);
  writeNativeModulus(w);
  w.u64(c.degree).u64(c.messageModulus).u64(c.carryModulus);
  writeAtomicPattern(w, c.atomicPattern);
  w.u64(c.noiseLevel);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// CompressedServerKey

export function parseCompressedServerKey(bytes: Uint8Array, limits?: ParseLimits): CompressedServerKeyFields {
  const l = resolveLimits(limits);
  const r = new BincodeReader(bytes, 'compressed_server_key');
  const ap = r.variant('atomic_pattern', 2);
  if (ap !== 0) r.fail('atomic_pattern', 'only the Standard atomic pattern is supported', 0);

  // --- SeededLweKeyswitchKey
  const kskBodies = r.vecU64('ksk.data', l.maxKeyWords);
  let at = r.offset;
  const ksBaseLog = r.u64Number('ksk.decomp_base_log', 63);
  if (ksBaseLog < 1) r.fail('ksk.decomp_base_log', 'must be ≥ 1', at);
  at = r.offset;
  const ksLevel = r.u64Number('ksk.decomp_level_count', l.maxLevel);
  if (ksLevel < 1 || ksLevel * ksBaseLog > 64) r.fail('ksk.decomp_level_count', `level ${ksLevel} × base log ${ksBaseLog} must be in 1..64`, at);
  at = r.offset;
  const outputLweSize = r.u64Number('ksk.output_lwe_size', l.maxLweDimension + 1);
  if (outputLweSize < 2) r.fail('ksk.output_lwe_size', 'must be ≥ 2', at);
  const kskSeed = readSeed(r, 'ksk.compression_seed');
  readCiphertextModulus(r, 'ksk.ciphertext_modulus');
  if ((kskBodies.length / 2) % ksLevel !== 0) r.fail('ksk.data.len', `${kskBodies.length / 2} bodies is not a multiple of the level count ${ksLevel}`);

  // --- Classic SeededLweBootstrapKey
  const bskKind = r.variant('bootstrapping_key', 2);
  if (bskKind !== 0) r.fail('bootstrapping_key', 'only the classic (non multi-bit) bootstrapping key is supported');
  const bskBodies = r.vecU64('bsk.data', l.maxKeyWords);
  at = r.offset;
  const glweSize = r.u64Number('bsk.glwe_size', l.maxGlweDimension + 1);
  if (glweSize < 2) r.fail('bsk.glwe_size', 'must be ≥ 2', at);
  at = r.offset;
  const polynomialSize = r.u64Number('bsk.polynomial_size', l.maxPolynomialSize);
  if (polynomialSize < 4 || (polynomialSize & (polynomialSize - 1)) !== 0) r.fail('bsk.polynomial_size', `${polynomialSize} is not a power of two ≥ 4`, at);
  at = r.offset;
  const pbsBaseLog = r.u64Number('bsk.decomp_base_log', 63);
  if (pbsBaseLog < 1) r.fail('bsk.decomp_base_log', 'must be ≥ 1', at);
  at = r.offset;
  const pbsLevel = r.u64Number('bsk.decomp_level_count', l.maxLevel);
  if (pbsLevel < 1 || pbsLevel * pbsBaseLog > 64) r.fail('bsk.decomp_level_count', `level ${pbsLevel} × base log ${pbsBaseLog} must be in 1..64`, at);
  const bskSeed = readSeed(r, 'bsk.compression_seed');
  readCiphertextModulus(r, 'bsk.ciphertext_modulus');

  const msKind = r.variant('modulus_switch_noise_reduction', 3);
  if (msKind === 1) r.fail('modulus_switch_noise_reduction', 'the Drift modulus-switch key is not supported');
  const order = r.variant('pbs_order', 2);
  const messageModulus = readModulus(r, 'message_modulus');
  const carryModulus = readModulus(r, 'carry_modulus');
  const maxDegree = r.u64Number('max_degree');
  const maxNoiseLevel = r.u64Number('max_noise_level');
  r.end();

  // Structural consistency (what the dimensions imply about the vector lengths).
  const ggswBodies = pbsLevel * glweSize * polynomialSize;
  if ((bskBodies.length / 2) % ggswBodies !== 0 || bskBodies.length === 0) {
    r.fail('bsk.data.len', `${bskBodies.length / 2} bodies is not a positive multiple of level × glwe size × N = ${ggswBodies}`);
  }
  const bskInputDim = bskBodies.length / 2 / ggswBodies;
  if (bskInputDim !== outputLweSize - 1) {
    throw new TfheParameterError(
      `compressed_server_key: the bootstrapping key has ${bskInputDim} GGSW ciphertexts but the keyswitch output dimension is ${outputLweSize - 1}`,
    );
  }
  const kskInputDim = kskBodies.length / 2 / ksLevel;
  if (kskInputDim !== (glweSize - 1) * polynomialSize) {
    throw new TfheParameterError(
      `compressed_server_key: keyswitch input dimension ${kskInputDim} ≠ k·N = ${(glweSize - 1) * polynomialSize} (only the 'Big' encryption key choice is supported)`,
    );
  }

  return {
    ksk: { bodies: kskBodies, baseLog: ksBaseLog, level: ksLevel, outputLweSize, seed: kskSeed },
    bsk: { bodies: bskBodies, glweSize, polynomialSize, baseLog: pbsBaseLog, level: pbsLevel, seed: bskSeed },
    modulusSwitch: msKind === 0 ? 'standard' : 'centered-mean',
    pbsOrder: order === 0 ? 'keyswitch-bootstrap' : 'bootstrap-keyswitch',
    messageModulus,
    carryModulus,
    maxDegree,
    maxNoiseLevel,
  };
}

// ---------------------------------------------------------------------------------------------
// Exact serialized sizes (a server limits uploads to them before reading the bytes)

/** Bytes of a serialized `CompressedCiphertext` (seeded LWE: body, LWE size, seed, modulus, shortint metadata). */
export function compressedCiphertextBytes(): number {
  // body u64, lwe_size u64, seed (variant u32, 16-byte key, u128 index, u64 byte index), modulus (u128 + u64),
  // degree, message modulus, carry modulus u64 each, atomic pattern (two u32 variants), noise level u64
  return 8 + 8 + (4 + 16 + 16 + 8) + (16 + 8) + 8 + 8 + 8 + (4 + 4) + 8;
}

/**
 * Bytes of a serialized shortint `CompressedServerKey` (Standard atomic pattern, classic seeded bootstrapping key,
 * 'Big' encryption key) for a parameter set: exactly what `parseCompressedServerKey` reads.
 */
export function compressedServerKeyBytes(p: { lweDimension: number; glweDimension: number; polynomialSize: number; pbsLevel: number; ksLevel: number }): number {
  const seed = 4 + 16 + 16 + 8;
  const modulus = 16 + 8;
  const kskBodies = p.glweDimension * p.polynomialSize * p.ksLevel;
  const bskBodies = p.lweDimension * p.pbsLevel * (p.glweDimension + 1) * p.polynomialSize;
  return (
    4 + // atomic pattern
    (8 + 8 * kskBodies) + 8 + 8 + 8 + seed + modulus + // keyswitch key: data, base log, level, output LWE size
    4 + // bootstrapping key variant
    (8 + 8 * bskBodies) + 8 + 8 + 8 + 8 + seed + modulus + // data, GLWE size, N, base log, level
    4 + 4 + // modulus-switch configuration, PBS order
    8 + 8 + 8 + 8 // message modulus, carry modulus, max degree, max noise level
  );
}
