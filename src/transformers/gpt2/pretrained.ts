/**
 * GPT-2 models in the Hugging Face folder format, read and written the way transformers does:
 * `config.json` + `model.safetensors`, or `model.safetensors.index.json` + `model-0000i-of-0000n.safetensors`
 * shards. Reading accepts F32, F16, BF16 (and F64) tensors, keys with or without the `transformer.` prefix
 * (the original openai-community/gpt2 file has none), and skips the causal-mask buffers `h.N.attn.bias` /
 * `h.N.attn.masked_bias` and a tied `lm_head.weight`. Every key and shape is checked from the headers before any
 * weight is read, and all problems are reported together.
 *
 * Memory: the model is built with zero weights (no random draw) and each tensor is read from disk, converted to
 * float32, moved into its variable and released before the next, so the peak is the model plus one tensor.
 * Writing mirrors it: one tensor is downloaded and encoded at a time. Files carry `{"format": "pt"}` metadata,
 * which transformers requires of safetensors checkpoints.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, StateDictError } from '../../util/errors.js';
import { SafetensorsFile, type TensorToWrite, fromFloat32, writeSafetensorsFile } from '../../util/safetensors-file.js';
import { ModelFolderError } from '../errors.js';
import { GPT2Config } from './config.js';
import { GPT2LMHeadModel } from './model.js';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
const SHARD_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** Reads `config.json` of a model folder. */
export function loadConfig(dir: string): GPT2Config {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new ModelFolderError(`model folder ${dir} does not exist; pass a folder holding config.json and model.safetensors`);
  }
  const file = path.join(dir, CONFIG_FILE);
  if (!fs.existsSync(file)) throw new ModelFolderError(`${dir} has no ${CONFIG_FILE}; a Hugging Face model folder needs one`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelFolderError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return GPT2Config.fromJSON(json, file);
}

/** Where each checkpoint key lives: the single file, or the shards named by the index. */
function openWeights(dir: string): { files: SafetensorsFile[]; where: Map<string, SafetensorsFile> } {
  const single = path.join(dir, WEIGHTS_FILE);
  const index = path.join(dir, WEIGHTS_INDEX_FILE);
  const files: SafetensorsFile[] = [];
  const where = new Map<string, SafetensorsFile>();
  try {
    if (fs.existsSync(single)) {
      const f = SafetensorsFile.open(single);
      files.push(f);
      for (const k of f.entries.keys()) where.set(k, f);
    } else if (fs.existsSync(index)) {
      let map: Record<string, string>;
      try {
        const json = JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map?: Record<string, string> };
        if (typeof json.weight_map !== 'object' || json.weight_map === null) throw new Error('no "weight_map" object');
        map = json.weight_map;
      } catch (e) {
        throw new ModelFolderError(`${index} is not a valid index: ${(e as Error).message}`);
      }
      const byName = new Map<string, SafetensorsFile>();
      for (const [key, shard] of Object.entries(map)) {
        if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard.startsWith('.')) {
          throw new ModelFolderError(`${index}: key '${key}' points at '${String(shard)}', not a shard file name in the folder`);
        }
        let f = byName.get(shard);
        if (!f) {
          const p = path.join(dir, shard);
          if (!fs.existsSync(p)) throw new ModelFolderError(`${index} names shard ${shard}, which is missing from ${dir}`);
          f = SafetensorsFile.open(p);
          byName.set(shard, f);
          files.push(f);
        }
        if (!f.entries.has(key)) throw new ModelFolderError(`${index} puts '${key}' in ${shard}, which does not hold it`);
        where.set(key, f);
      }
    } else {
      throw new ModelFolderError(`${dir} has neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE} (fhenet reads safetensors weights; convert .bin files with transformers' save_pretrained)`);
    }
  } catch (e) {
    for (const f of files) f.close();
    throw e;
  }
  return { files, where };
}

/** Buffers of older GPT-2 checkpoints that are not parameters (the causal mask and its fill value). */
const IGNORED = /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/;

/** The model's name for a checkpoint key ('h.0.ln_1.weight' and 'transformer.h.0.ln_1.weight' alike). */
function modelKey(fileKey: string): string {
  if (fileKey.startsWith('transformer.') || fileKey.startsWith('lm_head.')) return fileKey;
  return `transformer.${fileKey}`;
}

export interface LoadOptions {
  /** Refuse extra tensors in the checkpoint (default true); ignored buffers never count as extra. */
  strict?: boolean;
}

