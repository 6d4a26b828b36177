/**
 * Deployment classes (the reference's FHEModelDev / FHEModelClient / FHEModelServer), on plain typed arrays — no
 * TensorFlow.js, so a server loads and runs circuits without it.
 *
 * Per remote module and input shape there are two artefacts:
 * - `server.fhe`: the circuit (src/compiler/circuit.ts format) with hybrid metadata — the model owner's weights,
 *   as integers; it stays on the server;
 * - `client.json`: what a client needs and nothing more — input quantizer, output dequantizer, shapes, crypto
 *   backend, circuit id, versions. It holds no weight. (The output dequantizer of a remote module is the scale of
 *   its output quantizer, because fhenet's remote circuits end with a table lookup, see docs/hybrid.md.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { type Circuit, type InputQuantizer, deserializeCircuit, serializeCircuit, size } from '../compiler/circuit.js';
import { dequantizeOutput, quantizeInput } from '../compiler/simulate.js';
import { writeFileAtomic } from './fsutil.js';
import { type ClientKeys, clientBackend, serverBackend } from './backend.js';
import { ArtefactVersionError, HybridError } from './errors.js';
import { CIRCUIT_FORMAT, CLIENT_ARTEFACT_FORMAT, FHENET_VERSION, SERVER_ARTEFACT_FORMAT, checkVersion } from './version.js';

export const SERVER_FILE = 'server.fhe';
export const CLIENT_FILE = 'client.json';

export interface ArtefactInfo {
  modelName: string;
  moduleName: string;
  /** Crypto backend the artefacts are for ('simulate'; 'tfhe' once the evaluator exists). */
  backend: string;
}

export interface ClientArtefact {
  format: typeof CLIENT_ARTEFACT_FORMAT;
  fhenetVersion: string;
  circuitFormat: string;
  backend: string;
  circuitId: string;
  modelName: string;
  moduleName: string;
  /** Per-sample input shape of the circuit (graph layout: CHW for images). */
  inputShape: number[];
  outputShape: number[];
  input: InputQuantizer;
  output: { shape: number[]; channels: number; channelStride: number; a: number[]; c: number[] };
  /** What the crypto backend's client needs besides the quantizers (tfhe: parameter set and encodings; no weight). */
  backendInfo?: Record<string, unknown>;
}

/** Per-sample shape → folder name: [10] → "10", [3, 8, 8] → "3x8x8". */
export function shapeKey(shape: readonly number[]): string {
  return shape.join('x');
}

export function parseShapeKey(key: string): number[] {
  if (!/^[1-9][0-9]{0,8}(x[1-9][0-9]{0,8}){0,7}$/.test(key)) throw new HybridError(`input shape '${key}' is not of the form 10 or 3x8x8`, 400, 'bad_shape');
  return key.split('x').map(Number);
}

export function circuitIdOf(circuitBytes: Uint8Array): string {
  return createHash('sha256').update(circuitBytes).digest('hex').slice(0, 16);
}

/** Weights and tables removed: what the client artefact keeps of a circuit. */
function clientArtefactOf(c: Circuit, circuitId: string, info: ArtefactInfo): ClientArtefact {
  return {
    format: CLIENT_ARTEFACT_FORMAT,
    fhenetVersion: FHENET_VERSION,
    circuitFormat: CIRCUIT_FORMAT,
    backend: info.backend,
    circuitId,
    modelName: info.modelName,
    moduleName: info.moduleName,
    inputShape: [...c.input.shape],
    outputShape: [...c.output.shape],
    input: { ...c.input },
    output: { shape: [...c.output.shape], channels: c.output.channels, channelStride: c.output.channelStride, a: Array.from(c.output.a), c: Array.from(c.output.c) },
    ...(info.backend ? backendInfoOf(c, info.backend) : {}),
  };
}

function backendInfoOf(c: Circuit, backend: string): { backendInfo?: Record<string, unknown> } {
  const b = serverBackend(backend);
  return b.clientInfo ? { backendInfo: b.clientInfo(c) } : {};
}

/** The circuit bytes with the hybrid metadata stamped in (the id is the hash of these bytes). */
function serverBytesOf(c: Circuit, info: ArtefactInfo): Uint8Array {
  const stamped: Circuit = {
    ...c,
    metadata: {
      ...c.metadata,
      'hybrid.format': SERVER_ARTEFACT_FORMAT,
      'fhenet.version': FHENET_VERSION,
      'hybrid.backend': info.backend,
      'hybrid.model': info.modelName,
      'hybrid.module': info.moduleName,
    },
  };
  return serializeCircuit(stamped);
}

