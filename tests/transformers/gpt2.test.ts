import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { f16round } from '@petamoriken/float16';
import { initBackend } from '../../src/backend/index.js';
import { Embedding } from '../../src/nn/embedding.js';
import { GPT2Config, GPT2LMHeadModel, ModelFolderError, fromPretrained, savePretrained } from '../../src/transformers/index.js';
import { SafetensorsFile, writeSafetensorsFile } from '../../src/util/safetensors-file.js';
import { ConfigError, FhenetError, ShapeError, StateDictError } from '../../src/util/errors.js';

beforeAll(async () => {
  await initBackend();
});

const TINY = { vocab_size: 61, n_positions: 24, n_embd: 16, n_layer: 2, n_head: 4 };
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-gpt2-'));
const ids = () => tf.tensor2d([[3, 14, 15, 9, 2, 6], [5, 3, 5, 8, 9, 7]], [2, 6], 'int32');

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** Loads `dir` and checks its logits equal `m`'s bit for bit. */
function expectSameLogits(dir: string, m: GPT2LMHeadModel): void {
  const back = fromPretrained(dir);
  const x = ids();
  expect(maxAbsDiff(back.forward(x) as tf.Tensor, m.forward(x) as tf.Tensor)).toBe(0);
  back.dispose();
}

/** PyTorch's named_modules() for transformers' GPT2LMHeadModel (modeling_gpt2.py registration order). */
function torchModuleNames(nLayer: number): string[] {
  const names = ['', 'transformer', 'transformer.wte', 'transformer.wpe', 'transformer.drop', 'transformer.h'];
  for (let i = 0; i < nLayer; i++) {
    const p = `transformer.h.${i}`;
    names.push(p, `${p}.ln_1`, `${p}.attn`, `${p}.attn.c_attn`, `${p}.attn.c_proj`, `${p}.attn.attn_dropout`,
      `${p}.attn.resid_dropout`, `${p}.ln_2`, `${p}.mlp`, `${p}.mlp.c_fc`, `${p}.mlp.c_proj`, `${p}.mlp.act`, `${p}.mlp.dropout`);
  }
  names.push('transformer.ln_f', 'lm_head');
  return names;
}

