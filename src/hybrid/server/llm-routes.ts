/**
 * The hybrid LLM routes of `fhenet serve`, a fastify plugin (registered by buildServer with one line). Per model
 * folder `<modelsDir>/<model>/llm/linear.safetensors` (written by saveAndClearPrivateInfo with dynamic quantization)
 * the server holds every remote linear layer's int8 weights, prepared once by the linear backend for all clients,
 * and its bias, which it adds with the per-token scales each request carries (dynamic-quant.ts).
 *
 *   POST /llm/add_key?model_name=M                           body: the client's ONE evaluation key → { uid }
 *   POST /llm/linear?uid=U&model_name=M&layer=L&tokens=T     body: T token scales + encrypted centred integers → result
 *   GET  /llm/list_layers?model_name=M                       → { layers: [{ name, inFeatures, outFeatures }] }
 *   GET  /llm/metrics                                        → Prometheus text: usage per client key
 *
 * Usage metering — what a linear-only remote layer really gives a model owner (docs/hybrid.md, threat model):
 * per client key (a label derived from the uid, not the uid itself) the tokens processed (rows sent to the model's
 * first remote layer), layer calls and bytes in and out, as prom-client counters in the server's registry (its
 * `/metrics`) when given one; `maxTokensPerKey` refuses further tokens with 429 `quota_exceeded`. Keys live in memory, least recently used evicted past `maxKeys` or `maxStoredKeyBytes` (a client
 * whose key was evicted gets 404 `unknown_uid` and uploads it again). Size limits are checked before parsing: the
 * body length against the limit, then the layer's expected ciphertext size by the backend. Loads no TensorFlow.js.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import { decodeSafetensors } from '../../util/safetensors.js';
import { HybridError } from '../errors.js';
import { type LinearServerBackend, type ServerLayer, layerTag, linearServerBackend } from '../linear-backend.js';
import { LLM_SERVER_DIR, LLM_SERVER_FILE, LLM_SERVER_FORMAT, checkVersion } from '../version.js';
import { UID_RE } from './key-store.js';
import { NAME_RE } from './models.js';

export interface LlmRoutesOptions {
  modelsDir: string;
  /** Largest key upload (default 512 MiB). */
  maxKeyBytes?: number;
  /** Largest ciphertext upload (default 64 MiB). */
  maxCiphertextBytes?: number;
  /** Keys kept (default 64) and their byte budget in memory (default 4 GiB: prepared keys, backend.keyMemoryBytes); least recently used evicted. */
  maxKeys?: number;
  maxStoredKeyBytes?: number;
  /** Tokens a key may process (default: unlimited). */
  maxTokensPerKey?: number;
  /** The authenticated owner of a request (auth.ts), bound to the keys it uploads; undefined on an open server. */
  ownerOf?: (req: FastifyRequest) => string | undefined;
  /**
   * The server's prom-client registry, so that the usage counters appear in its `/metrics`; by default a registry of
   * their own. `/llm/metrics` serves them in either case.
   */
  registry?: Registry;
}

interface LlmModel {
  backend: LinearServerBackend;
  layers: Map<string, { layer: ServerLayer; prepared: unknown; tag: Uint8Array }>;
  firstLayer: string;
}

interface LlmKey {
  model: string;
  owner: string | undefined;
  handle: unknown;
  bytes: number;
  label: string;
}

/** Usage per client key (label: a hash prefix of the uid, not the uid), as prom-client counters. */
class Usage {
  readonly tokens: Counter<'model' | 'key'>;
  readonly calls: Counter<'model' | 'key'>;
  readonly bytes: Counter<'model' | 'key' | 'direction'>;
  private readonly counted = new Map<string, number>(); // tokens per key, for the quota

  constructor(readonly registry: Registry, keys: () => { count: number; bytes: number }) {
    const registers = [registry];
    this.tokens = new Counter({ name: 'fhenet_llm_tokens_total', help: 'Tokens processed per client key (rows sent to the first remote layer)', labelNames: ['model', 'key'], registers });
    this.calls = new Counter({ name: 'fhenet_llm_layer_calls_total', help: 'Remote linear-layer calls per client key', labelNames: ['model', 'key'], registers });
    this.bytes = new Counter({ name: 'fhenet_llm_bytes_total', help: 'Ciphertext bytes per client key and direction', labelNames: ['model', 'key', 'direction'], registers });
    new Gauge({ name: 'fhenet_llm_keys', help: 'Client keys of the LLM routes held in memory', registers, collect() {
      this.set(keys().count);
    } });
    new Gauge({ name: 'fhenet_llm_key_bytes', help: 'Bytes of the LLM client keys held in memory', registers, collect() {
      this.set(keys().bytes);
    } });
  }

