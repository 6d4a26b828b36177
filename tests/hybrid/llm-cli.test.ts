/** `fhenet hybrid-llm build` and `generate`, and `fhenet generate --server` (simulate backend, a 1-block GPT-2 with GPT-2's tokenizer files). */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { savePretrained } from '../../src/transformers/gpt2/pretrained.js';
import { hybridLlmCommand } from '../../src/cli/hybrid-llm.js';
import { generateCommand } from '../../src/cli/generate.js';
import { startServer, tmpDir } from './helpers.js';

const root = tmpDir('llm-cli');
const TOKENIZER = path.join(import.meta.dirname, '..', '..', 'models', 'gpt2-kjv-small');

beforeAll(async () => {
  await initBackend();
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('fhenet hybrid-llm', () => {
  it('build writes a client folder with the tokenizer and no remote weights; generate streams text from the server', async () => {
    const modelDir = path.join(root, 'tiny');
    savePretrained(new GPT2LMHeadModel({ vocab_size: 50257, n_positions: 64, n_embd: 32, n_layer: 1, n_head: 2 }, { seed: 1 }), modelDir);
    for (const f of ['tokenizer.json', 'vocab.json', 'merges.txt']) fs.copyFileSync(path.join(TOKENIZER, f), path.join(modelDir, f));
    const out: string[] = [];
    const err: string[] = [];
    const so = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    const se = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    try {
      await hybridLlmCommand().parseAsync(['build', '--model', modelDir, '--out', path.join(root, 'out'), '--backend', 'simulate'], { from: 'user' });
      const client = path.join(root, 'out', 'tiny', 'client');
      expect(fs.readdirSync(client).sort()).toEqual(['config.json', 'hybrid.json', 'merges.txt', 'model.safetensors', 'remote-layers.safetensors', 'tokenizer.json', 'vocab.json']);
      expect(out.join('')).toMatch(/7 remote layers \(simulate\)/);
      const { app, url } = await startServer({ modelsDir: path.join(root, 'out'), keysDir: path.join(root, 'keys') });
      try {
        out.length = 0;
        await hybridLlmCommand().parseAsync(['generate', '--model', client, '--server', url, '--prompt', 'And God said', '--max-new-tokens', '3'], { from: 'user' });
        // `fhenet generate --model CLIENT_DIR --server URL` is the same (the spelling), and greedy by default
        const viaHybrid = out.join('');
        out.length = 0;
        await generateCommand().parseAsync(['--model', client, '--server', url, '--prompt', 'And God said', '--max-new-tokens', '3'], { from: 'user' });
        expect(out.join('')).toBe(viaHybrid);
        // a client folder without --server, and --server with a whole model: one-line errors that name the fix
        await expect(generateCommand().parseAsync(['--model', client, '--prompt', 'x'], { from: 'user' })).rejects.toThrow(/give --server URL/);
        await expect(generateCommand().parseAsync(['--model', modelDir, '--server', url, '--prompt', 'x'], { from: 'user' })).rejects.toThrow(/has no hybrid.json/);
      } finally {
        await app.close();
      }
    } finally {
      so.mockRestore();
      se.mockRestore();
    }
    expect(out.join('').startsWith('And God said')).toBe(true);
    expect(out.join('').length).toBeGreaterThan('And God said'.length);
    expect(err.join('')).toMatch(/3 tokens in .* 21 remote layer calls/);
    expect(err.join('').match(/3 tokens in /g)?.length).toBe(2);
  });
});