describe('GPT2LMHeadModel', () => {
  it('names modules and parameters as PyTorch does, with lm_head tied to wte', () => {
    const m = new GPT2LMHeadModel(TINY, { seed: 1 });
    expect(m.namedModules().map(([n]) => n)).toEqual(torchModuleNames(2));
    const params = m.namedParameters().map(([n]) => n);
    expect(params).toContain('transformer.h.1.attn.c_attn.weight');
    expect(params).not.toContain('lm_head.weight'); // tied: listed once, under wte (as PyTorch's parameters())
    expect(m.lm_head.weight).toBe(m.transformer.wte.weight);
    expect(m.transformer.h.at(0).attn.c_attn.weight.shape).toEqual([16, 48]); // Conv1D: [in, out]
    expect(params.length).toBe(2 + 2 * 12 + 2);
    m.dispose();
  });

  it('same seed → same weights (transformers-style init: c_proj std scaled by 1/√(2·n_layer))', () => {
    const a = new GPT2LMHeadModel(TINY, { seed: 3 });
    const b = new GPT2LMHeadModel(TINY, { seed: 3 });
    expect(maxAbsDiff(a.transformer.wte.weight, b.transformer.wte.weight)).toBe(0);
    const std = (t: tf.Tensor) => tf.tidy(() => Math.sqrt(tf.moments(t).variance.dataSync()[0]!));
    expect(std(a.transformer.h.at(0).mlp.c_fc.weight)).toBeCloseTo(0.02, 2);
    expect(std(a.transformer.h.at(0).mlp.c_proj.weight)).toBeCloseTo(0.01, 2);
    a.dispose();
    b.dispose();
  });

  it('gives logits [batch, seq, vocab]; gradients reach every parameter (wte through the tied lm_head too)', () => {
    const m = new GPT2LMHeadModel({ ...TINY, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }, { seed: 2 });
    const x = ids();
    const logits = m.forward(x) as tf.Tensor;
    expect(logits.shape).toEqual([2, 6, 61]);
    const { grads } = tf.variableGrads(() => tf.mean(tf.square(m.forward(x) as tf.Tensor)) as tf.Scalar);
    for (const [name, v] of m.namedParameters()) {
      const g = grads[v.name];
      expect(g, name).toBeDefined();
      expect(tf.tidy(() => tf.sum(tf.abs(g!)).dataSync()[0]!), name).toBeGreaterThan(0);
    }
    m.dispose();
  });

  it('embedding gradient sums over repeated ids (own ScatterNd gradient; WASM lacks UnsortedSegmentSum)', () => {
    const e = new Embedding(5, 3, { std: 1 });
    const x = tf.tensor1d([1, 3, 1, 1], 'int32');
    const dy = tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(e.forward(x), dy)) as tf.Scalar);
    expect(Array.from(grads[e.weight.name]!.dataSync())).toEqual([0, 0, 0, 18, 21, 24, 0, 0, 0, 4, 5, 6, 0, 0, 0]);
  });

  it('decoding with the key/value cache gives the logits of the full forward pass', () => {
    const m = new GPT2LMHeadModel(TINY, { seed: 4 }).eval();
    const x = ids();
    const full = m.forward(x) as tf.Tensor;
    let out = m.forwardWithPast(tf.slice(x, [0, 0], [2, 3]));
    const parts = [out.logits];
    for (let t = 3; t < 6; t++) {
      out = m.forwardWithPast(tf.slice(x, [0, t], [2, 1]), { pastKeyValues: out.pastKeyValues });
      parts.push(out.logits);
    }
    expect(maxAbsDiff(tf.concat(parts, 1), full)).toBeLessThan(1e-5);
    m.dispose();
  });

  it('left padding with an attention mask gives the unpadded logits at real positions', () => {
    const m = new GPT2LMHeadModel(TINY, { seed: 5 }).eval();
    const alone = m.forward(tf.tensor2d([[7, 8, 9]], [1, 3], 'int32')) as tf.Tensor;
    const padded = m.forwardWithPast(tf.tensor2d([[0, 0, 7, 8, 9], [1, 2, 3, 4, 5]], [2, 5], 'int32'), {
      attentionMask: [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]],
    });
    expect(maxAbsDiff(tf.slice(padded.logits, [0, 2, 0], [1, 3, 61]), alone)).toBeLessThan(1e-5);
    m.dispose();
  });

  it('gives the same logits and gradients on the cpu backend as on the default one', async () => {
    const m = new GPT2LMHeadModel({ ...TINY, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }, { seed: 12 });
    const x = ids();
    const loss = () => tf.mean(tf.square(m.forward(x) as tf.Tensor)) as tf.Scalar;
    const run = () => {
      const logits = (m.forward(x) as tf.Tensor).dataSync().slice();
      const { grads } = tf.variableGrads(loss);
      return { logits, wte: grads[m.transformer.wte.weight.name]!.dataSync().slice() };
    };
    const before = tf.getBackend();
    const a = run();
    await tf.setBackend('cpu');
    try {
      const b = run();
      const diff = (p: Float32Array, q: Float32Array) => p.reduce((mx, v, i) => Math.max(mx, Math.abs(v - q[i]!)), 0);
      expect(diff(a.logits as Float32Array, b.logits as Float32Array)).toBeLessThan(1e-5);
      expect(diff(a.wte as Float32Array, b.wte as Float32Array)).toBeLessThan(1e-6);
    } finally {
      await tf.setBackend(before);
    }
    m.dispose();
  });

  it('checks token ids and the context length', () => {
    const m = new GPT2LMHeadModel(TINY, { seed: 6 }).eval();
    expect(() => m.forward(tf.tensor2d([[1, 61]], [1, 2], 'int32'))).toThrow(/unknown token id 61/);
    expect(() => m.forward(tf.zeros([1, 25], 'int32'))).toThrow(ShapeError);
    expect(() => m.forward(tf.zeros([1, 25], 'int32'))).toThrow(/exceeds the model's n_positions \(24\)/);
    m.dispose();
  });
});

