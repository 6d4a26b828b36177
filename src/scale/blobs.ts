/**
 * Large byte strings in Redis, stored in chunks: evaluation keys are tens to hundreds of MB, and one Redis value
 * that size would be sent, parsed and allocated in one piece by both Redis and the client (and stops at Redis's
 * 512 MB bulk-string limit). A blob `id` is a metadata hash `<prefix><id>` { bytes, chunks } plus chunk strings
 * `<prefix><id>#<i>`. Writers put every chunk before the metadata, readers read the metadata first, so a blob is
 * visible only once complete; a reader that finds a chunk missing (deleted meanwhile) sees no blob.
 */
import type { Redis } from 'ioredis';

export const DEFAULT_CHUNK_BYTES = 4 * 2 ** 20;

export interface BlobWriter {
  write(bytes: Uint8Array): Promise<void>;
  /** Everything written so far. */
  bytes(): Promise<Uint8Array>;
  finish(): Promise<void>;
  discard(): Promise<void>;
}

export class RedisBlobs {
  constructor(
    private readonly redis: Redis,
    /** Key prefix, e.g. `fhenet:keys:blob:`. */
    private readonly prefix: string,
    private readonly chunkBytes = DEFAULT_CHUNK_BYTES,
  ) {}

  private meta(id: string): string {
    return `${this.prefix}${id}`;
  }

  private chunk(id: string, i: number): string {
    return `${this.prefix}${id}#${i}`;
  }

  /** Writes a blob (replacing one of the same id); `ttlMs` expires it unless touched. */
  async put(id: string, bytes: Uint8Array, ttlMs?: number): Promise<void> {
    const chunks = Math.max(1, Math.ceil(bytes.length / this.chunkBytes));
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // One chunk per round trip keeps the client's and Redis's buffers at one chunk.
    for (let i = 0; i < chunks; i++) {
      const part = buf.subarray(i * this.chunkBytes, (i + 1) * this.chunkBytes);
      if (ttlMs !== undefined) await this.redis.set(this.chunk(id, i), part, 'PX', ttlMs);
      else await this.redis.set(this.chunk(id, i), part);
    }
    const m = this.redis.multi().hset(this.meta(id), { bytes: bytes.length, chunks });
    if (ttlMs !== undefined) m.pexpire(this.meta(id), ttlMs);
    else m.persist(this.meta(id));
    await m.exec();
  }

  /**
   * A blob written piece by piece (an upload as it arrives): full chunks go to Redis at once with `ttlMs` (so an
   * abandoned upload disappears by itself); `finish` writes the rest and the metadata and removes the time to live.
   */
  writer(id: string, ttlMs: number): BlobWriter {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let chunks = 0;
    let total = 0;
    const flush = async (all: boolean) => {
      while (pendingBytes >= this.chunkBytes || (all && pendingBytes > 0)) {
        const buf = Buffer.concat(pending);
        const part = buf.subarray(0, this.chunkBytes);
        await this.redis.set(this.chunk(id, chunks), part, 'PX', ttlMs);
        chunks++;
        const rest = buf.subarray(part.length);
        pending = rest.length ? [Buffer.from(rest)] : [];
        pendingBytes = rest.length;
      }
    };
    return {
      write: async (bytes) => {
        pending.push(Buffer.from(bytes));
        pendingBytes += bytes.length;
        total += bytes.length;
        await flush(false);
      },
      bytes: async () => {
        const out = new Uint8Array(total);
        let off = 0;
        for (let i = 0; i < chunks; i++) {
          const part = await this.redis.getBuffer(this.chunk(id, i));
          if (!part) throw new Error(`blob ${id}: chunk ${i} of an upload in progress expired`);
          out.set(part, off);
          off += part.length;
        }
        for (const b of pending) {
          out.set(b, off);
          off += b.length;
        }
        return out;
      },
      finish: async () => {
        await flush(true);
        if (chunks === 0) await this.redis.set(this.chunk(id, chunks++), Buffer.alloc(0));
        const m = this.redis.multi().hset(this.meta(id), { bytes: total, chunks });
        for (let i = 0; i < chunks; i++) m.persist(this.chunk(id, i));
        await m.exec();
      },
      discard: async () => {
        pending = [];
        pendingBytes = 0;
        const keys = Array.from({ length: chunks }, (_, i) => this.chunk(id, i));
        for (let i = 0; i < keys.length; i += 256) await this.redis.del(...keys.slice(i, i + 256));
      },
    };
  }

  /** The blob's size and chunk count, or undefined. */
  async stat(id: string): Promise<{ bytes: number; chunks: number } | undefined> {
    const m = await this.redis.hgetall(this.meta(id));
    if (!m.bytes || !m.chunks) return undefined;
    return { bytes: Number(m.bytes), chunks: Number(m.chunks) };
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    const st = await this.stat(id);
    if (!st) return undefined;
    const out = new Uint8Array(st.bytes);
    let off = 0;
    for (let i = 0; i < st.chunks; i++) {
      const part = await this.redis.getBuffer(this.chunk(id, i));
      if (!part || off + part.length > st.bytes) return undefined;
      out.set(part, off);
      off += part.length;
    }
    return off === st.bytes ? out : undefined;
  }

  /** Deletes the metadata first (the blob disappears at once), then the chunks. */
  async delete(id: string): Promise<boolean> {
    const st = await this.stat(id);
    const gone = (await this.redis.del(this.meta(id))) > 0;
    if (st) {
      const keys = Array.from({ length: st.chunks }, (_, i) => this.chunk(id, i));
      for (let i = 0; i < keys.length; i += 256) await this.redis.del(...keys.slice(i, i + 256));
    }
    return gone;
  }

  /** Sets (or, with undefined, removes) the time to live of every part of the blob. */
  async expire(id: string, ttlMs: number | undefined): Promise<void> {
    const st = await this.stat(id);
    if (!st) return;
    const m = this.redis.multi();
    for (const k of [this.meta(id), ...Array.from({ length: st.chunks }, (_, i) => this.chunk(id, i))]) {
      if (ttlMs === undefined) m.persist(k);
      else m.pexpire(k, ttlMs);
    }
    await m.exec();
  }
}
