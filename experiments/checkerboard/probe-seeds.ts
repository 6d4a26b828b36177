/**
 * Recipe probe (not part of the experiment's results): one configuration over several seeds, one line per seed.
 *   npx tsx experiments/checkerboard/probe-seeds.ts ['<RunConfig overrides as JSON>'] [seeds, e.g. 0,1,2]
 * (defaults: '{}' and 0)
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import { Argument, Command } from 'commander';
import { intListOption, jsonObjectOption } from '../../src/cli/options.js';
import { initBackend } from '../../src/backend/index.js';
import { type RunConfig, DEFAULT_DATA, DEFAULT_TRAIN } from '../../src/sweep/config.js';
import { runConfig } from '../../src/sweep/run.js';

type Overrides = Partial<RunConfig> & { train?: Partial<RunConfig['train']> };
const program = new Command('experiments/checkerboard/probe-seeds.ts')
  .description('recipe probe: run one checkerboard configuration over several seeds, one JSON line per seed')
  .argument('[overrides]', 'RunConfig overrides as a JSON object (train: {...} is merged into the default recipe)', jsonObjectOption<Overrides>('overrides'), {} as Overrides)
  .addArgument(
    new Argument('[seeds]', 'comma-separated seeds')
      .argParser(intListOption('seeds', 0))
      .default([0], '0'),
  )
  .parse();
const [over, seeds] = program.processedArgs as [Overrides, number[]];

await initBackend();
for (const seed of seeds) {
  const c: RunConfig = { family: 'qat', hidden: 100, bits: 3, k: null, strict: false, targetBits: null, input: 'signed', data: DEFAULT_DATA, ...over, seed, train: { ...DEFAULT_TRAIN, ...over.train } };
  const r = await runConfig(c);
  console.log(JSON.stringify({ seed, test: r.testAccuracy, train: +r.trainAccuracy.toFixed(4), float: r.floatAccuracy, bits: r.accumulatorBits, worst: r.worstCaseBits, s: r.seconds }));
}
