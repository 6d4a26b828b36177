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
 * 413 body over the limit, 415 wrong content type, 429 too many computations, 507 key store full (every stored key in
 * use); other 5xx only for server faults.
 *
 * Stored keys live under a byte budget (`maxStoredKeyBytes`): an upload that does not fit deletes the least recently
 * used keys that no computation is using, and keys unused for `keyTtlSeconds` are deleted. A client whose key was
 * deleted gets 404 `unknown_uid` and uploads it again (HybridFHEModel does so by itself).
 *
 * Hostile clients are bounded before their bytes are read: a key upload to its backend's exact key size, a
 * computation to its module's largest batch (from the circuit's size and `maxComputeMemoryBytes`), and computations
 * in flight per uid and in total (429 with Retry-After). The parts: options.ts (limits), models.ts (catalogue),
 * query.ts, auth.ts, limits.ts (admission), key-store.ts / local-key-store.ts, key-cache.ts (loaded keys),
 * metrics.ts (prom-client), http-errors.ts, routes-*.ts.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { FhenetError } from '../../util/errors.js';
import { configureTfheServer } from '../tfhe-backend.js';
import { BearerAuth, readTokenFile } from './auth.js';
import type { ServerContext } from './context.js';
import { installErrorHandlers } from './http-errors.js';
import { exitOnFatalErrors } from './fatal-errors.js';
import { KeyCache } from './key-cache.js';
import type { KeyStore } from './key-store.js';
import { ComputeSlots } from './limits.js';
import { LocalDirectoryKeyStore } from './local-key-store.js';
import { ServerMetrics } from './metrics.js';
import { Catalogue, loadModels } from './models.js';
import { type ServeOptions, limitsOf } from './options.js';
import { catalogueRoutes } from './routes-catalogue.js';
import { computeRoutes } from './routes-compute.js';
import { keyRoutes } from './routes-keys.js';
import { llmRoutes } from './llm-routes.js';
import { statusRoutes } from './routes-status.js';

export type { ServeOptions } from './options.js';
export { loadModels } from './models.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Re-reads the token file (servers built with `tokenFile`); returns the token count, throws keeping the old set. */
    reloadTokens?: () => number;
  }
}

export async function buildServer(opts: ServeOptions): Promise<FastifyInstance> {
  const limits = limitsOf(opts);
  const catalogue = new Catalogue(loadModels(opts.modelsDir, limits));
  if (opts.apiTokens && opts.tokenFile !== undefined) throw new FhenetError('buildServer: give apiTokens or tokenFile, not both');
  const tokens = opts.tokenFile !== undefined ? readTokenFile(opts.tokenFile) : opts.apiTokens;
  const auth = tokens ? new BearerAuth(tokens) : undefined;
  const owners = new WeakMap<FastifyRequest, string>();
  if (opts.tfheThreads !== undefined) configureTfheServer({ threads: opts.tfheThreads });

  // The largest body fastify itself may buffer (routes read theirs as streams under their own, lower limits).
  const app = Fastify({ logger: opts.logger ?? { level: 'info' }, bodyLimit: Math.max(limits.maxCiphertextBytes, limits.maxKeyBytes), return503OnClosing: true });
  const keys = new KeyCache(limits.keyCacheSize, limits.tfheKeyCacheSize, (err) => app.log.error({ err }, 'key dispose failed'));
  const slots = new ComputeSlots(limits.maxComputePerUid, limits.maxComputeTotal);
  let opened: KeyStore | undefined;
  const metrics = new ServerMetrics({
    keysCached: () => keys.count,
    computeInFlight: () => slots.inFlight,
    keyStore: async () => (opened ? opened.usage() : { keys: 0, storedBytes: 0 }),
  });
  /** The store deleted a key (room, time to live): drop any loaded copy. */
  const onDelete = (uid: string, reason: string) => {
    keys.evict(uid);
    metrics.keysDeleted.inc({ reason });
    app.log.info({ uid, reason }, 'evaluation key deleted');
  };
  const storeOpts = { capacityBytes: limits.maxStoredKeyBytes, isPinned: (uid: string) => keys.pinned(uid), onDelete };
  const store = opts.keyStore ? await opts.keyStore(storeOpts) : (await LocalDirectoryKeyStore.open(opts.keysDir, storeOpts)).store;
  opened = store;
  const ctx: ServerContext = { catalogue, store, keys, slots, metrics, limits, log: app.log, ownerOf: (req) => owners.get(req) };

  const ttlMs = limits.keyTtlMs;
  const sweep = ttlMs !== undefined ? setInterval(() => void store.expire(ttlMs).catch((err: unknown) => app.log.error({ err }, 'expiring keys failed')), Math.min(60_000, Math.max(50, ttlMs / 4))) : undefined;
  sweep?.unref();
  app.addHook('onClose', async () => {
    if (sweep) clearInterval(sweep);
    keys.evictAll();
    await store.close();
  });

  installErrorHandlers(app, metrics);
  // Before the body is read: an unauthenticated upload is refused without receiving its bytes.
  if (auth) {
    app.addHook('onRequest', async (req) => {
      if (req.url === '/health' || req.url.startsWith('/health?')) return;
      owners.set(req, auth.ownerOf(req.headers.authorization));
    });
  }
  app.addHook('onResponse', async (req, reply) => {
    metrics.requests.inc({ route: req.routeOptions.url ?? 'none', status: reply.statusCode });
  });

  statusRoutes(app, ctx);
  catalogueRoutes(app, ctx);
  await keyRoutes(app, ctx);
  await computeRoutes(app, ctx);
  // hybrid LLM routes (llm-routes.ts): the per-token GLWE linear layers, with usage metering
  await app.register(llmRoutes, {
    modelsDir: opts.modelsDir,
    maxKeyBytes: limits.maxKeyBytes,
    maxCiphertextBytes: limits.maxCiphertextBytes,
    ...(opts.llmMaxTokensPerKey !== undefined ? { maxTokensPerKey: opts.llmMaxTokensPerKey } : {}),
    ...(opts.llmMaxKeys !== undefined ? { maxKeys: opts.llmMaxKeys } : {}),
    ownerOf: ctx.ownerOf,
    registry: ctx.metrics.registry,
  });

  if (auth && opts.tokenFile !== undefined) {
    const file = opts.tokenFile;
    app.decorate('reloadTokens', () => {
      auth.replace(readTokenFile(file));
      return auth.size;
    });
  }
  return app;
}

/**
 * Starts a server as the process's one job: closes it gracefully (in-flight requests finish) on SIGINT/SIGTERM, and
 * logs an uncaught exception or unhandled rejection with its stack and exits (fatal-errors.ts).
 */
export async function serve(opts: ServeOptions & { port: number; host?: string }): Promise<FastifyInstance> {
  const app = await buildServer(opts);
  const removeFatal = exitOnFatalErrors(app.log);
  app.addHook('onClose', async () => removeFatal());
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
