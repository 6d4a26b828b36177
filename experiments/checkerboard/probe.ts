/**
 * Sizing probe: one run of a configuration, printed as JSON (not part of the experiment's results).
 *   npx tsx experiments/checkerboard/probe.ts ['<RunConfig overrides as JSON>']   (default '{}')
 */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import { Command } from 'commander';
import { jsonObjectOption } from '../../src/cli/options.js';
import { initBackend } from '../../src/backend/index.js';
import { type RunConfig, DEFAULT_DATA, DEFAULT_TRAIN } from '../../src/sweep/config.js';
import { runConfig } from '../../src/sweep/run.js';

type Overrides = Partial<RunConfig> & { train?: Partial<RunConfig['train']> };
const program = new Command('experiments/checkerboard/probe.ts')
  .description('sizing probe: one run of a checkerboard configuration, printed as JSON')
  .argument('[overrides]', 'RunConfig overrides as a JSON object (train: {...} is merged into the default recipe)', jsonObjectOption<Overrides>('overrides'), {} as Overrides)
  .parse();
const over = program.processedArgs[0] as Overrides;

await initBackend();
const c: RunConfig = { family: 'qat', hidden: 100, bits: 3, k: null, strict: false, targetBits: null, input: 'signed', seed: 0, data: DEFAULT_DATA, ...over, train: { ...DEFAULT_TRAIN, ...over.train } };
const r = await runConfig(c);
console.log(JSON.stringify({ c: { ...c, data: undefined }, r: { ...r, layerBits: r.layerBits.map((l) => `${l.layer}:${l.observed}/${l.worstCase}`).join(' ') } }));
