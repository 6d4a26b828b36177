/**
 * `fhenet worker --queue redis://…`: a compute worker for the Redis queue (src/scale). It takes chunks of circuits'
 * table lookups (KS-PBS) sent by `fhenet serve --queue` and configurations sent by `fhenet sweep --queue`. Runs
 * until SIGINT/SIGTERM (jobs in progress finish first). TensorFlow.js is loaded only if a sweep job arrives.
 */
import { cpus } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { intOption } from './options.js';

const KINDS = ['pbs', 'sweep'] as const;

export function workerCommand(): Command {
  return new Command('worker')
    .description('take distributed jobs (circuit lookups, sweep runs) from a Redis queue; run on as many machines as you like')
    .requiredOption('--queue <url>', 'Redis of the queue: redis://host:port[/db]')
    .option('--jobs <kinds>', 'job kinds to take: pbs, sweep or pbs,sweep', (v: string) => {
      const ks = v.split(',').map((s) => s.trim());
      if (!ks.length || !ks.every((k) => (KINDS as readonly string[]).includes(k))) throw new InvalidArgumentError(`--jobs must be pbs, sweep or pbs,sweep, got '${v}'`);
      return ks;
    }, [...KINDS])
    .option('--threads <n>', 'PBS threads (default: all cores); also the PBS jobs taken at once', intOption('--threads', 1, 1024))
    .option('--key-cache <n>', 'expanded evaluation keys kept in memory', intOption('--key-cache', 1, 64), 2)
    .option('--lock-ms <n>', "job lock: a dead worker's job is retried after this long", intOption('--lock-ms', 1000, 3_600_000), 30_000)
    .option('--verbose', "log every job's start and end")
    .action(async (o: { queue: string; jobs: string[]; threads?: number; keyCache: number; lockMs: number; verbose?: boolean }) => {
      const { checkRedis, parseRedisUrl } = await import('../scale/redis.js');
      const target = parseRedisUrl(o.queue, '--queue');
      await checkRedis(target, '--queue');
      const log = (m: string) => process.stderr.write(`fhenet worker ${process.pid}: ${m}\n`);
      const closers: (() => Promise<void>)[] = [];
      const parts: string[] = [];
      if (o.jobs.includes('pbs')) {
        const { startPbsWorker } = await import('../scale/pbs-worker.js');
        const threads = o.threads ?? cpus().length;
        const w = await startPbsWorker(target, { threads, keyCacheSize: o.keyCache, lockDurationMs: o.lockMs, log, verbose: o.verbose === true });
        closers.push(() => w.close());
        parts.push(`pbs (${threads} threads)`);
      }
      if (o.jobs.includes('sweep')) {
        const { startSweepWorker } = await import('../scale/sweep-queue.js');
        // TensorFlow.js (src/sweep/worker.ts initialises a backend when imported) loads at the first sweep job only.
        const run = async (c: import('../sweep/config.js').RunConfig) => (await import('../sweep/worker.js')).default(c);
        const w = await startSweepWorker(target, { run, lockDurationMs: o.lockMs, log });
        closers.push(() => w.close());
        parts.push('sweep');
      }
      log(`ready: ${parts.join(', ')} jobs from ${target.display}`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log(`${signal}: finishing jobs in progress`);
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      await Promise.all(closers.map((c) => c()));
      process.exit(0);
    });
}
