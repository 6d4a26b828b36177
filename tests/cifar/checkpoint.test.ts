/**
 * The committed full-CNV checkpoint (experiments/cifar/cnv.packed.safetensors, integer-packed): it loads through the
 * exact-reload check and is the trained net — its accuracy on 500 evenly spaced test images is far above chance
 * (RESULTS.md: 84.18 % on all 10,000).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { loadCifar10, toDataset } from '../../datasets/cifar10/index.js';
import { loadPackedModule } from '../../src/quant/packed-checkpoint.js';
import { evaluate } from '../../src/train/trainer.js';
import { cifar10SkipReason } from '../data-availability.js';
import { buildModel } from '../../experiments/cifar/lib.js';

const available = cifar10SkipReason('the CNV checkpoint accuracy test') === undefined;
const CKPT = path.join(import.meta.dirname, '../../experiments/cifar/cnv.packed.safetensors');

beforeAll(async () => {
  await initBackend();
});

describe('committed CNV checkpoint', () => {
  it('is small and loads into createCnv(full) with identical integers', () => {
    expect(fs.statSync(CKPT).size).toBeLessThan(500_000);
    const meta = loadPackedModule(CKPT, buildModel('full'));
    expect(meta.variant).toBe('full');
  });

  it.skipIf(!available)('classifies evenly spaced CIFAR-10 test images like the trained net', async () => {
    const model = buildModel('full');
    loadPackedModule(CKPT, model);
    const data = await loadCifar10();
    const test = toDataset(data.test, { limit: 500 });
    expect(new Set(test.y).size).toBe(10);
    const { accuracy } = evaluate(model, test);
    expect(accuracy).toBeGreaterThan(0.7);
  });

  it.skipIf(!available)('choose-headroom.ts: held-out training images, disjoint from calibration; more headroom, fewer wraps', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'headroom-')), 'rows.json');
    execFileSync(process.execPath, ['--import', 'tsx', 'experiments/cifar/choose-headroom.ts', CKPT, '--headrooms', '0,1', '--calib-n', '20', '--val-n', '40', '--json', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FHENET_NATIVE_THREADS: '1' },
    });
    const r = JSON.parse(fs.readFileSync(out, 'utf8')) as { validation: number; rows: { headroom: number; agreement: number; accuracy: number; wraps: number }[] };
    expect(r.validation).toBeGreaterThan(30); // 40 asked, minus those that are calibration images (2 here)
    expect(r.validation).toBeLessThanOrEqual(40);
    expect(r.rows.map((x) => x.headroom)).toEqual([0, 1]);
    for (const x of r.rows) expect(x.agreement).toBeGreaterThan(0.3);
    // 20 calibration images leave many test values past a channel's range: with no headroom some wrap
    expect(r.rows[0]!.wraps).toBeGreaterThan(r.rows[1]!.wraps);
  }, 180_000);
});
