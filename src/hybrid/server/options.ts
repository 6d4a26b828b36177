/**
 * The model server's options and their defaults. Every limit that bounds memory or disk is here; per-module limits
 * (exact key size, largest request) are derived from each module's circuit and backend in models.ts.
 */
import type { FastifyServerOptions } from 'fastify';
import { FhenetError } from '../../util/errors.js';
import type { KeyStore } from './key-store.js';

export interface ServeOptions {
  /** Folder of models: `<modelsDir>/<model>/<module>/<shape>/{server.fhe, client.json}`. */
  modelsDir: string;
  /** Folder where evaluation keys are stored, one `<uid>.key` + `<uid>.json` per upload. */
  keysDir: string;
  /**
   * Upper bound on an evaluation-key upload, bytes (default 512 MiB). Each module accepts exactly its backend's key
   * size (36 bytes for simulate, ≈ 29 MiB for TFHE 2_2), so this only matters for a backend without a fixed size.
   */
  maxKeyBytes?: number;
  /** Byte budget of all stored evaluation keys together, metadata included (default 8 GiB); least recently used keys make room. */
  maxStoredKeyBytes?: number;
  /** Delete keys not used for this long (seconds; default: never, only the byte budget deletes keys). */
  keyTtlSeconds?: number;
  /** Upper bound on a /compute body, bytes (default 64 MiB); each module's own bound (its largest batch) is usually far lower. */
  maxCiphertextBytes?: number;
  /** Largest batch (samples) in one /compute request (default 1024); lowered per module by `maxComputeMemoryBytes`. */
  maxBatch?: number;
  /**
   * Memory one computation may hold for its encrypted values (default 1 GiB): a module's largest batch is
   * this / (values of its circuit × bytes per value while computing), at least 1.
   */
  maxComputeMemoryBytes?: number;
  /** Computations (requests from their first body byte to their answer) in flight per uid (default 2); past it, 429. */
  maxComputePerUid?: number;
  /** Computations in flight in total (default 8); past it, 429 with Retry-After. */
  maxComputeTotal?: number;
  /** Loaded evaluation keys kept in memory (least recently used evicted; reloaded from disk). Default 64. */
  keyCacheSize?: number;
  /**
   * Loaded keys of the tfhe backend kept in memory (each holds an expanded key, ≈ 120 MB for 2_2, and a worker pool).
   * Default 4; evicted ones are closed once their in-flight computations finish and reloaded from disk when needed.
   */
  tfheKeyCacheSize?: number;
  /** KS-PBS worker threads per loaded tfhe key (default 2, minimum 2: the PBS never run on the event loop). */
  tfheThreads?: number;
  /** Hybrid LLM routes (llm-routes.ts): tokens one client key may process (default unlimited), keys kept in memory. */
  llmMaxTokensPerKey?: number;
  llmMaxKeys?: number;
  /** Bearer tokens accepted; default none: the server is open to anyone who can reach it. */
  apiTokens?: readonly string[];
  /**
   * A token file (`--token-file`: one per line, `#` comments) instead of `apiTokens`; `app.reloadTokens()` re-reads
   * it, and `serve` does so on SIGHUP.
   */
  tokenFile?: string;
  /**
   * Where keys are stored: a `KeyStore` built from the server's pinning and deletion callbacks (default: the local
   * directory `keysDir`, `LocalDirectoryKeyStore`).
   */
  keyStore?: (opts: { capacityBytes: number; isPinned: (uid: string) => boolean; onDelete: (uid: string, reason: string) => void }) => Promise<KeyStore>;
  /** fastify/pino logger option (default { level: 'info' }); false to silence. */
  logger?: FastifyServerOptions['logger'];
}

export type Limits = Required<Pick<ServeOptions, 'maxKeyBytes' | 'maxStoredKeyBytes' | 'maxCiphertextBytes' | 'maxBatch' | 'maxComputeMemoryBytes' | 'maxComputePerUid' | 'maxComputeTotal' | 'keyCacheSize' | 'tfheKeyCacheSize'>> & {
  keyTtlMs: number | undefined;
};

export function limitsOf(opts: ServeOptions): Limits {
  const positive = (name: keyof ServeOptions, v: number | undefined, dflt: number, integer = true): number => {
    if (v === undefined) return dflt;
    if (!(v > 0) || (integer && !Number.isInteger(v))) throw new FhenetError(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
    return v;
  };
  return {
    maxKeyBytes: positive('maxKeyBytes', opts.maxKeyBytes, 512 * 2 ** 20),
    maxStoredKeyBytes: positive('maxStoredKeyBytes', opts.maxStoredKeyBytes, 8 * 2 ** 30),
    maxCiphertextBytes: positive('maxCiphertextBytes', opts.maxCiphertextBytes, 64 * 2 ** 20),
    maxBatch: positive('maxBatch', opts.maxBatch, 1024),
    maxComputeMemoryBytes: positive('maxComputeMemoryBytes', opts.maxComputeMemoryBytes, 2 ** 30),
    maxComputePerUid: positive('maxComputePerUid', opts.maxComputePerUid, 2),
    maxComputeTotal: positive('maxComputeTotal', opts.maxComputeTotal, 8),
    keyCacheSize: positive('keyCacheSize', opts.keyCacheSize, 64),
    tfheKeyCacheSize: Math.max(1, opts.tfheKeyCacheSize ?? 4),
    keyTtlMs: opts.keyTtlSeconds === undefined ? undefined : positive('keyTtlSeconds', opts.keyTtlSeconds, 0, false) * 1000,
  };
}
