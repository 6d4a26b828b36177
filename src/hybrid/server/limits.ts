/**
 * Admission control of the model server: how many computations may be in flight (per uid and in total) and how
 * many bytes a request body may bring. A computation holds its slot from the first byte of its body to its answer,
 * so the memory of bodies being received and circuits being run is bounded by the caps times the per-module limits.
 */
import { HybridError } from '../errors.js';

/** Per-uid and total caps on computations in flight; past a cap a request is refused with 429 and Retry-After. */
export class ComputeSlots {
  private readonly perUid = new Map<string, number>();
  private total = 0;
  /** Moving average of how long a slot is held, ms: what a refused client is told to wait. */
  private heldMs = 1000;

  constructor(
    readonly maxPerUid: number,
    readonly maxTotal: number,
  ) {}

  get inFlight(): number {
    return this.total;
  }

  /** Takes a slot for `uid` or throws a 429; the returned function releases it (once). */
  acquire(uid: string): () => void {
    const mine = this.perUid.get(uid) ?? 0;
    const retry = Math.max(1, Math.ceil(this.heldMs / 1000));
    if (mine >= this.maxPerUid) throw new TooManyRequests(`uid ${uid} already has ${mine} computations in flight (the limit per uid); retry after ${retry} s`, retry);
    if (this.total >= this.maxTotal) throw new TooManyRequests(`the server is running ${this.total} computations (its limit); retry after ${retry} s`, retry);
    this.perUid.set(uid, mine + 1);
    this.total++;
    let released = false;
    const t0 = performance.now();
    return () => {
      if (released) return;
      released = true;
      this.heldMs = 0.8 * this.heldMs + 0.2 * (performance.now() - t0);
      this.total--;
      const left = (this.perUid.get(uid) ?? 1) - 1;
      if (left > 0) this.perUid.set(uid, left);
      else this.perUid.delete(uid);
    };
  }
}

export class TooManyRequests extends HybridError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message, 429, 'too_many_requests');
  }
}

/** The declared Content-Length, refused with 413 when over `limit`. */
export function checkDeclaredLength(header: string | undefined, limit: number, what: string, hint = ''): void {
  const declared = Number(header);
  if (header !== undefined && Number.isFinite(declared) && declared > limit) {
    throw new HybridError(`${what} is ${declared} bytes, over the ${limit}-byte limit${hint}`, 413, 'too_large');
  }
}

/** Reads a request body stream into one buffer, refusing (413) as soon as it grows past `limit`. */
export async function readBody(stream: AsyncIterable<Buffer>, limit: number, what: string, hint = ''): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    n += chunk.length;
    if (n > limit) throw new HybridError(`${what} is over the ${limit}-byte limit${hint}`, 413, 'too_large');
    chunks.push(chunk);
  }
  if (n === 0) throw new HybridError(`${what} is empty`, 400, 'empty_body');
  return Buffer.concat(chunks, n);
}
