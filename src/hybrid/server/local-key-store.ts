/**
 * The key store in a local directory, crash-consistent.
 *
 * Layout: `<dir>/<uid>.key` (the key bytes) and `<dir>/<uid>.json` (its `StoredKeyMeta`; its mtime is the last use);
 * uploads in progress live in `<dir>/.upload/`. A uid exists exactly when its `.json` exists — the rename of the
 * metadata file is the single commit point:
 *
 *   1. the key bytes are written to `.upload/<uid>.key.part` as they arrive, then fsync'ed;
 *   2. renamed to `<uid>.key` (invisible: no metadata yet);
 *   3. the metadata is written to `.upload/<uid>.json.part` and fsync'ed, and the directory is fsync'ed (the key's
 *      rename is durable before the metadata can be);
 *   4. commit: the metadata is renamed to `<uid>.json`; the directory is fsync'ed.
 *
 * Deleting goes the other way (metadata first, then the key). A crash at any point leaves either a complete key or
 * leftovers that `open` removes: everything under `.upload/`, a `.key` without its `.json`, a `.json` without its
 * `.key` or whose size does not match, unreadable metadata, and temporary files of earlier versions
 * (`*.tmp-*`). Every stored byte, metadata included, counts against the budget; uploads count as they arrive.
 * tests/hybrid/key-store-crash.test.ts kills a child process after each step of a write and reopens the store.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type KeyDeleteReason,
  type KeyStore,
  KeyStoreIndex,
  type KeyStoreOptions,
  type KeyStoreUsage,
  type KeyUpload,
  type StoredKeyMeta,
  UID_RE,
} from './key-store.js';

/** The steps of a write, in order (for tests that interrupt a write after each). */
export const KEY_WRITE_STEPS = ['key-written', 'key-synced', 'key-renamed', 'meta-synced', 'dir-synced', 'committed'] as const;
export type KeyWriteStep = (typeof KEY_WRITE_STEPS)[number];

export interface LocalKeyStoreOptions extends KeyStoreOptions {
  /** Called after each step of a commit (tests kill the process there); not for production use. */
  afterWriteStep?: (step: KeyWriteStep, uid: string) => void | Promise<void>;
}

/** What `open` removed. */
export interface KeyStoreCleanup {
  files: string[];
  bytes: number;
}

const UPLOAD_DIR = '.upload';

