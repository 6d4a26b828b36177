/**
 * The fhenet model server (fastify): serves the client artefacts of every remote module, stores each client's
 * evaluation keys on disk under a random uid, and runs circuits on encrypted inputs. tfjs-free.
 *
 * Routes (the reference's names; shapes are per-sample, e.g. `10` or `3x8x8`):
 *   GET  /list_models                                         → { models: [...] }
 *   GET  /list_modules?model_name=M                           → { modules: [...] }
 *   GET  /list_shapes?model_name=M&module_name=X              → { shapes: [...] }
 *   GET  /get_client?model_name=M&module_name=X&input_shape=S → the client artefact (JSON, no weights)
 *   POST /add_key?model_name=M&module_name=X&input_shape=S    body: evaluation keys (application/octet-stream) → { uid }
 *   POST /compute?uid=U&model_name=M&module_name=X&input_shape=S  body: ciphertexts → result ciphertexts (octet-stream)
 *   GET  /health → { status }     GET /metrics → Prometheus text
 * With `apiTokens` (`--token-file`) every route but /health needs `Authorization: Bearer <token>` (else 401), and a
 * uid answers only to the token that uploaded its key (to any other: 404 unknown_uid, as if it did not exist).
 * Errors are JSON { statusCode, error, code, message }: 400 bad input, 401 no or wrong token, 404 unknown model/module/shape/uid,
 * 413 body over the limit, 415 wrong content type, 507 key store full (every stored key in use); other 5xx only for
 * server faults.
 *
 * Stored keys live under a byte budget (`maxStoredKeyBytes`): an upload that does not fit deletes the least recently
 * used keys that no computation is using, and keys unused for `keyTtlSeconds` are deleted. A client whose key was
 * deleted gets 404 `unknown_uid` and uploads it again (HybridFHEModel does so by itself).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { FhenetError } from '../../util/errors.js';
import { CLIENT_FILE, FHEModelServer, SERVER_FILE, parseShapeKey } from '../deployment.js';
import { HybridError } from '../errors.js';
import { type KeyStore, KeyStoreFull, type StoredKeyMeta } from './key-store.js';
import { LocalDirectoryKeyStore } from './local-key-store.js';
import { configureTfheServer } from '../tfhe-backend.js';
import { llmRoutes } from './llm-routes.js';
import { BearerAuth, readTokenFile } from './auth.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Re-reads the token file (servers built with `tokenFile`); returns the token count, throws keeping the old set. */
    reloadTokens?: () => number;
  }
}

export interface ServeOptions {
  /** Folder of models: `<modelsDir>/<model>/<module>/<shape>/{server.fhe, client.json}`. */
  modelsDir: string;
  /** Folder where evaluation keys are stored, one `<uid>.key` + `<uid>.json` per upload. */
  keysDir: string;
  /** Largest evaluation-key upload, bytes (default 512 MiB: TFHE server keys are large). */
  maxKeyBytes?: number;
  /** Byte budget of all stored evaluation keys together (default 8 GiB); least recently used keys make room. */
  maxStoredKeyBytes?: number;
  /** Delete keys not used for this long (seconds; default: never, only the byte budget deletes keys). */
  keyTtlSeconds?: number;
  /** Largest ciphertext upload, bytes (default 64 MiB). */
  maxCiphertextBytes?: number;
  /** Loaded evaluation keys kept in memory (least recently used evicted; reloaded from disk). Default 64. */
  keyCacheSize?: number;
  /**
   * Loaded keys of the tfhe backend kept in memory (each holds an expanded key, ≈ 120 MB for 2_2, and a worker pool).
   * Default 4; evicted ones are closed once their in-flight computations finish and reloaded from disk when needed.
   */
  tfheKeyCacheSize?: number;
  /** KS-PBS worker threads per loaded tfhe key (default 2, minimum 2: the PBS never run on the event loop). */
  tfheThreads?: number;
  /**
   * Where keys are stored: a `KeyStore` built from the server's pinning and deletion callbacks (default: the local
   * directory `keysDir`, `LocalDirectoryKeyStore`). `keysDir` is then only the folder of upload scratch files.
   */
  keyStore?: (opts: { capacityBytes: number; isPinned: (uid: string) => boolean; onDelete: (uid: string, reason: string) => void }) => Promise<KeyStore>;
  /** Bearer tokens accepted; default none: the server is open to anyone who can reach it. */
  apiTokens?: readonly string[];
  /**
   * A token file (`--token-file`: one per line, `#` comments) instead of `apiTokens`; `app.reloadTokens()` re-reads
   * it, and `serve` does so on SIGHUP.
   */
  tokenFile?: string;
  /** fastify/pino logger option (default { level: 'info' }); false to silence. */
  logger?: FastifyServerOptions['logger'];
}

