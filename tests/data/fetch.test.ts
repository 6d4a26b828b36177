/**
 * `fhenet data fetch` against a loopback HTTP server (node:http on 127.0.0.1, closed after the tests): a good file,
 * a checksum mismatch, a connection cut mid-file (resumed with a Range request, within one call and across calls),
 * a server that ignores Range (clean restart), and local files by content.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChecksumError, DownloadError } from '../../src/data/errors.js';
import type { DatasetSpec } from '../../src/data/registry.js';
import { fetchDataset, storedForm, verifyDataset } from '../../src/data/store.js';

const GOOD = randomBytes(300_000);
const OTHER = randomBytes(300_000);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Per path: what the server does. `cutOnce`: the first full request is cut after half the bytes. */
const behaviour = new Map<string, { body: Buffer; cutFirst?: number; ignoreRange?: boolean }>();
const log: { path: string; range?: string }[] = [];
let server: http.Server;
let base = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const b = behaviour.get(req.url ?? '');
    log.push({ path: req.url ?? '', range: req.headers.range });
    if (!b) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !b.ignoreRange) start = Number(m[1]);
    const body = b.body.subarray(start);
    res.writeHead(start ? 206 : 200, {
      'content-length': body.length,
      ...(start ? { 'content-range': `bytes ${start}-${b.body.length - 1}/${b.body.length}` } : {}),
    });
    if (b.cutFirst !== undefined && b.cutFirst > 0) {
      b.cutFirst--;
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.end(body);
  });
  server.keepAliveTimeout = 100;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function spec(file = 'blob.bin', url = `${base}/${file}`): DatasetSpec {
  return {
    name: 'toy',
    description: 'test data',
    homepage: base,
    forms: [
      { id: 'net', description: 'served', files: [{ name: file, sha256: sha(GOOD), size: GOOD.length, url }] },
      { id: 'local', description: 'local only', files: [{ name: 'other.bin', sha256: sha(OTHER), size: OTHER.length }] },
    ],
  };
}
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-data-'));

describe('fhenet data fetch over HTTP (loopback)', () => {
  it('downloads a good file, verifies it and stores it under its name (and skips it the second time)', async () => {
    behaviour.set('/good.bin', { body: GOOD });
    const dir = tmp();
    const s = spec('good.bin');
    const r = await fetchDataset(s, { dir, progress: 'silent' });
    expect(r.files.map((f) => f.action)).toEqual(['downloaded']);
    expect(sha(fs.readFileSync(path.join(dir, 'good.bin')))).toBe(sha(GOOD));
    expect(fs.readdirSync(dir)).toEqual(['good.bin']);
    expect(storedForm(s, dir)?.form.id).toBe('net');
    expect((await verifyDataset(s, dir)).complete).toBe(true);
    const again = await fetchDataset(s, { dir, progress: 'silent' });
    expect(again.files.map((f) => f.action)).toEqual(['verified']);
  });

  it('refuses a file whose SHA-256 differs and leaves nothing that passes as complete', async () => {
    behaviour.set('/bad.bin', { body: OTHER }); // same size, other bytes
    const dir = tmp();
    const s = spec('bad.bin');
    await expect(fetchDataset(s, { dir, progress: 'silent' })).rejects.toThrow(ChecksumError);
    await expect(fetchDataset(s, { dir, progress: 'silent' })).rejects.toThrow(/SHA-256 .* expected .*partial file was deleted/);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(storedForm(s, dir)).toBeUndefined();
    expect((await verifyDataset(s, dir)).complete).toBe(false);
  });

  it('resumes a connection cut mid-file with a Range request (within one call)', async () => {
    behaviour.set('/cut.bin', { body: GOOD, cutFirst: 1 });
    log.length = 0;
    const dir = tmp();
    const r = await fetchDataset(spec('cut.bin'), { dir, progress: 'silent' });
    expect(r.files[0]!.action).toBe('downloaded');
    expect(sha(fs.readFileSync(path.join(dir, 'cut.bin')))).toBe(sha(GOOD));
    const ranges = log.filter((l) => l.path === '/cut.bin').map((l) => l.range);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(ranges[1]!)![0])).toBeGreaterThan(0);
  });

  it('keeps only a .part after a cut with no retries, which never counts as stored; the next fetch resumes it', async () => {
    behaviour.set('/cut2.bin', { body: GOOD, cutFirst: 1 });
    log.length = 0;
    const dir = tmp();
    const s = spec('cut2.bin');
    await expect(fetchDataset(s, { dir, progress: 'silent', retries: 0 })).rejects.toThrow(DownloadError);
    expect(fs.readdirSync(dir)).toEqual(['cut2.bin.part']);
    expect(fs.statSync(path.join(dir, 'cut2.bin.part')).size).toBeLessThan(GOOD.length);
    expect(storedForm(s, dir)).toBeUndefined();
    const v = await verifyDataset(s, dir);
    expect(v.complete).toBe(false);
    expect(v.partial).toEqual(['cut2.bin.part']);
    await fetchDataset(s, { dir, progress: 'silent', retries: 0 });
    expect(fs.readdirSync(dir)).toEqual(['cut2.bin']);
    expect(sha(fs.readFileSync(path.join(dir, 'cut2.bin')))).toBe(sha(GOOD));
    expect(log.filter((l) => l.path === '/cut2.bin').map((l) => l.range !== undefined)).toEqual([false, true]);
  });

  it('starts over when the server ignores Range (HTTP 200 to a resumed request)', async () => {
    behaviour.set('/norange.bin', { body: GOOD, cutFirst: 1, ignoreRange: true });
    const dir = tmp();
    await fetchDataset(spec('norange.bin'), { dir, progress: 'silent' });
    expect(sha(fs.readFileSync(path.join(dir, 'norange.bin')))).toBe(sha(GOOD));
  });

  it('names the HTTP status of a missing file', async () => {
    await expect(fetchDataset(spec('absent.bin'), { dir: tmp(), progress: 'silent' })).rejects.toThrow(/HTTP 404.*--from FILE/);
  });

  it('--from URL of a known file name, and --from FILE matched by content', async () => {
    behaviour.set('/mirror/blob.bin', { body: GOOD });
    const dir = tmp();
    const s = spec('blob.bin', 'http://127.0.0.1:9/unused');
    const r = await fetchDataset(s, { dir, from: `${base}/mirror/blob.bin`, progress: 'silent' });
    expect(r.form.id).toBe('net');
    const local = path.join(tmp(), 'renamed-by-the-user');
    fs.writeFileSync(local, OTHER);
    const r2 = await fetchDataset(s, { dir, from: local });
    expect(r2.form.id).toBe('local');
    expect(sha(fs.readFileSync(path.join(dir, 'other.bin')))).toBe(sha(OTHER));
    const stranger = path.join(tmp(), 'x');
    fs.writeFileSync(stranger, randomBytes(10));
    await expect(fetchDataset(s, { dir, from: stranger })).rejects.toThrow(/none of the files fhenet knows for toy/);
  });
});
