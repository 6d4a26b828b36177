import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { configHash, configLabel, expandSweep, parseSweepSpec, readRunLog, runSweep, toSvg } from '../../src/sweep/index.js';
import { ConfigError } from '../../src/util/errors.js';

const tiny = {
  name: 'crash-test',
  concurrency: 1,
  data: { trainSamples: 400, testSamples: 100 },
  train: { epochs: 2, batchSize: 32, lr: 0.01 },
  grids: [
    { family: 'ptq', hidden: [4, 6], seeds: 3 },
    { family: 'qat', hidden: [6], k: [3], seeds: 3 },
    { family: 'a2q', hidden: [6], targetBits: [5, 6], seeds: 2 },
  ],
};

describe('sweep spec', () => {
  it('expands grids into runs with stable hashes, defaults filled', () => {
    const spec = parseSweepSpec(tiny);
    const runs = expandSweep(spec);
    expect(runs.length).toBe(6 + 3 + 4);
    expect(runs[0]).toMatchObject({ family: 'ptq', hidden: 4, bits: 3, k: null, seed: 0, data: { source: 'generated', seed: 42, trainSamples: 400 } });
    expect(new Set(runs.map(configHash)).size).toBe(runs.length);
    expect(configHash(expandSweep(parseSweepSpec(tiny))[5]!)).toBe(configHash(runs[5]!));
    // Per-grid overrides merge with the top level.
    const peer = expandSweep(parseSweepSpec({ ...tiny, grids: [{ family: 'qat', data: { source: 'peer' }, seeds: [7] }] }));
    expect(peer[0]!.data).toMatchObject({ source: 'peer', trainSamples: 400 });
    expect(peer[0]!.seed).toBe(7);
  });

  it('rejects unknown keys and misplaced axes with clear errors', () => {
    expect(() => parseSweepSpec({ ...tiny, worker: 3 })).toThrow(ConfigError);
    expect(() => parseSweepSpec({ ...tiny, worker: 3 })).toThrow(/unknown key 'worker' in the spec; allowed: name, concurrency, data, train, grids/);
    expect(() => parseSweepSpec({ ...tiny, grids: [{ family: 'qat', hiden: [10] }] })).toThrow(/unknown key 'hiden' in grids\[0\]/);
    expect(() => parseSweepSpec({ ...tiny, data: { sorce: 'peer' } })).toThrow(/unknown key 'sorce' in data/);
    expect(() => parseSweepSpec({ ...tiny, train: { epochs: 1, lr: 1, momentum: 2 } })).toThrow(/unknown key 'momentum' in train/);
    expect(() => parseSweepSpec({ ...tiny, grids: [{ family: 'qat', targetBits: [5] }] })).toThrow(/'targetBits' applies to family a2q only/);
    expect(() => parseSweepSpec({ ...tiny, grids: [{ family: 'a2q' }] })).toThrow(/needs 'targetBits'/);
    expect(() => parseSweepSpec({ ...tiny, grids: [{ family: 'cnn' }] })).toThrow(/family must be one of float, ptq, qat, qat-brevitas, a2q/);
    expect(() => parseSweepSpec({ ...tiny, grids: [{ family: 'qat', hidden: [0] }] })).toThrow(/hidden\[0\] must be an integer ≥ 1/);
    expect(() => parseSweepSpec({ ...tiny, grids: [] })).toThrow(/non-empty list/);
  });

  it('a tag tells apart rows that differ only in their recipe, and leaves untagged hashes as they were', () => {
    const raw = { name: 'x', grids: [{ family: 'qat', hidden: [100], k: [30], seeds: 2 }] };
    // Pinned: the hashes these runs had before tags existed (finished runs in older logs must still match).
    expect(expandSweep(parseSweepSpec(raw)).map(configHash)).toEqual(['7fbd0401ab8c5429', '87b84866cfc1e414']);
    const both = expandSweep(parseSweepSpec({ ...raw, grids: [raw.grids[0], { ...raw.grids[0], train: { batchSize: 1 }, tag: 'batch 1' }] }));
    expect(both.length).toBe(4);
    expect(new Set(both.map(configLabel))).toEqual(new Set(['qat h=100 3-bit k=30', 'qat h=100 3-bit k=30 (batch 1)']));
    expect(() => parseSweepSpec({ ...raw, grids: [{ ...raw.grids[0], tag: '' }] })).toThrow(/tag must be a short name/);
    expect(() => parseSweepSpec({ ...raw, grids: [{ ...raw.grids[0], tag: 3 }] })).toThrow(ConfigError);
  });

  it('draws an SVG even with no quantized runs', async () => {
    expect(await toSvg([])).toMatch(/^<svg[^]*<\/svg>\n$/);
  });
});

