/**
 * What the server's routes share: the catalogue, the key store and the loaded keys, admission control, metrics and
 * the owner of each request (the hash prefix of its bearer token, on servers with tokens).
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { HybridError } from '../errors.js';
import type { KeyCache } from './key-cache.js';
import type { KeyStore, StoredKeyMeta } from './key-store.js';
import type { ComputeSlots } from './limits.js';
import type { ServerMetrics } from './metrics.js';
import type { Catalogue } from './models.js';
import type { Limits } from './options.js';

export interface ServerContext {
  catalogue: Catalogue;
  store: KeyStore;
  keys: KeyCache;
  slots: ComputeSlots;
  metrics: ServerMetrics;
  limits: Limits;
  log: FastifyBaseLogger;
  /** The owner id of a request (undefined on a server without tokens). */
  ownerOf(req: FastifyRequest): string | undefined;
}

/**
 * The metadata of `uid` if the request's owner may use it. Another owner's uid and a never-uploaded one get the same
 * 404 (same body, and the same cost: a lookup of metadata the store holds in memory; nothing is loaded or touched).
 */
export async function ownedKey(ctx: ServerContext, req: FastifyRequest, uid: string): Promise<StoredKeyMeta> {
  const meta = await ctx.store.meta(uid);
  if (!meta || meta.owner !== ctx.ownerOf(req)) {
    throw new HybridError(`unknown uid ${uid} (never uploaded, or deleted to make room or after its time to live: upload evaluation keys with /add_key)`, 404, 'unknown_uid');
  }
  return meta;
}