/** fsync of a directory, so that renames and unlinks inside it survive a power loss. */
async function syncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeSynced(file: string, bytes: Uint8Array): Promise<void> {
  const fh = await fs.promises.open(file, 'wx');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class LocalDirectoryKeyStore implements KeyStore {
  private readonly index: KeyStoreIndex;
  private readonly metas = new Map<string, StoredKeyMeta>();
  private readonly uploadDir: string;
  private readonly isPinned: (uid: string) => boolean;
  private readonly uploads = new Set<string>();

  private constructor(
    readonly dir: string,
    private readonly opts: LocalKeyStoreOptions,
  ) {
    this.index = new KeyStoreIndex(opts.capacityBytes);
    this.uploadDir = path.join(dir, UPLOAD_DIR);
    this.isPinned = opts.isPinned ?? (() => false);
  }

  get capacityBytes(): number {
    return this.index.capacityBytes;
  }

  /**
   * Opens (creating) the directory, removes every leftover of an interrupted write, rebuilds the index (least recently
   * used first) and, when the stored keys exceed the budget (lowered since), deletes the least recently used.
   */
  static async open(dir: string, opts: LocalKeyStoreOptions): Promise<{ store: LocalDirectoryKeyStore; cleanup: KeyStoreCleanup }> {
    const store = new LocalDirectoryKeyStore(dir, opts);
    const cleanup = await store.scan();
    if (store.index.storedBytes > store.index.capacityBytes) await store.dropAll(store.index.reserve(0, store.isPinned), 'quota');
    return { store, cleanup };
  }

  private files(uid: string): { key: string; meta: string } {
    return { key: path.join(this.dir, `${uid}.key`), meta: path.join(this.dir, `${uid}.json`) };
  }

  private async scan(): Promise<KeyStoreCleanup> {
    await fs.promises.mkdir(this.uploadDir, { recursive: true });
    const removed: KeyStoreCleanup = { files: [], bytes: 0 };
    const remove = async (file: string, size: number) => {
      await fs.promises.rm(file, { force: true, recursive: true });
      removed.files.push(path.relative(this.dir, file));
      removed.bytes += size;
    };
    for (const f of await fs.promises.readdir(this.uploadDir)) {
      const p = path.join(this.uploadDir, f);
      await remove(p, (await fs.promises.stat(p)).size);
    }
    const sizes = new Map<string, fs.Stats>();
    for (const f of await fs.promises.readdir(this.dir)) {
      if (f === UPLOAD_DIR) continue;
      const st = await fs.promises.stat(path.join(this.dir, f));
      if (st.isFile()) sizes.set(f, st);
    }
    const found: { meta: StoredKeyMeta; bytes: number; lastUsed: number }[] = [];
    for (const [f, st] of sizes) {
      const p = path.join(this.dir, f);
      if (/\.tmp-/.test(f)) {
        await remove(p, st.size); // a temporary file of an earlier version's writes
        continue;
      }
      const m = /^(.+)\.(key|json)$/.exec(f);
      if (!m || !UID_RE.test(m[1]!)) continue; // not the store's
      const uid = m[1]!;
      const keySt = sizes.get(`${uid}.key`);
      const metaSt = sizes.get(`${uid}.json`);
      if (m[2] === 'key') {
        if (!metaSt) await remove(p, st.size); // written, never committed
        continue;
      }
      let meta: StoredKeyMeta | undefined;
      try {
        meta = JSON.parse(await fs.promises.readFile(p, 'utf8')) as StoredKeyMeta;
      } catch {
        meta = undefined;
      }
      if (!keySt || !meta || meta.uid !== uid || meta.bytes !== keySt.size) {
        // metadata without its key, or one that does not describe it: neither can be used
        await remove(p, st.size);
        if (keySt) await remove(path.join(this.dir, `${uid}.key`), keySt.size);
        continue;
      }
      found.push({ meta, bytes: keySt.size + st.size, lastUsed: st.mtimeMs });
    }
    if (removed.files.length) await syncDir(this.dir);
    found.sort((a, b) => a.lastUsed - b.lastUsed);
    for (const k of found) {
      this.index.add(k.meta.uid, k.bytes, k.lastUsed);
      this.metas.set(k.meta.uid, k.meta);
    }
    return removed;
  }

  async beginUpload(uid: string): Promise<KeyUpload> {
    if (!UID_RE.test(uid)) throw new RangeError(`key store: '${uid.slice(0, 64)}' is not a uid`);
    if (this.metas.has(uid) || this.uploads.has(uid)) throw new RangeError(`key store: uid ${uid} is already in use`);
    this.uploads.add(uid);
    const part = path.join(this.uploadDir, `${uid}.key.part`);
    const fh = await fs.promises.open(part, 'wx');
    let received = 0;
    let reserved = 0;
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const reserve = async (n: number) => {
      const victims = this.index.reserve(n, (u) => u === uid || this.isPinned(u));
      reserved += n;
      await this.dropAll(victims, 'quota');
    };
    const finish = () => {
      this.index.unreserve(reserved);
      reserved = 0;
      this.uploads.delete(uid);
    };
    const step = async (s: KeyWriteStep) => {
      if (this.opts.afterWriteStep) await this.opts.afterWriteStep(s, uid);
    };
    const upload: KeyUpload = {
      uid,
      get received() {
        return received;
      },
      write: async (chunk: Uint8Array) => {
        if (state !== 'open') throw new Error(`key upload ${uid} is ${state}`);
        await reserve(chunk.length);
        await fh.writeFile(chunk); // the whole chunk, at the current position
        received += chunk.length;
      },
      bytes: async () => new Uint8Array(await fs.promises.readFile(part)),
      commit: async (meta: StoredKeyMeta) => {
        if (state !== 'open') throw new Error(`key upload ${uid} is ${state}`);
        if (meta.uid !== uid || meta.bytes !== received) throw new RangeError(`key store: metadata for ${meta.uid} (${meta.bytes} bytes) does not describe upload ${uid} (${received} bytes)`);
        const metaBytes = Buffer.from(JSON.stringify(meta));
        const files = this.files(uid);
        const metaPart = path.join(this.uploadDir, `${uid}.json.part`);
        try {
          await reserve(metaBytes.length);
          await step('key-written');
          await fh.sync();
          await fh.close();
          await step('key-synced');
          await fs.promises.rename(part, files.key);
          await step('key-renamed');
          await writeSynced(metaPart, metaBytes);
          await step('meta-synced');
          await syncDir(this.dir);
          await step('dir-synced');
          await fs.promises.rename(metaPart, files.meta); // the commit point
          await syncDir(this.dir);
        } catch (e) {
          state = 'aborted';
          await fh.close().catch(() => undefined);
          await Promise.all([part, metaPart, files.key].map((f) => fs.promises.rm(f, { force: true })));
          finish();
          throw e;
        }
        state = 'committed';
        const size = received + metaBytes.length;
        finish();
        this.index.add(uid, size, Date.now());
        this.metas.set(uid, meta);
        await step('committed');
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        await fh.close().catch(() => undefined);
        await fs.promises.rm(part, { force: true });
        finish();
      },
    };
    return upload;
  }

  async meta(uid: string): Promise<StoredKeyMeta | undefined> {
    return this.metas.get(uid);
  }

  async get(uid: string): Promise<Uint8Array | undefined> {
    if (!this.metas.has(uid)) return undefined;
    try {
      return new Uint8Array(await fs.promises.readFile(this.files(uid).key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async has(uid: string): Promise<boolean> {
    return this.metas.has(uid);
  }

  async touch(uid: string): Promise<void> {
    if (!this.metas.has(uid)) return;
    const now = Date.now();
    this.index.touch(uid, now);
    // the metadata file's mtime carries the order across a restart (best effort: a lost touch only ages a key)
    await fs.promises.utimes(this.files(uid).meta, now / 1000, now / 1000).catch(() => undefined);
  }

  async delete(uid: string, reason: KeyDeleteReason = 'deleted'): Promise<boolean> {
    if (!this.index.remove(uid)) return false;
    await this.dropAll([uid], reason);
    return true;
  }

  /** Deletes keys already removed from the index: metadata first (the uid is gone), then the key. */
  private async dropAll(uids: string[], reason: KeyDeleteReason): Promise<void> {
    if (!uids.length) return;
    for (const uid of uids) {
      this.metas.delete(uid);
      const files = this.files(uid);
      await fs.promises.rm(files.meta, { force: true });
      await fs.promises.rm(files.key, { force: true });
    }
    await syncDir(this.dir);
    for (const uid of uids) this.opts.onDelete?.(uid, reason);
  }

  async list(): Promise<StoredKeyMeta[]> {
    return this.index.uids().map((u) => this.metas.get(u)!);
  }

  async usage(): Promise<KeyStoreUsage> {
    return { keys: this.index.size, storedBytes: this.index.storedBytes, reservedBytes: this.index.reservedBytes, capacityBytes: this.index.capacityBytes };
  }

  async expire(ttlMs: number): Promise<string[]> {
    const gone = this.index.expire(Date.now(), ttlMs, this.isPinned);
    await this.dropAll(gone, 'ttl');
    return gone;
  }

  async close(): Promise<void> {
    // nothing held open between calls; uploads in progress are aborted by their owners
  }
}
