/**
 * Trains the shipped small GPT-2 (models/gpt2-kjv-small) on the KJV corpus written by corpus.ts, and writes it as a
 * Hugging Face folder: config.json, model.safetensors (F16), tokenizer files, generation_config.json.
 *
 *   FHENET_NATIVE_THREADS=2 nice -n 5 npx tsx experiments/gpt2-small/train.ts --run runs/gpt2-small/run1 \
 *     [--n-embd 256 --n-layer 4 --n-head 4 --context 128 --batch 8 --accum 2 --steps 3000 --lr 1e-3 --warmup 100]
 *     [--max-seconds S] [--resume] [--export models/gpt2-kjv-small]
 *
 * Every option of a run is stored in RUN/options.json; `--resume` continues RUN/last.safetensors with those options
 * (exactly, see fitCausalLM). `--export DIR` writes the folder from the run's checkpoint (F16) plus RUN/curve.svg and
 * RUN/log.csv. `--measure N` trains N steps from scratch without checkpoints and prints tokens/s (for sizing).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { fitCausalLM, type LMLogEntry } from '../../src/train/causal-lm.js';
import { GPT2Config } from '../../src/transformers/gpt2/config.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { savePretrained } from '../../src/transformers/gpt2/pretrained.js';
import { GPT2Tokenizer } from '../../src/transformers/tokenizer.js';
import { decodeTensors } from '../../src/nn/checkpoint.js';
import { MODEL_DIR } from './corpus.js';
import { lossCurveSvg } from './loss-curve.js';
import { subsetForward, subsetVocabulary, zeroUnseenRows } from './subset-vocabulary.js';

interface RunOptions {
  nEmbd: number;
  nLayer: number;
  nHead: number;
  context: number;
  batch: number;
  accum: number;
  steps: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  evalEvery: number;
  seed: number;
  corpus: string;
}

const DEFAULTS: RunOptions = {
  nEmbd: 256, nLayer: 4, nHead: 4, context: 128, batch: 8, accum: 2, steps: 3000, lr: 1e-3, warmup: 100,
  weightDecay: 0.1, evalEvery: 250, seed: 23, corpus: 'runs/gpt2-small/corpus',
};

function args(): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const k = a[i]!.replace(/^--/, '');
    if (a[i + 1] !== undefined && !a[i + 1]!.startsWith('--')) out[k] = a[++i]!;
    else out[k] = true;
  }
  return out;
}

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function readU16(file: string): Uint16Array {
  const buf = fs.readFileSync(file);
  return new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2);
}

export function configFor(o: RunOptions): GPT2Config {
  // Dropout off: a 1.2 M-token corpus seen for about one epoch does not overfit, and without random masks a resumed
  // run is exactly the uninterrupted one.
  return new GPT2Config({
    n_embd: o.nEmbd, n_layer: o.nLayer, n_head: o.nHead, n_positions: o.context,
    resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
  });
}

async function main(): Promise<void> {
  const a = args();
  const run = typeof a.run === 'string' ? a.run : undefined;
  const measure = typeof a.measure === 'string' ? Number(a.measure) : undefined;
  if (!run && measure === undefined) throw new Error('--run DIR (or --measure N) is required');
  await initBackend();
  const optsFile = run ? path.join(run, 'options.json') : undefined;
  let o: RunOptions = { ...DEFAULTS };
  if (optsFile && fs.existsSync(optsFile) && (a.resume || a.export)) o = JSON.parse(fs.readFileSync(optsFile, 'utf8')) as RunOptions;
  else {
    for (const [k, v] of Object.entries(a)) {
      const key = camel(k) as keyof RunOptions;
      if (key in DEFAULTS && typeof v === 'string') (o as unknown as Record<string, unknown>)[key] = typeof DEFAULTS[key] === 'number' ? Number(v) : v;
    }
    if (run) {
      fs.mkdirSync(run, { recursive: true });
      fs.writeFileSync(optsFile!, JSON.stringify(o, null, 2) + '\n');
    }
  }
  const config = configFor(o);
  const model = new GPT2LMHeadModel(config, { seed: o.seed });
  const nParams = model.parameters().reduce((s, p) => s + p.size, 0);
  console.log(`model: ${o.nLayer} layers, width ${o.nEmbd}, ${o.nHead} heads, context ${o.context}; ${(nParams / 1e6).toFixed(2)} M parameters (F16 ${((nParams * 2) / 2 ** 20).toFixed(1)} MiB)`);

  if (typeof a.export === 'string') {
    await exportRun(model, run!, a.export);
    return;
  }
  const train = readU16(path.join(o.corpus, 'train.u16'));
  const validation = readU16(path.join(o.corpus, 'validation.u16'));
  const steps = measure ?? o.steps;
  // Exact 50,257-way cross-entropy over the corpus's own ~9,900 tokens (subset-vocabulary.ts): unseen rows held at 0.
  const subset = subsetVocabulary([train, validation], config.vocab_size);
  zeroUnseenRows(model, subset);
  console.log(`corpus vocabulary: ${subset.ids.length} of ${config.vocab_size} tokens; ${train.length} training tokens`);
  const t0 = Date.now();
  const res = await fitCausalLM(model, { train, validation: measure ? undefined : validation }, {
    contextLength: o.context, batchSize: o.batch, gradientAccumulationSteps: o.accum, maxSteps: steps, lr: o.lr,
    warmupSteps: Math.min(o.warmup, steps), weightDecay: o.weightDecay, seed: o.seed, evalEvery: o.evalEvery,
    checkpointDir: run && !measure ? run : undefined, checkpointEvery: 50, resume: Boolean(a.resume),
    maxSeconds: typeof a['max-seconds'] === 'string' ? Number(a['max-seconds']) : undefined,
    progress: 'lines', logEvery: 10, forward: subsetForward(subset), targetIndex: subset.targetIndex,
    onLog: (e) => console.log(JSON.stringify(e)),
  });
  const secs = (Date.now() - t0) / 1000;
  const tokens = res.steps * o.batch * o.accum * o.context;
  if (measure) console.log(`measure: ${res.steps} steps, ${tokens} tokens in ${secs.toFixed(1)} s = ${(tokens / secs).toFixed(0)} tokens/s`);
  else if (run) await writeLog(run, res.log);
}

async function writeLog(run: string, log: LMLogEntry[]): Promise<void> {
  const csv = ['step,lr,loss,grad_norm,validation_loss,tokens,seconds'];
  for (const e of log) csv.push([e.step, e.lr, e.loss, e.gradNorm, e.validationLoss ?? '', e.tokens, e.seconds].join(','));
  fs.writeFileSync(path.join(run, 'log.csv'), csv.join('\n') + '\n');
  fs.writeFileSync(path.join(run, 'curve.svg'), await lossCurveSvg(log, 'gpt2-kjv-small: training and validation loss'));
}

/** The run's last checkpoint as a Hugging Face folder (F16), with the GPT-2 tokenizer and generation defaults. */
async function exportRun(model: GPT2LMHeadModel, run: string, dir: string): Promise<void> {
  const { tensors, metadata } = decodeTensors(new Uint8Array(fs.readFileSync(path.join(run, 'last.safetensors'))));
  const state = new Map([...tensors].filter(([k]) => k.startsWith('model.')).map(([k, t]) => [k.slice(6), t] as const));
  model.loadStateDict(state);
  savePretrained(model, dir, { dtype: 'F16' });
  GPT2Tokenizer.fromPretrained(MODEL_DIR).save(dir);
  fs.writeFileSync(
    path.join(dir, 'generation_config.json'),
    JSON.stringify({ bos_token_id: 50256, eos_token_id: 50256, do_sample: true, temperature: 0.8, top_k: 50, top_p: 0.95, max_new_tokens: 100 }, null, 2) + '\n',
  );
  const log = JSON.parse(metadata.history!) as LMLogEntry[];
  await writeLog(run, log);
  console.log(`exported step ${metadata.epoch} to ${dir}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
