/** `fhenet sweep <spec.json>`: runs a grid of checkerboard configurations in worker threads, resumably. */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { ConfigError } from '../util/errors.js';
import { intOption } from './options.js';

interface SweepCliOptions {
  out: string;
  concurrency?: number;
  inline?: boolean;
  dryRun?: boolean;
  json?: boolean;
  queue?: string;
}

export function sweepCommand(): Command {
  return new Command('sweep')
    .description('run a grid of checkerboard trainings (hidden width, bits, k non-zero, accumulator target, seeds) in parallel; resumes where it stopped')
    .argument('<spec>', 'sweep spec (JSON); see src/sweep/config.ts')
    .requiredOption('--out <dir>', 'results folder: runs.jsonl (the resumable log), results.csv/json/md, plot.svg')
    .option('--concurrency <n>', 'worker threads (default: the spec, else 2)', intOption('--concurrency', 1, 64))
    .option('--inline', 'run in this thread, no worker pool')
    .option('--dry-run', 'list the runs and exit')
    .option('--json', 'print the per-configuration summary as JSON')
    .option('--queue <url>', 'send the runs to `fhenet worker` processes through this Redis (redis://host:port[/db]) instead of local threads')
    .action(async (specFile: string, o: SweepCliOptions) => {
      if (!fs.existsSync(specFile)) throw new ConfigError(`sweep spec ${specFile} not found`);
      let raw: unknown;
      try {
        raw = JSON.parse(fs.readFileSync(specFile, 'utf8'));
      } catch (e) {
        throw new ConfigError(`sweep spec ${specFile} is not valid JSON: ${(e as Error).message}`);
      }
      // Loaded here, not at the top: `fhenet --help` and the server commands must not load TensorFlow.js (src/cli/main.ts).
      const { expandSweep, parseSweepSpec, runSweep } = await import('../sweep/index.js');
      const spec = parseSweepSpec(raw);
      const runs = expandSweep(spec);
      if (o.dryRun) {
        for (const r of runs) process.stdout.write(`${JSON.stringify({ ...r, data: r.data.source, train: undefined })}\n`);
        process.stdout.write(`${runs.length} runs\n`);
        return;
      }
      let queue: import('../scale/sweep-queue.js').SweepQueue<import('../sweep/run.js').RunResult & { backend?: string }> | undefined;
      if (o.queue !== undefined) {
        if (o.inline) throw new ConfigError('--inline and --queue exclude each other (--queue runs on `fhenet worker` processes)');
        const [{ checkRedis, parseRedisUrl }, { SweepQueue }] = await Promise.all([import('../scale/redis.js'), import('../scale/sweep-queue.js')]);
        const target = parseRedisUrl(o.queue, '--queue');
        await checkRedis(target, '--queue');
        queue = await SweepQueue.connect(target);
        process.stderr.write(`fhenet sweep ${spec.name}: ${runs.length} runs on the queue ${target.display} (fhenet worker --queue ${target.display})\n`);
      } else {
        const { describeBackend, initBackend } = await import('../backend/index.js');
        const info = await initBackend();
        process.stderr.write(`fhenet sweep ${spec.name}: ${runs.length} runs, ${o.inline ? 'inline' : `${o.concurrency ?? spec.concurrency} worker threads`}, ${describeBackend(info)}\n`);
      }
      const t0 = Date.now();
      let res: Awaited<ReturnType<typeof import('../sweep/index.js').runSweep>>;
      try {
        res = await runSweep(spec, {
          outDir: o.out,
          concurrency: o.concurrency,
          inline: o.inline,
          ...(queue ? { runner: queue } : {}),
          onError: (label, e) => process.stderr.write(`run failed: ${label}: ${e.message}\n`),
        });
      } finally {
        await queue?.close();
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify(res.summaries, null, 2)}\n`);
        return;
      }
      process.stdout.write(fs.readFileSync(res.files.md, 'utf8'));
      process.stdout.write(`\n${res.ran} run(s) now, ${res.resumed} from the log; ${((Date.now() - t0) / 1000).toFixed(1)} s; results in ${o.out}\n`);
    });
}
