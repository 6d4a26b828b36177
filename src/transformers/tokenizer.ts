/**
 * GPT-2's byte-level BPE tokenizer, read from a Hugging Face model folder.
 *
 * The BPE itself is `@huggingface/tokenizers` (tokenizers.js, Apache-2.0), which implements the `tokenizer.json`
 * format of the Rust `tokenizers` crate; fhenet only finds the files, fills in GPT-2's fixed settings when a folder
 * carries the older `vocab.json` + `merges.txt` pair instead, and writes the folder back. Decoding is exact
 * (`decode(encode(s)) === s` for every string): tokenization-space clean-up is off, as byte-level BPE needs.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ConfigError, FhenetError } from '../util/errors.js';

/** GPT-2's end-of-text token and its id in the 50,257-token vocabulary. */
export const GPT2_EOS_TOKEN = '<|endoftext|>';
export const GPT2_EOS_TOKEN_ID = 50256;

/** A model folder is missing its tokenizer files or they are malformed. */
export class TokenizerFileError extends FhenetError {
  override name = 'TokenizerFileError';
}

/** The files of a Hugging Face GPT-2 tokenizer folder, as JSON values / text. */
export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** The legacy pair; written beside tokenizer.json so older loaders (and `transformers`' slow tokenizer) work. */
  vocab?: Record<string, number>;
  merges?: string;
}

/**
 * GPT-2's tokenizer.json from the classic `vocab.json` (token → id) and `merges.txt` (one merge "a b" per line after
 * a `#version` header). Settings are those of the `gpt2` folders on the Hugging Face Hub: byte-level pre-tokenizer
 * with GPT-2's regex and no prefix space, byte-level decoder, no normalizer, `<|endoftext|>` as the one added token.
 */
export function gpt2TokenizerFiles(vocab: Record<string, number>, mergesText: string): TokenizerFiles {
  const merges = mergesText
    .split('\n')
    .filter((line) => line.length > 0 && !line.startsWith('#version'));
  for (const m of merges) {
    if (m.split(' ').length !== 2) throw new TokenizerFileError(`merges.txt: line "${m}" is not two tokens separated by one space`);
  }
  const eosId = vocab[GPT2_EOS_TOKEN];
  if (eosId === undefined) throw new TokenizerFileError(`vocab.json has no "${GPT2_EOS_TOKEN}" entry; it is not a GPT-2 vocabulary`);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: eosId, content: GPT2_EOS_TOKEN, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig = {
    add_prefix_space: false,
    bos_token: GPT2_EOS_TOKEN,
    eos_token: GPT2_EOS_TOKEN,
    unk_token: GPT2_EOS_TOKEN,
    model_max_length: 1024,
    clean_up_tokenization_spaces: false,
    tokenizer_class: 'GPT2Tokenizer',
  };
  return { tokenizerJson, tokenizerConfig, vocab, merges: mergesText.endsWith('\n') ? mergesText : mergesText + '\n' };
}

/** Writes a tokenizer folder's files (tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab/merges). */
export function writeTokenizerFiles(dir: string, files: TokenizerFiles): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig, null, 2) + '\n');
  const special: Record<string, unknown> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    if (files.tokenizerConfig[key] !== undefined) special[key] = files.tokenizerConfig[key];
  }
  writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify(special, null, 2) + '\n');
  if (files.vocab) writeFileSync(join(dir, 'vocab.json'), JSON.stringify(files.vocab));
  if (files.merges !== undefined) writeFileSync(join(dir, 'merges.txt'), files.merges);
}

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenizerFileError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (e) {
    throw new TokenizerFileError(`${path} is not valid JSON (${(e as Error).message}); re-download or re-save the tokenizer`);
  }
}

export interface DecodeOptions {
  /** Drop `<|endoftext|>` and other special tokens from the text (default false). */
  skipSpecialTokens?: boolean;
}

