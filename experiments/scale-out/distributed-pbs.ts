/**
 * Distributed PBS, measured (issue 26): the encrypted-images CNN (experiments/encrypted-images, 1,757 PBS per image,
 * 2_3 set) evaluated by one TfheCircuitServer whose KS-PBS run
 *   (a) in this process on 1 worker thread (the single-machine peer),
 *   (b) on 1 `fhenet worker` process (1 thread) through Redis/BullMQ,
 *   (c) on 2 worker processes (1 thread each),
 *   (d) on 2 worker processes, one SIGKILLed in the middle of the request (its job is retried by the other),
 * all in the same run, every output compared with simulate. Before a configuration is timed, each new worker loads the
 * key (fetch from Redis + expansion; its time is reported) through a few PBS of trivial ciphertexts, so the rows are
 * the steady state.
 *
 *   nice -n 10 npx tsx experiments/scale-out/distributed-pbs.ts --images 1 --write
 *
 * Writes experiments/scale-out/RESULTS-distributed-pbs.md (also part-way, after each configuration).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { intOption } from '../../src/cli/options.js';
import { initBackend } from '../../src/backend/index.js';
import { quantizeInput, simulate } from '../../src/compiler/simulate.js';
import { TfheCircuitClient, TfheCircuitServer } from '../../src/runtime/executor.js';
import { buildLut } from '../../src/tfhe/lut.js';
import { LweCiphertext } from '../../src/tfhe/lwe.js';
import { plaintextModulus } from '../../src/tfhe/params.js';
import { PbsQueueClient } from '../../src/scale/pbs-queue.js';
import { parseRedisUrl } from '../../src/scale/redis.js';
import { size } from '../../src/train/dataset.js';
import { ReportLog } from '../../src/util/report-log.js';
import { compileNet, loadImages, loadNet, nhwcToNchw, pick } from '../encrypted-images/lib.js';
import { type Proc, startFhenet, startRedis, stopAll } from '../../tests/scale/cluster.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const o = new Command()
  .option('--images <n>', 'test images evaluated per configuration', intOption('--images', 1, 100), 1)
  .option('--calib <n>', 'calibration images', intOption('--calib', 1), 10000)
  .option('--pbs-per-job <n>', 'PBS per queue job', intOption('--pbs-per-job', 1, 4096), 16)
  .option('--write', 'write RESULTS-distributed-pbs.md')
  .parse()
  .opts<{ images: number; calib: number; pbsPerJob: number; write?: boolean }>();

const report = new ReportLog();
const log = report.log;
const out = path.join(here, 'RESULTS-distributed-pbs.md');
const flush = (extra: string[] = []) => o.write && fs.writeFileSync(out, report.text(extra));
const t00 = performance.now();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-dpbs-exp-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));

await initBackend();
const { net, cfg } = loadNet(path.join(here, '../encrypted-images/model.safetensors'));
const data = await loadImages(cfg.dataset);
const fhe = compileNet(net, pick(data.train, o.calib, cfg.dataset));
const c = fhe.circuit;
const imgs = pick(data.test, o.images, cfg.dataset);
const n = size(imgs);
const ints = quantizeInput(c, nhwcToNchw(imgs.x, n, imgs.sampleShape));
const want = Array.from(simulate(c, ints, n).output);
const per = ints.length / n;

const tK = performance.now();
const client = TfheCircuitClient.forCircuit(c);
const keyBytes = client.serverKey();
const keygen = (performance.now() - tK) / 1000;

log('# Distributed PBS: the encrypted-images CNN on worker processes through Redis');
log();
log(`Command: \`nice -n 10 npx tsx experiments/scale-out/distributed-pbs.ts --images ${o.images} --calib ${o.calib} --pbs-per-job ${o.pbsPerJob}${o.write ? ' --write' : ''}\`. Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, shared with other engineers' jobs (load average at the start ${os.loadavg().map((v) => v.toFixed(1)).join(' / ')}): wall times are noisy, compare the rows of this one run with each other.`);
log();
log(`Circuit: ${cfg.dataset} CNN of experiments/encrypted-images, set ${client.paramsName}; compressed server key ${(keyBytes.length / 2 ** 20).toFixed(1)} MiB (key generation ${keygen.toFixed(1)} s); ${n} image(s) per request; ${o.pbsPerJob} PBS per queue job.`);
log();

interface Row {
  name: string;
  wall: number;
  pbs: number;
  pbsSeconds: number;
  linearSeconds: number;
  jobs?: number;
  equal: boolean;
  note?: string;
}
const rows: Row[] = [];
const table = () => [
  '| configuration | wall s / request | PBS | PBS-phase s | linear s | queue jobs | = simulate | note |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.name} | ${r.wall.toFixed(1)} | ${r.pbs} | ${r.pbsSeconds.toFixed(1)} | ${r.linearSeconds.toFixed(1)} | ${r.jobs ?? '—'} | ${r.equal ? 'yes' : '**NO**'} | ${r.note ?? ''} |`),
];

async function request(server: TfheCircuitServer, name: string, jobs0?: () => number, note?: string): Promise<Row> {
  const t0 = performance.now();
  const j0 = jobs0?.();
  const down = await server.runEncrypted(c, client.encryptInputs(c, ints, n), n);
  const wall = (performance.now() - t0) / 1000;
  const got = Array.from(client.decryptOutputs(c, down, n));
  const st = server.lastStats!;
  const row: Row = { name, wall, pbs: st.pbs, pbsSeconds: st.pbsSeconds, linearSeconds: st.linearSeconds, equal: got.length === want.length && got.every((v, i) => v === want[i]), ...(jobs0 ? { jobs: jobs0() - j0! } : {}), ...(note ? { note } : {}) };
  rows.push(row);
  console.log(`${name}: ${wall.toFixed(1)} s, ${row.equal ? '= simulate' : 'MISMATCH'} (load ${os.loadavg()[0]!.toFixed(1)})`);
  flush(table());
  return row;
}

try {
  // (a) single machine, one PBS thread (a PbsPool of 1 worker thread, as `--tfhe-threads 1` would)
  const local = await TfheCircuitServer.create(keyBytes, { params: client.paramsName, threads: 1 });
  await request(local, 'local, 1 thread (no queue)');
  await local.close();

  const redis = await startRedis(path.join(root, 'redis'));
  const queue = await PbsQueueClient.connect(parseRedisUrl(redis.url), { chunk: o.pbsPerJob, jobTimeoutMs: 3 * 3600_000 });
  const server = await TfheCircuitServer.create(keyBytes, { params: client.paramsName, pbsRunner: queue.factory });
  const jobs = () => queue.stats.jobs;
  const worker = async (): Promise<Proc> => {
    const w = startFhenet(['worker', '--queue', redis.url, '--jobs', 'pbs', '--threads', '1', '--lock-ms', '10000', '--verbose']);
    await w.waitFor(/ready: pbs/, 120_000);
    return w;
  };
  const loadSeconds = (w: Proc) => w.output().match(/loaded \([\d.]+ MiB, ([\d.]+) s/)?.[1] ?? '?';

  // Warm-up: PBS of trivial ciphertexts (mask 0) until the worker has the key expanded.
  const sk = server.key;
  const p = sk.params;
  const runner = await queue.runnerFor(sk, keyBytes);
  const lut = buildLut(p.polynomialSize, plaintextModulus(p), (m) => m);
  const warm = async (w: Proc) => {
    for (let i = 0; i < 20 && !/ loaded \(/.test(w.output()); i++) {
      const cts = Array.from({ length: 4 * o.pbsPerJob }, () => new LweCiphertext(new Uint32Array(2 * (sk.lweDimension + 1)), 0, 0, 0));
      await runner.pbsMany(cts, cts.map(() => lut));
    }
  };

  // (b) one worker process
  const w1 = await worker();
  await warm(w1);
  await request(server, '1 worker', jobs, `its key load (fetch + expansion, before timing): ${loadSeconds(w1)} s`);
  // (c) two worker processes
  const w2 = await worker();
  await warm(w2);
  await request(server, '2 workers', jobs, `worker 2 key load: ${loadSeconds(w2)} s`);
  // (d) two workers, worker 2 SIGKILLed once it has finished 5 jobs of this request
  const done0 = (w2.output().match(/ done/g) ?? []).length;
  const killer = (async () => {
    const t0 = Date.now();
    while ((w2.output().match(/ done/g) ?? []).length < done0 + 5 && Date.now() - t0 < 3600_000) await new Promise((r) => setTimeout(r, 20));
    await w2.kill('SIGKILL');
  })();
  await request(server, '2 workers, worker 2 SIGKILLed mid-request', jobs, 'its unfinished job was retried by worker 1 after the 10 s lock');
  await killer;
  await server.close();
  await queue.close();

  const local1 = rows[0]!;
  const warm1 = rows[1]!;
  const warm2 = rows[2]!;
  for (const l of table()) log(l);
  log();
  log(`- Speed-up of 2 workers over 1 (warm rows): **${(warm1.wall / warm2.wall).toFixed(2)}×** wall.`);
  log(`- Queue overhead (1 worker warm vs local 1 thread): ${(warm1.wall - local1.wall).toFixed(1)} s over ${warm1.jobs} jobs = ${((1000 * (warm1.wall - local1.wall)) / warm1.jobs!).toFixed(0)} ms per job of ${o.pbsPerJob} PBS (negative: noise larger than the overhead).`);
  log(`- Per-PBS cost, local: ${((1000 * local1.pbsSeconds) / local1.pbs).toFixed(1)} ms wall per PBS on 1 thread.`);
  log(`- Every configuration equal to simulate: ${rows.every((r) => r.equal) ? 'yes' : 'NO'}.`);
  log(`- Load average at the end ${os.loadavg().map((v) => v.toFixed(1)).join(' / ')}; script wall time ${((performance.now() - t00) / 1000).toFixed(0)} s.`);
  flush();
  if (!rows.every((r) => r.equal)) process.exitCode = 1;
} finally {
  await stopAll();
  client.dispose();
}
