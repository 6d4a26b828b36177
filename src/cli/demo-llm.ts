/**
 * `fhenet demo --llm`: the hybrid LLM in one command, on loopback. Takes the project's shipped GPT-2
 * (models/gpt2-kjv-small, when present; otherwise a small random GPT-2), puts every linear layer on the server
 * (`buildHybridLlm`, glwe), starts `fhenet serve`'s server in-process on 127.0.0.1, loads the client folder (no
 * remote weights), uploads the one GLWE key and generates text with every linear layer computed on encrypted
 * activations. Prints the text, s/token and bytes/token.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface LlmDemoOptions {
  /** A GPT-2 Hugging Face folder (default: models/gpt2-kjv-small, else a random GPT-2). */
  model?: string;
  prompt?: string;
  newTokens?: number;
  log?: (line: string) => void;
}

export interface LlmDemoResult {
  model: string;
  text: string;
  tokens: number[];
  remoteLayers: number;
  keyBytes: number;
  keygenS: number;
  keyUploadS: number;
  firstTokenS: number;
  sPerToken: number;
  bytesUpPerToken: number;
  bytesDownPerToken: number;
  roundTripsPerToken: number;
  totalS: number;
}

const SHIPPED = 'models/gpt2-kjv-small';

export async function runLlmDemo(opts: LlmDemoOptions = {}): Promise<LlmDemoResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const T0 = performance.now();
  const { initBackend } = await import('../backend/index.js');
  const { GPT2LMHeadModel } = await import('../transformers/gpt2/model.js');
  const { savePretrained } = await import('../transformers/gpt2/pretrained.js');
  const { generate } = await import('../transformers/generation.js');
  const { GPT2Tokenizer } = await import('../transformers/tokenizer.js');
  const { buildHybridLlm, loadHybridLlmClient } = await import('../hybrid/hybrid-llm.js');
  const { buildServer } = await import('../hybrid/server/app.js');
  await initBackend();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-demo-llm-'));
  try {
    let modelDir = opts.model ?? (fs.existsSync(path.join(SHIPPED, 'model.safetensors')) ? SHIPPED : undefined);
    if (!modelDir) {
      modelDir = path.join(work, 'random-gpt2');
      savePretrained(new GPT2LMHeadModel({ vocab_size: 512, n_positions: 128, n_embd: 64, n_layer: 2, n_head: 4 }, { seed: 1 }), modelDir);
      log(`[1/4] ${SHIPPED} is not here: a random 2-block GPT-2 (width 64) stands in (its text is noise)`);
    } else log(`[1/4] model ${modelDir}`);
    const built = buildHybridLlm(modelDir, path.join(work, 'models'), { backend: 'glwe', name: 'llm' });
    log(`[2/4] ${built.remote.length} layers remote (every Linear/Conv1D, wte, wpe; glwe); client folder ${built.dir}/client holds none of their weights`);
    const app = await buildServer({ modelsDir: path.join(work, 'models'), keysDir: path.join(work, 'keys'), logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    log(`[3/4] server on ${url}; the client generates its GLWE keys and uploads the packing key once`);
    try {
      const clientDir = path.join(built.dir, 'client');
      const { model, hybrid } = loadHybridLlmClient(clientDir, { serverUrl: url });
      const tokenizer = fs.existsSync(path.join(clientDir, 'tokenizer.json')) || fs.existsSync(path.join(clientDir, 'vocab.json')) ? GPT2Tokenizer.fromPretrained(clientDir) : undefined;
      const prompt = opts.prompt ?? 'And God said';
      const ids = tokenizer ? tokenizer.encode(prompt) : [1, 2, 3, 4];
      const stamps: number[] = [];
      const callsAt: number[] = [];
      const t0 = performance.now();
      const { newTokens } = await generate(model, ids, {
        maxNewTokens: opts.newTokens ?? 8,
        eosTokenId: null,
        onToken: () => {
          stamps.push(performance.now());
          callsAt.push(hybrid.calls.length);
        },
      });
      const tokens = newTokens[0]!;
      const text = tokenizer ? tokenizer.decode([...ids, ...tokens]) : `token ids ${JSON.stringify(ids)} → ${JSON.stringify(tokens)}`;
      const key = hybrid.keyReports[0]!;
      const gen = stamps.length - 1;
      const later = hybrid.calls.slice(callsAt[0]!);
      const r: LlmDemoResult = {
        model: modelDir,
        text,
        tokens,
        remoteLayers: built.remote.length,
        keyBytes: key.bytes,
        keygenS: key.keygenMs / 1000,
        keyUploadS: key.uploadMs / 1000,
        firstTokenS: (stamps[0]! - t0) / 1000,
        sPerToken: gen > 0 ? (stamps[gen]! - stamps[0]!) / gen / 1000 : NaN,
        bytesUpPerToken: later.reduce((a, c) => a + c.bytesSent, 0) / Math.max(1, gen),
        bytesDownPerToken: later.reduce((a, c) => a + c.bytesReceived, 0) / Math.max(1, gen),
        roundTripsPerToken: later.length / Math.max(1, gen),
        totalS: (performance.now() - T0) / 1000,
      };
      log(`[4/4] ${text}`);
      log(
        `      ${tokens.length} tokens: first ${r.firstTokenS.toFixed(1)} s (keys: ${(r.keyBytes / 1e6).toFixed(0)} MB, keygen ${r.keygenS.toFixed(1)} s, upload + server load ${r.keyUploadS.toFixed(1)} s), ` +
          `then ${r.sPerToken.toFixed(2)} s/token, ${(r.bytesUpPerToken / 1e3).toFixed(0)} kB up + ${(r.bytesDownPerToken / 1e3).toFixed(0)} kB down and ${r.roundTripsPerToken} round trips per token; total ${r.totalS.toFixed(0)} s`,
      );
      await hybrid.close();
      return r;
    } finally {
      await app.close();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
