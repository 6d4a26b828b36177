/**
 * The two interfaces of the crypto seam (see backend.ts for the backends and their byte formats). They live apart from
 * the backend registry so that a backend implementation (tfhe-backend.ts) depends on the interfaces only, not on the
 * registry that lists it.
 */
import type { Circuit } from '../compiler/circuit.js';

export interface ClientKeys {
  /** Serialized evaluation keys (what the client uploads; the server computes with them). */
  evaluationKeys(): Uint8Array;
  /** Quantized input integers [n, ...] → serialized ciphertexts. */
  encrypt(ints: Float64Array, n: number): Uint8Array;
  /** Serialized output ciphertexts → integers; `expectCount` is n × per-sample output size. */
  decrypt(bytes: Uint8Array, n: number, expectCount: number): Float64Array;
  /** Frees the secret key (optional). */
  dispose?(): void;
}

export interface ClientBackend {
  readonly name: string;
  /**
   * New keys for one circuit. `backendInfo` is the artefact's `backendInfo` (what `ServerBackend.clientInfo` wrote at
   * compile time). Backends whose key generation is asynchronous (tfhe) return a Promise.
   */
  generateKeys(circuitId: string, backendInfo?: Record<string, unknown>): ClientKeys | Promise<ClientKeys>;
}

export interface ServerBackend {
  readonly name: string;
  /** What the client artefact must carry for this backend (computed from the circuit at compile time; no weight). */
  clientInfo?(circuit: Circuit): Record<string, unknown>;
  /** Validates and loads serialized evaluation keys for one circuit; throws HybridError (4xx) on bad bytes. */
  parseKey(bytes: Uint8Array, circuitId: string, circuit: Circuit): unknown;
  /** Runs the circuit on serialized ciphertexts; throws HybridError (4xx) on bad or mismatched ciphertexts. */
  run(circuit: Circuit, circuitId: string, key: unknown, ciphertext: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** Releases a loaded key (worker threads, memory); called when the server evicts it. */
  dispose?(key: unknown): void | Promise<void>;
  /** The byte format of a valid evaluation key for this circuit (the server limits and checks uploads with it). */
  keyFormat(circuit: Circuit, circuitId: string): KeyFormat;
  /** The byte format of a request for this circuit (the server bounds bodies and batch sizes with it). */
  requestFormat(circuit: Circuit): RequestFormat;
}

/** What a server knows about a valid evaluation key before receiving it. */
export interface KeyFormat {
  /** The exact size of a valid key. */
  bytes: number;
  /** How many leading bytes `checkHeader` needs. */
  headerBytes: number;
  /** Throws HybridError (400 bad_key) when the key's first `headerBytes` bytes cannot start a valid key. */
  checkHeader(header: Uint8Array): void;
}

/** The size of a request and the memory its computation takes. */
export interface RequestFormat {
  /** The exact size of an input frame of n samples. */
  frameBytes(n: number): number;
  /** Memory one encrypted value takes while the circuit runs (every value of the circuit is held until the end). */
  workingBytesPerValue: number;
}

// ---- simulate -----------------------------------------------------------------------------------------------------