describe('GPT2Config', () => {
  it('reads Hugging Face fields (n_ctx for n_positions) and rejects values out of range, naming the field', () => {
    expect(GPT2Config.fromJSON({ n_ctx: 512, n_embd: 64, n_head: 4, n_layer: 1 }).n_positions).toBe(512);
    expect(() => new GPT2Config({ n_embd: 10, n_head: 3 })).toThrow(/n_embd \(10\) must be divisible by n_head \(3\)/);
    expect(() => GPT2Config.fromJSON({ n_layer: 0 }, 'x/config.json')).toThrow(/x\/config.json: n_layer must be an integer/);
    expect(() => GPT2Config.fromJSON({ model_type: 'llama' })).toThrow(/unsupported model_type 'llama'/);
    expect(() => GPT2Config.fromJSON({ architectures: ['GPT2ForSequenceClassification'] })).toThrow(/unsupported architecture/);
    expect(() => new GPT2LMHeadModel({ ...TINY, activation_function: 'swish' })).toThrow(ConfigError);
  });
});

describe('Hugging Face folders', () => {
  it('save → load gives the same logits bit for bit; the file has transformers keys and format=pt', () => {
    const m = new GPT2LMHeadModel(TINY, { seed: 7 }).eval();
    const dir = tmp();
    savePretrained(m, dir);
    const f = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...f.entries.keys()]).toContain('transformer.h.0.attn.c_attn.weight');
    expect([...f.entries.keys()]).not.toContain('lm_head.weight');
    f.close();
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: 16, torch_dtype: 'float32' });
    const back = fromPretrained(dir);
    const x = ids();
    expect(Array.from((back.forward(x) as tf.Tensor).dataSync())).toEqual(Array.from((m.forward(x) as tf.Tensor).dataSync()));
    m.dispose();
    back.dispose();
  });

  it('loads sharded F32 (bit for bit) and F16 / BF16 (the rounded weights exactly) written by fhenet', () => {
    const m = new GPT2LMHeadModel(TINY, { seed: 8 }).eval();
    const x = ids();
    const dir = tmp();
    savePretrained(m, dir, { maxShardBytes: 4096 });
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    const shards = new Set(Object.values(index.weight_map));
    expect(shards.size).toBeGreaterThan(2);
    expect(fs.existsSync(path.join(dir, 'model.safetensors'))).toBe(false);
    const sharded = fromPretrained(dir);
    expect(maxAbsDiff(sharded.forward(x) as tf.Tensor, m.forward(x) as tf.Tensor)).toBe(0);
    sharded.dispose();

    const w = m.transformer.h.at(1).mlp.c_fc.weight.dataSync();
    savePretrained(m, dir, { dtype: 'F16' });
    expect(fs.existsSync(path.join(dir, 'model.safetensors.index.json'))).toBe(false); // stale layout removed
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).torch_dtype).toBe('float16');
    const half = fromPretrained(dir);
    expect(Array.from(half.transformer.h.at(1).mlp.c_fc.weight.dataSync())).toEqual(Array.from(w, (v) => f16round(v)));
    expect(maxAbsDiff(half.forward(x) as tf.Tensor, m.forward(x) as tf.Tensor)).toBeLessThan(1e-2);
    half.dispose();

    savePretrained(m, dir, { dtype: 'BF16' });
    const bf = fromPretrained(dir);
    const bw = bf.transformer.h.at(1).mlp.c_fc.weight.dataSync();
    for (let i = 0; i < w.length; i++) {
      expect(Math.abs(bw[i]! - w[i]!)).toBeLessThanOrEqual(Math.abs(w[i]!) * 2 ** -8);
      expect(new Uint32Array(Float32Array.of(bw[i]!).buffer)[0]! & 0xffff).toBe(0);
    }
    bf.dispose();
    m.dispose();
  });

  it('an untied lm_head is its own parameter, saved as lm_head.weight and loaded back', () => {
    const m = new GPT2LMHeadModel({ ...TINY, tie_word_embeddings: false }, { seed: 13 }).eval();
    expect(m.lm_head.weight).not.toBe(m.transformer.wte.weight);
    expect(m.namedParameters().map(([n]) => n)).toContain('lm_head.weight');
    const dir = tmp();
    savePretrained(m, dir);
    const f = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
    expect(f.entries.has('lm_head.weight')).toBe(true);
    f.close();
    expectSameLogits(dir, m);
    m.dispose();
  });

  it('reads the original GPT-2 key layout: no transformer. prefix, attn.bias/masked_bias buffers, a tied lm_head.weight', () => {
    const m = new GPT2LMHeadModel(TINY, { seed: 9 }).eval();
    const dir = tmp();
    savePretrained(m, dir);
    const tensors = m.namedParameters().map(([name, v]) => ({
      name: name.replace(/^transformer\./, ''),
      dtype: 'F32' as const,
      shape: [...v.shape],
      bytes: () => new Uint8Array((v.dataSync() as Float32Array).buffer.slice(0)),
    }));
    tensors.push({ name: 'h.0.attn.bias', dtype: 'F32', shape: [1, 1, 24, 24], bytes: () => new Uint8Array(24 * 24 * 4) });
    tensors.push({ name: 'h.0.attn.masked_bias', dtype: 'F32', shape: [], bytes: () => new Uint8Array(4) });
    const wte = m.transformer.wte.weight;
    tensors.push({ name: 'lm_head.weight', dtype: 'F32', shape: [...wte.shape], bytes: () => new Uint8Array((wte.dataSync() as Float32Array).buffer.slice(0)) });
    writeSafetensorsFile(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    expectSameLogits(dir, m);
    m.dispose();
  });

  it('names the problem: missing folder, missing key, shape mismatch, truncated file, bad config', () => {
    expect(() => fromPretrained('/nonexistent/gpt2')).toThrow(ModelFolderError);
    const m = new GPT2LMHeadModel(TINY, { seed: 10 });
    const dir = tmp();
    savePretrained(m, dir);
    const cfg = path.join(dir, 'config.json');
    const good = fs.readFileSync(cfg, 'utf8');

    fs.writeFileSync(cfg, good.replace('"n_embd": 16', '"n_embd": 32'));
    expect(() => fromPretrained(dir)).toThrow(/'transformer\.wte\.weight' has shape \[61,16\] in the checkpoint but the model \(config\.json\) expects \[61,32\]/);
    fs.writeFileSync(cfg, good.replace('"n_layer": 2', '"n_layer": 3'));
    expect(() => fromPretrained(dir)).toThrow(/missing key 'transformer\.h\.2\.ln_1\.weight'/);
    fs.writeFileSync(cfg, good.replace('"n_layer": 2', '"n_layer": 1'));
    expect(() => fromPretrained(dir)).toThrow(/unexpected key 'transformer\.h\.1\./);
    fs.writeFileSync(cfg, good.replace('"layer_norm_epsilon": 0.00001', '"layer_norm_epsilon": -1'));
    expect(() => fromPretrained(dir)).toThrow(/layer_norm_epsilon must be in \(0, 1\)/);
    fs.writeFileSync(cfg, '{ not json');
    expect(() => fromPretrained(dir)).toThrow(/config\.json is not valid JSON/);
    fs.writeFileSync(cfg, good);

    const file = path.join(dir, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 100));
    expect(() => fromPretrained(dir)).toThrow(/truncated file/);
    fs.writeFileSync(file, bytes.subarray(0, 5));
    expect(() => fromPretrained(dir)).toThrow(FhenetError);
    fs.rmSync(file);
    expect(() => fromPretrained(dir)).toThrow(/has neither model\.safetensors nor model\.safetensors\.index\.json/);
    m.dispose();
  });

  it('rejects an integer weight dtype with the key', () => {
    const m = new GPT2LMHeadModel(TINY, { seed: 11 });
    const dir = tmp();
    savePretrained(m, dir);
    const tensors = m.namedParameters().map(([name, v]) => ({
      name,
      dtype: (name === 'transformer.ln_f.bias' ? 'I32' : 'F32') as 'I32' | 'F32',
      shape: [...v.shape],
      bytes: () => new Uint8Array((v.dataSync() as Float32Array).buffer.slice(0)),
    }));
    writeSafetensorsFile(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    expect(() => fromPretrained(dir)).toThrow(StateDictError);
    expect(() => fromPretrained(dir)).toThrow(/'transformer\.ln_f\.bias' has dtype I32/);
    m.dispose();
  });
});
