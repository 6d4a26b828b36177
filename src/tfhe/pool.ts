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

interface Pending {
  id: number;
  ct: LweCiphertext;
  lut: Lut;
  resolve: (c: LweCiphertext) => void;
  reject: (e: Error) => void;
}

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
      w.on('message', (msg: { id: number; data?: Uint32Array; error?: string }) => {
        const p = this.inflight.get(msg.id);
        this.inflight.delete(msg.id);
        this.idle.push(w);
        if (p) {
          if (msg.data) p.resolve(new LweCiphertext(msg.data, key.budget.pbsOutputVariance, 1, p.lut.degree));
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
    const isTs = import.meta.url.endsWith('.ts');
    const url = new URL(isTs ? './pool-worker.ts' : './pool-worker.js', import.meta.url);
    const workers: Worker[] = [];
    const init = {
      params: key.params,
      ksk: key.ksk,
      bsk: key.bsk,
      backend: key.backend,
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
      w.postMessage({ id: p.id, data: p.ct.data, lut: p.lut.poly, variance: p.ct.variance });
    }
  }

  /** One KS-PBS on some worker. Noise and shape are checked here, synchronously. */
  pbs(ct: LweCiphertext, lut: Lut): Promise<LweCiphertext> {
    if (this.closed) return Promise.reject(new TfheError('pool is closed'));
    this.key.checkPbsInput(ct, lut);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, ct, lut, resolve, reject });
      this.pump();
    });
  }

  pbsMany(cts: readonly LweCiphertext[], lut: Lut): Promise<LweCiphertext[]> {
    for (const ct of cts) this.key.checkPbsInput(ct, lut);
    return Promise.all(cts.map((c) => this.pbs(c, lut)));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
