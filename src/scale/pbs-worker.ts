/**
 * A `fhenet worker` process's PBS side: takes jobs from the BullMQ queue (pbs-jobs.ts), runs their KS-PBS on a
 * local PbsPool (all the machine's cores, one expanded key shared by the threads), writes the results back.
 *
 * Keys: each distinct key is fetched from Redis once and kept expanded (least recently used of `keyCacheSize`
 * dropped), so a worker pays the ≈ 1–3 s expansion per key, not per job.
 * Failures: an error the job itself causes (a key or table that does not fit, a noise budget exceeded) is reported
 * to the waiting server at once, without retries; anything else (Redis hiccup, the process dying) leaves the job
 * to BullMQ, which retries it — a job whose worker was killed is moved back to the queue once its lock expires.
 */
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { TfheError } from '../tfhe/errors.js';
import { LweCiphertext } from '../tfhe/lwe.js';
import type { Lut } from '../tfhe/lut.js';
import { namedParams } from '../tfhe/params.js';
import { PbsPool } from '../tfhe/pool.js';
import { RedisBlobs } from './blobs.js';
import { KEY_BLOB_PREFIX, PBS_QUEUE, type PbsJobData, alignedCopy, concatWords, requestKey } from './pbs-jobs.js';
import { type RedisTarget, bullConnection, connectRedis } from './redis.js';

export interface PbsWorkerOptions {
  /** PBS threads of this process (default: all cores). Also the number of jobs it takes at once. */
  threads: number;
  /** Expanded keys kept (default 2; ≈ 0.3–1 GB each depending on the set). */
  keyCacheSize?: number;
  /** BullMQ job lock, ms (default 30 s): how long a dead worker's job waits before it is retried. */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for, ms (default lockDurationMs). */
  stalledIntervalMs?: number;
  queueName?: string;
  log?: (msg: string) => void;
  /** Also log every job's start and end. */
  verbose?: boolean;
}

export interface RunningWorker {
  /** Jobs finished by this process, PBS run. */
  readonly stats: { jobs: number; pbs: number; keyLoads: number };
  close(): Promise<void>;
}

/** Lock held by a job while its key is expanded on the event loop (a worker dying then delays the retry this long). */
const KEY_LOAD_LOCK_MS = 300_000;

/** A loaded key: `users` jobs hold it; an evicted one is closed when the last lets go (never under a running job). */
interface KeyEntry {
  pool: Promise<PbsPool>;
  users: number;
  evicted: boolean;
}

/** A job failure that a retry cannot fix. */
class JobError extends Error {}

