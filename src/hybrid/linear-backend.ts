/**
 * Crypto backends of dynamically quantized remote linear layers (the hybrid LLM path). Unlike the circuit backends
 * (backend.ts: one evaluation key per module and input shape), a client holds ONE key for every linear layer of a
 * model, and the server prepares each layer's weights once for all clients:
 *
 * - `LinearClientBackend.generateKeys()` → `LinearClientKeys { evaluationKey, encrypt, decrypt, dispose? }`: the
 *   secret key stays inside; `encrypt` takes the centred per-token integers x_c [tokens, in] and the per-token scales
 *   s_x (dynamic-quant.ts; the scales travel in clear: the server adds the bias with them), `decrypt` returns the
 *   accumulators acc' [tokens, out], bias included;
 * - `LinearServerBackend { prepare(layer), parseKey(bytes), matVec(key, prepared, ciphertext) }`; every backend
 *   adds the bias through dynamic-quant.ts's `biasInAccumulatorUnits` and publishes the layer's `tokenScaleFloor`
 *   in `clientInfo`.
 * Ciphertexts are bound to the key (its id) and to the layer (`layerTag`: 8 bytes of SHA-256 of "model/layer").
 *
 * Backends: `glwe` (glwe-linear-backend.ts: fhenet's packed GLWE engine, real encryption) and `simulate`.
 * The `simulate` pair sends clear integers in the frame below — NOT encryption; it exists so that the whole LLM path
 * (per-token quantization → HTTP → integer product → dequantization) is built and tested independently of the
 * cryptography. tfjs-free.
 *
 * Simulate linear ciphertext ("FHLC", little-endian):
 *   0 u8[4] magic   4 u8 version (2)   5 u8 kind (1 input, 2 output)   6 u16 reserved   8 u8[16] key id
 *   24 u8[8] layer tag   32 u32 tokens   36 u32 features   40 f32[tokens] token scales s_x (input frames only)
 *   then i32[tokens × features]   then u32 CRC-32 of all before. (Version 1 had no scales: the client added the bias.)
 * Simulate linear key ("FHLK"): magic, u8 version 1, 3 reserved, u8[16] key id, u32 CRC-32.
 */
import { crc32 } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { HybridError } from './errors.js';
import { type BiasPlan, type QuantizedLinear, addBias, biasInAccumulatorUnits, biasPlan, integerMatVec, publishedBiasInfo } from './dynamic-quant.js';
import { glweLinearClient, glweLinearServer } from './glwe-linear-backend.js';

/** What the client knows of a layer: its shape and what the backend published for it (no weight). */
export interface ClientLayer {
  inFeatures: number;
  outFeatures: number;
  info?: Record<string, unknown>;
}

