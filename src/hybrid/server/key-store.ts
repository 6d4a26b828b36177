/**
 * The model server's store of evaluation keys: the interface the server uses (`KeyStore`) and the budget bookkeeping
 * every implementation shares (`KeyStoreIndex`). The local directory (`local-key-store.ts`) is one implementation;
 * others (a shared store for several server processes) implement the same interface.
 *
 * TFHE evaluation keys are tens of MB each and any client may upload them, so a store holds them under a byte budget
 * (`capacityBytes`): room is reserved while an upload's bytes arrive (concurrent uploads cannot overrun it together),
 * an upload that does not fit deletes the least recently used keys that are not pinned (in use by a computation),
 * and fails with `KeyStoreFull` when even that is not enough. tfjs-free.
 *
 * The metadata of every stored key (`StoredKeyMeta`, a few hundred bytes) is what the server checks before it loads
 * anything: which model/module/shape the key is for and who owns it. `meta(uid)` must be cheap and must not read the
 * key bytes, so that an unknown uid and another owner's uid cost the same.
 */

/** A uid as the server hands it out (a random UUID): validated before it touches a store or a key cache. */
export const UID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What the server records with each key. */
export interface StoredKeyMeta {
  uid: string;
  model: string;
  module: string;
  shape: string;
  /** The server artefact's circuit id the key was validated against. */
  circuitId: string;
  /** Size of the key bytes. */
  bytes: number;
  /** ISO time of the upload. */
  created: string;
  /** Hash prefix of the token that uploaded the key (servers with tokens only); never the token. */
  owner?: string;
}

/** Why a key left the store. */
export type KeyDeleteReason = 'quota' | 'ttl' | 'deleted';

export interface KeyStoreUsage {
  /** Keys stored (committed). */
  keys: number;
  /** Bytes the stored keys occupy, their metadata included. */
  storedBytes: number;
  /** Bytes reserved by uploads in progress. */
  reservedBytes: number;
  capacityBytes: number;
}

/** One upload in progress: bytes are appended, checked by the caller, then committed or aborted. */
export interface KeyUpload {
  readonly uid: string;
  /** Bytes written so far. */
  readonly received: number;
  /**
   * Appends bytes. Reserves their room in the budget first (which may delete least recently used unpinned keys);
   * throws `KeyStoreFull` when there is no room.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Everything written so far (read back for validation before the commit). */
  bytes(): Promise<Uint8Array>;
  /** Makes the key durable and visible under its uid — the single commit point. `meta.bytes` must equal `received`. */
  commit(meta: StoredKeyMeta): Promise<void>;
  /** Discards the upload and its reservation. Idempotent; does nothing after a commit. */
  abort(): Promise<void>;
}

export interface KeyStore {
  readonly capacityBytes: number;
  /** Starts an upload under a new uid (the caller makes it: a random UUID). */
  beginUpload(uid: string): Promise<KeyUpload>;
  /** The key's metadata (owner, model/module/shape), without reading its bytes; undefined for an unknown uid. */
  meta(uid: string): Promise<StoredKeyMeta | undefined>;
  /** The key bytes; undefined when the uid is unknown (or was deleted meanwhile). */
  get(uid: string): Promise<Uint8Array | undefined>;
  has(uid: string): Promise<boolean>;
  /** Marks a key used now (the least-recently-used order and the time to live count from its last use). */
  touch(uid: string): Promise<void>;
  /** Deletes a key; false when it was not stored. */
  delete(uid: string, reason?: KeyDeleteReason): Promise<boolean>;
  /** Every stored key, least recently used first. */
  list(): Promise<StoredKeyMeta[]>;
  usage(): Promise<KeyStoreUsage>;
  /** Deletes keys unused for longer than `ttlMs` (never a pinned one); returns their uids. */
  expire(ttlMs: number): Promise<string[]>;
  /** Releases resources (timers, connections); stored keys stay. */
  close(): Promise<void>;
}

