/**
 * Server side of distributed execution: a PbsRunner (src/tfhe/executor-server.ts) that fans a layer's independent
 * KS-PBS out to `fhenet worker` processes through a BullMQ queue and gathers the results in input order.
 *
 * The server keeps parsing, linear operations, noise checks and serialization; only the bootstraps travel. The
 * client's compressed server key is published once per key (a chunked blob keyed by its hash, refreshed on use);
 * each worker fetches it once and keeps it expanded (pbs-worker.ts). Protocol: pbs-jobs.ts.
 *
 * Every wait is bounded: a request that has not gathered all its jobs within `jobTimeoutMs` fails (and its jobs
 * are removed); a job whose worker died is retried by BullMQ once its lock expires (stalled-job check).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { TfheError } from '../tfhe/errors.js';
import type { PbsRunner, PbsRunnerFactory } from '../runtime/executor-server.js';
import type { Lut } from '../tfhe/lut.js';
import { LweCiphertext } from '../tfhe/lwe.js';
import { NAMED_PARAMS, bigLweDimension } from '../tfhe/params.js';
import type { ServerKey } from '../tfhe/server-key.js';
import { ConfigError } from '../util/errors.js';
import { RedisBlobs } from './blobs.js';
import { KEY_BLOB_PREFIX, PBS_QUEUE, type PbsJobData, alignedCopy, concatWords, requestKey } from './pbs-jobs.js';
import { type RedisTarget, bullConnection, connectRedis } from './redis.js';

export interface PbsQueueOptions {
  /** PBS per job (default 16: ≈ 1 s of work at 2_3, against ≈ 1 ms of queue overhead per job). */
  chunk?: number;
  /** Longest wait for one layer's jobs, ms (default 1 h). */
  jobTimeoutMs?: number;
  /** Time to live of a published key blob, refreshed on every use (default 24 h). */
  keyTtlMs?: number;
  /** Attempts per job when a worker fails with an infrastructure error (default 5). */
  attempts?: number;
  /** Queue name (default 'fhenet-pbs'); workers must use the same. */
  queueName?: string;
}

/** Error of a distributed PBS request (timeout, a job that failed on every attempt). */
export class PbsQueueError extends TfheError {
  override name = 'PbsQueueError';
}

export class PbsQueueClient {
  /** Lookups sent out, jobs sent out (for metrics and the benchmark). */
  readonly stats = { pbs: 0, jobs: 0, requests: 0 };
  private readonly blobs: RedisBlobs;
  private readonly opts: Required<PbsQueueOptions>;
  private closed = false;

  private constructor(
    readonly target: RedisTarget,
    private readonly redis: Redis,
    private readonly queue: Queue<PbsJobData>,
    opts: PbsQueueOptions,
  ) {
    this.opts = { chunk: 16, jobTimeoutMs: 3_600_000, keyTtlMs: 86_400_000, attempts: 5, queueName: PBS_QUEUE, ...opts };
    if (!Number.isInteger(this.opts.chunk) || this.opts.chunk < 1) throw new ConfigError(`PBS per job must be an integer ≥ 1, got ${this.opts.chunk}`);
    this.blobs = new RedisBlobs(redis, KEY_BLOB_PREFIX);
  }

  static async connect(target: RedisTarget, opts: PbsQueueOptions = {}): Promise<PbsQueueClient> {
    const redis = connectRedis(target, 'fhenet-pbs-client');
    const queue = new Queue<PbsJobData>(opts.queueName ?? PBS_QUEUE, { connection: bullConnection(target) });
    await queue.waitUntilReady();
    return new PbsQueueClient(target, redis, queue, opts);
  }

  /** The factory to give TfheCircuitServer (`pbsRunner`) or the hybrid server's tfhe backend. */
  get factory(): PbsRunnerFactory {
    return (key, keyBytes) => this.runnerFor(key, keyBytes);
  }

  /** Publishes the key (once per distinct key) and returns a runner bound to it. */
  async runnerFor(key: ServerKey, keyBytes: Uint8Array): Promise<PbsRunner> {
    const name = key.params.name;
    if (!NAMED_PARAMS[name] || JSON.stringify(NAMED_PARAMS[name]) !== JSON.stringify(key.params)) throw new ConfigError(`distributed PBS needs a named parameter set (workers rebuild it by name); this key uses '${name}'`);
    const log2PError = key.budget.log2PError;
    const keyId = createHash('sha256').update(keyBytes).update(`\0${name}\0${log2PError}`).digest('hex');
    if (!(await this.blobs.stat(keyId))) await this.blobs.put(keyId, keyBytes, this.opts.keyTtlMs);
    const client = this;
    return {
      threads: 0, // unknown: as many as the workers have
      async pbsMany(cts, luts) {
        await client.blobs.expire(keyId, client.opts.keyTtlMs);
        return client.pbsMany(key, keyId, cts, luts);
      },
      async close() {
        // The blob stays until its time to live: other replicas may be using the same key.
      },
    };
  }