interface ModuleEntry {
  server: FHEModelServer;
  clientBytes: Buffer;
}

/** A loaded key in the cache; `inflight` computations pin it, an evicted one is disposed when the last finishes. */
interface CachedKey {
  meta: StoredKeyMeta;
  handle: unknown;
  entry: ModuleEntry;
  inflight: number;
  evicted: boolean;
}

const UID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAME_RE = /^[A-Za-z0-9_.-]{1,200}$/;

/** Loads every model folder (a model that fails to load is an error at start, not at the first request). */
export function loadModels(modelsDir: string): Map<string, ModuleEntry> {
  const out = new Map<string, ModuleEntry>();
  if (!fs.existsSync(modelsDir)) throw new FhenetError(`models folder ${modelsDir} does not exist`);
  for (const model of fs.readdirSync(modelsDir).sort()) {
    const mdir = path.join(modelsDir, model);
    if (!fs.statSync(mdir).isDirectory()) continue;
    for (const mod of fs.readdirSync(mdir).sort()) {
      const modDir = path.join(mdir, mod);
      if (!fs.statSync(modDir).isDirectory()) continue;
      for (const shape of fs.readdirSync(modDir).sort()) {
        const sdir = path.join(modDir, shape);
        if (!fs.existsSync(path.join(sdir, SERVER_FILE))) continue;
        const server = FHEModelServer.load(sdir);
        const clientBytes = fs.readFileSync(path.join(sdir, CLIENT_FILE));
        out.set(`${model}/${mod}/${shape}`, { server, clientBytes });
      }
    }
  }
  return out;
}

class Metrics {
  readonly counters = new Map<string, number>();
  readonly computeMs: number[] = [];
  inc(name: string, labels: Record<string, string | number>, by = 1): void {
    const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + by);
  }
}

