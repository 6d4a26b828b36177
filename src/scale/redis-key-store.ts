/**
 * The model server's key store in Redis (`fhenet serve --store redis://…`): every replica behind a load balancer
 * sees the same keys, under one byte budget and one least-recently-used order. Implements src/hybrid/server's
 * `KeyStore`; each replica keeps its own in-memory cache of expanded keys (the server's key cache) and loads a uid it
 * never saw from here on first use.
 *
 * Layout (prefix `fhenet:keys:`):
 *   meta:<uid>        StoredKeyMeta as JSON — the single commit point: a uid exists exactly when this exists
 *   blob:<uid>        the key bytes, chunked (blobs.ts); written as the upload arrives, with an upload time to live
 *                     until the commit makes it permanent
 *   lru               sorted set uid → last use (ms): the LRU order and the time to live across replicas
 *   size              hash uid → bytes charged (key + metadata)
 *   used              total bytes charged
 *   uploads, upbytes  uploads in progress: uid → deadline (ms), uid → bytes reserved. A replica that dies mid-upload
 *                     leaves a reservation that lapses at its deadline (refreshed by every write).
 * Reserving room is one Lua script (atomic across replicas): lapsed reservations are dropped, and if the budget is
 * short the least recently used keys that this replica does not have pinned are charged off. Deletions are announced
 * on the channel `fhenet:keys:deleted` so that every replica drops its loaded copy (`onDelete`).
 *
 * Durability is Redis's: run it with the append-only file and `appendfsync always` (docs/scale-out.md) so that a key
 * acknowledged to a client survives a Redis restart.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  type KeyDeleteReason,
  type KeyStore,
  KeyStoreFull,
  type KeyStoreOptions,
  type KeyStoreUsage,
  type KeyUpload,
  type StoredKeyMeta,
  UID_RE,
} from '../hybrid/server/key-store.js';
import { DEFAULT_CHUNK_BYTES, RedisBlobs } from './blobs.js';
import { type RedisTarget, connectRedis } from './redis.js';

const P = 'fhenet:keys:';
const K = {
  meta: (uid: string) => `${P}meta:${uid}`,
  lru: `${P}lru`,
  size: `${P}size`,
  used: `${P}used`,
  uploads: `${P}uploads`,
  upbytes: `${P}upbytes`,
  channel: `${P}deleted`,
};
/** An upload not written to for this long is considered dead (its reservation lapses, its chunks expire). */
const UPLOAD_STALE_MS = 10 * 60_000;
/** Least recently used keys considered per reservation (the budget must be freed among these). */
const MAX_CANDIDATES = 10_000;

/**
 * KEYS: lru, size, used, uploads, upbytes. ARGV: now, capacity, n, upload uid, deadline, candidates (LRU order,
 * unpinned here). Returns { 0, victim… } or { -1, used, reserved, freed }.
 */
const RESERVE_LUA = `
local now = tonumber(ARGV[1]); local cap = tonumber(ARGV[2]); local n = tonumber(ARGV[3])
local up = ARGV[4]; local deadline = tonumber(ARGV[5])
for _, u in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  redis.call('ZREM', KEYS[4], u); redis.call('HDEL', KEYS[5], u)
end
local reserved = 0
for _, v in ipairs(redis.call('HVALS', KEYS[5])) do reserved = reserved + tonumber(v) end
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
local need = used + reserved + n - cap
local out = {0}
if need > 0 then
  local freed = 0
  local victims = {}
  for i = 6, #ARGV do
    if freed >= need then break end
    local u = ARGV[i]
    local sz = redis.call('HGET', KEYS[2], u)
    if sz and u ~= up then
      table.insert(victims, u)
      freed = freed + tonumber(sz)
    end
  end
  if freed < need then return {-1, used, reserved, freed} end
  for _, u in ipairs(victims) do
    redis.call('ZREM', KEYS[1], u)
    redis.call('DECRBY', KEYS[3], tonumber(redis.call('HGET', KEYS[2], u)))
    redis.call('HDEL', KEYS[2], u)
    table.insert(out, u)
  end
end
redis.call('HINCRBY', KEYS[5], up, n)
redis.call('ZADD', KEYS[4], deadline, up)
return out
`;

/** KEYS: lru, size, used. ARGV: uid. Removes a key from the accounting; 1 if this call removed it. */
const UNCHARGE_LUA = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local sz = redis.call('HGET', KEYS[2], ARGV[1])
if sz then redis.call('DECRBY', KEYS[3], tonumber(sz)) end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;

