/**
 * Crash consistency of the local key store (issue 22, server finding 3): a child process writes a key and is killed
 * (SIGKILL) after each step of the write — mid-upload, after the key bytes are written, fsync'ed, renamed, after the
 * metadata is fsync'ed, after the directory is fsync'ed, after the commit. Reopening the store must find either
 * the complete key (only once the commit point, the metadata rename, has happened) or no trace of it: no leftover
 * file, and every byte on disk counted in the budget. A key committed earlier survives every crash.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KEY_WRITE_STEPS, LocalDirectoryKeyStore } from '../../src/hybrid/server/local-key-store.js';
import { tmpDir } from './helpers.js';

const root = tmpDir('crash');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const SURVIVOR = '11111111-1111-4111-8111-111111111111';
const VICTIM = '22222222-2222-4222-8222-222222222222';
const keyBytes = (seed: number) => Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31 + seed) & 0xff);
const metaOf = (uid: string) => ({ uid, model: 'm', module: 'x', shape: '10', circuitId: '0123456789abcdef', bytes: 200_000, created: '2026-01-01T00:00:00.000Z' });

/** Runs a child that writes VICTIM's key and SIGKILLs itself after `step` ('mid-upload': after the first chunk). */
function crashAt(dir: string, step: string): NodeJS.Signals | null {
  const script = `
    import { LocalDirectoryKeyStore } from ${JSON.stringify(path.resolve('src/hybrid/server/local-key-store.ts'))};
    const step = ${JSON.stringify(step)};
    const die = (s) => { if (s === step) process.kill(process.pid, 'SIGKILL'); };
    const { store } = await LocalDirectoryKeyStore.open(${JSON.stringify(dir)}, { capacityBytes: 10_000_000, afterWriteStep: async (s) => die(s) });
    const bytes = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31 + 2) & 0xff);
    const up = await store.beginUpload(${JSON.stringify(VICTIM)});
    for (let i = 0; i < bytes.length; i += 50_000) {
      await up.write(bytes.subarray(i, i + 50_000));
      die('mid-upload');
    }
    await up.commit(${JSON.stringify(metaOf(VICTIM))});
    die('after-commit');
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  if (r.signal !== 'SIGKILL') throw new Error(`child was not killed at ${step}: status ${r.status} ${r.stderr}`);
  return r.signal;
}

/** Every file under dir (recursively), relative, with its size. */
function onDisk(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), fs.statSync(p).size);
    }
  };
  walk(dir);
  return out;
}

describe('local key store crash consistency', () => {
  for (const step of ['mid-upload', ...KEY_WRITE_STEPS]) {
    it(`killed ${step === 'mid-upload' ? 'mid-upload' : `after '${step}'`}: the key is complete or absent, nothing is left over, all bytes are counted`, async () => {
      const dir = path.join(root, step);
      const { store: first } = await LocalDirectoryKeyStore.open(dir, { capacityBytes: 10_000_000 });
      const up = await first.beginUpload(SURVIVOR);
      await up.write(keyBytes(1));
      await up.commit(metaOf(SURVIVOR));
      await first.close();

      crashAt(dir, step);
      const committed = step === 'committed';
      if (!committed) expect(onDisk(dir).size).toBeGreaterThan(2); // the crash did leave something behind

      const { store, cleanup } = await LocalDirectoryKeyStore.open(dir, { capacityBytes: 10_000_000 });
      expect(await store.get(SURVIVOR)).toEqual(keyBytes(1));
      if (committed) {
        expect(await store.get(VICTIM)).toEqual(keyBytes(2));
        expect(await store.meta(VICTIM)).toEqual(metaOf(VICTIM));
      } else {
        expect(await store.has(VICTIM)).toBe(false);
        expect(cleanup.files.length).toBeGreaterThan(0);
      }
      const files = onDisk(dir);
      const expected = [SURVIVOR, ...(committed ? [VICTIM] : [])].flatMap((u) => [`${u}.json`, `${u}.key`]).sort();
      expect([...files.keys()].sort()).toEqual(expected);
      const usage = await store.usage();
      expect(usage.storedBytes).toBe([...files.values()].reduce((a, b) => a + b, 0));
      expect(usage.keys).toBe(committed ? 2 : 1);
    }, 60_000);
  }

  it('writes in the order that makes the metadata rename the single commit point', async () => {
    const steps: string[] = [];
    const dir = path.join(root, 'order');
    const { store } = await LocalDirectoryKeyStore.open(dir, { capacityBytes: 10_000_000, afterWriteStep: (s) => void steps.push(`${s}:${fs.existsSync(path.join(dir, `${VICTIM}.key`)) ? 'key' : '-'}${fs.existsSync(path.join(dir, `${VICTIM}.json`)) ? '+meta' : ''}`) });
    const up = await store.beginUpload(VICTIM);
    await up.write(keyBytes(2));
    await up.commit(metaOf(VICTIM));
    expect(steps).toEqual(['key-written:-', 'key-synced:-', 'key-renamed:key', 'meta-synced:key', 'dir-synced:key', 'committed:key+meta']);
  });
});
