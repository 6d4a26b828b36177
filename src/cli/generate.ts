/** `fhenet generate`: continues a prompt with a GPT-2-family model folder, streaming the text to the terminal. */
import { Command } from 'commander';
import { ConfigError } from '../util/errors.js';
import { intOption, numberOption } from './options.js';
import { hybridGenerationSummary } from './hybrid-llm.js';

interface GenerateCliOptions {
  model: string;
  prompt: string;
  maxNewTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed: number;
  stop?: string[];
  stats?: boolean;
  server?: string;
  tokenFile?: string;
}

export function generateCommand(): Command {
  return new Command('generate')
    .description('continue a prompt with a GPT-2-family model (Hugging Face folder), streaming tokens as they come')
    .requiredOption('--model <dir>', 'model folder: config.json, model.safetensors (or sharded), tokenizer files; or the client/ folder of `fhenet hybrid-llm build` with --server')
    .option('--server <url>', 'with a hybrid client folder: base URL of the `fhenet serve` that computes its remote layers on encrypted activations')
    .option('--token-file <file>', 'with --server: bearer token for a server started with --token-file (first line)')
    .requiredOption('--prompt <text>', 'the text to continue')
    .option('--max-new-tokens <n>', 'tokens to generate (≥ 1)', intOption('--max-new-tokens', 1), 50)
    .option('--temperature <t>', 'sample with this temperature (> 0; 0 = greedy)', numberOption('--temperature'))
    .option('--top-p <p>', 'sample from the smallest set of tokens whose probability reaches p (0 < p ≤ 1)', numberOption('--top-p'))
    .option('--top-k <k>', 'sample from the k most likely tokens', intOption('--top-k', 1))
    .option('--seed <s>', 'seed of the sampling', intOption('--seed'), 0)
    .option('--stop <text...>', 'stop when the generated text contains one of these strings')
    .option('--stats', 'print tokens/s to stderr at the end')
    .action(async (o: GenerateCliOptions) => {
      // Loaded here, not at the top: `fhenet --help` and the server commands must not load TensorFlow.js (src/cli/main.ts).
      const [{ initBackend }, { generate }, { fromPretrained }, { TextStreamer }, { GPT2Tokenizer }] = await Promise.all([
        import('../backend/index.js'),
        import('../transformers/generation.js'),
        import('../transformers/gpt2/pretrained.js'),
        import('../transformers/text-streamer.js'),
        import('../transformers/tokenizer.js'),
      ]);
      await initBackend();
      const fs = await import('node:fs');
      const path = await import('node:path');
      const isClient = fs.existsSync(path.join(o.model, 'hybrid.json'));
      if (isClient && o.server === undefined) throw new ConfigError(`${o.model} is the client half of a hybrid model (hybrid.json): give --server URL of the fhenet serve that holds the other half`);
      if (!isClient && o.server !== undefined) throw new ConfigError(`--server needs the client folder of a hybrid model (written by fhenet hybrid-llm build); ${o.model} has no hybrid.json`);
      const tokenizer = GPT2Tokenizer.fromPretrained(o.model);
      let hybrid: Awaited<ReturnType<typeof import('../hybrid/hybrid-llm.js').loadHybridLlmClient>>['hybrid'] | undefined;
      let model: import('../transformers/gpt2/model.js').GPT2LMHeadModel;
      if (o.server !== undefined) {
        const { loadHybridLlmClient } = await import('../hybrid/hybrid-llm.js');
        const token = o.tokenFile ? fs.readFileSync(o.tokenFile, 'utf8').split('\n')[0]!.trim() : undefined;
        ({ model, hybrid } = loadHybridLlmClient(o.model, { serverUrl: o.server, serverToken: token }));
      } else {
        model = fromPretrained(o.model);
      }
      if (tokenizer.vocabSize > model.config.vocab_size) {
        throw new ConfigError(`${o.model}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${model.config.vocab_size} (vocab_size)`);
      }
      const ids = tokenizer.encode(o.prompt);
      if (ids.length === 0) throw new ConfigError('--prompt is empty after tokenization; give some text');
      const greedy = o.temperature === 0 || (o.temperature === undefined && o.topP === undefined && o.topK === undefined);
      const streamer = new TextStreamer(tokenizer);
      const generated: number[] = [];
      const stepMs: number[] = [];
      const t0 = performance.now();
      let firstAt = 0;
      let last = t0;
      await generate(model, ids, {
        maxNewTokens: o.maxNewTokens,
        doSample: !greedy,
        temperature: greedy ? undefined : o.temperature,
        topP: o.topP,
        topK: o.topK,
        seed: o.seed,
        eosTokenId: tokenizer.eosTokenId,
        onToken: ([id]) => {
          const now = performance.now();
          stepMs.push(now - last);
          last = now;
          if (!firstAt) {
            firstAt = performance.now();
            process.stdout.write(o.prompt);
          }
          if (id === tokenizer.eosTokenId) return;
          generated.push(id!);
          process.stdout.write(streamer.push(id!));
        },
        stop: (o.stop ?? []).map((s) => (g: number[]) => tokenizer.decode(g.filter((id) => id !== tokenizer.eosTokenId)).includes(s)),
      });
      process.stdout.write(`${streamer.end()}\n`);
      if (o.stats) {
        const total = (performance.now() - t0) / 1000;
        const rest = generated.length > 1 ? (performance.now() - firstAt) / (generated.length - 1) : NaN;
        process.stderr.write(
          `prompt ${ids.length} tokens, generated ${generated.length} in ${total.toFixed(2)} s (first token ${((firstAt - t0) / 1000).toFixed(2)} s, then ${rest.toFixed(1)} ms/token)\n`,
        );
      }
      if (hybrid) {
        process.stderr.write(hybridGenerationSummary(hybrid, stepMs, ids.length, performance.now() - t0));
        await hybrid.close();
      }
      model.dispose();
    });
}
