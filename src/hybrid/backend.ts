/**
 * The crypto seam. Everything that touches keys and ciphertexts goes through two small interfaces, so the TFHE
 * runtime plugs in without changing the deployment classes, the server or the hybrid model:
 *
 * - `ClientBackend.generateKeys(artefact)` → `ClientKeys`: serialized evaluation keys, encrypt, decrypt
 *   (the secret key never leaves the `ClientKeys` object);
 * - `ServerBackend.parseKey(bytes)` → an opaque evaluation-key handle (validated: bad bytes are a 400),
 *   and `run(circuit, key, ciphertextBytes)` → result ciphertext bytes.
 *
 * The `simulate` backend implements both with clear integers in the byte format below. It is *not* encryption:
 * it exists so that the whole path (quantize → serialize → HTTP → deserialize → evaluate → serialize → HTTP →
 * deserialize → dequantize) and every fault case can be built and tested before the TFHE circuit evaluator exists.
 *
 * Simulate ciphertext ("FHSC", little-endian):
 *   0  u8[4]  magic "FHSC"            4  u8  version (1)        5  u8  kind (1 input, 2 output)   6 u16 reserved 0
 *   8  u8[16] key id (the client's key; the server refuses a ciphertext under another uid's key)
 *   24 u8[8]  circuit id (first 8 bytes of the SHA-256 of the server artefact's circuit)
 *   32 u32    batch size n            36 u32 value count (n × per-sample size)
 *   40 i32[count] the integers         then u32 CRC-32 of every preceding byte
 * Simulate evaluation key ("FHSK"): magic, u8 version 1, 3 reserved bytes, u8[16] key id, u8[8] circuit id, u32 CRC-32.
 */
import { crc32 } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { type Circuit, size } from '../compiler/circuit.js';
import { simulate } from '../compiler/simulate.js';
import { HybridError } from './errors.js';
import type { ClientBackend, ClientKeys, ServerBackend } from './crypto-backend.js';
import { tfheClientBackend, tfheServerBackend } from './tfhe-backend.js';
import { quantBounds } from '../util/int-quant.js';

export type { ClientKeys, ClientBackend, ServerBackend } from './crypto-backend.js';

const CT_MAGIC = 0x43534846; // "FHSC" little-endian
const KEY_MAGIC = 0x4b534846; // "FHSK"
const HEADER = 40;
const KEY_BYTES = 32;

function idBytes(circuitId: string): Uint8Array {
  if (!/^[0-9a-f]{16}$/.test(circuitId)) throw new HybridError(`circuit id '${circuitId}' is not 16 hex digits`);
  return Uint8Array.from(Buffer.from(circuitId, 'hex'));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function encodeSimCiphertext(kind: 1 | 2, keyId: Uint8Array, circuitId: string, values: ArrayLike<number>, n: number): Uint8Array {
  const out = new Uint8Array(HEADER + 4 * values.length + 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, CT_MAGIC, true);
  out[4] = 1;
  out[5] = kind;
  out.set(keyId, 8);
  out.set(idBytes(circuitId), 24);
  dv.setUint32(32, n, true);
  dv.setUint32(36, values.length, true);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new HybridError(`value ${v} does not fit the simulate format (int32)`, 500, 'internal');
    dv.setInt32(HEADER + 4 * i, v, true);
  }
  dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

export interface SimCiphertext {
  kind: number;
  keyId: Uint8Array;
  circuitId: string;
  n: number;
  values: Float64Array;
}

export function decodeSimCiphertext(bytes: Uint8Array, what = 'ciphertext'): SimCiphertext {
  const bad = (m: string) => new HybridError(`${what}: ${m}`, 400, 'bad_ciphertext');
  if (bytes.length < HEADER + 4) throw bad(`${bytes.length} bytes is shorter than the ${HEADER + 4}-byte minimum`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== CT_MAGIC) throw bad('not a simulate ciphertext (bad magic)');
  if (bytes[4] !== 1) throw bad(`format version ${bytes[4]} is not 1`);
  const count = dv.getUint32(36, true);
  if (bytes.length !== HEADER + 4 * count + 4) throw bad(`length ${bytes.length} does not match ${count} values`);
  if (dv.getUint32(bytes.length - 4, true) !== crc32(bytes.subarray(0, bytes.length - 4))) throw bad('checksum mismatch (corrupted or truncated)');
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = dv.getInt32(HEADER + 4 * i, true);
  return {
    kind: bytes[5]!,
    keyId: Uint8Array.from(bytes.subarray(8, 24)),
    circuitId: Buffer.from(bytes.subarray(24, 32)).toString('hex'),
    n: dv.getUint32(32, true),
    values,
  };
}

function encodeSimKey(keyId: Uint8Array, circuitId: string): Uint8Array {
  const out = new Uint8Array(KEY_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, KEY_MAGIC, true);
  out[4] = 1;
  out.set(keyId, 8);
  out.set(idBytes(circuitId), 24);
  return withCrc(out);
}

function withCrc(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length + 4);
  out.set(b);
  new DataView(out.buffer).setUint32(b.length, crc32(b), true);
  return out;
}

export interface SimKey {
  keyId: Uint8Array;
  circuitId: string;
}

