import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { generateCommand } from '../../src/cli/generate.js';
import { GPT2LMHeadModel, GPT2Tokenizer, TextStreamer, fromPretrained, generate, savePretrained } from '../../src/transformers/index.js';

// A random GPT-2-shaped model with the real GPT-2 tokenizer files the project ships.
const TOKENIZER_DIR = path.join(import.meta.dirname, '../../models/gpt2-kjv-small');
let dir: string;

beforeAll(async () => {
  await initBackend();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-cli-gen-'));
  const m = new GPT2LMHeadModel({ n_embd: 32, n_layer: 2, n_head: 4, n_positions: 64, initializer_range: 0.2 }, { seed: 1 });
  savePretrained(m, dir, { dtype: 'F16' });
  m.dispose();
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt']) {
    if (fs.existsSync(path.join(TOKENIZER_DIR, f))) fs.copyFileSync(path.join(TOKENIZER_DIR, f), path.join(dir, f));
  }
});

afterEach(() => vi.restoreAllMocks());

async function run(args: string[]): Promise<string> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  await generateCommand().exitOverride().parseAsync(['node', 'generate', ...args]);
  return out;
}

describe('fhenet generate', () => {
  it('streams the greedy continuation that generate() produces', async () => {
    const out = await run(['--model', dir, '--prompt', 'In the beginning', '--max-new-tokens', '12']);
    const tok = GPT2Tokenizer.fromPretrained(dir);
    const model = fromPretrained(dir);
    const ids = tok.encode('In the beginning');
    const expected = await generate(model, ids, { maxNewTokens: 12, eosTokenId: tok.eosTokenId });
    const text = tok.decode(expected.newTokens[0]!.filter((t) => t !== tok.eosTokenId));
    expect(out).toBe(`In the beginning${text}\n`);
    model.dispose();
  });

  it('--stop ends the continuation once the text contains the stop string', async () => {
    const tok = GPT2Tokenizer.fromPretrained(dir);
    const model = fromPretrained(dir);
    const free = (await generate(model, tok.encode('In the beginning'), { maxNewTokens: 12, eosTokenId: null })).newTokens[0]!;
    model.dispose();
    const stop = tok.decode([free[3]!]);
    const cut = free.findIndex((_, i) => tok.decode(free.slice(0, i + 1)).includes(stop));
    const out = await run(['--model', dir, '--prompt', 'In the beginning', '--max-new-tokens', '12', '--stop', stop]);
    expect(out).toBe(`In the beginning${tok.decode(free.slice(0, cut + 1))}\n`);
    expect(cut).toBeLessThan(11);
  });

  it('samples reproducibly with a seed', async () => {
    const a = await run(['--model', dir, '--prompt', 'And God said', '--max-new-tokens', '10', '--temperature', '0.9', '--top-p', '0.9', '--seed', '4']);
    const b = await run(['--model', dir, '--prompt', 'And God said', '--max-new-tokens', '10', '--temperature', '0.9', '--top-p', '0.9', '--seed', '4']);
    expect(a).toBe(b);
  });

  it('refuses a prompt longer than the context and a missing folder, naming the problem', async () => {
    await expect(run(['--model', dir, '--prompt', 'word '.repeat(80)])).rejects.toThrow(/more than the model's context of 64/);
    await expect(run(['--model', path.join(dir, 'nope'), '--prompt', 'x'])).rejects.toThrow(/does not exist/);
  });
});

describe('TextStreamer', () => {
  it('holds back a character split across tokens until it is complete', () => {
    const tok = GPT2Tokenizer.fromPretrained(TOKENIZER_DIR);
    const ids = tok.encode('naïve 🙂 café');
    const s = new TextStreamer(tok);
    const pieces = ids.map((id) => s.push(id));
    expect(pieces.join('') + s.end()).toBe('naïve 🙂 café');
    expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
  });
});
