/**
 * All-core KS-PBS: a pool of worker threads that share ONE expanded key.
 *
 * The key is expanded once in the calling thread into SharedArrayBuffers (keyswitching key rows and
 * Fourier bootstrapping key: ≈ 120 MB for 2_2) and handed to every worker without copying; each
 * worker only owns its scratch buffers. Independent PBS (one per table lookup of a layer) are then
 * spread over the threads. Noise budgets are checked in the calling thread before dispatch, so a
 * refused operation never reaches a worker.
 */
import { Worker } from 'node:worker_threads';
import { cpus } from 'node:os';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { TfheError } from './errors.js';
import { LweCiphertext } from './lwe.js';
import type { Lut } from './lut.js';
import { ServerKey, type ServerKeyOptions } from './server-key.js';

/** One message to a worker: a batch of ciphertexts with their tables (blind-rotated together). */
interface Pending {
  id: number;
  cts: readonly LweCiphertext[];
  luts: readonly Lut[];
  resolve: (c: LweCiphertext[]) => void;
  reject: (e: Error) => void;
}

/** Largest batch per worker message (the native kernel streams the key once per batch). */
const MAX_BATCH = 8;

export class PbsPool {
  private readonly idle: Worker[] = [];
  private readonly queue: Pending[] = [];
  private readonly inflight = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  private constructor(
    /** The calling thread's key: linear operations, parsing, serialization, noise checks. */
    readonly key: ServerKey,
    private readonly workers: Worker[],
  ) {
    for (const w of workers) {
      w.on('message', (msg: { id: number; data?: Uint32Array[]; error?: string }) => {
        const p = this.inflight.get(msg.id);
        this.inflight.delete(msg.id);
        this.idle.push(w);
        if (p) {
          if (msg.data) p.resolve(msg.data.map((d, i) => new LweCiphertext(d, key.budget.pbsOutputVariance, 1, p.luts[i]!.degree)));
          else p.reject(new TfheError(msg.error ?? 'worker failed'));
        }
        this.pump();
      });
      w.on('error', (e) => {
        for (const p of this.inflight.values()) p.reject(e);
        this.inflight.clear();
      });
      this.idle.push(w);
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  get backend(): string {
    return this.key.backend;
  }

  /** Expand the key once (shared memory) and start `threads` workers (default: all cores). */
  static async create(keyBytes: Uint8Array, opts: ServerKeyOptions & { threads?: number } = {}): Promise<PbsPool> {
    const key = ServerKey.fromCompressedBytes(keyBytes, { ...opts, shared: true });
    const threads = Math.max(1, opts.threads ?? cpus().length);
    // Under a TypeScript loader (tsx, vitest) this file is .ts: the worker needs the loader too.
    // Under tsx namespaces the URL carries a query (?tsx-namespace=…): look at the path only.
    const isTs = new URL(import.meta.url).pathname.endsWith('.ts');
    const url = new URL(isTs ? './pool-worker.ts' : './pool-worker.js', import.meta.url);
    const workers: Worker[] = [];
    const init = {
      params: key.params,
      ksk: key.ksk,
      bsk: key.bsk,
      backend: key.backend,
      transform: key.transform,
      log2PError: key.budget.log2PError,
    };
    // A .ts worker (development, tests) first registers tsx's loader, then imports the module.
    const bootstrap = isTs
      ? `import(${JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href)})` +
        `.then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`
      : undefined;
    for (let i = 0; i < threads; i++) {
      workers.push(bootstrap ? new Worker(bootstrap, { eval: true, workerData: init }) : new Worker(url, { workerData: init }));
    }
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.once('message', (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new TfheError(m.error ?? 'worker init failed'))));
            w.once('error', reject);
          }),
      ),
    );
    return new PbsPool(key, workers);
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const p = this.queue.shift()!;
      this.inflight.set(p.id, p);
      w.postMessage({
        id: p.id,
        data: p.cts.map((c) => c.data),
        variance: p.cts.map((c) => c.variance),
        luts: p.luts.map((l) => l.poly),
      });
    }
  }

  private submit(cts: readonly LweCiphertext[], luts: readonly Lut[]): Promise<LweCiphertext[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, cts, luts, resolve, reject });
      this.pump();
    });
  }

  /** One KS-PBS on some worker. Noise and shape are checked here, synchronously. */
  pbs(ct: LweCiphertext, lut: Lut): Promise<LweCiphertext> {
    if (this.closed) return Promise.reject(new TfheError('pool is closed'));
    this.key.checkPbsInput(ct, lut);
    return this.submit([ct], [lut]).then((r) => r[0]!);
  }

  /**
   * Independent KS-PBS over all threads: the inputs are split into one batch per thread (at most
   * MAX_BATCH each), every batch blind-rotated in one pass over the shared key.
   */
  async pbsMany(cts: readonly LweCiphertext[], luts: Lut | readonly Lut[]): Promise<LweCiphertext[]> {
    if (this.closed) throw new TfheError('pool is closed');
    const list = Array.isArray(luts) ? (luts as readonly Lut[]) : new Array<Lut>(cts.length).fill(luts as Lut);
    if (list.length !== cts.length) throw new TfheError(`pbsMany: ${list.length} tables for ${cts.length} ciphertexts`);
    cts.forEach((c, i) => this.key.checkPbsInput(c, list[i]!));
    const size = Math.max(1, Math.min(MAX_BATCH, Math.ceil(cts.length / this.workers.length)));
    const parts: Promise<LweCiphertext[]>[] = [];
    for (let i = 0; i < cts.length; i += size) parts.push(this.submit(cts.slice(i, i + size), list.slice(i, i + size)));
    return (await Promise.all(parts)).flat();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
