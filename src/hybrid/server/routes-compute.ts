/**
 * POST /compute: a circuit run on a client's ciphertexts. Before any byte of the body is read: the uid must belong to
 * the request's owner (else the same 404 as an unknown uid; nothing is loaded or touched), be registered for this
 * module, the declared length must fit the module's largest request (a frame of its largest batch), and a
 * computation slot must be free for the uid and in total (else 429 with Retry-After). The slot is held until the
 * answer is sent or the connection closes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HybridError } from '../errors.js';
import { type ServerContext, ownedKey } from './context.js';
import type { StoredKeyMeta } from './key-store.js';
import { TooManyRequests, checkDeclaredLength, readBody } from './limits.js';
import type { ModuleEntry } from './models.js';
import { moduleParams, uidParam } from './query.js';

interface Admitted {
  uid: string;
  meta: StoredKeyMeta;
  entry: ModuleEntry;
}

export async function computeRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const admitted = new WeakMap<FastifyRequest, Admitted>();
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    scope.post(
      '/compute',
      {
        onRequest: async (req, reply) => {
          const uid = uidParam(req.query);
          const { model, module, shape } = moduleParams(req.query);
          const entry = ctx.catalogue.get(model, module, shape);
          const meta = await ownedKey(ctx, req, uid);
          if (meta.model !== model || meta.module !== module || meta.shape !== shape) {
            throw new HybridError(`uid ${uid} was registered for ${meta.model}/${meta.module}/${meta.shape}, not ${model}/${module}/${shape}`, 400, 'uid_mismatch');
          }
          checkDeclaredLength(req.headers['content-length'], entry.maxRequestBytes, 'ciphertext', ` (at most ${entry.maxBatch} samples for ${model}/${module}/${shape})`);
          let release: () => void;
          try {
            release = ctx.slots.acquire(uid);
          } catch (e) {
            if (e instanceof TooManyRequests) ctx.metrics.computeRejected.inc({ cap: /per uid/.test(e.message) ? 'uid' : 'total' });
            throw e;
          }
          reply.raw.once('close', release);
          admitted.set(req, { uid, meta, entry });
        },
      },
      async (req, reply) => {
        const { uid, meta, entry } = admitted.get(req)!;
        const body = req.body as AsyncIterable<Buffer> | undefined;
        if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') throw new HybridError('ciphertext must be sent as application/octet-stream', 415, 'bad_content_type');
        const bytes = await readBody(body, entry.maxRequestBytes, 'ciphertext', ` (at most ${entry.maxBatch} samples for ${entry.model}/${entry.module}/${entry.shape})`);
        const key = await ctx.keys.acquire(uid, meta, entry, ctx.store, () => ctx.metrics.keyLoads.inc());
        void ctx.store.touch(uid).catch((err: unknown) => req.log.warn({ err, uid }, 'marking a key used failed'));
        const t0 = performance.now();
        let out: Uint8Array;
        try {
          out = await entry.server.runAsync(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { handle: key.handle });
        } finally {
          ctx.keys.release(key);
        }
        const ms = performance.now() - t0;
        ctx.metrics.computeMs.observe(ms);
        ctx.metrics.bytesIn.inc({ route: '/compute' }, bytes.length);
        ctx.metrics.bytesOut.inc({ route: '/compute' }, out.length);
        req.log.info({ uid, model: entry.model, module: entry.module, shape: entry.shape, inBytes: bytes.length, outBytes: out.length, computeMs: Math.round(ms * 1000) / 1000 }, 'computed');
        void reply.type('application/octet-stream').send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
      },
    );
  });
}
