/**
 * GPT2Tokenizer against an independent GPT-2 BPE implementation (`gpt-tokenizer`'s r50k_base, which is GPT-2's
 * encoding, written separately from tokenizers.js) on over 1 MB of deterministic, varied text.
 */
import { mkdtempSync, rmSync, copyFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode as oracleEncode } from 'gpt-tokenizer/encoding/r50k_base';
import { GPT2Tokenizer, GPT2_EOS_TOKEN_ID, TokenizerFileError } from '../../src/transformers/tokenizer.js';
import { Rng } from '../../src/util/rng.js';

const MODEL_DIR = join(import.meta.dirname, '../../models/gpt2-kjv-small');

/** Snippets of the kinds of text GPT-2's pre-tokenizer treats differently; mixed by a seeded generator below. */
const SNIPPETS = [
  'In the beginning God created the heaven and the earth.',
  "It's what they'd've said, isn't it? We'll see; you're right, I'm sure.",
  'The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!',
  'Numbers: 0 7 42 1999 2026-12-04 3.14159 -273.15 1,000,000 1e-5 0x1F 6.02e23 ½ ¾ ²³',
  'function add(a, b) {\n  return a + b; // sum\n}\n',
  'def gelu(x):\n\treturn 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))\n',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 1 << 10); return 0; }',
  '{"n_embd": 256, "n_layer": 4, "vocab_size": 50257, "tie_word_embeddings": true}',
  'SELECT id, name FROM users WHERE age >= 18 ORDER BY name;',
  'Ünïcödé: naïve café, façade, Straße, Ærø, Ångström, œuvre',
  '日本語のテキストと中文文本，한국어 텍스트。',
  'Русский текст, ελληνικά γράμματα, עברית, العربية, हिन्दी',
  'Emoji: 🎉🚀👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ ☃ ✓',
  'Combining: e\u0301 a\u0308 n\u0303 — zero\u200bwidth\u200djoiner\ufeffBOM',
  'Tabs\tand\t\ttabs, CRLF\r\nline\rbreaks\n\n\nand    many     spaces   ',
  '   leading spaces and trailing ones   \n',
  'Punctuation!!! ??? ... --- *** ((( ))) [[ ]] {{ }} <<>> ~~ `` \'\' "" ,,;;::',
  'URLs: https://huggingface.co/gpt2/resolve/main/tokenizer.json?download=true#L10 user@example.org',
  'Mixed123abc ABC123 a1b2c3 __init__ snake_case camelCase PascalCase kebab-case',
  '    indented code\n        deeper\n\t\tmixed tabs\n',
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE don't WON'T",
];

/** Deterministic text of at least `minBytes` UTF-8 bytes: snippets, random code points, whitespace runs, numbers. */
function variedText(minBytes: number, seed: number): string {
  const rng = new Rng(seed);
  const ranges: [number, number][] = [
    [0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x6ff], [0x900, 0x97f],
    [0x3040, 0x30ff], [0x4e00, 0x4fff], [0xac00, 0xacff], [0x1f300, 0x1f64f], [0x2000, 0x206f],
  ];
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < minBytes) {
    const kind = rng.int(6);
    let piece: string;
    if (kind <= 1) piece = SNIPPETS[rng.int(SNIPPETS.length)]!;
    else if (kind === 2) {
      const [lo, hi] = ranges[rng.int(ranges.length)]!;
      const n = 1 + rng.int(12);
      piece = Array.from({ length: n }, () => String.fromCodePoint(lo + rng.int(hi - lo + 1))).join('');
    } else if (kind === 3) piece = [' ', '\n', '\t', '  ', '\r\n', '   \n'][rng.int(6)]!.repeat(1 + rng.int(5));
    else if (kind === 4) piece = String(Math.floor(rng.next() * 10 ** (1 + rng.int(12))));
    else piece = SNIPPETS[rng.int(SNIPPETS.length)]!.split(' ').slice(rng.int(4)).join(' ');
    parts.push(piece, rng.int(3) === 0 ? '' : ' ');
    bytes += Buffer.byteLength(piece) + 1;
  }
  return parts.join('');
}

describe('GPT2Tokenizer', () => {
  const tokenizer = GPT2Tokenizer.fromPretrained(MODEL_DIR);

  it('has GPT-2 vocabulary and end-of-text token', () => {
    expect(tokenizer.vocabSize).toBe(50257);
    expect(tokenizer.eosTokenId).toBe(GPT2_EOS_TOKEN_ID);
    expect(tokenizer.encode('Hello world')).toEqual([15496, 995]);
    expect(tokenizer.encode('a<|endoftext|>b')).toEqual([64, 50256, 65]);
    expect(tokenizer.decode([64, 50256, 65], { skipSpecialTokens: true })).toBe('ab');
  });

  it('gives the same ids as an independent GPT-2 BPE on > 1 MB of varied text, and decodes exactly', () => {
    const text = variedText(1_100_000, 23);
    expect(Buffer.byteLength(text)).toBeGreaterThan(1_000_000);
    // Documents of a few KB, as a corpus is encoded; both sides see the same pieces.
    const docs = text.match(/[\s\S]{1,4000}/gu)!;
    let tokens = 0;
    for (const doc of docs) {
      const ids = tokenizer.encode(doc);
      const expected = oracleEncode(doc);
      if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) {
        expect({ doc, ids }).toEqual({ doc, ids: expected });
      }
      expect(tokenizer.decode(ids)).toBe(doc);
      tokens += ids.length;
    }
    expect(tokens).toBeGreaterThan(300_000);
  }, 60_000);

  it('reads vocab.json + merges.txt alone the same as tokenizer.json, and save() round-trips', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fhenet-tok-'));
    try {
      copyFileSync(join(MODEL_DIR, 'vocab.json'), join(dir, 'vocab.json'));
      copyFileSync(join(MODEL_DIR, 'merges.txt'), join(dir, 'merges.txt'));
      const legacy = GPT2Tokenizer.fromPretrained(dir);
      const sample = variedText(20_000, 5);
      expect(legacy.encode(sample)).toEqual(tokenizer.encode(sample));
      const saved = join(dir, 'saved');
      legacy.save(saved);
      const again = GPT2Tokenizer.fromPretrained(saved);
      expect(again.encode(sample)).toEqual(tokenizer.encode(sample));
      expect(readFileSync(join(saved, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(MODEL_DIR, 'tokenizer.json'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the problem for a missing folder, missing files, and ids outside the vocabulary', () => {
    expect(() => GPT2Tokenizer.fromPretrained('/nonexistent/model')).toThrow(/does not exist/);
    const dir = mkdtempSync(join(tmpdir(), 'fhenet-tok-'));
    try {
      expect(() => GPT2Tokenizer.fromPretrained(dir)).toThrow(TokenizerFileError);
      expect(() => GPT2Tokenizer.fromPretrained(dir)).toThrow(/neither tokenizer.json nor vocab.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => tokenizer.decode([50257])).toThrow(/outside the vocabulary/);
  });
});
