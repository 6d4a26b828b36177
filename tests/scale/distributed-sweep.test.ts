/**
 * `fhenet sweep --queue redis://…` with two `fhenet worker --jobs sweep` processes gives the same results as the
 * single-machine `fhenet sweep`, and stays resumable: a coordinator killed mid-way and restarted finishes the sweep
 * with every run logged once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expandSweep, parseSweepSpec, readRunLog } from '../../src/sweep/index.js';
import { REQUIRE_SCALE, type RedisProc, have, startFhenet, startRedis, stopAll } from './cluster.js';

const available = have('redis-server');
if (!available && REQUIRE_SCALE) throw new Error('FHENET_REQUIRE_SCALE=1 but redis-server is not installed (apt-get install redis-server)');

const spec = {
  name: 'distributed',
  concurrency: 1,
  data: { trainSamples: 400, testSamples: 100 },
  train: { epochs: 2, batchSize: 32, lr: 0.01 },
  grids: [
    { family: 'ptq', hidden: [4], seeds: 2 },
    { family: 'qat', hidden: [6], k: [3], seeds: 2 },
  ],
};

/** A run's result without what legitimately differs between machines (time, backend name). */
function comparable(file: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [h, r] of readRunLog(file)) {
    const { seconds: _s, backend: _b, ...rest } = r.result;
    out.set(h, rest);
  }
  return out;
}

describe.skipIf(!available)(`sweeps on the Redis queue${available ? '' : ' (skipped: redis-server not installed)'}`, () => {
  let redis: RedisProc;
  let root: string;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-dsweep-'));
    redis = await startRedis(path.join(root, 'redis'));
  });
  afterAll(async () => {
    await stopAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('2 workers give the single-machine results; a killed coordinator resumes', async () => {
    const specFile = path.join(root, 'spec.json');
    fs.writeFileSync(specFile, JSON.stringify(spec));
    const total = expandSweep(parseSweepSpec(spec)).length;

    const workers = [0, 1].map(() => startFhenet(['worker', '--queue', redis.url, '--jobs', 'sweep']));
    await Promise.all(workers.map((w) => w.waitFor(/ready: sweep/)));
    const local = startFhenet(['sweep', specFile, '--out', path.join(root, 'local')]);

    // distributed: the coordinator is killed once one run is logged, then started again
    const outQ = path.join(root, 'queue');
    const jsonl = path.join(outQ, 'runs.jsonl');
    const first = startFhenet(['sweep', specFile, '--out', outQ, '--queue', redis.url]);
    for (const t0 = Date.now(); readRunLog(jsonl).size < 1; ) {
      if (Date.now() - t0 > 120_000 || first.child.exitCode !== null) throw new Error(`no run logged:\n${first.output()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    await first.kill('SIGKILL');
    const logged = readRunLog(jsonl).size;
    expect(logged).toBeLessThan(total);
    const second = startFhenet(['sweep', specFile, '--out', outQ, '--queue', redis.url]);
    expect(await second.exited, second.output()).toBe(0);
    expect(second.output()).toMatch(new RegExp(`${total - logged} run\\(s\\) now, ${logged} from the log`));
    expect(await local.exited, local.output()).toBe(0);

    const lines = fs.readFileSync(jsonl, 'utf8').split('\n').filter((l) => l.startsWith('{'));
    expect(lines.length).toBe(total); // every run logged once
    const q = comparable(jsonl);
    const l = comparable(path.join(root, 'local', 'runs.jsonl'));
    expect(q.size).toBe(total);
    expect([...q.keys()].sort()).toEqual([...l.keys()].sort());
    for (const [h, r] of l) expect(q.get(h), h).toEqual(r);
    // both workers trained runs
    const done = workers.map((w) => (w.output().match(/sweep run \S+ done/g) ?? []).length);
    expect(done.every((d) => d >= 1), JSON.stringify(done)).toBe(true);
    expect(done[0]! + done[1]!).toBeGreaterThanOrEqual(total);
  }, 240_000);
});
