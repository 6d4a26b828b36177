/**
 * Peak resident memory of loading a GPT-2 folder with fromPretrained (run in a fresh process):
 *
 *   npx tsx experiments/gpt2/load-memory.ts DIR
 *
 * Prints the process's RSS after the backend is up (baseline), the peak RSS (getrusage maxrss) after loading, the
 * model's float32 weight bytes, and (peak − baseline) / weight bytes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeBackend, initBackend } from '../../src/backend/index.js';
import { fromPretrained } from '../../src/transformers/index.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: load-memory.ts DIR');
const backend = await initBackend();
const mib = (b: number) => Number((b / 2 ** 20).toFixed(1));
const baseline = process.memoryUsage().rss;
const peakBefore = process.resourceUsage().maxRSS * 1024;
const t0 = performance.now();
const model = fromPretrained(dir);
const seconds = (performance.now() - t0) / 1000;
const peak = process.resourceUsage().maxRSS * 1024;
const weightBytes = model.parameters().reduce((a, v) => a + v.size * 4, 0);
const fileBytes = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
console.log(JSON.stringify({
  dir,
  backend: describeBackend(backend),
  parameters: model.parameters().reduce((a, v) => a + v.size, 0),
  fileMiB: mib(fileBytes),
  weightMiBFloat32: mib(weightBytes),
  baselineRssMiB: mib(baseline),
  peakRssBeforeLoadMiB: mib(peakBefore),
  peakRssMiB: mib(peak),
  rssAfterLoadMiB: mib(process.memoryUsage().rss),
  loadSeconds: Number(seconds.toFixed(2)),
  peakOverBaselineDivWeights: Number(((peak - baseline) / weightBytes).toFixed(2)),
  peakDivWeights: Number((peak / weightBytes).toFixed(2)),
}, null, 2));