/** Loads a GPT-2 model (GPT2LMHeadModel, or a GPT2Model checkpoint with tied embeddings) from a Hugging Face folder. */
export function fromPretrained(dir: string, opts: LoadOptions = {}): GPT2LMHeadModel {
  const config = loadConfig(dir);
  const { files, where } = openWeights(dir);
  try {
    const model = new GPT2LMHeadModel(config, { init: 'empty' });
    try {
      loadWeights(model, where, opts.strict ?? true, dir);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model.eval();
  } finally {
    for (const f of files) f.close();
  }
}

function loadWeights(model: GPT2LMHeadModel, where: Map<string, SafetensorsFile>, strict: boolean, dir: string): void {
  const params = new Map(model.namedParameters());
  const source = new Map<string, { file: SafetensorsFile; key: string }>();
  const problems: string[] = [];
  const tied = model.config.tie_word_embeddings;
  for (const [fileKey, file] of where) {
    if (IGNORED.test(fileKey)) continue;
    const key = modelKey(fileKey);
    if (key === 'lm_head.weight' && tied) continue; // the same values as wte (tied); wte is loaded
    const v = params.get(key);
    if (!v) {
      if (strict) problems.push(`unexpected key '${fileKey}' in ${path.basename(file.file)}`);
      continue;
    }
    if (source.has(key)) {
      problems.push(`'${key}' appears twice (as '${source.get(key)!.key}' and '${fileKey}')`);
      continue;
    }
    const entry = file.entries.get(fileKey)!;
    if (entry.shape.join() !== v.shape.join()) {
      problems.push(`'${fileKey}' has shape [${entry.shape}] in the checkpoint but the model (config.json) expects [${v.shape}]`);
      continue;
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype)) {
      problems.push(`'${fileKey}' has dtype ${entry.dtype}; fhenet loads F32, F16, BF16 or F64 weights`);
      continue;
    }
    source.set(key, { file, key: fileKey });
  }
  for (const key of params.keys()) if (!source.has(key)) problems.push(`missing key '${key}'`);
  if (problems.length) {
    const shown = problems.slice(0, 20);
    const more = problems.length > shown.length ? `; … ${problems.length - shown.length} more` : '';
    throw new StateDictError(`${dir}: the checkpoint does not match its config.json: ${shown.join('; ')}${more}`);
  }
  for (const [key, { file, key: fileKey }] of source) {
    const v = params.get(key)!;
    const values = file.readFloat32(fileKey);
    const t = tf.tensor(values, v.shape, 'float32');
    v.assign(t);
    t.dispose();
  }
}

export interface SaveOptions {
  /** Tensor dtype in the file (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Largest shard in bytes; a model larger than this is written as shards with an index (default: one file). */
  maxShardBytes?: number;
}

const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

/**
 * Writes `config.json` and the weights as transformers' `save_pretrained` does (keys `transformer.…`, no tied
 * `lm_head.weight`, `format: pt` metadata), so `GPT2LMHeadModel.from_pretrained(dir)` loads them. Files of the other
 * layout (a single file vs shards) left in the folder by an earlier save are removed, so the folder is unambiguous.
 */
export function savePretrained(model: GPT2LMHeadModel, dir: string, opts: SaveOptions = {}): void {
  const dtype = opts.dtype ?? 'F32';
  if (!(dtype in TORCH_DTYPE)) throw new ConfigError(`savePretrained: dtype must be F32, F16 or BF16, got ${String(dtype)}`);
  const maxShard = opts.maxShardBytes ?? Infinity;
  if (!(maxShard > 0)) throw new ConfigError(`savePretrained: maxShardBytes must be positive, got ${maxShard}`);
  fs.mkdirSync(dir, { recursive: true });
  const bytesPer = dtype === 'F32' ? 4 : 2;
  const tensors: (TensorToWrite & { nbytes: number })[] = model.namedParameters().map(([name, v]) => ({
    name,
    dtype,
    shape: [...v.shape],
    nbytes: v.size * bytesPer,
    bytes: () => fromFloat32(v.dataSync() as Float32Array, dtype),
  }));
  const shards: (typeof tensors)[] = [[]];
  let used = 0;
  for (const t of tensors) {
    if (used > 0 && used + t.nbytes > maxShard) {
      shards.push([]);
      used = 0;
    }
    shards[shards.length - 1]!.push(t);
    used += t.nbytes;
  }
  const metadata = { format: 'pt' };
  fs.writeFileSync(path.join(dir, CONFIG_FILE), `${JSON.stringify(model.config.toJSON(TORCH_DTYPE[dtype]), null, 2)}\n`);
  const stale = fs.readdirSync(dir).filter((f) => SHARD_PATTERN.test(f) || f === WEIGHTS_INDEX_FILE || f === WEIGHTS_FILE);
  for (const f of stale) fs.rmSync(path.join(dir, f));
  if (shards.length === 1) {
    writeSafetensorsFile(path.join(dir, WEIGHTS_FILE), shards[0]!, metadata);
    return;
  }
  const n = shards.length;
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    writeSafetensorsFile(path.join(dir, name), shard, metadata);
    for (const t of shard) weightMap[t.name] = name;
  });
  const total = tensors.reduce((a, t) => a + t.nbytes, 0);
  fs.writeFileSync(path.join(dir, WEIGHTS_INDEX_FILE), `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`);
}
