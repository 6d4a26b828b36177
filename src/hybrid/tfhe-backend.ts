/**
 * The `tfhe` crypto backend of the hybrid layer: real TFHE ciphertexts through the circuit executor
 * (src/runtime/executor*.ts, docs/tfhe.md "Executing circuits").
 *
 * - Dev side (`clientInfo`): the executor's plan of the circuit (parameter set, input and output encodings) is
 *   computed from the circuit and written into the client artefact as `backendInfo` — three small integers and a
 *   parameter-set name, no weight — because the client never sees the circuit but must encrypt at the input's
 *   encoding and decrypt at the output's. A circuit that does not fit any named set fails here, at compile time.
 * - Client (`generateKeys`, async; loads node-tfhe lazily): `TfheClient.create(set)`; the secret key stays inside that
 *   object. Evaluation key = the TFHE-rs CompressedServerKey, framed below. Encryption of each input integer with
 *   `encryptCompressedScaled(m, 63 − inputE)` (seeded, ≈ 124 B for 2_2), decryption with
 *   `decryptScaled(ct, 63 − outputE, outputE + 1)` — exactly what `TfheCircuitClient.encryptInputs/decryptOutputs`
 *   do, from the artefact's plan instead of the circuit.
 * - Server (`parseKey`/`run`, async; no node-tfhe: executor-server.ts parses client bytes with fhenet's own parser):
 *   `TfheCircuitServer.create(key, { params, threads })` — a worker pool, so the PBS run off the event loop — and
 *   `runEncrypted`. The server recomputes the plan from its own circuit and refuses a key of another parameter set.
 *
 * Byte formats (little-endian), both ending with a CRC-32 of every preceding byte (catches accidental corruption;
 * hostile bytes with a valid CRC go on to fhenet's TFHE parser, whose TfheErrors become 400s):
 *   evaluation key "FHTK": magic(4) version u8=1, name length u8, reserved u16 | key id (16) | circuit id (8)
 *                          | key length u32 | parameter-set name (ASCII) | CompressedServerKey bytes | CRC-32
 *   ciphertexts    "FHTC": magic(4) version u8=1, kind u8 (1 input, 2 output), reserved u16 | key id (16)
 *                          | circuit id (8) | n u32 | count u32 | count × (length u32, TFHE-rs bytes) | CRC-32
 * Input ciphertexts are TFHE-rs `CompressedCiphertext`s (seeded), outputs shortint `Ciphertext`s.
 */
import { crc32 } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import type { Circuit } from '../compiler/circuit.js';
import { size } from '../compiler/circuit.js';
import { TfheError } from '../tfhe/errors.js';
import { planCircuit } from '../runtime/executor-plan.js';
import { compressedCiphertextBytes, compressedServerKeyBytes } from '../tfhe/layouts.js';
import { namedParams } from '../tfhe/params.js';
import type { PbsRunnerFactory, TfheCircuitServer } from '../runtime/executor-server.js';
import type { TfheClient } from '../tfhe/client.js';
import type { ClientBackend, ClientKeys, ServerBackend } from './crypto-backend.js';
import { HybridError } from './errors.js';

const KEY_MAGIC = 0x4b544846; // "FHTK"
const CT_MAGIC = 0x43544846; // "FHTC"
const KEY_HEADER = 36;
const CT_HEADER = 40;
/** Largest single TFHE ciphertext accepted in a frame (a 3_3 shortint Ciphertext is ≈ 16 KiB). */
const MAX_CT_BYTES = 1 << 20;

/** What the client artefact carries for this backend (no weight: a set name and two encodings). */
export interface TfheClientInfo {
  params: string;
  inputE: number;
  outputE: number;
}

/** Server-side settings of the tfhe backend (process-wide). */
export const tfheServerConfig: { threads: number; log2PError: number; pbsRunner?: PbsRunnerFactory } = {
  /** KS-PBS worker threads per loaded key (≥ 1; the PBS always run in workers, never on the event loop). */
  threads: 2,
  log2PError: -40,
  /** Where the KS-PBS run instead (`fhenet serve --queue`: src/scale's worker processes); unset: local threads. */
  pbsRunner: undefined,
};

export function configureTfheServer(opts: Partial<typeof tfheServerConfig>): void {
  Object.assign(tfheServerConfig, opts);
}

