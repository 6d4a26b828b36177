/** `fhenet eval-lm`: perplexity of a Hugging Face GPT-2 folder on a text file, with a progress bar. */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { ConfigError } from '../util/errors.js';
import { intOption } from './options.js';

interface EvalLmOptions {
  model: string;
  text: string;
  context?: number;
  stride?: number;
  batchSize: number;
  maxTokens?: number;
  backend?: string;
  json?: boolean;
}

export function evalLmCommand(): Command {
  return new Command('eval-lm')
    .description('perplexity of a GPT-2 model folder (config.json, model.safetensors, tokenizer) on a text file')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--text <file>', 'UTF-8 text file to score')
    .option('--context <n>', 'tokens per window (default: the model\'s n_positions)', intOption('--context', 2))
    .option('--stride <n>', 'tokens each window moves; smaller gives more context per token (default: --context)', intOption('--stride', 1))
    .option('--batch-size <n>', 'windows per forward pass', intOption('--batch-size', 1), 8)
    .option('--max-tokens <n>', 'score only the first n tokens of the text', intOption('--max-tokens', 2))
    .option('--backend <name>', 'force a tensor backend (node-gpu, node, wasm, cpu)')
    .option('--json', 'print the result as JSON')
    .action(async (o: EvalLmOptions) => {
      await runEvalLm(o);
    });
}

async function runEvalLm(o: EvalLmOptions): Promise<void> {
  if (!fs.existsSync(o.text) || !fs.statSync(o.text).isFile()) throw new ConfigError(`--text ${o.text} is not a readable file`);
  if (o.backend) process.env.FHENET_BACKEND = o.backend;
  // Loaded here, not at the top: `fhenet --help` and the server commands must not load TensorFlow.js (src/cli/main.ts).
  const [{ initBackend }, { evaluatePerplexity }, { fromPretrained }, { GPT2Tokenizer }, { createProgress }] = await Promise.all([
    import('../backend/index.js'),
    import('../train/causal-lm.js'),
    import('../transformers/gpt2/pretrained.js'),
    import('../transformers/tokenizer.js'),
    import('../util/progress.js'),
  ]);
  await initBackend();
  const tokenizer = GPT2Tokenizer.fromPretrained(o.model);
  const model = fromPretrained(o.model);
  const context = o.context ?? model.config.n_positions;
  if (context > model.config.n_positions) {
    throw new ConfigError(`--context ${context} exceeds the model's n_positions (${model.config.n_positions})`);
  }
  let ids = tokenizer.encode(fs.readFileSync(o.text, 'utf8'));
  if (o.maxTokens !== undefined) ids = ids.slice(0, o.maxTokens);
  if (ids.length < 2) throw new ConfigError(`${o.text} has ${ids.length} token(s); perplexity needs at least 2`);
  const progress = createProgress({ label: 'eval-lm', total: ids.length - 1, mode: o.json ? 'silent' : undefined });
  const t0 = Date.now();
  const r = await evaluatePerplexity(model, ids, {
    contextLength: context,
    stride: o.stride ?? context,
    batchSize: o.batchSize,
    onProgress: (done) => progress.update(done),
  });
  progress.stop();
  const seconds = (Date.now() - t0) / 1000;
  const result = { model: o.model, text: o.text, tokens: r.tokens, context, stride: o.stride ?? context, loss: r.loss, perplexity: r.perplexity, seconds };
  if (o.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`perplexity ${r.perplexity.toFixed(3)} (loss ${r.loss.toFixed(4)} nats/token) on ${r.tokens} tokens of ${o.text}`);
    console.log(`context ${context}, stride ${o.stride ?? context}; ${seconds.toFixed(1)} s (${(r.tokens / seconds).toFixed(0)} tokens/s)`);
  }
  model.dispose();
}