  tokensOf(key: string): number {
    return this.counted.get(key) ?? 0;
  }

  record(model: string, key: string, u: { tokens: number; bytesIn: number; bytesOut: number }): void {
    if (u.tokens) this.tokens.inc({ model, key }, u.tokens);
    this.counted.set(key, this.tokensOf(key) + u.tokens);
    this.calls.inc({ model, key });
    this.bytes.inc({ model, key, direction: 'in' }, u.bytesIn);
    this.bytes.inc({ model, key, direction: 'out' }, u.bytesOut);
  }
}


/** Every `<model>/llm/linear.safetensors` under `modelsDir`, its layers prepared by their backend. */
export function loadLlmModels(modelsDir: string): Map<string, LlmModel> {
  const out = new Map<string, LlmModel>();
  if (!fs.existsSync(modelsDir)) return out;
  for (const model of fs.readdirSync(modelsDir).sort()) {
    const file = path.join(modelsDir, model, LLM_SERVER_DIR, LLM_SERVER_FILE);
    if (!fs.existsSync(file)) continue;
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(fs.readFileSync(file)));
    checkVersion(file, metadata.format, LLM_SERVER_FORMAT, metadata.fhenetVersion);
    const backend = linearServerBackend(metadata.backend ?? '');
    const layers = new Map<string, { layer: ServerLayer; prepared: unknown; tag: Uint8Array }>();
    const names = [...tensors.keys()].filter((k) => k.endsWith('.weight')).map((k) => k.slice(0, -'.weight'.length));
    for (const name of names) {
      const t = tensors.get(`${name}.weight`)!;
      if (t.dtype !== 'I8' || t.shape.length !== 2) throw new HybridError(`${file}: tensor '${name}.weight' is not an int8 [out, in] weight`);
      const vector = (what: string): Float32Array => {
        const v = tensors.get(`${name}.${what}`);
        if (!v || v.dtype !== 'F32' || v.shape.length !== 1 || v.shape[0] !== t.shape[0]) throw new HybridError(`${file}: layer '${name}' lacks its F32 [${t.shape[0]}] ${what}`);
        return v.data as Float32Array;
      };
      const layer: ServerLayer = { weights: t.data as Int8Array, outFeatures: t.shape[0]!, inFeatures: t.shape[1]!, scales: vector('scales'), bias: vector('bias') };
      layers.set(name, { layer, prepared: backend.prepare(layer), tag: layerTag(model, name) });
    }
    if (tensors.size !== 3 * names.length) throw new HybridError(`${file}: ${tensors.size} tensors for ${names.length} layers (expected weight, scales and bias of each)`);
    // The first layer in the model's order (namedModules order is kept by the writer) counts the tokens.
    out.set(model, { backend, layers, firstLayer: names[0]! });
  }
  return out;
}

