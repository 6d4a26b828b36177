/**
 * `GPT2Config`: the fields of a Hugging Face GPT-2 `config.json`, under the same (snake_case) names, so a config
 * read from a model folder and one written by fhenet are the same JSON. `fromJSON` checks every field fhenet uses and
 * names the field and the allowed range when one is out of range.
 */
import { ConfigError } from '../../util/errors.js';

export interface GPT2ConfigFields {
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  /** MLP width; null → 4·n_embd. */
  n_inner: number | null;
  activation_function: string;
  resid_pdrop: number;
  embd_pdrop: number;
  attn_pdrop: number;
  layer_norm_epsilon: number;
  initializer_range: number;
  scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean;
  reorder_and_upcast_attn: boolean;
  tie_word_embeddings: boolean;
  bos_token_id: number;
  eos_token_id: number;
}

/** GPT-2 small's values (openai-community/gpt2), Hugging Face's GPT2Config defaults. */
export const GPT2_DEFAULTS: GPT2ConfigFields = {
  vocab_size: 50257,
  n_positions: 1024,
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  n_inner: null,
  activation_function: 'gelu_new',
  resid_pdrop: 0.1,
  embd_pdrop: 0.1,
  attn_pdrop: 0.1,
  layer_norm_epsilon: 1e-5,
  initializer_range: 0.02,
  scale_attn_weights: true,
  scale_attn_by_inverse_layer_idx: false,
  reorder_and_upcast_attn: false,
  tie_word_embeddings: true,
  bos_token_id: 50256,
  eos_token_id: 50256,
};

export class GPT2Config implements GPT2ConfigFields {
  vocab_size!: number;
  n_positions!: number;
  n_embd!: number;
  n_layer!: number;
  n_head!: number;
  n_inner!: number | null;
  activation_function!: string;
  resid_pdrop!: number;
  embd_pdrop!: number;
  attn_pdrop!: number;
  layer_norm_epsilon!: number;
  initializer_range!: number;
  scale_attn_weights!: boolean;
  scale_attn_by_inverse_layer_idx!: boolean;
  reorder_and_upcast_attn!: boolean;
  tie_word_embeddings!: boolean;
  bos_token_id!: number;
  eos_token_id!: number;

  /** Fields not given take GPT-2 small's values. Throws ConfigError naming any field out of range. */
  constructor(fields: Partial<GPT2ConfigFields> = {}) {
    Object.assign(this, GPT2_DEFAULTS, fields);
    // GPT-2's <|endoftext|> (50256) is the last id of its vocabulary; a smaller test vocabulary uses its last id.
    if (fields.bos_token_id === undefined && typeof this.vocab_size === 'number') this.bos_token_id = Math.min(50256, this.vocab_size - 1);
    if (fields.eos_token_id === undefined && typeof this.vocab_size === 'number') this.eos_token_id = Math.min(50256, this.vocab_size - 1);
    this.validate();
  }

  get innerDim(): number {
    return this.n_inner ?? 4 * this.n_embd;
  }

  get headDim(): number {
    return this.n_embd / this.n_head;
  }

  /**
   * Reads a parsed `config.json`. `model_type` must be gpt2 (or absent); `n_ctx` (older files) stands in for a
   * missing `n_positions`; unknown fields are ignored, as transformers keeps but does not use them.
   */
  static fromJSON(json: unknown, source = 'config.json'): GPT2Config {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ConfigError(`${source}: expected a JSON object`);
    }
    const j = json as Record<string, unknown>;
    if (j.model_type !== undefined && j.model_type !== 'gpt2') {
      throw new ConfigError(`${source}: unsupported model_type '${String(j.model_type)}'; fhenet loads GPT-2-family models (model_type "gpt2")`);
    }
    const archs = j.architectures;
    if (Array.isArray(archs)) {
      const ok = ['GPT2LMHeadModel', 'GPT2Model'];
      const bad = archs.filter((a) => !ok.includes(String(a)));
      if (bad.length) throw new ConfigError(`${source}: unsupported architecture ${bad.join(', ')}; fhenet loads ${ok.join(' and ')}`);
    }
    const fields: Partial<GPT2ConfigFields> = {};
    const keys = Object.keys(GPT2_DEFAULTS) as (keyof GPT2ConfigFields)[];
    for (const k of keys) if (j[k] !== undefined && j[k] !== null) (fields as Record<string, unknown>)[k] = j[k];
    if (fields.n_positions === undefined && j.n_ctx !== undefined) fields.n_positions = j.n_ctx as number;
    try {
      return new GPT2Config(fields);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`${source}: ${e.message}`);
      throw e;
    }
  }

  /** The `config.json` that transformers reads (GPT2LMHeadModel, model_type gpt2). */
  toJSON(torchDtype: 'float32' | 'float16' | 'bfloat16' = 'float32'): Record<string, unknown> {
    const fields: Record<string, unknown> = {};
    for (const k of Object.keys(GPT2_DEFAULTS) as (keyof GPT2ConfigFields)[]) fields[k] = this[k];
    return {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      ...fields,
      n_ctx: this.n_positions,
      torch_dtype: torchDtype,
      use_cache: true,
    };
  }

  private validate(): void {
    const int = (k: keyof GPT2ConfigFields, lo: number, hi: number) => {
      const v = this[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
        throw new ConfigError(`${k} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
      }
    };
    const prob = (k: keyof GPT2ConfigFields) => {
      const v = this[k];
      if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ConfigError(`${k} must be a probability in [0, 1), got ${JSON.stringify(v)}`);
    };
    const bool = (k: keyof GPT2ConfigFields) => {
      if (typeof this[k] !== 'boolean') throw new ConfigError(`${k} must be true or false, got ${JSON.stringify(this[k])}`);
    };
    int('vocab_size', 1, 10_000_000);
    int('n_positions', 1, 1_048_576);
    int('n_embd', 1, 65_536);
    int('n_layer', 1, 1024);
    int('n_head', 1, 1024);
    if (this.n_embd % this.n_head !== 0) {
      throw new ConfigError(`n_embd (${this.n_embd}) must be divisible by n_head (${this.n_head})`);
    }
    if (this.n_inner !== null) int('n_inner', 1, 1_048_576);
    prob('resid_pdrop');
    prob('embd_pdrop');
    prob('attn_pdrop');
    if (typeof this.layer_norm_epsilon !== 'number' || !(this.layer_norm_epsilon > 0 && this.layer_norm_epsilon < 1)) {
      throw new ConfigError(`layer_norm_epsilon must be in (0, 1), got ${JSON.stringify(this.layer_norm_epsilon)}`);
    }
    if (typeof this.initializer_range !== 'number' || !(this.initializer_range >= 0)) {
      throw new ConfigError(`initializer_range must be ≥ 0, got ${JSON.stringify(this.initializer_range)}`);
    }
    bool('scale_attn_weights');
    bool('scale_attn_by_inverse_layer_idx');
    bool('reorder_and_upcast_attn');
    bool('tie_word_embeddings');
    if (typeof this.activation_function !== 'string') throw new ConfigError(`activation_function must be a string`);
    int('bos_token_id', 0, this.vocab_size - 1);
    int('eos_token_id', 0, this.vocab_size - 1);
  }
}