/** What a store needs from the server that uses it. */
export interface KeyStoreOptions {
  /** Byte budget of all stored keys together, metadata included. */
  capacityBytes: number;
  /** Keys in use (a computation or a load holds them): never deleted to make room or by the time to live. */
  isPinned?: (uid: string) => boolean;
  /** Called after a key was deleted by the store itself or by `delete` (the server drops its loaded copy). */
  onDelete?: (uid: string, reason: KeyDeleteReason) => void;
}

/** No room in the budget even after deleting every key that is not in use. */
export class KeyStoreFull extends Error {}

export interface StoredKeyInfo {
  bytes: number;
  /** Last upload or use, ms since the epoch. */
  lastUsed: number;
}

/**
 * Budget and least-recently-used bookkeeping (no I/O): a store asks it which keys to delete and does the deleting.
 * Keys being used (`pinned`) are never chosen.
 */
export class KeyStoreIndex {
  /** Insertion order is the LRU order: `touch` moves a key to the end. */
  private readonly keys = new Map<string, StoredKeyInfo>();
  private stored = 0;
  private reserved = 0;

  constructor(readonly capacityBytes: number) {
    if (!(capacityBytes > 0)) throw new RangeError(`key store capacity must be > 0 bytes, got ${capacityBytes}`);
  }

  get storedBytes(): number {
    return this.stored;
  }

  get reservedBytes(): number {
    return this.reserved;
  }

  get size(): number {
    return this.keys.size;
  }

  has(uid: string): boolean {
    return this.keys.has(uid);
  }

  /** Uids, least recently used first. */
  uids(): string[] {
    return [...this.keys.keys()];
  }

  /** Adds a stored key (startup scan or a finished upload). Keys of a startup scan should come oldest first. */
  add(uid: string, bytes: number, lastUsed: number): void {
    this.remove(uid);
    this.keys.set(uid, { bytes, lastUsed });
    this.stored += bytes;
  }

  touch(uid: string, now: number): void {
    const k = this.keys.get(uid);
    if (!k) return;
    this.keys.delete(uid);
    k.lastUsed = now;
    this.keys.set(uid, k);
  }

  remove(uid: string): boolean {
    const k = this.keys.get(uid);
    if (!k) return false;
    this.keys.delete(uid);
    this.stored -= k.bytes;
    return true;
  }

  /**
   * Reserves `n` bytes for an upload in progress. Returns the keys that must be deleted to make room (least
   * recently used first, never a pinned one), already removed from the index; throws KeyStoreFull when even
   * deleting every unpinned key would not make room.
   */
  reserve(n: number, pinned: (uid: string) => boolean): string[] {
    const need = this.stored + this.reserved + n - this.capacityBytes;
    const victims: string[] = [];
    if (need > 0) {
      let freed = 0;
      for (const [uid, k] of this.keys) {
        if (freed >= need) break;
        if (pinned(uid)) continue;
        victims.push(uid);
        freed += k.bytes;
      }
      if (freed < need) throw new KeyStoreFull(`the key store holds ${this.stored} bytes (+ ${this.reserved} being uploaded) of its ${this.capacityBytes}-byte budget and the keys that could be deleted free only ${freed}`);
      for (const uid of victims) this.remove(uid);
    }
    this.reserved += n;
    return victims;
  }

  /** Ends a reservation (the upload finished, failed or was rejected). */
  unreserve(n: number): void {
    this.reserved = Math.max(0, this.reserved - n);
  }

  /** Keys unused for longer than `ttlMs` (and not pinned), removed from the index. */
  expire(now: number, ttlMs: number, pinned: (uid: string) => boolean): string[] {
    const out: string[] = [];
    for (const [uid, k] of this.keys) {
      if (now - k.lastUsed > ttlMs && !pinned(uid)) out.push(uid);
    }
    for (const uid of out) this.remove(uid);
    return out;
  }
}
