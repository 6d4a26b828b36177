/**
 * The `fhenet` command as a new user meets it (issue #21): the README's train → export → compile sequence with
 * --fhe-ready finds a TFHE parameter set; a plain QAT net is refused with the real cause; the report follows
 * --rounding; the accuracy table explains itself; hybrid build writes what serve loads; serve warns on an empty
 * folder; argument errors show usage; typed errors are one line.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModels } from '../../src/hybrid/server/models.js';
import { limitsOf } from '../../src/hybrid/server/options.js';
import { FIXTURE_DIR } from '../fixture-dir.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-cli-'));
const fhenet = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, FHENET_DATA: path.join(tmp, 'data') } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('fhenet CLI for a new user', () => {
  it('train --fhe-ready → export (beside the checkpoint) → compile finds a TFHE set; hybrid build writes a folder serve loads', () => {
    const run = path.join(tmp, 'cb');
    const t = fhenet('train', '--fhe-ready', '--epochs', '1', '--hidden', '32', '--out', run);
    expect(t.err).toMatch(/accumulator-aware: fc1\/fc2 table inputs within 5 bits/);
    expect(t.code).toBe(0);
    const e = fhenet('export', path.join(run, 'model.safetensors'));
    expect(e.out).toContain(`wrote ${path.join(run, 'model.qonnx.onnx')}`);
    const c = fhenet('compile', path.join(run, 'model.qonnx.onnx'), '-o', path.join(run, 'cb.fhec'));
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/widest table input: +[3-5] bits/);
    expect(c.out).toMatch(/TFHE \(fhenet's executor\): V1_\d_PARAM_MESSAGE_\d_CARRY_\d_KS_PBS_GAUSSIAN_2M128, \d+ PBS per sample/);
    expect(fs.existsSync(path.join(run, 'cb.fhec'))).toBe(true);

    const models = path.join(tmp, 'models');
    const h = fhenet('hybrid', 'build', path.join(run, 'model.safetensors'), '--modules', 'fc2', '--backend', 'simulate', '-o', models);
    expect(h.code, h.err).toBe(0);
    expect(h.out).toContain(`wrote ${path.join(models, 'cb')}`);
    expect([...loadModels(models, limitsOf({ modelsDir: models, keysDir: '' })).keys()]).toEqual(['cb/fc2/32']);
  });

  it('a plain QAT net with 8-bit accumulators: the refusal names the width, the plaintext space and the fix; the report follows --rounding', () => {
    const c = fhenet('compile', `${FIXTURE_DIR}cb3.qonnx.onnx`, '--rounding', '6');
    expect(c.out).toMatch(/a table input of 8 bits is wider than the plaintext space of every set \(at most 6 bits\)/);
    expect(c.out).toMatch(/its 8-bit accumulator is wider than the 6-bit plaintext space of 'V1_7_PARAM_MESSAGE_3_CARRY_3/);
    expect(c.out).toMatch(/fix: narrow the table input to at most 6 bits — approximate rounding \(fhenet compile --rounding 6 --rounding-approximate\)/);
    expect(c.out).toMatch(/table lookups per sample: +200 \(200 × 6-bit\)/);
    expect(c.out).toMatch(/6-bit tables exactly rounded from 8-bit accumulators.*--rounding-approximate makes them 6-bit lookups/);
    const exact = Number(/estimated latency: +([\d.]+) s/.exec(c.out)![1]);
    const approx = Number(/with --rounding-approximate: +([\d.]+) s/.exec(c.out)![1]);
    expect(approx).toBeLessThan(exact);
    const a = fhenet('compile', `${FIXTURE_DIR}cb3.qonnx.onnx`, '--rounding', '6', '--rounding-approximate');
    expect(a.out).not.toMatch(/8-bit lookups/);
    expect(Number(/estimated latency: +([\d.]+) s/.exec(a.out)![1])).toBeCloseTo(approx, 1);
  });

  it('--eval explains float below disable and ranks quantizers by a signed cost', () => {
    const c = fhenet('compile', `${FIXTURE_DIR}cb3.qonnx.onnx`, '--calib', 'peer', '--eval', 'peer');
    const m = /accuracy +float ([\d.]+)% +disable \(quantized, clear\) ([\d.]+)%/.exec(c.out)!;
    if (Number(m[1]) < Number(m[2])) expect(c.out).toMatch(/float is below disable: .*trained with them \(QAT\)/);
    const costs = [...c.out.matchAll(/bypassed +([\d.]+)% +cost ([+-][\d.]+) points/g)].map((x) => [Number(x[1]), Number(x[2])] as const);
    expect(costs.length).toBe(6);
    const disable = Number(m[2]);
    for (const [bypassed, cost] of costs) expect(cost).toBeCloseTo(bypassed - disable, 1);
    for (let i = 1; i < costs.length; i++) expect(costs[i]![1]).toBeLessThanOrEqual(costs[i - 1]![1]);
  });

  it('argument errors show the subcommand usage; typed errors are one line with exit status 2', () => {
    const e = fhenet('export');
    expect(e.err).toMatch(/missing required argument 'model'/);
    expect(e.err).toMatch(/Usage: fhenet export \[options\] <model>/);
    const a = fhenet('analyze', `${FIXTURE_DIR}cb3.qonnx.onnx`);
    expect(a.code).toBe(2);
    expect(a.err.trim().split('\n')).toHaveLength(1);
    expect(a.err).toMatch(/analyze takes a checkpoint written by fhenet train --out.*fhenet compile/);
    const v = fhenet('data', 'verify', 'cifar10');
    expect(v.code).toBe(2);
    expect(v.err).toMatch(/cifar10 is not stored complete and intact .*fhenet data fetch cifar10/);
    const stranger = path.join(tmp, 'stranger.tar.gz');
    fs.writeFileSync(stranger, 'not cifar');
    const f = fhenet('data', 'fetch', 'cifar10', '--from', stranger);
    expect(f.code).toBe(2);
    expect(f.err).toMatch(/^fhenet: ChecksumError: .*none of the files fhenet knows for cifar10/);
  });

  it('serve warns when its models folder holds no model', async () => {
    const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--models', empty, '--keys', path.join(tmp, 'keys'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!err.includes('holds no model') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    expect(err).toMatch(/holds no model .*fhenet hybrid build CHECKPOINT --modules NAMES/);
  });
});