export async function buildServer(opts: ServeOptions): Promise<FastifyInstance> {
  const models = loadModels(opts.modelsDir);
  if (opts.apiTokens && opts.tokenFile !== undefined) throw new FhenetError('buildServer: give apiTokens or tokenFile, not both');
  const tokens = opts.tokenFile !== undefined ? readTokenFile(opts.tokenFile) : opts.apiTokens;
  const auth = tokens ? new BearerAuth(tokens) : undefined;
  const owners = new WeakMap<object, string>();
  if (!opts.keyStore) fs.mkdirSync(opts.keysDir, { recursive: true });
  const maxKey = opts.maxKeyBytes ?? 512 * 2 ** 20;
  const maxCt = opts.maxCiphertextBytes ?? 64 * 2 ** 20;
  const cacheSize = opts.keyCacheSize ?? 64;
  const tfheCacheSize = Math.max(1, opts.tfheKeyCacheSize ?? 4);
  if (opts.tfheThreads !== undefined) configureTfheServer({ threads: opts.tfheThreads });
  const keyCache = new Map<string, CachedKey>();
  const loading = new Map<string, Promise<CachedKey>>();
  if (opts.keyTtlSeconds !== undefined && !(opts.keyTtlSeconds > 0)) throw new FhenetError(`keyTtlSeconds must be > 0, got ${opts.keyTtlSeconds}`);
  const heavy = (k: CachedKey) => k.entry.server.info.backend !== 'simulate';
  const release = (k: CachedKey) => {
    if (k.evicted && k.inflight === 0) {
      k.evicted = false;
      k.inflight = -1; // disposed
      void k.entry.server.disposeKey(k.handle).catch((err: unknown) => app.log.error({ err }, 'key dispose failed'));
    }
  };
  const evict = (uid: string) => {
    const k = keyCache.get(uid)!;
    keyCache.delete(uid);
    k.evicted = true;
    release(k);
  };
  const remember = (uid: string, k: CachedKey) => {
    keyCache.set(uid, k);
    while (keyCache.size > cacheSize) evict(keyCache.keys().next().value!);
    const heavyUids = () => [...keyCache].filter(([, v]) => heavy(v)).map(([u]) => u);
    for (let h = heavyUids(); h.length > tfheCacheSize; h = heavyUids()) evict(h[0]!);
  };
  const metrics = new Metrics();
  let computeInFlight = 0;
  const pinned = (uid: string) => loading.has(uid) || (keyCache.get(uid)?.inflight ?? 0) > 0;
  /** The store deleted a key (room, time to live): drop any loaded copy. */
  const onDelete = (uid: string, reason: string) => {
    if (keyCache.has(uid)) evict(uid);
    metrics.inc('fhenet_keys_deleted_total', { reason });
    app.log.info({ uid, reason }, 'evaluation key deleted');
  };
  const app = Fastify({ logger: opts.logger ?? { level: 'info' }, bodyLimit: maxCt, return503OnClosing: true });
  const capacityBytes = opts.maxStoredKeyBytes ?? 8 * 2 ** 30;
  const store: KeyStore = opts.keyStore
    ? await opts.keyStore({ capacityBytes, isPinned: pinned, onDelete })
    : (await LocalDirectoryKeyStore.open(opts.keysDir, { capacityBytes, isPinned: pinned, onDelete })).store;
  const ttlMs = opts.keyTtlSeconds !== undefined ? opts.keyTtlSeconds * 1000 : undefined;
  const sweep =
    ttlMs !== undefined
      ? setInterval(() => void store.expire(ttlMs).catch((err: unknown) => app.log.error({ err }, 'expiring keys failed')), Math.min(60_000, Math.max(50, ttlMs / 4)))
      : undefined;
  sweep?.unref();

  app.addHook('onClose', async () => {
    if (sweep) clearInterval(sweep);
    for (const uid of [...keyCache.keys()]) evict(uid);
    await store.close();
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    let status = 500;
    let code = 'internal';
    if (err instanceof HybridError) {
      status = err.statusCode;
      code = err.code;
    } else if (err instanceof FhenetError) {
      status = 400;
      code = 'bad_request';
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      code = err.code ?? 'bad_request';
    }
    if (status >= 500 && !(err instanceof HybridError)) req.log.error({ err }, 'request failed');
    else req.log.warn({ code, reason: err.message }, 'request rejected');
    metrics.inc('fhenet_errors_total', { code });
    const deliberate = err instanceof HybridError; // a 507 says why; an unexpected fault says nothing of the server
    if (status === 401) void reply.header('www-authenticate', 'Bearer realm="fhenet"');
    void reply.status(status).send({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', code, message: status >= 500 && !deliberate ? 'internal error' : err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ statusCode: 404, error: 'Not Found', code: 'no_route', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
  // Before the body is read: an unauthenticated upload is refused without receiving its bytes.
  if (auth) {
    app.addHook('onRequest', async (req) => {
      if (req.url === '/health' || req.url.startsWith('/health?')) return;
      owners.set(req, auth.ownerOf(req.headers.authorization));
    });
  }
  app.addHook('onResponse', async (req, reply) => {
    metrics.inc('fhenet_http_requests_total', { route: req.routeOptions.url ?? 'none', status: reply.statusCode });
  });

  const str = (q: unknown, name: string): string => {
    const v = (q as Record<string, unknown> | undefined)?.[name];
    if (typeof v !== 'string' || v.length === 0) throw new HybridError(`query parameter '${name}' is required`, 400, 'missing_parameter');
    return v;
  };
  const entryOf = (q: unknown): { entry: ModuleEntry; model: string; module: string; shape: string } => {
    const model = str(q, 'model_name');
    const module = str(q, 'module_name');
    const shape = str(q, 'input_shape');
    if (!NAME_RE.test(model) || !NAME_RE.test(module)) throw new HybridError('model_name and module_name must match [A-Za-z0-9_.-]{1,200}', 400, 'bad_name');
    parseShapeKey(shape);
    const entry = models.get(`${model}/${module}/${shape}`);
    if (!entry) {
      if (![...models.keys()].some((k) => k.startsWith(`${model}/`))) throw new HybridError(`unknown model '${model}'`, 404, 'unknown_model');
      if (![...models.keys()].some((k) => k.startsWith(`${model}/${module}/`))) throw new HybridError(`model '${model}' has no remote module '${module}'`, 404, 'unknown_module');
      throw new HybridError(`module '${module}' of '${model}' was not compiled for input shape ${shape}`, 404, 'unknown_shape');
    }
    return { entry, model, module, shape };
  };
  const body = (b: unknown, limit: number, what: string): Buffer => {
    if (!Buffer.isBuffer(b)) throw new HybridError(`${what} must be sent as application/octet-stream`, 415, 'bad_content_type');
    if (b.length === 0) throw new HybridError(`${what} is empty`, 400, 'empty_body');
    if (b.length > limit) throw new HybridError(`${what} is ${b.length} bytes, over the ${limit}-byte limit`, 413, 'too_large');
    return b;
  };

  /** Marks a key used (least-recently-used order, time to live). */
  const touchKey = (uid: string) => void store.touch(uid).catch((err: unknown) => app.log.warn({ err, uid }, 'marking a key used failed'));

  /** The cached key of `uid`, pinned (inflight + 1): the caller must `release` it. */
  async function keyFor(uid: string): Promise<CachedKey> {
    if (!UID_RE.test(uid)) throw new HybridError(`uid '${uid.slice(0, 64)}' is not a uid returned by /add_key`, 400, 'bad_uid');
    const hit = keyCache.get(uid);
    if (hit) {
      keyCache.delete(uid);
      keyCache.set(uid, hit);
      hit.inflight++;
      touchKey(uid);
      return hit;
    }
    let p = loading.get(uid);
    if (!p && !(await store.has(uid))) throw new HybridError(`unknown uid ${uid} (never uploaded, or deleted to make room or after its time to live: upload evaluation keys with /add_key)`, 404, 'unknown_uid');
    if (!p) {
      p = (async () => {
        const meta = await store.meta(uid);
        if (!meta) throw new HybridError(`unknown uid ${uid} (upload evaluation keys with /add_key first)`, 404, 'unknown_uid');
        const entry = models.get(`${meta.model}/${meta.module}/${meta.shape}`);
        if (!entry) throw new HybridError(`uid ${uid} belongs to ${meta.model}/${meta.module}/${meta.shape}, which this server no longer serves`, 404, 'unknown_module');
        const keyBytes = await store.get(uid);
        if (!keyBytes) throw new HybridError(`unknown uid ${uid} (its key was deleted: upload evaluation keys with /add_key)`, 404, 'unknown_uid');
        const handle = await entry.server.loadKeyAsync(keyBytes);
        const loaded: CachedKey = { meta, handle, entry, inflight: 0, evicted: false };
        remember(uid, loaded);
        metrics.inc('fhenet_key_loads_total', {});
        return loaded;
      })();
      loading.set(uid, p);
      void p.finally(() => loading.delete(uid)).catch(() => undefined);
    }
    const k = await p;
    if (k.inflight < 0 || !keyCache.has(uid)) return keyFor(uid); // evicted and disposed meanwhile: load again
    k.inflight++;
    touchKey(uid);
    return k;
  }

  app.get('/health', async () => ({ status: 'ok', models: new Set([...models.keys()].map((k) => k.split('/')[0])).size, computeInFlight }));

  app.get('/metrics', async (_req, reply) => {
    const mem = process.memoryUsage();
    const lines = [
      '# TYPE fhenet_http_requests_total counter',
      ...[...metrics.counters].map(([k, v]) => `${k} ${v}`),
      `fhenet_keys_cached ${keyCache.size}`,
      `fhenet_keys_stored ${(await store.usage()).keys}`,
      `fhenet_key_store_bytes ${(await store.usage()).storedBytes}`,
      `fhenet_compute_in_flight ${computeInFlight}`,
      `process_resident_memory_bytes ${mem.rss}`,
      `nodejs_heap_used_bytes ${mem.heapUsed}`,
    ];
    const ms = metrics.computeMs;
    if (ms.length) {
      const sorted = [...ms].sort((a, b) => a - b);
      lines.push(`fhenet_compute_ms{quantile="0.5"} ${sorted[Math.floor(0.5 * (sorted.length - 1))]}`);
      lines.push(`fhenet_compute_ms{quantile="0.99"} ${sorted[Math.floor(0.99 * (sorted.length - 1))]}`);
    }
    void reply.type('text/plain; version=0.0.4').send(lines.join('\n') + '\n');
  });

  app.get('/list_models', async () => ({ models: [...new Set([...models.keys()].map((k) => k.split('/')[0]!))] }));
  app.get('/list_modules', async (req) => {
    const model = str(req.query, 'model_name');
    const mods = [...new Set([...models.keys()].filter((k) => k.startsWith(`${model}/`)).map((k) => k.split('/')[1]!))];
    if (!mods.length) throw new HybridError(`unknown model '${model}'`, 404, 'unknown_model');
    return { modules: mods };
  });
  app.get('/list_shapes', async (req) => {
    const model = str(req.query, 'model_name');
    const module = str(req.query, 'module_name');
    const shapes = [...models.keys()].filter((k) => k.startsWith(`${model}/${module}/`)).map((k) => k.split('/')[2]!);
    if (!shapes.length) throw new HybridError(`unknown model/module '${model}/${module}'`, 404, 'unknown_module');
    return { shapes };
  });
  app.get('/get_client', async (req, reply) => {
    const { entry } = entryOf(req.query);
    void reply.type('application/json').send(entry.clientBytes);
  });

  // /add_key: the body (tens of MB for TFHE) is streamed to a file under keys/.upload, counted against the limit on
  // the way, then read once and validated; it is never held in memory as a request body.
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    scope.post('/add_key', async (req) => {
      const { entry, model, module, shape } = entryOf(req.query);
      const stream = req.body as NodeJS.ReadableStream | undefined;
      if (!stream || typeof (stream as { pipe?: unknown }).pipe !== 'function') throw new HybridError('evaluation key must be sent as application/octet-stream', 415, 'bad_content_type');
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxKey) throw new HybridError(`evaluation key is ${declared} bytes, over the ${maxKey}-byte limit (--max-key-mb)`, 413, 'too_large');
      if (Number.isFinite(declared) && declared > capacityBytes) throw new HybridError(`evaluation key is ${declared} bytes, more than the whole key store holds (${store.capacityBytes} bytes, --max-stored-keys-mb)`, 413, 'too_large');
      const uid = randomUUID();
      const upload = await store.beginUpload(uid);
      let handle: unknown;
      let bytes = 0;
      try {
        // Room is reserved as the bytes arrive (by the store), so concurrent uploads cannot together overrun the budget.
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          if (upload.received + chunk.length > maxKey) throw new HybridError(`evaluation key is over the ${maxKey}-byte limit (--max-key-mb)`, 413, 'too_large');
          await upload.write(chunk);
        }
        if (upload.received === 0) throw new HybridError('evaluation key is empty', 400, 'empty_body');
        const key = await upload.bytes();
        bytes = key.length;
        handle = await entry.server.loadKeyAsync(key); // validates before anything is stored
      } catch (e) {
        await upload.abort();
        if (e instanceof KeyStoreFull) {
          metrics.inc('fhenet_key_store_full_total', {});
          throw new HybridError(`no room for the evaluation key: ${e.message}; retry later, or raise --max-stored-keys-mb`, 507, 'key_store_full');
        }
        if (e instanceof HybridError || e instanceof FhenetError) throw e;
        if ((e as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE' || (e as { code?: string }).code === 'ECONNRESET' || (e as { code?: string }).code === 'ECONNABORTED') {
          throw new HybridError('upload interrupted', 400, 'upload_aborted');
        }
        throw e;
      }
      const owner = owners.get(req);
      const meta: StoredKeyMeta = { uid, model, module, shape, circuitId: entry.server.circuitId, bytes, created: new Date().toISOString(), ...(owner ? { owner } : {}) };
      try {
        await upload.commit(meta);
      } catch (e) {
        await entry.server.disposeKey(handle);
        if (e instanceof KeyStoreFull) throw new HybridError(`no room for the evaluation key: ${e.message}; retry later, or raise --max-stored-keys-mb`, 507, 'key_store_full');
        throw e;
      }
      remember(uid, { meta, handle, entry, inflight: 0, evicted: false });
      metrics.inc('fhenet_keys_added_total', {});
      metrics.inc('fhenet_bytes_in_total', { route: '/add_key' }, bytes);
      req.log.info({ uid, model, module, shape, bytes }, 'evaluation key stored');
      return { uid };
    });
  });

  await app.register(async (scope) => {
    scope.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: maxCt }, (_req, b, done) => done(null, b));
    scope.post('/compute', { bodyLimit: maxCt }, async (req, reply) => {
      const uid = str(req.query, 'uid');
      const { entry, model, module, shape } = entryOf(req.query);
      const bytes = body(req.body, maxCt, 'ciphertext');
      const key = await keyFor(uid);
      const t0 = performance.now();
      computeInFlight++;
      let out: Uint8Array;
      try {
        // Another token's key answers as if it did not exist (a uid is not a credential of its own).
        if (key.meta.owner !== owners.get(req)) throw new HybridError(`unknown uid ${uid} (upload evaluation keys with /add_key first)`, 404, 'unknown_uid');
        if (key.meta.model !== model || key.meta.module !== module || key.meta.shape !== shape) {
          throw new HybridError(`uid ${uid} was registered for ${key.meta.model}/${key.meta.module}/${key.meta.shape}, not ${model}/${module}/${shape}`, 400, 'uid_mismatch');
        }
        out = await entry.server.runAsync(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { handle: key.handle });
      } finally {
        computeInFlight--;
        key.inflight--;
        release(key);
      }
      const ms = performance.now() - t0;
      metrics.computeMs.push(ms);
      if (metrics.computeMs.length > 10_000) metrics.computeMs.splice(0, 5_000);
      metrics.inc('fhenet_bytes_in_total', { route: '/compute' }, bytes.length);
      metrics.inc('fhenet_bytes_out_total', { route: '/compute' }, out.length);
      req.log.info({ uid, model, module, shape, inBytes: bytes.length, outBytes: out.length, computeMs: Math.round(ms * 1000) / 1000 }, 'computed');
      void reply.type('application/octet-stream').send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    });
  });
  await app.register(llmRoutes, { modelsDir: opts.modelsDir, maxKeyBytes: maxKey, maxCiphertextBytes: maxCt, ownerOf: (req) => owners.get(req) }); // hybrid LLM routes (llm-routes.ts)

  if (auth && opts.tokenFile !== undefined) {
    const file = opts.tokenFile;
    app.decorate('reloadTokens', () => {
      auth.replace(readTokenFile(file));
      return auth.size;
    });
  }
  return app;
}

/** Starts a server and closes it gracefully (in-flight requests finish) on SIGINT/SIGTERM. */
export async function serve(opts: ServeOptions & { port: number; host?: string }): Promise<FastifyInstance> {
  const app = await buildServer(opts);
  await app.listen({ port: opts.port, host: opts.host ?? '127.0.0.1' });
  const stop = (signal: string) => {
    app.log.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  if (app.reloadTokens) {
    const reload = app.reloadTokens;
    process.on('SIGHUP', () => {
      try {
        app.log.info({ tokens: reload() }, 'token file reloaded');
      } catch (e) {
        app.log.error({ reason: (e as Error).message }, 'token file not reloaded; the previous tokens stay in force');
      }
    });
  }
  return app;
}
