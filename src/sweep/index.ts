/**
 * Running a sweep: the runs of a spec go to a piscina pool of worker threads (each initialises its own tfjs
 * backend); every finished run is appended as one JSON line to `<out>/runs.jsonl`, keyed by its config hash. A
 * restarted sweep reads that log and runs only what is missing, so a crash (or kill) loses at most the runs that
 * were in flight. A torn last line from a crash mid-write is ignored, and the first record of a hash wins.
 * At the end (and whatever was finished when a run fails) it writes results.csv, results.json, results.md and
 * plot.svg for the spec's runs, in spec order.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { writeFileAtomic } from '../nn/checkpoint.js';
import { FhenetError } from '../util/errors.js';
import { createProgress } from '../util/progress.js';
import { type RunConfig, type SweepSpec, configHash, configLabel, expandSweep } from './config.js';
import { type ConfigSummary, type RunRecord, recordFor, summarize, toCsv, toMarkdown, toSvg } from './report.js';
import type { RunResult } from './run.js';

export * from './config.js';
export * from './report.js';
export { runConfig, type RunResult } from './run.js';

export interface SweepOptions {
  outDir: string;
  /** Worker threads (default: the spec's `concurrency`). */
  concurrency?: number;
  /** Run in the calling thread instead of a worker pool (tests, debugging). */
  inline?: boolean;
  progress?: 'bar' | 'lines' | 'silent';
  /** Called for every run that finishes in this invocation. */
  onRun?: (r: RunRecord) => void;
  /** Called as soon as a run fails (the sweep goes on; the failures are also thrown together at the end). */
  onError?: (label: string, error: Error) => void;
  /** Plot title. */
  title?: string;
  /**
   * Run each configuration here instead of the local worker-thread pool (e.g. src/scale's Redis queue of
   * `fhenet worker` processes). The run log, resume and reports stay on this machine.
   */
  runner?: SweepRunner;
}

/** Somewhere else to run sweep configurations (results must equal `runConfig`'s). */
export interface SweepRunner {
  run(config: RunConfig): Promise<RunResult & { backend?: string }>;
}

export interface SweepOutcome {
  records: RunRecord[];
  summaries: ConfigSummary[];
  /** Runs skipped because the log already had them. */
  resumed: number;
  ran: number;
  files: { jsonl: string; csv: string; json: string; md: string; svg: string };
}

export const RUNS_FILE = 'runs.jsonl';

/** Reads a run log, tolerating a torn last line; the first record of each hash wins. */
export function readRunLog(file: string): Map<string, RunRecord> {
  const out = new Map<string, RunRecord>();
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let rec: RunRecord;
    try {
      rec = JSON.parse(line) as RunRecord;
    } catch {
      continue; // a line cut short by a crash
    }
    if (rec && typeof rec.hash === 'string' && rec.result && !out.has(rec.hash)) out.set(rec.hash, rec);
  }
  return out;
}

function workerFile(): { filename: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ext = path.extname(here);
  const filename = path.join(path.dirname(here), `worker${ext}`);
  // Under tsx (TypeScript sources) the worker threads need the tsx loader too.
  const hasTsx = process.execArgv.some((a) => a.includes('tsx'));
  const execArgv = ext === '.ts' && !hasTsx ? [...process.execArgv, '--import', 'tsx'] : process.execArgv;
  return { filename, execArgv };
}

export async function runSweep(spec: SweepSpec, opts: SweepOptions): Promise<SweepOutcome> {
  const runs = expandSweep(spec);
  fs.mkdirSync(opts.outDir, { recursive: true });
  const jsonl = path.join(opts.outDir, RUNS_FILE);
  const done = readRunLog(jsonl);
  // A crash mid-append leaves a line without its newline: end it so the next record starts on a line of its own.
  if (fs.existsSync(jsonl)) {
    const text = fs.readFileSync(jsonl, 'utf8');
    if (text.length && !text.endsWith('\n')) fs.appendFileSync(jsonl, '\n');
  }
  writeFileAtomic(path.join(opts.outDir, 'spec.json'), `${JSON.stringify(spec, null, 2)}\n`);
  const todo = runs.map((c) => ({ c, h: configHash(c) })).filter(({ h }) => !done.has(h));
  const resumed = runs.length - todo.length;
  const progress = createProgress({ label: `sweep ${spec.name}`, total: runs.length, mode: opts.progress });
  let finished = resumed;
  progress.update(finished, resumed ? `${resumed} already done` : '');
  const errors: string[] = [];
  const fail = (c: RunConfig, h: string, e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    const label = `${configLabel(c)} seed ${c.seed}`;
    errors.push(`${h} (${label}): ${err.message}`);
    progress.update(finished, `FAILED ${label}: ${err.message.split('\n')[0]}`);
    opts.onError?.(label, err);
  };
  const record = (c: RunConfig, h: string, result: RunRecord['result']) => {
    const rec = recordFor(h, c, result);
    fs.appendFileSync(jsonl, `${JSON.stringify(rec)}\n`);
    done.set(h, rec);
    finished++;
    progress.update(finished, `${rec.label} seed ${c.seed}: ${(100 * result.testAccuracy).toFixed(1)}%`);
    opts.onRun?.(rec);
  };
  if (todo.length) {
    if (opts.runner) {
      const runner = opts.runner;
      await Promise.all(
        todo.map(({ c, h }) =>
          runner.run(c).then(
            (r) => record(c, h, r),
            (e: unknown) => fail(c, h, e),
          ),
        ),
      );
    } else if (opts.inline) {
      // Like each pool worker, the calling thread needs a backend (initBackend keeps an existing one).
      const [{ runConfig }, { initBackend }] = await Promise.all([import('./run.js'), import('../backend/index.js')]);
      await initBackend();
      for (const { c, h } of todo) {
        try {
          record(c, h, await runConfig(c));
        } catch (e) {
          fail(c, h, e);
        }
      }
    } else {
      const threads = Math.max(1, Math.min(opts.concurrency ?? spec.concurrency, todo.length));
      const pool = new Piscina({ ...workerFile(), minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
      try {
        await Promise.all(
          todo.map(({ c, h }) =>
            (pool.run(c) as Promise<RunResult & { backend: string }>).then(
              (r) => record(c, h, r),
              (e: unknown) => fail(c, h, e),
            ),
          ),
        );
      } finally {
        await pool.destroy();
      }
    }
  }
  progress.stop();
  const outcome = await writeReports(runs, done, opts, resumed, todo.length - errors.length);
  if (errors.length) throw new FhenetError(`${errors.length} sweep run(s) failed (finished runs are saved; rerun to retry):\n${errors.join('\n')}`);
  return outcome;
}

async function writeReports(runs: RunConfig[], done: Map<string, RunRecord>, opts: SweepOptions, resumed: number, ran: number): Promise<SweepOutcome> {
  const records = runs.map((c) => done.get(configHash(c))).filter((r): r is RunRecord => r !== undefined);
  const summaries = summarize(records);
  const files = {
    jsonl: path.join(opts.outDir, RUNS_FILE),
    csv: path.join(opts.outDir, 'results.csv'),
    json: path.join(opts.outDir, 'results.json'),
    md: path.join(opts.outDir, 'results.md'),
    svg: path.join(opts.outDir, 'plot.svg'),
  };
  writeFileAtomic(files.csv, toCsv(records));
  writeFileAtomic(files.json, `${JSON.stringify({ summaries, runs: records }, null, 2)}\n`);
  writeFileAtomic(files.md, toMarkdown(summaries));
  writeFileAtomic(files.svg, await toSvg(records, opts.title));
  return { records, summaries, resumed, ran, files };
}