function idBytes(circuitId: string): Uint8Array {
  if (!/^[0-9a-f]{16}$/.test(circuitId)) throw new HybridError(`circuit id '${circuitId}' is not 16 hex digits`);
  return Uint8Array.from(Buffer.from(circuitId, 'hex'));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

// ---- frames -----------------------------------------------------------------------------------------------------

export function encodeTfheKey(keyId: Uint8Array, circuitId: string, params: string, key: Uint8Array): Uint8Array {
  const name = Buffer.from(params, 'ascii');
  if (name.length > 255) throw new HybridError('parameter-set name too long', 500, 'internal');
  const out = new Uint8Array(KEY_HEADER + name.length + key.length + 4);
  const dv = view(out);
  dv.setUint32(0, KEY_MAGIC, true);
  out[4] = 1;
  out[5] = name.length;
  out.set(keyId, 8);
  out.set(idBytes(circuitId), 24);
  dv.setUint32(32, key.length, true);
  out.set(name, KEY_HEADER);
  out.set(key, KEY_HEADER + name.length);
  dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

export interface TfheKeyFrame {
  keyId: Uint8Array;
  circuitId: string;
  params: string;
  key: Uint8Array;
}

export function decodeTfheKey(bytes: Uint8Array): TfheKeyFrame {
  const bad = (m: string) => new HybridError(`evaluation key: ${m}`, 400, 'bad_key');
  if (bytes.length < KEY_HEADER + 4) throw bad(`${bytes.length} bytes is shorter than the ${KEY_HEADER + 4}-byte minimum`);
  const dv = view(bytes);
  if (dv.getUint32(0, true) !== KEY_MAGIC) throw bad('not a tfhe evaluation key (bad magic)');
  if (bytes[4] !== 1) throw bad(`format version ${bytes[4]} is not 1`);
  const nameLen = bytes[5]!;
  const keyLen = dv.getUint32(32, true);
  const expect = KEY_HEADER + nameLen + keyLen + 4;
  if (bytes.length !== expect) throw bad(`${bytes.length} bytes, the header announces ${expect} (truncated or padded)`);
  if (dv.getUint32(bytes.length - 4, true) !== crc32(bytes.subarray(0, bytes.length - 4))) throw bad('checksum mismatch (corrupted)');
  return {
    keyId: Uint8Array.from(bytes.subarray(8, 24)),
    circuitId: Buffer.from(bytes.subarray(24, 32)).toString('hex'),
    params: Buffer.from(bytes.subarray(KEY_HEADER, KEY_HEADER + nameLen)).toString('ascii'),
    key: bytes.subarray(KEY_HEADER + nameLen, KEY_HEADER + nameLen + keyLen),
  };
}

export function encodeTfheCiphertexts(kind: 1 | 2, keyId: Uint8Array, circuitId: string, cts: readonly Uint8Array[], n: number): Uint8Array {
  const total = CT_HEADER + cts.reduce((a, c) => a + 4 + c.length, 0) + 4;
  const out = new Uint8Array(total);
  const dv = view(out);
  dv.setUint32(0, CT_MAGIC, true);
  out[4] = 1;
  out[5] = kind;
  out.set(keyId, 8);
  out.set(idBytes(circuitId), 24);
  dv.setUint32(32, n, true);
  dv.setUint32(36, cts.length, true);
  let off = CT_HEADER;
  for (const c of cts) {
    dv.setUint32(off, c.length, true);
    out.set(c, off + 4);
    off += 4 + c.length;
  }
  dv.setUint32(off, crc32(out.subarray(0, off)), true);
  return out;
}

export interface TfheCiphertextFrame {
  kind: number;
  keyId: Uint8Array;
  circuitId: string;
  n: number;
  cts: Uint8Array[];
}

export function decodeTfheCiphertexts(bytes: Uint8Array, what = 'ciphertext', status = 400, code = 'bad_ciphertext'): TfheCiphertextFrame {
  const bad = (m: string) => new HybridError(`${what}: ${m}`, status, code);
  if (bytes.length < CT_HEADER + 4) throw bad(`${bytes.length} bytes is shorter than the ${CT_HEADER + 4}-byte minimum`);
  const dv = view(bytes);
  if (dv.getUint32(0, true) !== CT_MAGIC) throw bad('not a tfhe ciphertext frame (bad magic)');
  if (bytes[4] !== 1) throw bad(`format version ${bytes[4]} is not 1`);
  if (dv.getUint32(bytes.length - 4, true) !== crc32(bytes.subarray(0, bytes.length - 4))) throw bad('checksum mismatch (corrupted or truncated)');
  const count = dv.getUint32(36, true);
  const end = bytes.length - 4;
  if (count > (end - CT_HEADER) / 4) throw bad(`${count} ciphertexts cannot fit in ${bytes.length} bytes`);
  const cts: Uint8Array[] = [];
  let off = CT_HEADER;
  for (let i = 0; i < count; i++) {
    if (off + 4 > end) throw bad(`ciphertext ${i}: length field past the end`);
    const len = dv.getUint32(off, true);
    if (len > MAX_CT_BYTES || off + 4 + len > end) throw bad(`ciphertext ${i}: length ${len} past the end or over ${MAX_CT_BYTES}`);
    cts.push(bytes.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  if (off !== end) throw bad(`${end - off} trailing bytes after ${count} ciphertexts`);
  return { kind: bytes[5]!, keyId: Uint8Array.from(bytes.subarray(8, 24)), circuitId: Buffer.from(bytes.subarray(24, 32)).toString('hex'), n: dv.getUint32(32, true), cts };
}

// ---- client -----------------------------------------------------------------------------------------------------

function clientInfoOf(info: Record<string, unknown> | undefined): TfheClientInfo {
  const i = info as Partial<TfheClientInfo> | undefined;
  if (!i || typeof i.params !== 'string' || !Number.isInteger(i.inputE) || !Number.isInteger(i.outputE)) {
    throw new HybridError("client artefact has no tfhe plan (backendInfo: { params, inputE, outputE }); recompile with backend 'tfhe'", 400, 'bad_artefact');
  }
  return i as TfheClientInfo;
}

/** A client key pair for one circuit. The TfheClient (and its secret key) never leaves this closure. */
function tfheClientKeys(tc: TfheClient, circuitId: string, info: TfheClientInfo): ClientKeys {
  const keyId = Uint8Array.from(randomBytes(16));
  let evalKey: Uint8Array | undefined;
  const inDelta = 63 - info.inputE;
  const outDelta = 63 - info.outputE;
  return {
    evaluationKeys: () => (evalKey ??= encodeTfheKey(keyId, circuitId, info.params, tc.compressedServerKey())),
    encrypt: (ints, n) => {
      const cts: Uint8Array[] = new Array(ints.length);
      for (let i = 0; i < ints.length; i++) cts[i] = tc.encryptCompressedScaled(ints[i]!, inDelta);
      return encodeTfheCiphertexts(1, keyId, circuitId, cts, n);
    },
    decrypt: (bytes, n, expectCount) => {
      const f = decodeTfheCiphertexts(bytes, 'server answer', 502, 'bad_answer');
      const bad = (m: string) => new HybridError(`server answer: ${m}`, 502, 'bad_answer');
      if (f.kind !== 2) throw bad('not an output ciphertext');
      if (!sameBytes(f.keyId, keyId)) throw bad('computed under another key (crossed keys)');
      if (f.circuitId !== circuitId) throw bad(`computed by circuit ${f.circuitId}, expected ${circuitId}`);
      if (f.n !== n || f.cts.length !== expectCount) throw bad(`batch ${f.n} × ${f.cts.length} ciphertexts, expected ${n} × ${expectCount}`);
      const out = new Float64Array(expectCount);
      try {
        for (let i = 0; i < expectCount; i++) out[i] = tc.decryptScaled(f.cts[i]!, outDelta, info.outputE + 1);
      } catch (e) {
        if (e instanceof TfheError) throw bad(e.message);
        throw e;
      }
      return out;
    },
    dispose: () => tc.dispose(),
  };
}

export const tfheClientBackend: ClientBackend = {
  name: 'tfhe',
  async generateKeys(circuitId, backendInfo) {
    const info = clientInfoOf(backendInfo);
    const { TfheClient } = await import('../tfhe/client.js'); // node-tfhe: loaded only where keys are made
    return tfheClientKeys(TfheClient.create(info.params), circuitId, info);
  },
};

// ---- server -----------------------------------------------------------------------------------------------------

/** A loaded evaluation key: the expanded key in a worker pool. */
export interface TfheKeyHandle {
  keyId: Uint8Array;
  circuitId: string;
  params: string;
  server: TfheCircuitServer;
}

function asClientError(e: unknown, code: string, what: string): never {
  if (e instanceof TfheError) throw new HybridError(`${what}: ${e.message}`, 400, code);
  throw e;
}

export const tfheServerBackend: ServerBackend = {
  name: 'tfhe',
  keyFormat(circuit, circuitId) {
    const params = namedParams(planCircuit(circuit, { log2PError: tfheServerConfig.log2PError }).params.name);
    const name = Buffer.from(params.name, 'ascii');
    const keyBytes = compressedServerKeyBytes(params);
    const id = idBytes(circuitId);
    return {
      bytes: KEY_HEADER + name.length + keyBytes + 4,
      headerBytes: KEY_HEADER + name.length,
      checkHeader(h) {
        const bad = (m: string) => new HybridError(`evaluation key: ${m}`, 400, 'bad_key');
        const dv = view(h);
        if (dv.getUint32(0, true) !== KEY_MAGIC) throw bad('not a tfhe evaluation key (bad magic)');
        if (h[4] !== 1) throw bad(`format version ${h[4]} is not 1`);
        const got = Buffer.from(h.subarray(KEY_HEADER, KEY_HEADER + h[5]!)).toString('ascii');
        if (h[5] !== name.length || got !== params.name) throw bad(`is for parameter set '${got}', this circuit runs on '${params.name}'`);
        if (!sameBytes(h.subarray(24, 32), id)) throw bad(`was made for circuit ${Buffer.from(h.subarray(24, 32)).toString('hex')}, not ${circuitId}`);
        if (dv.getUint32(32, true) !== keyBytes) throw bad(`announces ${dv.getUint32(32, true)} key bytes; a ${params.name} compressed server key has ${keyBytes}`);
      },
    };
  },
  requestFormat(circuit) {
    const params = namedParams(planCircuit(circuit, { log2PError: tfheServerConfig.log2PError }).params.name);
    const per = size(circuit.input.shape);
    const ct = compressedCiphertextBytes();
    // a decompressed big-key LWE ciphertext is k·N + 1 u64 words; rescaled copies of a value can double that
    return { frameBytes: (n) => CT_HEADER + n * per * (4 + ct) + 4, workingBytesPerValue: 2 * 8 * (params.glweDimension * params.polynomialSize + 1) };
  },
  clientInfo(circuit: Circuit): Record<string, unknown> {
    const plan = planCircuit(circuit, { log2PError: tfheServerConfig.log2PError });
    const info: TfheClientInfo = { params: plan.params.name, inputE: plan.inputE, outputE: plan.outputE };
    return { ...info };
  },
  async parseKey(bytes, circuitId, circuit) {
    const f = decodeTfheKey(bytes);
    if (f.circuitId !== circuitId) throw new HybridError(`evaluation key was made for circuit ${f.circuitId}, not ${circuitId}`, 400, 'bad_key');
    const want = planCircuit(circuit, { log2PError: tfheServerConfig.log2PError }).params.name;
    if (f.params !== want) throw new HybridError(`evaluation key is for parameter set '${f.params}', this circuit runs on '${want}'`, 400, 'bad_key');
    const { TfheCircuitServer } = await import('../runtime/executor-server.js');
    let server: TfheCircuitServer;
    try {
      // threads ≥ 2 → a PbsPool; with 1 the PBS would run on the calling (event-loop) thread, so the minimum is 2
      server = await TfheCircuitServer.create(f.key, {
        params: want,
        threads: Math.max(2, tfheServerConfig.threads),
        log2PError: tfheServerConfig.log2PError,
        ...(tfheServerConfig.pbsRunner ? { pbsRunner: tfheServerConfig.pbsRunner } : {}),
      });
    } catch (e) {
      asClientError(e, 'bad_key', 'evaluation key');
    }
    const handle: TfheKeyHandle = { keyId: f.keyId, circuitId, params: want, server };
    return handle;
  },
  async run(circuit, circuitId, key, bytes) {
    const k = key as TfheKeyHandle;
    const f = decodeTfheCiphertexts(bytes);
    if (f.kind !== 1) throw new HybridError('ciphertext: not an input ciphertext', 400, 'bad_ciphertext');
    if (!sameBytes(f.keyId, k.keyId)) throw new HybridError("ciphertext was not encrypted under this uid's key", 400, 'key_mismatch');
    if (f.circuitId !== circuitId) throw new HybridError(`ciphertext is for circuit ${f.circuitId}, this module's circuit is ${circuitId}`, 400, 'circuit_mismatch');
    const per = size(circuit.input.shape);
    if (f.n < 1 || f.cts.length !== f.n * per) throw new HybridError(`frame holds ${f.cts.length} ciphertexts, not ${f.n} × ${per}`, 400, 'bad_shape');
    let out: Uint8Array[];
    try {
      out = await k.server.runEncrypted(circuit, f.cts, f.n);
    } catch (e) {
      asClientError(e, 'bad_ciphertext', 'ciphertext');
    }
    return encodeTfheCiphertexts(2, k.keyId, circuitId, out, f.n);
  },
  async dispose(key) {
    await (key as TfheKeyHandle).server.close();
  },
};