export interface LinearClientKeys {
  /** What the client uploads once (`/llm/add_key`). */
  evaluationKey(): Uint8Array;
  /** The evaluation key as an object, for a server in the same process ('execute'; skips the wire format). */
  localKey?(): unknown;
  /** `tokenScales`: s_x per token (sent in clear with the ciphertext; the server adds the bias with them). */
  encrypt(values: Int16Array, tokenScales: Float32Array, tokens: number, layer: ClientLayer, layerTag: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decrypt(bytes: Uint8Array, tokens: number, layer: ClientLayer, layerTag: Uint8Array): Float64Array | Promise<Float64Array>;
  /** The unrounded decryptions (acc' + noise), for noise measurements; only backends with noise have it. */
  phases?(bytes: Uint8Array, tokens: number, layer: ClientLayer, layerTag: Uint8Array): Float64Array;
  dispose?(): void;
}

export interface LinearClientBackend {
  readonly name: string;
  generateKeys(): LinearClientKeys | Promise<LinearClientKeys>;
}

/** What the server holds of a layer: int8 weights, their per-channel scales and the float bias (never the client's). */
export type ServerLayer = Pick<QuantizedLinear, 'weights' | 'inFeatures' | 'outFeatures' | 'scales' | 'bias'>;

/** The layer's `tokenScaleFloor` from its published info. */
export function tokenScaleFloorOf(layer: ClientLayer): number {
  const f = layer.info?.tokenScaleFloor;
  if (typeof f !== 'number' || !(f >= 0)) throw new HybridError('the client files lack the layer\'s tokenScaleFloor (written by an older fhenet); write them again with saveAndClearPrivateInfo', 400, 'bad_artefact');
  return f;
}

export interface LinearServerBackend {
  readonly name: string;
  /** The layer's weights in the form `matVec` needs (once per layer, shared by every client). */
  prepare(layer: ServerLayer): unknown;
  /** What the client needs to encrypt for this layer (public; computed when the artefacts are written). */
  clientInfo?(layer: ServerLayer): Record<string, unknown>;
  /** Loads `LinearClientKeys.localKey()` of a client in the same process. */
  loadLocalKey?(key: unknown): unknown;
  /** Bytes a parsed key holds in memory (what a server's key budget counts); default: the upload's size. */
  keyMemoryBytes?(key: unknown): number;
  /** Validates an uploaded key; throws HybridError (4xx) on bad bytes. */
  parseKey(bytes: Uint8Array): unknown;
  /** acc' = x_c · wᵀ + bias on the client's ciphertext; throws HybridError (4xx) on bad or mismatched ciphertexts or scales. */
  /**
   * `tokens`, when given (the server's request declares it, and meters and limits by it), must equal the number of
   * token rows in the ciphertext: 400 `bad_shape` otherwise, before any computation.
   */
  matVec(key: unknown, prepared: unknown, layer: ServerLayer, ciphertext: Uint8Array, layerTag: Uint8Array, tokens?: number): Uint8Array | Promise<Uint8Array>;
  disposeKey?(key: unknown): void | Promise<void>;
}

export function layerTag(modelName: string, layer: string): Uint8Array {
  return Uint8Array.from(createHash('sha256').update(`${modelName}/${layer}`).digest().subarray(0, 8));
}

// ---- simulate -----------------------------------------------------------------------------------------------------

const CT_MAGIC = 0x434c4846; // "FHLC"
const KEY_MAGIC = 0x4b4c4846; // "FHLK"
const HEADER = 40;

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

const VERSION = 2;

function encodeCt(kind: 1 | 2, keyId: Uint8Array, tag: Uint8Array, values: ArrayLike<number>, tokens: number, features: number, tokenScales?: Float32Array): Uint8Array {
  const scaleBytes = kind === 1 ? 4 * tokens : 0;
  const out = new Uint8Array(HEADER + scaleBytes + 4 * values.length + 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, CT_MAGIC, true);
  out[4] = VERSION;
  out[5] = kind;
  out.set(keyId, 8);
  out.set(tag, 24);
  dv.setUint32(32, tokens, true);
  dv.setUint32(36, features, true);
  if (kind === 1) for (let t = 0; t < tokens; t++) dv.setFloat32(HEADER + 4 * t, tokenScales![t]!, true);
  for (let i = 0; i < values.length; i++) dv.setInt32(HEADER + scaleBytes + 4 * i, values[i]!, true);
  dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

function decodeCt(bytes: Uint8Array, what: string, status: number, code: string): { kind: number; keyId: Uint8Array; tag: Uint8Array; tokens: number; features: number; values: Int32Array; tokenScales: Float32Array } {
  const bad = (m: string) => new HybridError(`${what}: ${m}`, status, code);
  if (bytes.length < HEADER + 4) throw bad(`${bytes.length} bytes is shorter than the ${HEADER + 4}-byte minimum`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== CT_MAGIC) throw bad('not a simulate linear ciphertext (bad magic)');
  if (bytes[4] !== VERSION) throw bad(`format version ${bytes[4]} is not ${VERSION}`);
  const kind = bytes[5]!;
  const tokens = dv.getUint32(32, true);
  const features = dv.getUint32(36, true);
  const scaleBytes = kind === 1 ? 4 * tokens : 0;
  if (bytes.length !== HEADER + scaleBytes + 4 * tokens * features + 4) throw bad(`length ${bytes.length} does not match ${tokens} × ${features} values${kind === 1 ? ` and ${tokens} token scales` : ''}`);
  if (dv.getUint32(bytes.length - 4, true) !== crc32(bytes.subarray(0, bytes.length - 4))) throw bad('checksum mismatch (corrupted or truncated)');
  const tokenScales = new Float32Array(kind === 1 ? tokens : 0);
  for (let t = 0; t < tokenScales.length; t++) tokenScales[t] = dv.getFloat32(HEADER + 4 * t, true);
  const values = new Int32Array(tokens * features);
  for (let i = 0; i < values.length; i++) values[i] = dv.getInt32(HEADER + scaleBytes + 4 * i, true);
  return { kind, keyId: bytes.slice(8, 24), tag: bytes.slice(24, 32), tokens, features, values, tokenScales };
}

export const simulateLinearClient: LinearClientBackend = {
  name: 'simulate',
  generateKeys(): LinearClientKeys {
    const keyId = Uint8Array.from(randomBytes(16));
    const key = new Uint8Array(28);
    new DataView(key.buffer).setUint32(0, KEY_MAGIC, true);
    key[4] = 1;
    key.set(keyId, 8);
    new DataView(key.buffer).setUint32(24, crc32(key.subarray(0, 24)), true);
    return {
      evaluationKey: () => key,
      encrypt: (values, tokenScales, tokens, layer, tag) => encodeCt(1, keyId, tag, values, tokens, layer.inFeatures, tokenScales),
      decrypt: (bytes, tokens, layer, tag) => {
        const outFeatures = layer.outFeatures;
        const ct = decodeCt(bytes, 'server answer', 502, 'bad_answer');
        const bad = (m: string) => new HybridError(`server answer: ${m}`, 502, 'bad_answer');
        if (ct.kind !== 2) throw bad('not an output ciphertext');
        if (!same(ct.keyId, keyId)) throw bad('encrypted under another key (crossed keys)');
        if (!same(ct.tag, tag)) throw bad('computed by another layer');
        if (ct.tokens !== tokens || ct.features !== outFeatures) throw bad(`${ct.tokens} × ${ct.features} values, expected ${tokens} × ${outFeatures}`);
        return Float64Array.from(ct.values);
      },
    };
  },
};

export const simulateLinearServer: LinearServerBackend = {
  name: 'simulate',
  prepare: (layer) => biasPlan(layer),
  clientInfo: (layer) => publishedBiasInfo(biasPlan(layer)),
  parseKey(bytes) {
    const bad = (m: string) => new HybridError(`evaluation key: ${m}`, 400, 'bad_key');
    if (bytes.length !== 28) throw bad(`${bytes.length} bytes, expected 28`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dv.getUint32(0, true) !== KEY_MAGIC) throw bad('not a simulate linear key (bad magic)');
    if (bytes[4] !== 1) throw bad(`format version ${bytes[4]} is not 1`);
    if (dv.getUint32(24, true) !== crc32(bytes.subarray(0, 24))) throw bad('checksum mismatch (corrupted or truncated)');
    return { keyId: bytes.slice(8, 24) };
  },
  matVec(key, prepared, layer, bytes, tag, tokens) {
    const k = key as { keyId: Uint8Array };
    const ct = decodeCt(bytes, 'ciphertext', 400, 'bad_ciphertext');
    if (tokens !== undefined && ct.tokens !== tokens) throw new HybridError(`ciphertext holds ${ct.tokens} tokens, the request declares ${tokens}`, 400, 'bad_shape');
    if (ct.kind !== 1) throw new HybridError('ciphertext: not an input ciphertext', 400, 'bad_ciphertext');
    if (!same(ct.keyId, k.keyId)) throw new HybridError("ciphertext was not encrypted under this uid's key", 400, 'key_mismatch');
    if (!same(ct.tag, tag)) throw new HybridError('ciphertext is for another layer', 400, 'layer_mismatch');
    if (ct.features !== layer.inFeatures || ct.tokens < 1) throw new HybridError(`ciphertext holds ${ct.tokens} × ${ct.features} values; the layer takes ${layer.inFeatures} features per token`, 400, 'bad_shape');
    for (const v of ct.values) if (v < -255 || v > 255) throw new HybridError(`input integer ${v} is outside [−255, 255]`, 400, 'bad_ciphertext');
    const bias = biasInAccumulatorUnits(layer, prepared as BiasPlan, ct.tokenScales);
    return encodeCt(2, k.keyId, tag, addBias(integerMatVec(layer, ct.values, ct.tokens), bias), ct.tokens, layer.outFeatures);
  },
};

const CLIENTS: ReadonlyMap<string, LinearClientBackend> = new Map([
  ['simulate', simulateLinearClient],
  ['glwe', glweLinearClient],
]);
const SERVERS: ReadonlyMap<string, LinearServerBackend> = new Map([
  ['simulate', simulateLinearServer],
  ['glwe', glweLinearServer],
]);

export function linearClientBackend(name: string): LinearClientBackend {
  const b = CLIENTS.get(name);
  if (!b) throw new HybridError(`unknown linear crypto backend '${name}' (known: ${[...CLIENTS.keys()].join(', ')})`, 400, 'unknown_backend');
  return b;
}

export function linearServerBackend(name: string): LinearServerBackend {
  const b = SERVERS.get(name);
  if (!b) throw new HybridError(`unknown linear crypto backend '${name}' (known: ${[...SERVERS.keys()].join(', ')})`, 400, 'unknown_backend');
  return b;
}
