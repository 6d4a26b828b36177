/**
 * POST /add_key: an evaluation-key upload. Checked before any byte is stored: the module, the declared length against
 * the exact key size of the module's backend (and the key store's whole budget), then the key's header as soon as
 * its first bytes arrive. The body is streamed into the key store (room reserved as it arrives), read back once,
 * validated by the backend, and committed under a new random uid.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FhenetError } from '../../util/errors.js';
import { HybridError } from '../errors.js';
import type { ServerContext } from './context.js';
import { KeyStoreFull, type StoredKeyMeta } from './key-store.js';
import { checkDeclaredLength } from './limits.js';
import type { ModuleEntry } from './models.js';
import { moduleParams } from './query.js';

const isStream = (b: unknown): b is AsyncIterable<Buffer> => !!b && typeof (b as { pipe?: unknown }).pipe === 'function';

function storeFull(ctx: ServerContext, e: KeyStoreFull): HybridError {
  ctx.metrics.keyStoreFull.inc();
  return new HybridError(`no room for the evaluation key: ${e.message}; retry later, or raise --max-stored-keys-mb`, 507, 'key_store_full');
}

export async function keyRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const entries = new WeakMap<FastifyRequest, ModuleEntry>();
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    scope.post(
      '/add_key',
      {
        onRequest: async (req) => {
          const { model, module, shape } = moduleParams(req.query);
          const entry = ctx.catalogue.get(model, module, shape);
          const hint = ` (a key for ${model}/${module}/${shape} is exactly ${entry.key.bytes} bytes)`;
          checkDeclaredLength(req.headers['content-length'], Math.min(entry.key.bytes, ctx.limits.maxKeyBytes), 'evaluation key', hint);
          checkDeclaredLength(req.headers['content-length'], ctx.store.capacityBytes, 'evaluation key', ', more than the whole key store holds (--max-stored-keys-mb)');
          entries.set(req, entry);
        },
      },
      async (req) => {
        const entry = entries.get(req)!;
        const { model, module, shape } = entry;
        if (!isStream(req.body)) throw new HybridError('evaluation key must be sent as application/octet-stream', 415, 'bad_content_type');
        const limit = Math.min(entry.key.bytes, ctx.limits.maxKeyBytes);
        const uid = randomUUID();
        const upload = await ctx.store.beginUpload(uid);
        let handle: unknown;
        try {
          let head: Buffer | undefined = Buffer.alloc(0);
          for await (const chunk of req.body) {
            if (head) {
              head = Buffer.concat([head, chunk]);
              if (head.length >= entry.key.headerBytes) {
                entry.key.checkHeader(head.subarray(0, entry.key.headerBytes)); // before anything is stored
                head = undefined;
              }
            }
            if (upload.received + chunk.length > limit) throw new HybridError(`evaluation key is over the ${limit}-byte limit (a key for ${model}/${module}/${shape} is exactly ${entry.key.bytes} bytes)`, 413, 'too_large');
            await upload.write(chunk);
          }
          if (upload.received === 0) throw new HybridError('evaluation key is empty', 400, 'empty_body');
          if (upload.received !== entry.key.bytes) throw new HybridError(`evaluation key: ${upload.received} bytes, a key for ${model}/${module}/${shape} is exactly ${entry.key.bytes} (truncated or padded)`, 400, 'bad_key');
          handle = await entry.server.loadKeyAsync(await upload.bytes()); // validates before anything is committed
        } catch (e) {
          await upload.abort();
          if (e instanceof KeyStoreFull) throw storeFull(ctx, e);
          if (e instanceof HybridError || e instanceof FhenetError) throw e;
          const code = (e as { code?: string }).code;
          if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'ECONNABORTED') throw new HybridError('upload interrupted', 400, 'upload_aborted');
          throw e;
        }
        const owner = ctx.ownerOf(req);
        const meta: StoredKeyMeta = { uid, model, module, shape, circuitId: entry.server.circuitId, bytes: upload.received, created: new Date().toISOString(), ...(owner ? { owner } : {}) };
        try {
          await upload.commit(meta);
        } catch (e) {
          await entry.server.disposeKey(handle);
          if (e instanceof KeyStoreFull) throw storeFull(ctx, e);
          throw e;
        }
        ctx.keys.remember(uid, { meta, handle, entry, inflight: 0, evicted: false });
        ctx.metrics.keysAdded.inc();
        ctx.metrics.bytesIn.inc({ route: '/add_key' }, meta.bytes);
        req.log.info({ uid, model, module, shape, bytes: meta.bytes }, 'evaluation key stored');
        return { uid };
      },
    );
  });
}
