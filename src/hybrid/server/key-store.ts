/**
 * Accounting of the model server's stored evaluation keys: a byte budget for the whole key folder and the
 * least-recently-used order, so that uploads can never fill the disk. TFHE evaluation keys are tens of MB each and
 * any client may upload them, so without a budget the key folder is an unbounded, anonymous disk quota.
 *
 * Pure bookkeeping (no files): the server asks it which keys to delete and does the deleting. Keys being used
 * (`pinned`) are never chosen. tfjs-free.
 */
export interface StoredKeyInfo {
  bytes: number;
  /** Last upload or use, ms since the epoch. */
  lastUsed: number;
}

export class KeyStoreFull extends Error {}

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
