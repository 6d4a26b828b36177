/**
 * Server-kernel micro-benchmark of the packed GLWE product (src/glwe/native/glwe.c): the per-call server time of
 * selected GPT-2-small shapes, 1 and 2 threads, as medians of CPU time and wall time, with the load average — the
 * quick loop for kernel work (bench/glwe.ts is the full evidence run). Each run also decrypts and checks every
 * output against the noise model's bound, so a faster kernel that breaks the arithmetic fails here.
 *
 *   npx tsx bench/glwe-kernel.ts                         # c_proj, c_fc, lm_head; 5 reps
 *   npx tsx bench/glwe-kernel.ts --shapes lm_head --reps 3 --threads 1,2
 *
 * Keys and transformed weights are seeded (deterministic) and cached under --cache (default
 * $TMPDIR/fhenet-glwe-kernel-bench) between runs, since key preparation and the lm_head transform take ~30 s.
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { Command } from 'commander';
import { intOption } from '../src/cli/options.js';
import { decryptPhases, encryptVector } from '../src/glwe/client.js';
import { generateKeys, prepareEvaluationKey, type ClientKey, type PreparedEvaluationKey } from '../src/glwe/keys.js';
import { predictNoise } from '../src/glwe/noise.js';
import { GLWE_PARAMS_2048 as P } from '../src/glwe/params.js';
import { cryptoRng } from '../src/glwe/random.js';
import { serverMatVec } from '../src/glwe/server.js';
import { transformWeights, type TransformedWeights } from '../src/glwe/weights.js';
import { GPT2_SHAPES, randomInputs, randomInt8 } from './glwe-data.js';

const SHAPES: Record<string, [number, number]> = Object.fromEntries(GPT2_SHAPES.map(([name, dIn, dOut]) => [name, [dIn, dOut]]));

const opts = new Command('bench/glwe-kernel.ts')
  .option('--shapes <list>', `comma-separated, of ${Object.keys(SHAPES).join(', ')}`, 'attn.c_proj,mlp.c_fc,lm_head')
  .option('--reps <n>', 'repetitions per shape and thread count (median)', intOption('--reps', 1), 5)
  .option('--threads <list>', 'thread counts', '1,2')
  .option('--cache <dir>', 'cache of keys and transformed weights', join(tmpdir(), 'fhenet-glwe-kernel-bench'))
  .parse()
  .opts<{ shapes: string; reps: number; threads: string; cache: string }>();

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function cached<T>(name: string, make: () => T): T {
  mkdirSync(opts.cache, { recursive: true });
  const file = join(opts.cache, `${P.name}-${name}.v8`); // a cached file is for one parameter set
  if (existsSync(file)) return deserialize(readFileSync(file)) as T;
  const v = make();
  writeFileSync(file, serialize(v));
  return v;
}

const stored = cached('keys', () => {
  const { clientKey, evaluationKey } = generateKeys(P, cryptoRng(new Uint8Array(16).fill(1)));
  const { rng: _rng, ...keyData } = clientKey; // the RNG is an object with methods: not serializable
  return { keyData, prepared: prepareEvaluationKey(evaluationKey, { kernel: 'native' }) };
}) as { keyData: Omit<ClientKey, 'rng'>; prepared: PreparedEvaluationKey };
const keys = { clientKey: { ...stored.keyData, rng: cryptoRng(new Uint8Array(16).fill(2)) } as ClientKey, prepared: stored.prepared };

console.log(`${new Date().toISOString()}; ${cpus().length} × ${cpus()[0]?.model}; Node ${process.version}; load ${loadavg().map((v) => v.toFixed(1)).join(' / ')}`);
console.log('| shape | threads | server wall (median) | server CPU (median) | outputs | max |err| / bound |');
console.log('|---|---|---|---|---|---|');
for (const name of opts.shapes.split(',')) {
  const shape = SHAPES[name];
  if (!shape) throw new Error(`unknown shape ${name}`);
  const [dIn, dOut] = shape;
  const w = randomInt8(dOut % 251, dOut * dIn);
  const tw = cached(`w-${dIn}x${dOut}`, () => transformWeights(P, w, dOut, dIn)) as TransformedWeights;
  const x = randomInputs(7, dIn);
  const exact = new Float64Array(dOut);
  for (let o = 0; o < dOut; o++) {
    let s = 0;
    for (let i = 0; i < dIn; i++) s += w[o * dIn + i]! * x[i]!;
    exact[o] = s;
  }
  for (const threads of opts.threads.split(',').map(Number)) {
    const wall: number[] = [], cpu: number[] = [];
    let worst = 0;
    for (let r = 0; r < opts.reps; r++) {
      const ct = encryptVector(keys.clientKey, x, tw.layout);
      const t0 = performance.now();
      const c0 = cpuMs();
      const res = serverMatVec(keys.prepared, tw, ct, { threads });
      wall.push(performance.now() - t0);
      cpu.push(cpuMs() - c0);
      const ph = decryptPhases(keys.clientKey, res);
      for (let o = 0; o < dOut; o++) {
        const slots = Math.min(P.polynomialSize, dOut - Math.floor(o / P.polynomialSize) * P.polynomialSize);
        const bound = predictNoise(P, tw.layout, tw.rowSqSum[o]!, slots).bound;
        worst = Math.max(worst, Math.abs(Math.round(ph[o]!) - exact[o]!) / bound);
      }
    }
    console.log(`| ${name} (${dIn} × ${dOut}) | ${threads} | ${median(wall).toFixed(1)} ms | ${median(cpu).toFixed(1)} ms | ${dOut * opts.reps} | ${worst.toFixed(2)}${worst > 1 ? ' FAIL' : ''} |`);
  }
}
console.log(`load at the end ${loadavg().map((v) => v.toFixed(1)).join(' / ')}`);