export function decodeSimKey(bytes: Uint8Array): SimKey {
  const bad = (m: string) => new HybridError(`evaluation key: ${m}`, 400, 'bad_key');
  if (bytes.length !== KEY_BYTES + 4) throw bad(`${bytes.length} bytes, expected ${KEY_BYTES + 4}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== KEY_MAGIC) throw bad('not a simulate evaluation key (bad magic)');
  if (bytes[4] !== 1) throw bad(`format version ${bytes[4]} is not 1`);
  if (dv.getUint32(KEY_BYTES, true) !== crc32(bytes.subarray(0, KEY_BYTES))) throw bad('checksum mismatch (corrupted or truncated)');
  return { keyId: Uint8Array.from(bytes.subarray(8, 24)), circuitId: Buffer.from(bytes.subarray(24, 32)).toString('hex') };
}

export const simulateClientBackend: ClientBackend = {
  name: 'simulate',
  generateKeys(circuitId: string): ClientKeys {
    const keyId = Uint8Array.from(randomBytes(16));
    const evalKey = encodeSimKey(keyId, circuitId);
    return {
      evaluationKeys: () => evalKey,
      encrypt: (ints, n) => encodeSimCiphertext(1, keyId, circuitId, ints, n),
      decrypt: (bytes, n, expectCount) => {
        const ct = decodeSimCiphertext(bytes, 'server answer');
        const bad = (m: string) => new HybridError(`server answer: ${m}`, 502, 'bad_answer');
        if (ct.kind !== 2) throw bad('not an output ciphertext');
        if (!sameBytes(ct.keyId, keyId)) throw bad('encrypted under another key (crossed keys)');
        if (ct.circuitId !== circuitId) throw bad(`computed by circuit ${ct.circuitId}, expected ${circuitId}`);
        if (ct.n !== n || ct.values.length !== expectCount) throw bad(`batch ${ct.n} × ${ct.values.length} values, expected ${n} × ${expectCount}`);
        return ct.values;
      },
    };
  },
};

export const simulateServerBackend: ServerBackend = {
  name: 'simulate',
  keyFormat(_circuit, circuitId) {
    const id = idBytes(circuitId);
    return {
      bytes: KEY_BYTES + 4,
      headerBytes: KEY_BYTES,
      checkHeader(h) {
        const bad = (m: string) => new HybridError(`evaluation key: ${m}`, 400, 'bad_key');
        const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
        if (dv.getUint32(0, true) !== KEY_MAGIC) throw bad('not a simulate evaluation key (bad magic)');
        if (h[4] !== 1) throw bad(`format version ${h[4]} is not 1`);
        if (!sameBytes(h.subarray(24, 32), id)) throw bad(`made for circuit ${Buffer.from(h.subarray(24, 32)).toString('hex')}, not ${circuitId}`);
      },
    };
  },
  requestFormat(circuit) {
    const per = size(circuit.input.shape);
    // the clear simulation holds every value as float64 (and its integer copy)
    return { frameBytes: (n) => HEADER + 4 * n * per + 4, workingBytesPerValue: 16 };
  },
  parseKey(bytes, circuitId) {
    const k = decodeSimKey(bytes);
    if (k.circuitId !== circuitId) throw new HybridError(`evaluation key was made for circuit ${k.circuitId}, not ${circuitId}`, 400, 'bad_key');
    return k;
  },
  run(circuit, circuitId, key, bytes) {
    const k = key as SimKey;
    const ct = decodeSimCiphertext(bytes);
    if (ct.kind !== 1) throw new HybridError('ciphertext: not an input ciphertext', 400, 'bad_ciphertext');
    if (!sameBytes(ct.keyId, k.keyId)) throw new HybridError("ciphertext was not encrypted under this uid's key", 400, 'key_mismatch');
    if (ct.circuitId !== circuitId) throw new HybridError(`ciphertext is for circuit ${ct.circuitId}, this module's circuit is ${circuitId}`, 400, 'circuit_mismatch');
    const per = circuit.input.shape.reduce((a, b) => a * b, 1);
    if (ct.n < 1 || ct.values.length !== ct.n * per) throw new HybridError(`ciphertext holds ${ct.values.length} values, not ${ct.n} × ${per}`, 400, 'bad_shape');
    const { min, max } = inputIntRange(circuit);
    for (const v of ct.values) if (v < min || v > max) throw new HybridError(`input integer ${v} is outside the circuit's input range [${min}, ${max}]`, 400, 'bad_ciphertext');
    const r = simulate(circuit, ct.values, ct.n);
    return encodeSimCiphertext(2, k.keyId, circuitId, r.output, ct.n);
  },
};

export function inputIntRange(c: Circuit): { min: number; max: number } {
  const [min, max] = quantBounds(c.input.bitWidth, c.input.signed, c.input.narrow);
  return { min, max };
}

const CLIENT_BACKENDS = new Map<string, ClientBackend>([
  ['simulate', simulateClientBackend],
  ['tfhe', tfheClientBackend],
]);
const SERVER_BACKENDS = new Map<string, ServerBackend>([
  ['simulate', simulateServerBackend],
  ['tfhe', tfheServerBackend],
]);

export function clientBackend(name: string): ClientBackend {
  const b = CLIENT_BACKENDS.get(name);
  if (!b) throw new HybridError(`unknown crypto backend '${name}' (known: ${[...CLIENT_BACKENDS.keys()].join(', ')})`, 400, 'unknown_backend');
  return b;
}

export function serverBackend(name: string): ServerBackend {
  const b = SERVER_BACKENDS.get(name);
  if (!b) throw new HybridError(`unknown crypto backend '${name}' (known: ${[...SERVER_BACKENDS.keys()].join(', ')})`, 400, 'unknown_backend');
  return b;
}
