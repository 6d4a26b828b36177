/**
 * Recipe probe (not part of the experiment's results): one configuration over several seeds, one line per seed.
 *   npx tsx experiments/checkerboard/probe-seeds.ts '<RunConfig overrides as JSON>' 0,1,2
 */
import { initBackend } from '../../src/backend/index.js';
import { type RunConfig, DEFAULT_DATA, DEFAULT_TRAIN } from '../../src/sweep/config.js';
import { runConfig } from '../../src/sweep/run.js';
await initBackend();
const over = JSON.parse(process.argv[2] ?? '{}') as Partial<RunConfig> & { train?: Partial<RunConfig['train']> };
const seeds = (process.argv[3] ?? '0').split(',').map(Number);
for (const seed of seeds) {
  const c: RunConfig = { family: 'qat', hidden: 100, bits: 3, k: null, strict: false, targetBits: null, input: 'signed', data: DEFAULT_DATA, ...over, seed, train: { ...DEFAULT_TRAIN, ...over.train } };
  const r = await runConfig(c);
  console.log(JSON.stringify({ seed, test: r.testAccuracy, train: +r.trainAccuracy.toFixed(4), float: r.floatAccuracy, bits: r.accumulatorBits, worst: r.worstCaseBits, s: r.seconds }));
}
