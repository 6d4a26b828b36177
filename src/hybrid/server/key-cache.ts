/**
 * Evaluation keys loaded in memory (a parsed simulate key, or a TFHE key expanded in its worker pool): least
 * recently used ones are evicted past `size` (and past `heavySize` for backends other than simulate, whose keys are
 * large). A computation pins its key; an evicted key is disposed once its last computation finishes. Concurrent
 * requests for the same uid share one load.
 */
import { HybridError } from '../errors.js';
import type { KeyStore, StoredKeyMeta } from './key-store.js';
import type { ModuleEntry } from './models.js';

export interface LoadedKey {
  meta: StoredKeyMeta;
  handle: unknown;
  entry: ModuleEntry;
  inflight: number;
  evicted: boolean;
}

export class KeyCache {
  private readonly keys = new Map<string, LoadedKey>();
  private readonly loading = new Map<string, Promise<LoadedKey>>();

  constructor(
    private readonly size: number,
    private readonly heavySize: number,
    private readonly onDisposeError: (err: unknown) => void,
  ) {}

  get count(): number {
    return this.keys.size;
  }

  /** Being loaded or used by a computation: the store must not delete it. */
  pinned(uid: string): boolean {
    return this.loading.has(uid) || (this.keys.get(uid)?.inflight ?? 0) > 0;
  }

  /** Adds a key loaded elsewhere (a fresh upload). */
  remember(uid: string, k: LoadedKey): void {
    this.keys.set(uid, k);
    while (this.keys.size > this.size) this.evict(this.keys.keys().next().value!);
    const heavyUids = () => [...this.keys].filter(([, v]) => v.entry.server.info.backend !== 'simulate').map(([u]) => u);
    for (let h = heavyUids(); h.length > this.heavySize; h = heavyUids()) this.evict(h[0]!);
  }

  evict(uid: string): void {
    const k = this.keys.get(uid);
    if (!k) return;
    this.keys.delete(uid);
    k.evicted = true;
    this.release(k, 0);
  }

  evictAll(): void {
    for (const uid of [...this.keys.keys()]) this.evict(uid);
  }

  /** Ends one computation's use of `k` (`by` = 1) and disposes it when it was evicted and is no longer used. */
  release(k: LoadedKey, by = 1): void {
    k.inflight -= by;
    if (k.evicted && k.inflight === 0) {
      k.evicted = false;
      k.inflight = -1; // disposed
      void k.entry.server.disposeKey(k.handle).catch(this.onDisposeError);
    }
  }

  /**
   * The loaded key of `uid` (whose metadata the caller has checked), pinned: the caller must `release` it. Loads it
   * from the store when it is not in memory.
   */
  async acquire(uid: string, meta: StoredKeyMeta, entry: ModuleEntry, store: KeyStore, onLoad: () => void): Promise<LoadedKey> {
    const hit = this.keys.get(uid);
    if (hit) {
      this.keys.delete(uid);
      this.keys.set(uid, hit);
      hit.inflight++;
      return hit;
    }
    let p = this.loading.get(uid);
    if (!p) {
      p = (async () => {
        const bytes = await store.get(uid);
        if (!bytes) throw new HybridError(`unknown uid ${uid} (its key was deleted: upload evaluation keys with /add_key)`, 404, 'unknown_uid');
        const handle = await entry.server.loadKeyAsync(bytes);
        const loaded: LoadedKey = { meta, handle, entry, inflight: 0, evicted: false };
        this.remember(uid, loaded);
        onLoad();
        return loaded;
      })();
      this.loading.set(uid, p);
      void p.finally(() => this.loading.delete(uid)).catch(() => undefined);
    }
    const k = await p;
    if (k.inflight < 0 || !this.keys.has(uid)) return this.acquire(uid, meta, entry, store, onLoad); // evicted and disposed meanwhile
    k.inflight++;
    return k;
  }
}