export interface RedisKeyStoreOptions extends KeyStoreOptions {
  /** Chunk size of stored keys (default 4 MiB). */
  chunkBytes?: number;
  /** An upload not written to for this long is dead: its reservation lapses, its chunks expire (default 10 min). */
  uploadStaleMs?: number;
}

export class RedisKeyStore implements KeyStore {
  private readonly blobs: RedisBlobs;
  private readonly isPinned: (uid: string) => boolean;
  /** This replica's id in deletion announcements (its own are not replayed to it). */
  private readonly replica = randomUUID();
  private readonly staleMs: number;
  /** Bytes reserved at a time while an upload arrives (its chunk size). */
  private readonly reserveStep: number;

  private constructor(
    private readonly redis: Redis,
    private readonly sub: Redis,
    private readonly opts: RedisKeyStoreOptions,
  ) {
    if (!(opts.capacityBytes > 0)) throw new RangeError(`key store capacity must be > 0 bytes, got ${opts.capacityBytes}`);
    this.blobs = new RedisBlobs(redis, `${P}blob:`, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    this.isPinned = opts.isPinned ?? (() => false);
    this.staleMs = opts.uploadStaleMs ?? UPLOAD_STALE_MS;
    this.reserveStep = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    redis.defineCommand('fhenetReserve', { numberOfKeys: 5, lua: RESERVE_LUA });
    redis.defineCommand('fhenetUncharge', { numberOfKeys: 3, lua: UNCHARGE_LUA });
  }

  /** Connects (two connections: commands, and the deletion channel) and checks that Redis answers. */
  static async open(target: RedisTarget, opts: RedisKeyStoreOptions): Promise<RedisKeyStore> {
    const redis = connectRedis(target, 'fhenet-key-store');
    const sub = connectRedis(target, 'fhenet-key-store-events');
    const store = new RedisKeyStore(redis, sub, opts);
    await redis.ping();
    await sub.subscribe(K.channel);
    sub.on('message', (_ch: string, msg: string) => {
      const [replica, uid, reason] = msg.split(' ');
      if (replica !== store.replica && uid && UID_RE.test(uid)) opts.onDelete?.(uid, (reason ?? 'deleted') as KeyDeleteReason);
    });
    return store;
  }

  get capacityBytes(): number {
    return this.opts.capacityBytes;
  }

  private async reserve(uid: string, n: number): Promise<void> {
    const now = Date.now();
    const candidates = (await this.redis.zrange(K.lru, 0, MAX_CANDIDATES - 1)).filter((u) => !this.isPinned(u));
    const r = (await (this.redis as unknown as { fhenetReserve: (...a: (string | number)[]) => Promise<(string | number)[]> }).fhenetReserve(
      K.lru, K.size, K.used, K.uploads, K.upbytes, now, this.opts.capacityBytes, n, uid, now + this.staleMs, ...candidates,
    ));
    if (Number(r[0]) === -1) {
      throw new KeyStoreFull(`the shared key store holds ${r[1]} bytes (+ ${r[2]} being uploaded) of its ${this.opts.capacityBytes}-byte budget and the keys that could be deleted free only ${r[3]}`);
    }
    const victims = r.slice(1).map(String);
    await this.dropData(victims, 'quota');
  }

  /** Deletes the data of keys already charged off: metadata first (the uid is gone), then the bytes; announces it. */
  private async dropData(uids: string[], reason: KeyDeleteReason): Promise<void> {
    for (const uid of uids) {
      await this.redis.del(K.meta(uid));
      await this.blobs.delete(uid);
      await this.redis.publish(K.channel, `${this.replica} ${uid} ${reason}`);
      this.opts.onDelete?.(uid, reason);
    }
  }

  async beginUpload(uid: string): Promise<KeyUpload> {
    if (!UID_RE.test(uid)) throw new RangeError(`key store: '${uid.slice(0, 64)}' is not a uid`);
    if (await this.redis.exists(K.meta(uid))) throw new RangeError(`key store: uid ${uid} is already in use`);
    const writer = this.blobs.writer(uid, this.staleMs);
    let received = 0;
    let reserved = 0;
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const release = () => this.redis.multi().hdel(K.upbytes, uid).zrem(K.uploads, uid).exec();
    const upload: KeyUpload = {
      uid,
      get received() {
        return received;
      },
      write: async (chunk: Uint8Array) => {
        if (state !== 'open') throw new Error(`key upload ${uid} is ${state}`);
        // Room is reserved a chunk ahead (one Redis script per chunk, not per network packet); near a full budget
        // exactly what is needed.
        const need = received + chunk.length - reserved;
        if (need > 0) {
          const ahead = Math.max(need, this.reserveStep);
          try {
            await this.reserve(uid, ahead);
            reserved += ahead;
          } catch (e) {
            if (!(e instanceof KeyStoreFull) || ahead === need) throw e;
            await this.reserve(uid, need);
            reserved += need;
          }
        }
        await writer.write(chunk);
        received += chunk.length;
      },
      bytes: () => writer.bytes(),
      commit: async (meta: StoredKeyMeta) => {
        if (state !== 'open') throw new Error(`key upload ${uid} is ${state}`);
        if (meta.uid !== uid || meta.bytes !== received) throw new RangeError(`key store: metadata for ${meta.uid} (${meta.bytes} bytes) does not describe upload ${uid} (${received} bytes)`);
        const json = JSON.stringify(meta);
        const charged = received + Buffer.byteLength(json);
        try {
          await this.reserve(uid, Buffer.byteLength(json));
          await writer.finish(); // complete blob, no time to live
          // The commit point: metadata, accounting and the end of the reservation in one transaction.
          const res = await this.redis
            .multi()
            .set(K.meta(uid), json)
            .zadd(K.lru, Date.now(), uid)
            .hset(K.size, uid, charged)
            .incrby(K.used, charged)
            .hdel(K.upbytes, uid)
            .zrem(K.uploads, uid)
            .exec();
          if (!res || res.some(([e]) => e)) throw new Error(`key store: committing ${uid} failed: ${res?.find(([e]) => e)?.[0]?.message ?? 'transaction aborted'}`);
        } catch (e) {
          state = 'aborted';
          await release().catch(() => undefined);
          await this.blobs.delete(uid).catch(() => undefined);
          throw e;
        }
        state = 'committed';
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        await release();
        await writer.discard();
      },
    };
    return upload;
  }

  async meta(uid: string): Promise<StoredKeyMeta | undefined> {
    if (!UID_RE.test(uid)) return undefined;
    const j = await this.redis.get(K.meta(uid));
    return j ? (JSON.parse(j) as StoredKeyMeta) : undefined;
  }

  async get(uid: string): Promise<Uint8Array | undefined> {
    if (!(await this.has(uid))) return undefined;
    return this.blobs.get(uid);
  }

  async has(uid: string): Promise<boolean> {
    return UID_RE.test(uid) && (await this.redis.exists(K.meta(uid))) === 1;
  }

  async touch(uid: string): Promise<void> {
    await this.redis.zadd(K.lru, 'XX', Date.now(), uid);
  }

  async delete(uid: string, reason: KeyDeleteReason = 'deleted'): Promise<boolean> {
    if (!(await this.uncharge(uid))) return false;
    await this.dropData([uid], reason);
    return true;
  }

  private async uncharge(uid: string): Promise<boolean> {
    const r = await (this.redis as unknown as { fhenetUncharge: (...a: string[]) => Promise<number> }).fhenetUncharge(K.lru, K.size, K.used, uid);
    return Number(r) === 1;
  }

  async list(): Promise<StoredKeyMeta[]> {
    const uids = await this.redis.zrange(K.lru, 0, -1);
    if (!uids.length) return [];
    const metas = await this.redis.mget(...uids.map(K.meta));
    return metas.filter((m): m is string => m !== null).map((m) => JSON.parse(m) as StoredKeyMeta);
  }

  async usage(): Promise<KeyStoreUsage> {
    const [keys, used, reserved] = await Promise.all([this.redis.zcard(K.lru), this.redis.get(K.used), this.redis.hvals(K.upbytes)]);
    return { keys, storedBytes: Number(used ?? 0), reservedBytes: reserved.reduce((a, v) => a + Number(v), 0), capacityBytes: this.opts.capacityBytes };
  }

  /** Keys no replica used for `ttlMs` (and not pinned here); several replicas may run this, each key goes once. */
  async expire(ttlMs: number): Promise<string[]> {
    const old = await this.redis.zrangebyscore(K.lru, '-inf', Date.now() - ttlMs);
    const gone: string[] = [];
    for (const uid of old) {
      if (this.isPinned(uid)) continue;
      if (await this.uncharge(uid)) {
        await this.dropData([uid], 'ttl');
        gone.push(uid);
      }
    }
    return gone;
  }

  async close(): Promise<void> {
    this.sub.disconnect();
    this.redis.disconnect();
  }
}