export async function llmRoutes(app: FastifyInstance, opts: LlmRoutesOptions): Promise<void> {
  const models = loadLlmModels(opts.modelsDir);
  const maxKey = opts.maxKeyBytes ?? 512 * 2 ** 20;
  const maxCt = opts.maxCiphertextBytes ?? 64 * 2 ** 20;
  const maxKeys = opts.maxKeys ?? 64;
  const maxStored = opts.maxStoredKeyBytes ?? 4 * 2 ** 30;
  const keys = new Map<string, LlmKey>(); // insertion order = LRU order
  let stored = 0;
  const usage = new Usage(opts.registry ?? new Registry(), () => ({ count: keys.size, bytes: stored }));

  const str = (q: unknown, name: string): string => {
    const v = (q as Record<string, unknown> | undefined)?.[name];
    if (typeof v !== 'string' || v.length === 0) throw new HybridError(`query parameter '${name}' is required`, 400, 'missing_parameter');
    return v;
  };
  const modelOf = (q: unknown): [string, LlmModel] => {
    const name = str(q, 'model_name');
    if (!NAME_RE.test(name)) throw new HybridError('model_name must match [A-Za-z0-9_.-]{1,200}', 400, 'bad_name');
    const m = models.get(name);
    if (!m) throw new HybridError(`unknown LLM model '${name}'`, 404, 'unknown_model');
    return [name, m];
  };
  const body = (b: unknown, limit: number, what: string): Uint8Array => {
    if (!Buffer.isBuffer(b)) throw new HybridError(`${what} must be sent as application/octet-stream`, 415, 'bad_content_type');
    if (b.length === 0) throw new HybridError(`${what} is empty`, 400, 'empty_body');
    if (b.length > limit) throw new HybridError(`${what} is ${b.length} bytes, over the ${limit}-byte limit`, 413, 'too_large');
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  };
  const evict = async (uid: string) => {
    const k = keys.get(uid);
    if (!k) return;
    keys.delete(uid);
    stored -= k.bytes;
    await models.get(k.model)?.backend.disposeKey?.(k.handle);
  };

  await app.register(async (scope) => {
    scope.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: Math.max(maxKey, maxCt) }, (_req, b, done) => done(null, b));

    scope.get('/llm/list_layers', async (req) => {
      const [, m] = modelOf(req.query);
      return { layers: [...m.layers].map(([name, l]) => ({ name, inFeatures: l.layer.inFeatures, outFeatures: l.layer.outFeatures })) };
    });

    scope.post('/llm/add_key', { bodyLimit: maxKey }, async (req) => {
      const [model, m] = modelOf(req.query);
      const bytes = body(req.body, maxKey, 'evaluation key');
      if (bytes.length > maxStored) throw new HybridError(`evaluation key of ${bytes.length} bytes is larger than the whole key budget`, 413, 'too_large');
      const handle = await m.backend.parseKey(bytes);
      // The budget counts what the key holds in memory once prepared (a GLWE packing key: ≈ 256 MiB from a ≈ 100 MB
      // upload), not the upload's size.
      const held = Math.max(bytes.length, m.backend.keyMemoryBytes?.(handle) ?? 0);
      if (held > maxStored) {
        await m.backend.disposeKey?.(handle);
        throw new HybridError(`evaluation key holds ${held} bytes once prepared, more than the whole key budget (${maxStored})`, 413, 'too_large');
      }
      const uid = randomUUID();
      while (keys.size >= maxKeys || stored + held > maxStored) await evict(keys.keys().next().value!);
      const label = createHash('sha256').update(uid).digest('hex').slice(0, 12);
      keys.set(uid, { model, owner: opts.ownerOf?.(req), handle, bytes: held, label });
      stored += held;
      return { uid };
    });

    scope.post('/llm/linear', { bodyLimit: maxCt }, async (req, reply) => {
      const [model, m] = modelOf(req.query);
      const uid = str(req.query, 'uid');
      if (!UID_RE.test(uid)) throw new HybridError(`uid '${uid.slice(0, 64)}' is not a uid returned by /llm/add_key`, 400, 'bad_uid');
      const k = keys.get(uid);
      // The same answer for a uid of another owner as for an unknown one: a leaked uid reveals nothing.
      if (!k || k.model !== model || k.owner !== opts.ownerOf?.(req)) throw new HybridError(`unknown uid ${uid} (upload the key with /llm/add_key)`, 404, 'unknown_uid');
      const layerName = str(req.query, 'layer');
      const l = m.layers.get(layerName);
      if (!l) throw new HybridError(`model '${model}' has no remote layer '${layerName.slice(0, 200)}'`, 404, 'unknown_module');
      const tokens = Number(str(req.query, 'tokens'));
      if (!Number.isInteger(tokens) || tokens < 1 || tokens > 65_536) throw new HybridError('tokens must be an integer in 1..65536', 400, 'bad_shape');
      const used = usage.tokensOf(k.label);
      if (layerName === m.firstLayer && opts.maxTokensPerKey !== undefined && used + tokens > opts.maxTokensPerKey) {
        void reply.header('retry-after', '3600');
        throw new HybridError(`this key has used ${used} of its ${opts.maxTokensPerKey} tokens`, 429, 'quota_exceeded');
      }
      const ct = body(req.body, maxCt, 'ciphertext');
      keys.delete(uid); // LRU: most recently used last
      keys.set(uid, k);
      // The frame must hold exactly the declared tokens: the quota and the metering count the declared number.
      const out = await m.backend.matVec(k.handle, l.prepared, l.layer, ct, l.tag, tokens);
      usage.record(model, k.label, { tokens: layerName === m.firstLayer ? tokens : 0, bytesIn: ct.length, bytesOut: out.length });
      void reply.type('application/octet-stream');
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    });

    scope.get('/llm/metrics', async (_req, reply) => {
      void reply.type(usage.registry.contentType);
      return usage.registry.metrics();
    });
  });
}
