/**
 * The distributed-PBS job protocol shared by the server side (pbs-queue.ts) and the workers (pbs-worker.ts).
 *
 * A request (one layer's independent lookups of one circuit evaluation) is split into jobs of `chunk` PBS. The
 * BullMQ job carries only small JSON (ids, variances, table indices); the bytes live in plain Redis strings with a
 * time to live, written once and read once, so neither BullMQ's job hashes nor its event stream hold ciphertexts:
 *   fhenet:pbs:key:<keyId>          the client's compressed server key (chunked blob, see blobs.ts)
 *   fhenet:pbs:r:<req>:lut:<k>      table k of the request: N float64 coefficients
 *   fhenet:pbs:r:<req>:in:<j>       job j's inputs: count × 2(n+1) u32 words (LWE mask and body, u64 as lo/hi)
 *   fhenet:pbs:r:<req>:out:<j>      job j's outputs: count × 2(N·k+1) u32 words, written by the worker
 *   fhenet:pbs:r:<req>:done         list of finished job indices ("j"), or "!j message" for a job that cannot succeed
 * A job retried after a worker died writes the same bytes again (the PBS is deterministic), so duplicates are harmless.
 */
export const PBS_QUEUE = 'fhenet-pbs';
export const KEY_BLOB_PREFIX = 'fhenet:pbs:key:';

export interface PbsJobData {
  /** Request id (uuid). */
  req: string;
  /** Job index within the request. */
  j: number;
  /** Id of the key blob (sha-256 of the key bytes and the settings below). */
  key: string;
  /** Parameter-set name (named sets only). */
  params: string;
  log2PError: number;
  /** Noise variance of each input (the worker's key re-checks the bootstrapping budget). */
  variances: number[];
  /** Table index of each input. */
  luts: number[];
  /** Time to live of the request's keys, ms. */
  ttlMs: number;
}

export const requestKey = (req: string, what: string): string => `fhenet:pbs:r:${req}:${what}`;

/** A copy with its own, aligned buffer (Redis buffers may start at any byte offset). */
export function alignedCopy(b: Uint8Array): ArrayBuffer {
  const c = new Uint8Array(b.length);
  c.set(b);
  return c.buffer;
}

/** Concatenates typed arrays into one Buffer (for a Redis value). */
export function concatWords(parts: readonly (Uint32Array | Float64Array)[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}
