/**
 * The Redis key store (src/scale/redis-key-store.ts) as two replicas see it: one byte budget and one LRU order
 * across both, chunked keys, owners kept, deletions announced to the other replica, reservations of uploads in
 * progress (and of dead ones, which lapse), time to live.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { KeyStoreFull, type StoredKeyMeta } from '../../src/hybrid/server/key-store.js';
import { RedisKeyStore, type RedisKeyStoreOptions } from '../../src/scale/redis-key-store.js';
import { parseRedisUrl } from '../../src/scale/redis.js';
import { ConfigError } from '../../src/util/errors.js';
import { REQUIRE_SCALE, type RedisProc, have, startRedis, stopAll } from './cluster.js';

const available = have('redis-server');
if (!available && REQUIRE_SCALE) throw new Error('FHENET_REQUIRE_SCALE=1 but redis-server is not installed (apt-get install redis-server)');

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const meta = (uid: string, n: number, owner?: string): StoredKeyMeta => ({ uid, model: 'm', module: 'fc', shape: '10', circuitId: '0123456789abcdef', bytes: n, created: new Date(0).toISOString(), ...(owner ? { owner } : {}) });
/** Metadata bytes a key of `n` bytes is charged on top (its JSON). */
const metaBytes = (uid: string, n: number, owner?: string) => Buffer.byteLength(JSON.stringify(meta(uid, n, owner)));

async function put(store: RedisKeyStore, data: Uint8Array, owner?: string): Promise<string> {
  const uid = randomUUID();
  const up = await store.beginUpload(uid);
  for (let i = 0; i < data.length; i += 100) await up.write(data.subarray(i, i + 100)); // pieces, as HTTP delivers them
  expect(Buffer.compare(Buffer.from(await up.bytes()), Buffer.from(data))).toBe(0);
  await up.commit(meta(uid, data.length, owner));
  return uid;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  for (const t0 = Date.now(); !cond(); ) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(!available)(`Redis key store shared by replicas${available ? '' : ' (skipped: redis-server not installed)'}`, () => {
  let redis: RedisProc;
  let root: string;
  let db = 0;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-rks-'));
    redis = await startRedis(path.join(root, 'redis'));
  });
  afterAll(async () => {
    await stopAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** Two replicas' stores on a fresh database, with their own pins and deletion logs. */
  async function replicas(capacityBytes: number, extra: Partial<RedisKeyStoreOptions> = {}) {
    const target = parseRedisUrl(`${redis.url}/${++db}`);
    const mk = async () => {
      const pins = new Set<string>();
      const deleted: string[] = [];
      const store = await RedisKeyStore.open(target, { capacityBytes, chunkBytes: 64, isPinned: (u) => pins.has(u), onDelete: (u, r) => deleted.push(`${u} ${r}`), ...extra });
      return { store, pins, deleted };
    };
    return [await mk(), await mk()] as const;
  }

  it('a key stored through one replica is read through the other, in chunks, with its owner', async () => {
    const [a, b] = await replicas(10_000);
    try {
      const data = bytes(1000, 1);
      const uid = await put(a.store, data, 'owner-hash-1');
      expect(await b.store.has(uid)).toBe(true);
      expect(await b.store.meta(uid)).toEqual(meta(uid, 1000, 'owner-hash-1'));
      expect(Buffer.compare(Buffer.from((await b.store.get(uid))!), Buffer.from(data))).toBe(0);
      const r = new Redis(a.store['redis'].options);
      expect((await r.keys(`fhenet:keys:blob:${uid}#*`)).length).toBe(Math.ceil(1000 / 64)); // chunked
      r.disconnect();
      expect(await b.store.usage()).toEqual({ keys: 1, storedBytes: 1000 + metaBytes(uid, 1000, 'owner-hash-1'), reservedBytes: 0, capacityBytes: 10_000 });
      expect(await b.store.get(randomUUID())).toBeUndefined();
      expect(await b.store.meta('not-a-uid')).toBeUndefined();
    } finally {
      await a.store.close();
      await b.store.close();
    }
  });

  it('one budget and one LRU order across replicas; pinned keys stay; deletions reach the other replica', async () => {
    const per = 1000 + metaBytes(randomUUID(), 1000);
    const [a, b] = await replicas(3 * per);
    try {
      const k1 = await put(a.store, bytes(1000, 1));
      const k2 = await put(a.store, bytes(1000, 2));
      await new Promise((r) => setTimeout(r, 5));
      await b.store.touch(k1); // used through replica B: k2 is now the least recently used
      const k3 = await put(b.store, bytes(1000, 3));
      expect((await a.store.usage()).keys).toBe(3);
      const k4 = await put(b.store, bytes(1000, 4)); // needs room: k2 goes, although replica A uploaded it
      expect(await a.store.has(k2)).toBe(false);
      expect(await a.store.get(k2)).toBeUndefined();
      expect(b.deleted).toEqual([`${k2} quota`]);
      await until(() => a.deleted.length === 1); // announced to replica A, which drops its loaded copy
      expect(a.deleted).toEqual([`${k2} quota`]);
      // replica B computes with k1 and k3 (pinned there): an upload that needs two keys' room fails, deleting nothing
      b.pins.add(k1);
      b.pins.add(k3);
      const uid = randomUUID();
      const up = await b.store.beginUpload(uid);
      await up.write(bytes(1000, 5)); // k4 (unpinned) makes room
      expect(await a.store.has(k4)).toBe(false);
      await expect(up.write(bytes(1000, 6))).rejects.toThrow(KeyStoreFull);
      await up.abort();
      expect((await a.store.usage()).reservedBytes).toBe(0);
      expect((await a.store.list()).map((m) => m.uid)).toEqual([k1, k3]);
      expect((await a.store.usage()).storedBytes).toBe(2 * per);
    } finally {
      await a.store.close();
      await b.store.close();
    }
  });

  it('uploads in progress hold their room; a dead upload lapses; unused keys expire on any replica', async () => {
    const [a, b] = await replicas(2500, { uploadStaleMs: 3000 });
    try {
      const dead = await a.store.beginUpload(randomUUID());
      await dead.write(bytes(1500, 1)); // replica A "dies" here: never commits nor aborts
      const up = await b.store.beginUpload(randomUUID());
      await expect(up.write(bytes(1500, 2))).rejects.toThrow(/1500 being uploaded/);
      await new Promise((r) => setTimeout(r, 3200));
      await up.write(bytes(1500, 2)); // the dead reservation has lapsed
      await up.abort();
      const k = await put(a.store, bytes(100, 3));
      await new Promise((r) => setTimeout(r, 60));
      expect(await b.store.expire(50)).toEqual([k]);
      expect(await a.store.expire(50)).toEqual([]); // gone once, not twice
      await until(() => a.deleted.includes(`${k} ttl`));
      expect((await a.store.usage()).storedBytes).toBe(0);
    } finally {
      await a.store.close();
      await b.store.close();
    }
  });

  it('checks --store URLs', () => {
    expect(() => parseRedisUrl('http://x:1', '--store')).toThrow(ConfigError);
    expect(() => parseRedisUrl('redis://h:1/abc', '--store')).toThrow(/database number/);
    expect(() => parseRedisUrl('nonsense', '--store')).toThrow(/--store "nonsense" is not a URL/);
    expect(parseRedisUrl('redis://u:secret@h:7/3').display).toBe('redis://u@h:7/3');
  });
});