export async function startPbsWorker(target: RedisTarget, opts: PbsWorkerOptions): Promise<RunningWorker> {
  const redis: Redis = connectRedis(target, 'fhenet-pbs-worker');
  const blobs = new RedisBlobs(redis, KEY_BLOB_PREFIX);
  /** Loaded keys, least recently used first. */
  const keys = new Map<string, KeyEntry>();
  /** Keys whose expansion has finished (a job for one of these never blocks the event loop). */
  const loaded = new Set<string>();
  const cacheSize = Math.max(1, opts.keyCacheSize ?? 2);
  const stats = { jobs: 0, pbs: 0, keyLoads: 0 };
  const log = opts.log ?? (() => undefined);

  const closeIfUnused = (e: KeyEntry) => {
    if (e.evicted && e.users === 0) void e.pool.then((pool) => pool.close(), () => undefined);
  };
  /** The key's pool, held by the caller until `release`. */
  const acquire = (d: PbsJobData): KeyEntry => {
    let e = keys.get(d.key);
    if (e) {
      keys.delete(d.key);
      keys.set(d.key, e); // most recently used last
      e.users++;
      return e;
    }
    const pool = (async () => {
      const bytes = await blobs.get(d.key);
      if (!bytes) throw new JobError(`evaluation key ${d.key.slice(0, 12)}… is not in Redis (expired or deleted)`);
      const t0 = performance.now();
      const p = await PbsPool.create(bytes, { params: namedParams(d.params), log2PError: d.log2PError, threads: opts.threads });
      stats.keyLoads++;
      loaded.add(d.key);
      log(`key ${d.key.slice(0, 12)}… loaded (${(bytes.length / 2 ** 20).toFixed(1)} MiB, ${((performance.now() - t0) / 1000).toFixed(1)} s, ${p.threads} threads)`);
      return p;
    })();
    const entry: KeyEntry = { pool, users: 1, evicted: false };
    e = entry;
    keys.set(d.key, e);
    pool.catch(() => {
      if (keys.get(d.key) === entry) keys.delete(d.key);
    });
    while (keys.size > cacheSize) {
      const [oldest, old] = keys.entries().next().value!;
      keys.delete(oldest);
      loaded.delete(oldest);
      old.evicted = true;
      closeIfUnused(old);
    }
    return e;
  };
  const release = (e: KeyEntry) => {
    e.users--;
    closeIfUnused(e);
  };

  const report = async (d: PbsJobData, entry: string) => {
    await redis.multi().rpush(requestKey(d.req, 'done'), entry).pexpire(requestKey(d.req, 'done'), d.ttlMs).exec();
  };

  /** Decodes a job's inputs and runs its PBS; undefined when the request disappeared meanwhile. */
  const runJob = async (pool: PbsPool, d: PbsJobData, input: Buffer, lutBytes: (Buffer | null)[]): Promise<LweCiphertext[] | undefined> => {
    const count = d.variances.length;
    const words = input.length / 4 / count;
    if (words !== 2 * (pool.key.lweDimension + 1)) throw new JobError(`job ${d.j}: ${input.length} input bytes are not ${count} ciphertexts of this key`);
    const all = new Uint32Array(alignedCopy(input));
    const cts = Array.from({ length: count }, (_, i) => new LweCiphertext(all.slice(i * words, (i + 1) * words), d.variances[i]!, 1, 0));
    const tables = new Map<number, Lut>();
    [...new Set(d.luts)].forEach((k, i) => {
      const b = lutBytes[i];
      if (b) tables.set(k, { poly: new Float64Array(alignedCopy(b)), degree: 0, values: [] });
    });
    if (tables.size !== new Set(d.luts).size) return undefined;
    return pool.pbsMany(cts, d.luts.map((k) => tables.get(k)!));
  };

  const handle = async (job: Job<PbsJobData>, token?: string): Promise<void> => {
    const d = job.data;
    // Expanding a key runs on this thread for seconds (≈ 3 s for 2_2, more for larger sets), during which BullMQ
    // cannot renew job locks: a job that waits for a key load holds a longer lock first, or it would be retried
    // elsewhere as if this worker had died.
    if (!loaded.has(d.key) && token) await job.extendLock(token, KEY_LOAD_LOCK_MS);
    if (opts.verbose) log(`job ${job.id} start (${d.variances.length} PBS)`);
    try {
      const [input, ...lutBytes] = await redis.mgetBuffer(requestKey(d.req, `in:${d.j}`), ...[...new Set(d.luts)].map((k) => requestKey(d.req, `lut:${k}`)));
      if (!input) return; // the request is gone (finished elsewhere, timed out or cancelled): nothing to do
      const entry = acquire(d);
      let outs: LweCiphertext[] | undefined;
      let pbsMs = 0;
      try {
        const pool = await entry.pool;
        const t0 = performance.now();
        outs = await runJob(pool, d, input, lutBytes);
        pbsMs = performance.now() - t0;
      } finally {
        release(entry);
      }
      if (!outs) return; // request gone meanwhile
      await redis.set(requestKey(d.req, `out:${d.j}`), concatWords(outs.map((o) => o.data)), 'PX', d.ttlMs);
      await report(d, String(d.j));
      stats.jobs++;
      stats.pbs += outs.length;
      if (opts.verbose) log(`job ${job.id} done (PBS ${pbsMs.toFixed(1)} ms)`);
    } catch (e) {
      if (e instanceof JobError || e instanceof TfheError) {
        log(`job ${job.id} failed: ${(e as Error).message}`);
        await report(d, `!${d.j} ${(e as Error).message}`);
        return;
      }
      throw e; // BullMQ retries it (attempts set by the server)
    }
  };

  const worker = new Worker<PbsJobData>(opts.queueName ?? PBS_QUEUE, handle, {
    connection: bullConnection(target),
    concurrency: Math.max(1, opts.threads),
    lockDuration: opts.lockDurationMs ?? 30_000,
    stalledInterval: opts.stalledIntervalMs ?? opts.lockDurationMs ?? 30_000,
    maxStalledCount: 3,
  });
  // A job that failed its last attempt (or stalled too often) must not leave its request waiting for the timeout.
  worker.on('failed', (job, err) => {
    if (!job) return;
    const attempts = job.opts.attempts ?? 1;
    if (job.attemptsMade >= attempts || /stalled/i.test(err.message)) void report(job.data, `!${job.data.j} ${err.message}`).catch(() => undefined);
  });
  worker.on('error', (err) => log(`queue error: ${err.message}`));
  await worker.waitUntilReady();
  return {
    stats,
    async close() {
      await worker.close();
      for (const e of keys.values()) await e.pool.then((pool) => pool.close(), () => undefined);
      keys.clear();
      redis.disconnect();
    },
  };
}