describe('sweep failures', () => {
  it('reports a failing run as it happens, finishes the others, and throws them together at the end', async () => {
    const spec = parseSweepSpec({ ...tiny, train: { epochs: 1, batchSize: 64, lr: 0.01 }, grids: [{ family: 'qat', hidden: [4], k: [2, 3], seeds: 1 }] });
    spec.grids[0]!.k = [-1, 2]; // past the parser: k = -1 makes the run itself fail
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-sweep-fail-'));
    const seen: string[] = [];
    let doneWhenFailed = -1;
    await expect(
      runSweep(spec, {
        outDir: out,
        inline: true,
        progress: 'silent',
        onError: (label) => {
          seen.push(label);
          doneWhenFailed = readRunLog(path.join(out, 'runs.jsonl')).size;
        },
      }),
    ).rejects.toThrow(/1 sweep run\(s\) failed[\s\S]*k=-1/);
    expect(seen).toHaveLength(1);
    expect(doneWhenFailed).toBe(0); // reported before the next run finished
    expect(readRunLog(path.join(out, 'runs.jsonl')).size).toBe(1);
  }, 60_000);
});

describe('sweep crash and resume', () => {
  it('a sweep killed mid-way and restarted finishes with no duplicated rows', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-sweep-'));
    const specFile = path.join(dir, 'spec.json');
    fs.writeFileSync(specFile, JSON.stringify(tiny));
    const out = path.join(dir, 'out');
    const jsonl = path.join(out, 'runs.jsonl');
    const total = expandSweep(parseSweepSpec(tiny)).length;
    const start = () =>
      spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'sweep', specFile, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = () => (fs.existsSync(jsonl) ? fs.readFileSync(jsonl, 'utf8').split('\n').filter((l) => l.trim()).length : 0);

    // First attempt: kill -9 as soon as two runs are logged.
    const first = start();
    const exited = new Promise<number | null>((res) => first.on('exit', (code) => res(code)));
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (lines() >= 2) {
          clearInterval(t);
          first.kill('SIGKILL');
          resolve();
        }
      }, 25);
      first.on('exit', () => {
        clearInterval(t);
        reject(new Error('the sweep ended before it could be killed'));
      });
    });
    await exited;
    const afterKill = lines();
    expect(afterKill).toBeGreaterThanOrEqual(2);
    expect(afterKill).toBeLessThan(total);
    // A crash in the middle of a write leaves a torn line; the restart must cope with it too.
    fs.appendFileSync(jsonl, '{"hash":"torn-li');

    const second = start();
    let stdout = '';
    second.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    let stderr = '';
    second.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((res) => second.on('exit', (c) => res(c)));
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(new RegExp(`${total - afterKill} run\\(s\\) now, ${afterKill} from the log`));

    const log = readRunLog(jsonl);
    expect(log.size).toBe(total);
    const hashes = fs
      .readFileSync(jsonl, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{"hash":"') && l.endsWith('}'))
      .map((l) => (JSON.parse(l) as { hash: string }).hash);
    expect(hashes.length).toBe(total); // no run was done twice
    const csv = fs.readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv.length).toBe(total + 1);
    expect(new Set(csv.slice(1).map((r) => r.split(',')[0])).size).toBe(total);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as { runs: unknown[]; summaries: { label: string }[] };
    expect(json.runs.length).toBe(total);
    expect(json.summaries.map((s) => s.label)).toEqual(['ptq h=4 3-bit', 'ptq h=6 3-bit', 'qat h=6 3-bit k=3', 'a2q h=6 3-bit target 5', 'a2q h=6 3-bit target 6']);
    expect(fs.readFileSync(path.join(out, 'results.md'), 'utf8')).toMatch(/\| qat h=6 3-bit k=3 \| 3 \|/);
    expect(fs.readFileSync(path.join(out, 'plot.svg'), 'utf8')).toMatch(/<svg[^]*a2q h=6 3-bit target 5/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