/** GPT-2 byte-level BPE (`GPT2Tokenizer` / `GPT2TokenizerFast` in `transformers`). */
export class GPT2Tokenizer {
  readonly eosToken: string;
  readonly eosTokenId: number;
  readonly bosTokenId: number;
  /** Size of the vocabulary including added tokens (50,257 for GPT-2). */
  readonly vocabSize: number;
  private readonly tokenizer: Tokenizer;

  constructor(readonly files: TokenizerFiles) {
    // The folder's setting is kept in `files` for save(); decoding is always exact here (see decode()).
    this.tokenizer = new Tokenizer(files.tokenizerJson, files.tokenizerConfig);
    const eos = typeof files.tokenizerConfig.eos_token === 'string' ? files.tokenizerConfig.eos_token : GPT2_EOS_TOKEN;
    const eosId = this.tokenizer.token_to_id(eos);
    if (eosId === undefined) throw new TokenizerFileError(`the tokenizer has no id for its end-of-text token "${eos}"`);
    this.eosToken = eos;
    this.eosTokenId = eosId;
    const bos = typeof files.tokenizerConfig.bos_token === 'string' ? files.tokenizerConfig.bos_token : eos;
    this.bosTokenId = this.tokenizer.token_to_id(bos) ?? eosId;
    this.vocabSize = this.tokenizer.get_vocab(true).size;
  }

  /**
   * Loads the tokenizer of a Hugging Face model folder: `tokenizer.json` (+ `tokenizer_config.json` if present), or
   * else `vocab.json` + `merges.txt`.
   */
  static fromPretrained(dir: string): GPT2Tokenizer {
    if (!existsSync(dir)) throw new TokenizerFileError(`model folder ${dir} does not exist`);
    const configPath = join(dir, 'tokenizer_config.json');
    const config = existsSync(configPath) ? readJson(configPath) : {};
    const tokenizerPath = join(dir, 'tokenizer.json');
    if (existsSync(tokenizerPath)) {
      const tokenizerJson = readJson(tokenizerPath);
      const model = tokenizerJson.model as { type?: string } | undefined;
      if (!model || model.type !== 'BPE') {
        throw new ConfigError(`${tokenizerPath}: model type "${model?.type}" is not BPE; GPT2Tokenizer reads byte-level BPE tokenizers only`);
      }
      return new GPT2Tokenizer({ tokenizerJson, tokenizerConfig: { ...defaultConfig(), ...config } });
    }
    const vocabPath = join(dir, 'vocab.json');
    const mergesPath = join(dir, 'merges.txt');
    if (!existsSync(vocabPath) || !existsSync(mergesPath)) {
      throw new TokenizerFileError(`${dir} has neither tokenizer.json nor vocab.json + merges.txt; copy the tokenizer files of the model into it`);
    }
    const files = gpt2TokenizerFiles(readJson(vocabPath) as Record<string, number>, readFileSync(mergesPath, 'utf8'));
    return new GPT2Tokenizer({ ...files, tokenizerConfig: { ...files.tokenizerConfig, ...config } });
  }

  /**
   * Token ids of a text. No BOS/EOS is added (GPT-2's tokenizer adds none); `<|endoftext|>` written in the text
   * becomes the special token 50256, as in Hugging Face's tokenizers.
   */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** Text of token ids; exact inverse of encode(). Throws on ids outside the vocabulary. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new ConfigError(`token id ${id} is outside the vocabulary (0…${this.vocabSize - 1})`);
      }
    }
    return this.tokenizer.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  /** Token strings (byte-level, `Ġ` for a leading space) of a text. */
  tokenize(text: string): string[] {
    return this.tokenizer.tokenize(text, { add_special_tokens: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json (and vocab.json/merges.txt when known). */
  save(dir: string): void {
    writeTokenizerFiles(dir, this.files);
  }
}

function defaultConfig(): Record<string, unknown> {
  return { bos_token: GPT2_EOS_TOKEN, eos_token: GPT2_EOS_TOKEN, unk_token: GPT2_EOS_TOKEN, clean_up_tokenization_spaces: false };
}
