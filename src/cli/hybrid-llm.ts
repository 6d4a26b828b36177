/**
 * `fhenet hybrid-llm`: the hybrid LLM (docs/hybrid.md, "Hybrid LLMs").
 *   build     the model owner's side: a GPT-2-family folder → client folder (no remote weights) + server artefacts
 *   generate  the user's side: the client folder + a server URL → text, every remote layer computed on encrypted
 *             activations by the server, with s/token and bytes/token at the end
 * Serve the artefacts with `fhenet serve --models OUT`.
 */
import { Command } from 'commander';
import { intOption } from './options.js';

export function hybridLlmCommand(): Command {
  const cmd = new Command('hybrid-llm').description('a GPT-2-family model with its linear layers on an encrypted server (build, generate)');
  cmd
    .command('build')
    .description('compile a Hugging Face GPT-2 folder into a client folder without the remote weights and the server artefacts')
    .requiredOption('--model <dir>', 'Hugging Face GPT-2 folder (config.json, model.safetensors, tokenizer files)')
    .requiredOption('--out <dir>', 'models folder to write <out>/<name>/{client,llm}; serve it with `fhenet serve --models <out>`')
    .option(
      '--remote <names...>',
      "remote modules: 'all-linear' (every Linear/Conv1D, the reference's recipe), 'embeddings' (transformer.wte, transformer.wpe) and/or module names, comma- or space-separated",
      ['all-linear,embeddings'],
    )
    .option('--backend <name>', "linear backend: 'glwe' (encrypted) or 'simulate' (clear integers, development only)", 'glwe')
    .option('--name <name>', 'model name on the server (default: the model folder name)')
    .action(async (o: { model: string; out: string; remote: string[]; backend: string; name?: string }) => {
      const { initBackend } = await import('../backend/index.js');
      const { buildHybridLlm } = await import('../hybrid/hybrid-llm.js');
      await initBackend();
      const t0 = performance.now();
      const r = buildHybridLlm(o.model, o.out, { remote: o.remote, backend: o.backend, name: o.name });
      process.stdout.write(
        `${r.remote.length} remote layers (${o.backend}) → ${r.dir}/client (give this folder to users) and ${r.dir}/llm (the server's); ` +
          `${((performance.now() - t0) / 1000).toFixed(1)} s\nserve: fhenet serve --models ${o.out}\n`,
      );
    });
  cmd
    .command('generate')
    .description('continue a prompt with a hybrid LLM client folder against `fhenet serve` (greedy)')
    .requiredOption('--model <dir>', 'the client folder written by `hybrid-llm build`')
    .requiredOption('--server <url>', 'base URL of `fhenet serve`')
    .requiredOption('--prompt <text>', 'the text to continue')
    .option('--max-new-tokens <n>', 'tokens to generate (≥ 1)', intOption('--max-new-tokens', 1), 20)
    .option('--token-file <file>', 'bearer token for a server started with --token-file (first line)')
    .action(async (o: { model: string; server: string; prompt: string; maxNewTokens: number; tokenFile?: string }) => {
      const fs = await import('node:fs');
      const { initBackend } = await import('../backend/index.js');
      const { loadHybridLlmClient } = await import('../hybrid/hybrid-llm.js');
      const { GPT2Tokenizer } = await import('../transformers/tokenizer.js');
      const { TextStreamer } = await import('../transformers/text-streamer.js');
      const { generate } = await import('../transformers/generation.js');
      await initBackend();
      const token = o.tokenFile ? fs.readFileSync(o.tokenFile, 'utf8').split('\n')[0]!.trim() : undefined;
      const { model, hybrid } = loadHybridLlmClient(o.model, { serverUrl: o.server, serverToken: token });
      const tokenizer = GPT2Tokenizer.fromPretrained(o.model);
      const ids = tokenizer.encode(o.prompt);
      const streamer = new TextStreamer(tokenizer);
      process.stdout.write(o.prompt);
      const t0 = performance.now();
      const stepMs: number[] = [];
      let last = t0;
      await generate(model, ids, {
        maxNewTokens: o.maxNewTokens,
        eosTokenId: tokenizer.eosTokenId,
        onToken: ([id]) => {
          const now = performance.now();
          stepMs.push(now - last);
          last = now;
          process.stdout.write(streamer.push(id!));
        },
      });
      process.stdout.write(`${streamer.end()}\n`);
      process.stderr.write(hybridGenerationSummary(hybrid, stepMs, ids.length, performance.now() - t0));
      await hybrid.close();
    });
  return cmd;
}

/** One line for stderr after a hybrid generation: time per token, remote calls, bytes per token, the key upload. */
export function hybridGenerationSummary(hybrid: { calls: { bytesSent: number; bytesReceived: number }[]; keyReports: { bytes: number }[] }, stepMs: number[], promptTokens: number, totalMs: number): string {
  const up = hybrid.calls.reduce((a, c) => a + c.bytesSent, 0);
  const down = hybrid.calls.reduce((a, c) => a + c.bytesReceived, 0);
  const n = stepMs.length;
  const kB = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} kB`);
  const key = hybrid.keyReports[0];
  return (
    `${n} tokens in ${(totalMs / 1000).toFixed(1)} s (first, with the ${promptTokens}-token prompt and the key upload: ${((stepMs[0] ?? 0) / 1000).toFixed(1)} s; ` +
    `then ${n > 1 ? (stepMs.slice(1).reduce((a, b) => a + b, 0) / (n - 1) / 1000).toFixed(2) : '–'} s/token); ` +
    `${hybrid.calls.length} remote layer calls, ${kB(up / Math.max(n, 1))} up + ${kB(down / Math.max(n, 1))} down per token; ` +
    `key ${key ? kB(key.bytes) : '?'} uploaded once\n`
  );
}
