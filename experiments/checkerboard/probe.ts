/** Sizing probe: one run of a configuration, printed as JSON (not part of the experiment's results). */
import { initBackend } from '../../src/backend/index.js';
import { type RunConfig, DEFAULT_DATA, DEFAULT_TRAIN } from '../../src/sweep/config.js';
import { runConfig } from '../../src/sweep/run.js';
await initBackend();
const over = JSON.parse(process.argv[2] ?? '{}') as Partial<RunConfig> & { train?: Partial<RunConfig['train']> };
const c: RunConfig = { family: 'qat', hidden: 100, bits: 3, k: null, strict: false, targetBits: null, input: 'signed', seed: 0, data: DEFAULT_DATA, ...over, train: { ...DEFAULT_TRAIN, ...over.train } };
const r = await runConfig(c);
console.log(JSON.stringify({ c: { ...c, data: undefined }, r: { ...r, layerBits: r.layerBits.map((l) => `${l.layer}:${l.observed}/${l.worstCase}`).join(' ') } }));
