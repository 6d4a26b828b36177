/**
 * The hybrid LLM recipe in two calls, for GPT-2-family Hugging Face folders (what `fhenet hybrid-llm` runs):
 *
 * - `buildHybridLlm(modelDir, outDir, { remote, backend })`, the model owner's side: loads the model, makes the named
 *   modules remote (default 'all-linear,embeddings': every Linear/Conv1D, `linearModuleNames`, and every Embedding,
 *   `embeddingModuleNames`; see `resolveRemoteModules`), compiles them with dynamic quantization and
 *   writes `outDir/<name>/` (saveAndClearPrivateInfo): `client/` is a Hugging Face folder without the remote
 *   weights (plus the tokenizer files), `llm/` what `fhenet serve --models outDir` needs.
 * - `loadHybridLlmClient(clientDir, { serverUrl })`, the user's side: the client folder → a GPT2LMHeadModel whose
 *   remote layers call the server; the model's own `generate` then runs unchanged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module.js';
import { GPT2LMHeadModel } from '../transformers/gpt2/model.js';
import { fromPretrained, loadConfig } from '../transformers/gpt2/pretrained.js';
import { ConfigError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { HybridFHEModel, type HybridOptions } from './hybrid-model.js';
import { linearModuleNames } from './linear-modules.js';
import { embeddingModuleNames } from './remote-embedding.js';

/** Files of a Hugging Face folder besides the weights that a client needs (tokenizer, generation defaults). */
const CLIENT_EXTRA_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];

export interface BuildHybridLlmOptions {
  /** Module names and the groups 'all-linear' and 'embeddings', comma-separated or as a list (default 'all-linear,embeddings'). */
  remote?: string | string[];
  /** Linear backend: 'glwe' (default: encrypted) or 'simulate' (clear integers, development only). */
  backend?: string;
  /** Model name on the server (default: the model folder's name). */
  name?: string;
  /** Keep a remote module whose tied weight stays local (HybridOptions.allowSharedLocalWeights; the reference's 'all-linear' on GPT-2). */
  allowSharedLocalWeights?: boolean;
  /** Calibration: batches of random token ids (dynamic quantization needs no statistics; this checks every remote layer is called). */
  seed?: number;
}

/** Every weight of a GPT-2 off the client except the LayerNorms (with tied weights lm_head alone would protect nothing). */
export const DEFAULT_REMOTE = 'all-linear,embeddings';

/**
 * The remote modules a spelling names: 'all-linear' = every Linear/Conv1D (the reference's recipe), 'embeddings' =
 * every Embedding (GPT-2: transformer.wte, transformer.wpe), anything else a module name; entries may be
 * comma-separated ('all-linear,embeddings'). Order: as listed, duplicates dropped.
 */
export function resolveRemoteModules(model: Module, spec: string | readonly string[]): string[] {
  const out: string[] = [];
  for (const item of (typeof spec === 'string' ? [spec] : spec).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const names = item === 'all-linear' ? linearModuleNames(model) : item === 'embeddings' ? embeddingModuleNames(model) : [item];
    for (const n of names) if (!out.includes(n)) out.push(n);
  }
  if (!out.length) throw new ConfigError(`no remote module in '${[spec].flat().join(' ')}' (give all-linear, embeddings or module names, e.g. --remote ${DEFAULT_REMOTE})`);
  return out;
}

export function buildHybridLlm(modelDir: string, outDir: string, opts: BuildHybridLlmOptions = {}): { dir: string; remote: string[]; name: string } {
  const model = fromPretrained(modelDir);
  try {
    const remote = resolveRemoteModules(model, opts.remote ?? DEFAULT_REMOTE);
    const name = opts.name ?? path.basename(path.resolve(modelDir));
    const h = new HybridFHEModel(model, remote, { modelName: name, allowSharedLocalWeights: opts.allowSharedLocalWeights });
    const r = new Rng(opts.seed ?? 0);
    const calib = tf.tensor2d(Int32Array.from({ length: 2 * 8 }, () => Math.floor(r.uniform(0, model.config.vocab_size))), [2, 8], 'int32');
    try {
      h.compileModel(calib, { nBits: 8, dynamicQuantization: true, backend: opts.backend ?? 'glwe' });
    } finally {
      calib.dispose();
    }
    const dir = path.join(outDir, name);
    h.saveAndClearPrivateInfo(dir);
    for (const f of CLIENT_EXTRA_FILES) if (fs.existsSync(path.join(modelDir, f))) fs.copyFileSync(path.join(modelDir, f), path.join(dir, 'client', f));
    return { dir, remote, name };
  } finally {
    model.dispose(); // also when a name is refused (shared weights) or compilation fails
  }
}

/** `clientDir` is the `client/` folder written by buildHybridLlm (or the model folder holding it). */
export function loadHybridLlmClient(clientDir: string, opts: HybridOptions = {}): { model: GPT2LMHeadModel; hybrid: HybridFHEModel } {
  const dir = fs.existsSync(path.join(clientDir, 'hybrid.json')) ? clientDir : path.join(clientDir, 'client');
  const model = new GPT2LMHeadModel(loadConfig(dir), { init: 'empty' });
  const hybrid = HybridFHEModel.loadClient(model, dir, opts);
  return { model, hybrid };
}