export class FHEModelDev {
  readonly serverBytes: Uint8Array;
  readonly circuitId: string;
  readonly clientArtefact: ClientArtefact;

  constructor(
    readonly dir: string,
    circuit: Circuit,
    readonly info: ArtefactInfo,
  ) {
    this.serverBytes = serverBytesOf(circuit, info);
    this.circuitId = circuitIdOf(this.serverBytes);
    this.clientArtefact = clientArtefactOf(circuit, this.circuitId, info);
  }

  /** Writes `server.fhe` and `client.json` into `dir` (atomically). */
  save(): { server: string; client: string } {
    const server = path.join(this.dir, SERVER_FILE);
    const client = path.join(this.dir, CLIENT_FILE);
    writeFileAtomic(server, this.serverBytes);
    writeFileAtomic(client, JSON.stringify(this.clientArtefact, null, 1));
    return { server, client };
  }
}

function readArtefact(dirOrFile: string, file: string): Uint8Array {
  const p = fs.existsSync(dirOrFile) && fs.statSync(dirOrFile).isDirectory() ? path.join(dirOrFile, file) : dirOrFile;
  if (!fs.existsSync(p)) throw new HybridError(`no artefact at ${p}`, 404, 'not_found');
  return new Uint8Array(fs.readFileSync(p));
}

export class FHEModelServer {
  readonly circuit: Circuit;
  readonly circuitId: string;
  readonly info: ArtefactInfo;

  private constructor(bytes: Uint8Array) {
    let c: Circuit;
    try {
      c = deserializeCircuit(bytes);
    } catch (e) {
      throw new ArtefactVersionError(`server artefact: ${(e as Error).message}`);
    }
    checkVersion('server artefact', c.metadata['hybrid.format'], SERVER_ARTEFACT_FORMAT, c.metadata['fhenet.version']);
    this.circuit = c;
    this.circuitId = circuitIdOf(bytes);
    this.info = { modelName: c.metadata['hybrid.model'] ?? '', moduleName: c.metadata['hybrid.module'] ?? '', backend: c.metadata['hybrid.backend'] ?? '' };
    serverBackend(this.info.backend); // fails early if this build cannot run it
  }

  static fromBytes(bytes: Uint8Array): FHEModelServer {
    return new FHEModelServer(bytes);
  }

  /** Loads `server.fhe` from a module/shape folder (or the file itself). */
  static load(dirOrFile: string): FHEModelServer {
    return new FHEModelServer(readArtefact(dirOrFile, SERVER_FILE));
  }

  /**
   * Validates serialized evaluation keys and returns the handle `run` takes (cache it per uid). Synchronous backends
   * only (simulate); `loadKeyAsync` works for every backend.
   */
  loadKey(evaluationKeys: Uint8Array): unknown {
    const h = serverBackend(this.info.backend).parseKey(evaluationKeys, this.circuitId, this.circuit);
    if (h instanceof Promise) {
      h.then((k) => this.disposeKey(k), () => undefined);
      throw new HybridError(`backend '${this.info.backend}' loads keys asynchronously: use loadKeyAsync`, 500, 'internal');
    }
    return h;
  }

  async loadKeyAsync(evaluationKeys: Uint8Array): Promise<unknown> {
    return serverBackend(this.info.backend).parseKey(evaluationKeys, this.circuitId, this.circuit);
  }

  /** Releases a handle from loadKey/loadKeyAsync (tfhe: stops its worker threads). */
  async disposeKey(handle: unknown): Promise<void> {
    await serverBackend(this.info.backend).dispose?.(handle);
  }

  /** Runs the circuit on serialized encrypted inputs with the client's evaluation keys (bytes or a loaded handle). Synchronous backends only. */
  run(ciphertext: Uint8Array, evaluationKeys: Uint8Array | { handle: unknown }): Uint8Array {
    const key = evaluationKeys instanceof Uint8Array ? this.loadKey(evaluationKeys) : evaluationKeys.handle;
    const r = serverBackend(this.info.backend).run(this.circuit, this.circuitId, key, ciphertext);
    if (r instanceof Promise) {
      r.catch(() => undefined);
      throw new HybridError(`backend '${this.info.backend}' runs asynchronously: use runAsync`, 500, 'internal');
    }
    return r;
  }

  /** `run` for every backend (tfhe: the PBS run in the key's worker pool, off the calling thread). */
  async runAsync(ciphertext: Uint8Array, evaluationKeys: Uint8Array | { handle: unknown }): Promise<Uint8Array> {
    if (evaluationKeys instanceof Uint8Array) {
      const key = await this.loadKeyAsync(evaluationKeys);
      try {
        return await serverBackend(this.info.backend).run(this.circuit, this.circuitId, key, ciphertext);
      } finally {
        await this.disposeKey(key);
      }
    }
    return serverBackend(this.info.backend).run(this.circuit, this.circuitId, evaluationKeys.handle, ciphertext);
  }
}

