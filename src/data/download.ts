/**
 * One file from an HTTP(S) URL into a folder, verified by SHA-256, resumable.
 *
 * Bytes go to `<file>.part`; only a file whose size and SHA-256 match is renamed to its final name, so a file under
 * its final name is always complete. An interrupted download keeps its `.part`: the next attempt (a retry within
 * this call, or the next `fhenet data fetch`) asks for the rest with an HTTP Range request and appends when the
 * server answers 206, or starts over when it answers 200. A checksum mismatch deletes the `.part` (the next attempt
 * starts clean). Never more than the expected size is written.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { DataFile } from './registry.js';
import { ChecksumError, DownloadError } from './errors.js';

export interface DownloadOptions {
  /** Called with bytes stored so far (including a resumed part) and the expected total. */
  onProgress?: (done: number, total: number) => void;
  /** Attempts after a connection is cut (each resumes); default 3. */
  retries?: number;
  /** Abort a request that sends nothing for this long (ms); default 60 s. */
  idleTimeoutMs?: number;
}

/** SHA-256 (hex) of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Moves `part` to `dest` when it has the expected size and SHA-256; deletes it otherwise and throws. */
export async function acceptPart(part: string, dest: string, file: DataFile, source: string): Promise<void> {
  const size = fs.statSync(part).size;
  const sha = size === file.size ? await sha256File(part) : undefined;
  if (sha !== file.sha256) {
    fs.rmSync(part, { force: true });
    throw new ChecksumError(
      `${file.name} from ${source}: ${size === file.size ? `SHA-256 ${sha}` : `${size} bytes`}, expected ${size === file.size ? file.sha256 : `${file.size} bytes`} — ` +
        'not the file fhenet knows (a changed or corrupted copy); the partial file was deleted, so running the command again starts afresh',
    );
  }
  fs.renameSync(part, dest);
}

/** Downloads `url` to `dir/file.name` (see the module comment); returns the final path. */
export async function downloadFile(url: string, dir: string, file: DataFile, opts: DownloadOptions = {}): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const dest = path.join(dir, file.name);
  const part = `${dest}.part`;
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      await fetchInto(url, part, file, opts);
      break;
    } catch (e) {
      if (!(e instanceof DownloadError) || !(e as DownloadError & { resumable?: boolean }).resumable || attempt >= retries) throw e;
    }
  }
  await acceptPart(part, dest, file, url);
  return dest;
}

/** One request: appends to `part` from its current size (Range), or rewrites it when the server sends it whole. */
async function fetchInto(url: string, part: string, file: DataFile, opts: DownloadOptions): Promise<void> {
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  if (have > file.size) {
    fs.rmSync(part);
    have = 0;
  }
  if (have === file.size) return; // complete but not yet verified (acceptPart checks it)
  const controller = new AbortController();
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  let idle = setTimeout(() => controller.abort(), idleMs);
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(), idleMs);
  };
  let res: Response;
  try {
    res = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {}, signal: controller.signal, redirect: 'follow' });
  } catch (e) {
    clearTimeout(idle);
    throw resumable(`${url}: ${causeOf(e)}`);
  }
  let append = false;
  if (res.status === 206 && have > 0) {
    const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
    append = m !== null && Number(m[1]) === have;
  } else if (res.status === 416 && have > 0) {
    // The server has no bytes past what we hold, yet the file is short: start over.
    clearTimeout(idle);
    fs.rmSync(part, { force: true });
    throw resumable(`${url}: the server refused to resume at byte ${have}; starting over`);
  } else if (res.status !== 200) {
    clearTimeout(idle);
    throw new DownloadError(`${url}: HTTP ${res.status} ${res.statusText}. Check the URL, or download the file yourself and pass it with --from FILE`);
  }
  if (!res.body) {
    clearTimeout(idle);
    throw resumable(`${url}: empty response`);
  }
  const out = fs.createWriteStream(part, { flags: append ? 'a' : 'w' });
  let done = append ? have : 0;
  opts.onProgress?.(done, file.size);
  try {
    for await (const chunk of Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>)) {
      touch();
      const buf = chunk as Buffer;
      if (done + buf.length > file.size) {
        controller.abort();
        throw new DownloadError(`${url}: the server sent more than the ${file.size} bytes of ${file.name}; not the file fhenet knows`);
      }
      if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
      done += buf.length;
      opts.onProgress?.(done, file.size);
    }
  } catch (e) {
    if (e instanceof DownloadError) {
      await closeStream(out);
      fs.rmSync(part, { force: true });
      throw e;
    }
    await closeStream(out);
    throw resumable(`${url}: connection lost after ${done} of ${file.size} bytes (${causeOf(e)}); the partial file ${part} is kept and the next attempt resumes it`);
  } finally {
    clearTimeout(idle);
  }
  await closeStream(out);
  if (done < file.size) throw resumable(`${url}: the response ended after ${done} of ${file.size} bytes; the next attempt resumes it`);
}

function closeStream(s: fs.WriteStream): Promise<void> {
  return new Promise((r) => s.end(() => r()));
}

function resumable(message: string): DownloadError {
  return Object.assign(new DownloadError(message), { resumable: true });
}

function causeOf(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message;
}
