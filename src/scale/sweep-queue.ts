/**
 * Sweeps on the Redis queue: `fhenet sweep --queue redis://…` sends each configuration as a BullMQ job; any
 * `fhenet worker --queue …` (on any machine) trains it and returns the result. The coordinating `fhenet sweep`
 * keeps what it does on one machine — the append-only run log, resume, reports — so a distributed sweep is as
 * resumable as a local one: a rerun skips logged runs, and a job that finished while no coordinator was waiting is
 * picked up from Redis (job id = the configuration's hash; finished jobs are kept for `keepSeconds`).
 */
import { Job, Queue, QueueEvents, Worker } from 'bullmq';
import { type RunConfig, configHash } from '../sweep/config.js';
import { type RedisTarget, bullConnection } from './redis.js';

export const SWEEP_QUEUE = 'fhenet-sweep';

/**
 * What a worker returns for a run: src/sweep's RunResult (JSON). This folder never imports the training side
 * (TensorFlow.js), so the type is a parameter: `SweepQueue<RunResult>` in the CLI.
 */
type SweepResult = { testAccuracy: number };

export interface SweepQueueOptions {
  /** Longest wait for one run, ms (default 24 h). */
  runTimeoutMs?: number;
  /** How long finished runs stay in Redis for a coordinator that restarts (default 7 days). */
  keepSeconds?: number;
  /** Attempts per run when a worker dies or fails (default 3). */
  attempts?: number;
  queueName?: string;
}

/** The coordinator's side: satisfies src/sweep's SweepRunner (runSweep's `runner`). */
export class SweepQueue<R extends SweepResult = SweepResult> {
  private constructor(
    private readonly queue: Queue<RunConfig, R>,
    private readonly events: QueueEvents,
    private readonly opts: Required<SweepQueueOptions>,
  ) {}

  static async connect<R extends SweepResult>(target: RedisTarget, opts: SweepQueueOptions = {}): Promise<SweepQueue<R>> {
    const o: Required<SweepQueueOptions> = { runTimeoutMs: 86_400_000, keepSeconds: 7 * 86_400, attempts: 3, queueName: SWEEP_QUEUE, ...opts };
    const queue = new Queue<RunConfig, R>(o.queueName, { connection: bullConnection(target) });
    const events = new QueueEvents(o.queueName, { connection: bullConnection(target) });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    return new SweepQueue<R>(queue, events, o);
  }

  async run(config: RunConfig): Promise<R> {
    const jobId = `run-${configHash(config)}`;
    // A run that failed before (all attempts) is tried again, like a local rerun retries failed runs.
    const old = await Job.fromId<RunConfig, R>(this.queue, jobId);
    if (old && (await old.isFailed())) await old.remove();
    const job = await this.queue.add('run', config, {
      jobId,
      attempts: this.opts.attempts,
      backoff: { type: 'fixed', delay: 1000 },
      removeOnComplete: { age: this.opts.keepSeconds },
      removeOnFail: { age: this.opts.keepSeconds },
    });
    return job.waitUntilFinished(this.events, this.opts.runTimeoutMs);
  }

  async close(): Promise<void> {
    await this.events.close();
    await this.queue.close();
  }
}

export interface SweepWorkerOptions {
  /**
   * Trains one configuration (the CLI passes src/sweep/worker.ts's, which loads TensorFlow.js on first use; this
   * folder stays free of it, so a PBS-only worker never loads it).
   */
  run: (config: RunConfig) => Promise<SweepResult>;
  lockDurationMs?: number;
  queueName?: string;
  log?: (msg: string) => void;
}

/**
 * Takes sweep jobs, one at a time: a run seeds TensorFlow.js's global state (manualSeed), so two runs interleaved
 * in one thread would not be reproducible — more cores means more worker processes.
 */
export async function startSweepWorker(target: RedisTarget, opts: SweepWorkerOptions): Promise<{ readonly runs: number; close(): Promise<void> }> {
  let runs = 0;
  const worker = new Worker<RunConfig, SweepResult>(
    opts.queueName ?? SWEEP_QUEUE,
    async (job) => {
      const r = await opts.run(job.data);
      runs++;
      opts.log?.(`sweep run ${job.id} done: test accuracy ${(100 * r.testAccuracy).toFixed(1)} %`);
      return r;
    },
    { connection: bullConnection(target), concurrency: 1, lockDuration: opts.lockDurationMs ?? 30_000, stalledInterval: opts.lockDurationMs ?? 30_000 },
  );
  worker.on('error', (err) => opts.log?.(`sweep queue error: ${err.message}`));
  await worker.waitUntilReady();
  return {
    get runs() {
      return runs;
    },
    close: () => worker.close(),
  };
}
