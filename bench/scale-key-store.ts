/**
 * Cold start of a replica on the shared Redis key store: how long a replica that never saw a uid takes to fetch its
 * key from Redis (chunked) and expand it, against the local-directory store, for the 2_2 key (real, ≈ 29 MiB) and a
 * 2_3-sized one (116.4 MiB of random bytes: fetch only). Medians of --runs.
 *
 *   npx tsx bench/scale-key-store.ts --runs 5
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { intOption } from '../src/cli/options.js';
import type { KeyStore, StoredKeyMeta } from '../src/hybrid/server/key-store.js';
import { LocalDirectoryKeyStore } from '../src/hybrid/server/local-key-store.js';
import { RedisKeyStore } from '../src/scale/redis-key-store.js';
import { parseRedisUrl } from '../src/scale/redis.js';
import { TfheClient } from '../src/tfhe/client.js';
import { ServerKey } from '../src/tfhe/server-key.js';
import { startRedis, stopAll } from '../tests/scale/cluster.js';

const o = new Command().option('--runs <n>', 'repetitions (median)', intOption('--runs', 1, 100), 5).parse().opts<{ runs: number }>();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-bench-ks-'));

async function put(store: KeyStore, data: Uint8Array): Promise<{ uid: string; ms: number }> {
  const uid = randomUUID();
  const t0 = performance.now();
  const up = await store.beginUpload(uid);
  for (let i = 0; i < data.length; i += 65536) await up.write(data.subarray(i, i + 65536)); // as HTTP delivers it
  const meta: StoredKeyMeta = { uid, model: 'm', module: 'x', shape: '1', circuitId: '0'.repeat(16), bytes: data.length, created: new Date().toISOString() };
  await up.commit(meta);
  return { uid, ms: performance.now() - t0 };
}

try {
  const redis = await startRedis(path.join(root, 'redis'));
  const stores: [string, KeyStore][] = [
    ['local directory', (await LocalDirectoryKeyStore.open(path.join(root, 'keys'), { capacityBytes: 2 ** 34 })).store],
    ['Redis (AOF, fsync always)', await RedisKeyStore.open(parseRedisUrl(redis.url), { capacityBytes: 2 ** 34 })],
  ];
  const client = TfheClient.create('PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128');
  const key22 = client.compressedServerKey();
  const big = Uint8Array.from({ length: Math.round(116.4 * 2 ** 20) }, (_, i) => (i * 2654435761) >>> 24);
  const expand: number[] = [];
  for (let r = 0; r < o.runs; r++) {
    const t0 = performance.now();
    ServerKey.fromCompressedBytes(key22, { params: 'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128' });
    expand.push(performance.now() - t0);
  }
  console.log(`| store | key | upload (store) ms | fetch ms (cold replica) | fetch + expand ms |`);
  console.log(`|---|---|---|---|---|`);
  for (const [name, store] of stores) {
    for (const [label, data, exp] of [['2_2 (real, 28.8 MiB)', key22, median(expand)], ['2_3-sized (116.4 MiB)', big, undefined]] as const) {
      const ups: number[] = [];
      const gets: number[] = [];
      for (let r = 0; r < o.runs; r++) {
        const { uid, ms } = await put(store, data);
        ups.push(ms);
        const t0 = performance.now();
        const got = await store.get(uid);
        gets.push(performance.now() - t0);
        if (!got || got.length !== data.length) throw new Error('fetched key differs');
        await store.delete(uid);
      }
      console.log(`| ${name} | ${label} | ${median(ups).toFixed(0)} | ${median(gets).toFixed(0)} | ${exp !== undefined ? (median(gets) + exp).toFixed(0) : '—'} |`);
    }
    await store.close();
  }
  console.log(`\n2_2 key expansion (ServerKey.fromCompressedBytes, this thread): median ${median(expand).toFixed(0)} ms of ${o.runs}. Load average ${os.loadavg().map((v) => v.toFixed(1)).join(' / ')} (shared machine).`);
  client.dispose();
} finally {
  await stopAll();
  fs.rmSync(root, { recursive: true, force: true });
}
