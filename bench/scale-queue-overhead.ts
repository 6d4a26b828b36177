/**
 * Overhead of the distributed-PBS queue per job, measured in one run: requests of --pbs KS-PBS (2_2 set, trivial
 * ciphertexts) go through Redis/BullMQ to one `fhenet worker` (1 thread, --verbose, which logs the time each job spent
 * in PBS). Overhead per job = (request wall time − Σ the worker's PBS time) / jobs: everything that is not PBS —
 * writing inputs and tables to Redis, BullMQ's add/fetch/lock/complete, reading results, the server's wait.
 *
 *   nice -n 10 npx tsx bench/scale-queue-overhead.ts --pbs 256 --chunks 4,16,64
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { intListOption, intOption } from '../src/cli/options.js';
import { PbsQueueClient } from '../src/scale/pbs-queue.js';
import { parseRedisUrl } from '../src/scale/redis.js';
import { TfheClient } from '../src/tfhe/client.js';
import { buildLut } from '../src/tfhe/lut.js';
import { LweCiphertext } from '../src/tfhe/lwe.js';
import { plaintextModulus } from '../src/tfhe/params.js';
import { ServerKey } from '../src/tfhe/server-key.js';
import { startFhenet, startRedis, stopAll } from '../tests/scale/cluster.js';

const o = new Command()
  .option('--pbs <n>', 'PBS per request', intOption('--pbs', 1, 100_000), 256)
  .option('--chunks <list>', 'PBS per job to try', intListOption('--chunks', 1), [4, 16, 64])
  .parse()
  .opts<{ pbs: number; chunks: number[] }>();
const SET = 'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-bench-queue-'));

try {
  const redis = await startRedis(path.join(root, 'redis'));
  const client = TfheClient.create(SET);
  const keyBytes = client.compressedServerKey();
  const key = ServerKey.fromCompressedBytes(keyBytes, { params: SET });
  const p = key.params;
  const lut = buildLut(p.polynomialSize, plaintextModulus(p), (m) => m);
  const cts = Array.from({ length: o.pbs }, () => new LweCiphertext(new Uint32Array(2 * (key.lweDimension + 1)), 0, 0, 0));
  // local peer: the same PBS in this thread
  let t0 = performance.now();
  for (let i = 0; i < cts.length; i += 8) key.pbsBatch(cts.slice(i, i + 8), lut);
  const localMs = performance.now() - t0;
  const w = startFhenet(['worker', '--queue', redis.url, '--jobs', 'pbs', '--threads', '1', '--verbose']);
  await w.waitFor(/ready: pbs/);
  console.log(`| PBS per job | jobs | request wall ms | Σ worker PBS ms | overhead per job ms | overhead share |`);
  console.log(`|---|---|---|---|---|---|`);
  for (const chunk of o.chunks) {
    const queue = await PbsQueueClient.connect(parseRedisUrl(redis.url), { chunk });
    const runner = await queue.runnerFor(key, keyBytes);
    await runner.pbsMany(cts.slice(0, chunk), cts.slice(0, chunk).map(() => lut)); // warm: the worker loads the key
    const mark = w.output().length;
    t0 = performance.now();
    await runner.pbsMany(cts, cts.map(() => lut));
    const wall = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 200)); // the log lines of the last job
    const pbsMs = [...w.output().slice(mark).matchAll(/done \(PBS ([\d.]+) ms\)/g)].reduce((a, m) => a + Number(m[1]), 0);
    const jobs = Math.ceil(o.pbs / chunk);
    console.log(`| ${chunk} | ${jobs} | ${wall.toFixed(0)} | ${pbsMs.toFixed(0)} | ${((wall - pbsMs) / jobs).toFixed(1)} | ${((100 * (wall - pbsMs)) / wall).toFixed(1)} % |`);
    await queue.close();
  }
  console.log(`\nLocal peer (same ${o.pbs} PBS in this thread, batches of 8): ${localMs.toFixed(0)} ms = ${(localMs / o.pbs).toFixed(1)} ms per PBS. Load average ${os.loadavg().map((v) => v.toFixed(1)).join(' / ')} (shared 2-core VM).`);
  client.dispose();
} finally {
  await stopAll();
  fs.rmSync(root, { recursive: true, force: true });
}