export function parseClientArtefact(bytes: Uint8Array | string): ClientArtefact {
  let a: ClientArtefact;
  try {
    a = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8')) as ClientArtefact;
  } catch {
    throw new ArtefactVersionError('client artefact is not valid JSON');
  }
  if (!a || typeof a !== 'object') throw new ArtefactVersionError('client artefact is not a JSON object');
  checkVersion('client artefact', a.format, CLIENT_ARTEFACT_FORMAT, a.fhenetVersion);
  if (a.circuitFormat !== CIRCUIT_FORMAT) throw new ArtefactVersionError(`client artefact: circuit format '${a.circuitFormat}', this build reads '${CIRCUIT_FORMAT}'`);
  return a;
}

export class FHEModelClient {
  readonly artefact: ClientArtefact;
  #keys: ClientKeys | undefined;
  /** A circuit-shaped view of the quantizers (for quantizeInput / dequantizeOutput). */
  private readonly view: Circuit;

  private constructor(artefact: ClientArtefact) {
    this.artefact = artefact;
    clientBackend(artefact.backend);
    const o = artefact.output;
    this.view = {
      format: CIRCUIT_FORMAT,
      input: artefact.input,
      values: [],
      ops: [],
      output: { value: '', name: '', shape: o.shape, channels: o.channels, channelStride: o.channelStride, a: Float64Array.from(o.a), c: Float64Array.from(o.c) },
      ranges: {},
      metadata: {},
    };
  }

  static fromArtefact(bytes: Uint8Array | string | ClientArtefact): FHEModelClient {
    return new FHEModelClient(typeof bytes === 'object' && !(bytes instanceof Uint8Array) ? parseClientArtefact(JSON.stringify(bytes)) : parseClientArtefact(bytes));
  }

  /** Loads `client.json` from a module/shape folder (or the file itself). */
  static load(dirOrFile: string): FHEModelClient {
    return new FHEModelClient(parseClientArtefact(readArtefact(dirOrFile, CLIENT_FILE)));
  }

  get inputSize(): number {
    return size(this.artefact.inputShape);
  }

  get outputSize(): number {
    return size(this.artefact.outputShape);
  }

  /** Synchronous key generation (simulate); `generatePrivateAndEvaluationKeysAsync` works for every backend. */
  generatePrivateAndEvaluationKeys(): void {
    const k = clientBackend(this.artefact.backend).generateKeys(this.artefact.circuitId, this.artefact.backendInfo);
    if (k instanceof Promise) {
      k.then((x) => x.dispose?.(), () => undefined);
      throw new HybridError(`backend '${this.artefact.backend}' generates keys asynchronously: use generatePrivateAndEvaluationKeysAsync`, 500, 'internal');
    }
    this.#keys = k;
  }

  async generatePrivateAndEvaluationKeysAsync(): Promise<void> {
    this.#keys?.dispose?.();
    this.#keys = await clientBackend(this.artefact.backend).generateKeys(this.artefact.circuitId, this.artefact.backendInfo);
  }

  /** Frees the secret key (tfhe: the WASM memory of the node-tfhe client key). */
  dispose(): void {
    this.#keys?.dispose?.();
    this.#keys = undefined;
  }

  private keys(): ClientKeys {
    if (!this.#keys) throw new HybridError('no keys yet: call generatePrivateAndEvaluationKeys() first', 400, 'no_keys');
    return this.#keys;
  }

  getSerializedEvaluationKeys(): Uint8Array {
    return this.keys().evaluationKeys();
  }

  /** Float inputs [n, ...inputShape] → quantized → encrypted → serialized. */
  quantizeEncryptSerialize(x: ArrayLike<number>, n: number): Uint8Array {
    if (!Number.isInteger(n) || n < 1 || x.length !== n * this.inputSize) {
      throw new HybridError(`${x.length} values do not make ${n} inputs of shape [${this.artefact.inputShape}]`, 400, 'bad_shape');
    }
    return this.keys().encrypt(quantizeInput(this.view, x), n);
  }

  /** Serialized encrypted outputs → decrypted integers and dequantized floats [n, ...outputShape]. */
  deserializeDecryptDequantize(bytes: Uint8Array, n: number): { output: Float32Array; ints: Float64Array } {
    const ints = this.keys().decrypt(bytes, n, n * this.outputSize);
    return { output: dequantizeOutput(this.view, ints), ints };
  }
}