  /** Runs independent KS-PBS on the workers; results in input order. */
  async pbsMany(key: ServerKey, keyId: string, cts: readonly LweCiphertext[], luts: readonly Lut[]): Promise<LweCiphertext[]> {
    if (this.closed) throw new PbsQueueError('the PBS queue client is closed');
    if (luts.length !== cts.length) throw new PbsQueueError(`pbsMany: ${luts.length} tables for ${cts.length} ciphertexts`);
    cts.forEach((c, i) => key.checkPbsInput(c, luts[i]!));
    if (cts.length === 0) return [];
    const req = randomUUID();
    const { chunk, jobTimeoutMs, attempts } = this.opts;
    const ttlMs = jobTimeoutMs + 60_000;
    const lutIndex = new Map<Lut, number>();
    for (const l of luts) if (!lutIndex.has(l)) lutIndex.set(l, lutIndex.size);
    const nJobs = Math.ceil(cts.length / chunk);
    const written: string[] = [requestKey(req, 'done')];
    const jobs: { name: string; data: PbsJobData; opts: { jobId: string; attempts: number; backoff: { type: 'fixed'; delay: number }; removeOnComplete: true; removeOnFail: { age: number } } }[] = [];
    try {
      let m = this.redis.multi();
      for (const [l, k] of lutIndex) {
        m.set(requestKey(req, `lut:${k}`), concatWords([l.poly]), 'PX', ttlMs);
        written.push(requestKey(req, `lut:${k}`));
      }
      await m.exec();
      m = this.redis.multi();
      for (let j = 0; j < nJobs; j++) {
        const part = cts.slice(j * chunk, (j + 1) * chunk);
        m.set(requestKey(req, `in:${j}`), concatWords(part.map((c) => c.data)), 'PX', ttlMs);
        written.push(requestKey(req, `in:${j}`), requestKey(req, `out:${j}`));
        jobs.push({
          name: 'pbs',
          data: {
            req,
            j,
            key: keyId,
            params: key.params.name,
            log2PError: key.budget.log2PError,
            variances: part.map((c) => c.variance),
            luts: luts.slice(j * chunk, (j + 1) * chunk).map((l) => lutIndex.get(l)!),
            ttlMs,
          },
          opts: { jobId: `${req}-${j}`, attempts, backoff: { type: 'fixed', delay: 500 }, removeOnComplete: true, removeOnFail: { age: 3600 } },
        });
        if ((j + 1) % 64 === 0) {
          await m.exec();
          m = this.redis.multi();
        }
      }
      await m.exec();
      await this.queue.addBulk(jobs);
      this.stats.requests++;
      this.stats.jobs += nJobs;
      this.stats.pbs += cts.length;
      await this.gather(req, nJobs, jobTimeoutMs);
      const outs = await this.redis.mgetBuffer(...Array.from({ length: nJobs }, (_, j) => requestKey(req, `out:${j}`)));
      const result: LweCiphertext[] = [];
      const words = 2 * (bigLweDimension(key.params) + 1);
      for (let j = 0; j < nJobs; j++) {
        const o = outs[j];
        const count = Math.min(chunk, cts.length - j * chunk);
        if (!o || o.length !== count * words * 4) throw new PbsQueueError(`job ${j} of request ${req}: result missing or of the wrong size`);
        const all = new Uint32Array(alignedCopy(o));
        for (let i = 0; i < count; i++) {
          const lut = luts[j * chunk + i]!;
          result.push(new LweCiphertext(all.slice(i * words, (i + 1) * words), key.budget.pbsOutputVariance, 1, lut.degree));
        }
      }
      return result;
    } catch (e) {
      // Jobs still waiting would run for nothing: remove them (a running one finds its inputs gone and stops).
      await Promise.all(jobs.map((j) => this.queue.remove(j.opts.jobId).catch(() => 0)));
      throw e;
    } finally {
      for (let i = 0; i < written.length; i += 256) await this.redis.del(...written.slice(i, i + 256)).catch(() => 0);
    }
  }

  /** Waits (bounded) until every job of `req` reported; throws on a job that cannot succeed. */
  private async gather(req: string, nJobs: number, timeoutMs: number): Promise<void> {
    const done = new Set<number>();
    const deadline = Date.now() + timeoutMs;
    const blocking = this.redis.duplicate({ connectionName: 'fhenet-pbs-gather' });
    try {
      while (done.size < nJobs) {
        const left = deadline - Date.now();
        if (left <= 0) throw new PbsQueueError(`distributed PBS: ${nJobs - done.size} of ${nJobs} jobs unfinished after ${Math.round(timeoutMs / 1000)} s (are workers running? fhenet worker --queue ${this.target.display})`);
        if (this.closed) throw new PbsQueueError('the PBS queue client was closed while a request was in flight');
        const r = await blocking.blpop(requestKey(req, 'done'), Math.max(0.05, Math.min(2, left / 1000)));
        if (!r) continue;
        const v = r[1];
        if (v.startsWith('!')) {
          const sp = v.indexOf(' ');
          throw new PbsQueueError(`distributed PBS job ${v.slice(1, sp)} failed: ${v.slice(sp + 1)}`);
        }
        done.add(Number(v));
      }
    } finally {
      blocking.disconnect();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.close();
    this.redis.disconnect();
  }
}
